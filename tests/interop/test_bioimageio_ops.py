"""aestudio's numpy operations against bioimageio.core's own, on an identity ONNX graph.

Each operation of the spec's fixed list, and a chain of them, must give what
bioimageio.core gives (the reference consumers such as ilastik build on): same
percentile method, population std, eps placement, and statistics measured on
the tensor as it enters the chain.
"""

from __future__ import annotations

import io
import warnings
import zipfile

import numpy as np
import pytest
import yaml

pytest.importorskip("bioimageio.core")

from aestudio.inference.bioimageio_ops import apply  # noqa: E402
from aestudio.inference.bioimageio_package import read_package  # noqa: E402

AXES = [{"type": "batch"}, {"type": "channel", "channel_names": ["a", "b"]},
        {"type": "space", "id": "y", "size": {"min": 8, "step": 1}}, {"type": "space", "id": "x", "size": {"min": 8, "step": 1}}]
OUT_AXES = AXES[:2] + [{"type": "space", "id": a, "size": {"tensor_id": "x", "axis_id": a}} for a in ("y", "x")]
OPS = {
    "scale_range": {"id": "scale_range", "kwargs": {"axes": ["y", "x"], "min_percentile": 1.0, "max_percentile": 99.8}},
    "clip": {"id": "clip", "kwargs": {"min": -0.1, "max": 1.05}},
    "scale_linear": {"id": "scale_linear", "kwargs": {"axis": "channel", "gain": [2.0, 0.5], "offset": [0.1, -0.2]}},
    "zero_mean_unit_variance": {"id": "zero_mean_unit_variance", "kwargs": {"axes": ["channel", "y", "x"]}},
    "fixed_zero_mean_unit_variance": {"id": "fixed_zero_mean_unit_variance",
                                      "kwargs": {"axis": "channel", "mean": [0.1, -0.1], "std": [2.0, 0.5]}},
    "binarize": {"id": "binarize", "kwargs": {"threshold": 60.0}},
    "sigmoid": {"id": "sigmoid"},
    "softmax": {"id": "softmax", "kwargs": {"axis": "channel"}},
}


def _identity_package(path, pre, post=()):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 2, "h", "w"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 2, "h", "w"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    buf = io.BytesIO()
    np.save(buf, np.zeros((1, 2, 8, 8), np.float32))
    rdf = {"format_version": "0.5.4", "type": "model", "name": "identity ops", "description": "operations check",
           "authors": [{"name": "aestudio tests"}], "cite": [{"text": "none", "doi": "10.1000/1"}], "license": "MIT",
           "inputs": [{"id": "x", "axes": AXES, "test_tensor": {"source": "t.npy"}, "preprocessing": pre}],
           "outputs": [{"id": "y", "axes": OUT_AXES, "test_tensor": {"source": "t.npy"}, "postprocessing": list(post)}],
           "weights": {"onnx": {"source": "m.onnx", "opset_version": 18}}}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("rdf.yaml", yaml.safe_dump(rdf))
        zf.writestr("m.onnx", model.SerializeToString())
        zf.writestr("t.npy", buf.getvalue())
    return path


def _core(path, x):
    from bioimageio.core import load_model_description, predict

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        descr = load_model_description(path, perform_io_checks=False)
        return np.asarray(next(iter(predict(model=descr, inputs=x).members.values())).data)


@pytest.mark.parametrize("chain", [[k] for k in OPS if k != "binarize"] + [["scale_linear", "zero_mean_unit_variance", "clip", "sigmoid", "softmax"],
                                                        ["scale_range", "zero_mean_unit_variance", "fixed_zero_mean_unit_variance"]],
                         ids=lambda c: "+".join(c))
def test_operations_match_bioimageio_core(tmp_path, chain):
    x = (np.random.default_rng(0).random((1, 2, 32, 40)) * 300 - 20).astype(np.float32)
    path = _identity_package(tmp_path / "ops.zip", [OPS[k] for k in chain])
    ours = apply(read_package(path).pre, x)
    np.testing.assert_allclose(ours, _core(path, x), rtol=1e-5, atol=1e-4)


def test_binarize_as_postprocessing_matches_bioimageio_core(tmp_path):
    """binarize gives booleans, which an ONNX graph cannot take: it is a postprocessing step."""
    x = (np.random.default_rng(1).random((1, 2, 16, 16)) * 100).astype(np.float32)
    path = _identity_package(tmp_path / "bin.zip", [], [OPS["binarize"]])
    ours = apply(read_package(path).post, x)
    np.testing.assert_array_equal(ours, _core(path, x).astype(np.float32))
