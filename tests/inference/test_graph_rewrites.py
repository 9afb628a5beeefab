"""The export-time ONNX rewrites: exact, applied where they fit, left alone elsewhere."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from aestudio.inference.bundle import read_bundle
from aestudio.inference.graph_rewrites import split_concat_convs
from aestudio.inference.ort import session_options


def _model(*, axis: int = 1, extra_use: bool = False, bias: bool = True) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 8, "h", "w"])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n", 8, "h", "w"])
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 16, "h", "w"])]
    inits = [numpy_helper.from_array(rng.standard_normal((16, 16, 3, 3)).astype(np.float32), "w")]
    conv_in = ["cat", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), "bias"))
        conv_in.append("bias")
    nodes = [
        helper.make_node("Concat", ["a", "b"], ["cat"], axis=axis),
        helper.make_node("Conv", conv_in, ["conv"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["y"]),
    ]
    if extra_use:
        nodes.append(helper.make_node("Identity", ["cat"], ["cat_copy"]))
        outs.append(helper.make_tensor_value_info("cat_copy", TensorProto.FLOAT, ["n", 16, "h", "w"]))
    model = helper.make_model(helper.make_graph(nodes, "g", [a, b], outs, inits), opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), session_options("interactive"), providers=["CPUExecutionProvider"])
    return sess.run(["y"], feeds)[0]


def test_conv_of_a_concat_becomes_a_sum_of_convs_with_the_same_result() -> None:
    rng = np.random.default_rng(1)
    feeds = {"a": rng.standard_normal((2, 8, 12, 10)).astype(np.float32), "b": rng.standard_normal((2, 8, 12, 10)).astype(np.float32)}
    for bias in (True, False):
        model = _model(bias=bias)
        before = _run(model, feeds)
        assert split_concat_convs(model) == 1
        onnx.checker.check_model(model, full_check=True)
        ops = [n.op_type for n in model.graph.node]
        assert "Concat" not in ops and ops.count("Conv") == 2 and "Add" in ops
        np.testing.assert_allclose(_run(model, feeds), before, rtol=1e-5, atol=1e-5)


def test_concats_that_do_not_fit_are_left_alone() -> None:
    for model in (_model(axis=2), _model(extra_use=True)):
        before = model.SerializeToString()
        assert split_concat_convs(model) == 0
        assert model.SerializeToString() == before


def test_exported_unet_has_no_concat_and_matches_torch(bundles, tmp_path) -> None:
    folder = bundles("unet")
    ops = [n.op_type for n in onnx.load(str(folder / "model.onnx")).graph.node]
    assert "Concat" not in ops and ops.count("Add") >= 1
    assert read_bundle(folder).parity_error["max"] <= 1e-4  # the export's own check, against torch
    # ORT fuses each Add into the second convolution: the optimised graph keeps no Add and no Concat.
    opts = session_options("interactive")
    opts.optimized_model_filepath = str(tmp_path / "unet.optimised.onnx")  # the predictor's options
    ort.InferenceSession(str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    optimised = [n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node]
    assert "Concat" not in optimised and "Add" not in optimised
