"""The torch-free runtime: bundles, ONNX Runtime predictors, tiling, image ops. Must not import torch."""
