"""The export-time ONNX rewrites: exact, applied where they fit, left alone elsewhere."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from aestudio.export.graph_rewrites import depthwise_single_output_convs, split_concat_convs
from aestudio.inference.bundle import read_bundle
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


def _head_model(out_channels: int, in_channels: int, kernel: int = 3) -> onnx.ModelProto:
    rng = np.random.default_rng(2)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", in_channels, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", out_channels, "h", "w"])
    w = rng.standard_normal((out_channels, in_channels, kernel, kernel)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(rng.standard_normal(out_channels).astype(np.float32), "b")]
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[kernel, kernel], pads=[kernel // 2] * 4)
    model = helper.make_model(helper.make_graph([node], "g", [x], [y], inits), opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model


def test_one_channel_conv_becomes_depthwise_plus_channel_sum_with_the_same_result() -> None:
    model = _head_model(1, 16)
    x = np.random.default_rng(3).standard_normal((2, 16, 20, 12)).astype(np.float32)
    before = _run(model, {"x": x})
    assert depthwise_single_output_convs(model) == 1
    onnx.checker.check_model(model, full_check=True)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 2 and [a.i for a in convs[0].attribute if a.name == "group"] == [16]
    np.testing.assert_allclose(_run(model, {"x": x}), before, rtol=1e-5, atol=1e-5)


def test_wide_narrow_and_pointwise_convs_are_left_alone() -> None:
    # two outputs would need a channel multiplier (slower in ORT); 4 inputs are too few; 1x1 is already cheap
    for model in (_head_model(2, 16), _head_model(1, 4), _head_model(1, 16, kernel=1)):
        before = model.SerializeToString()
        assert depthwise_single_output_convs(model) == 0
        assert model.SerializeToString() == before


def test_exported_grey_decoder_ends_in_a_depthwise_conv(bundles) -> None:
    folder = bundles("vae")  # default width 16: its head is a 16 -> 1 3x3 conv
    graph = onnx.load(str(folder / "decoder.onnx")).graph
    groups = [a.i for n in graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "group"]
    assert 16 in groups
    assert read_bundle(folder).parity_error["decoder"] <= 1e-4
