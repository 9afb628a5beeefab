"""Export and inference. Import submodules directly; this package must not import torch."""
