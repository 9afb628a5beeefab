"""The torch side of the bundle: the ONNX exporter, its graph rewrites and the torch predictor.

Import submodules directly. The torch-free runtime that runs what this writes is
``aestudio.inference``.
"""
