"""Exact ONNX graph rewrites applied at export, for ONNX Runtime's CPU kernels.

They change how a net is computed, never what: every rewritten graph goes
through the exporter's parity check against torch like any other.

``split_concat_convs``: a U-Net's up stage is ``Conv(Concat(up, skip))``. In
ONNX Runtime's blocked (NCHWc) layout, ``Concat`` has no kernel, so the skip
is converted out of the blocked layout, copied into the concatenation, and the
result converted back: three full-resolution copies per stage. A convolution
of a concatenation is the sum of two convolutions over the two parts (the
weight split along its input channels), and ORT fuses ``Conv -> Add`` into
one blocked convolution that accumulates into the other's output. The skip
then never leaves the blocked layout and no concatenation is materialised.

``depthwise_single_output_convs``: the last layer of a grey decoder or denoiser
is a 3x3 convolution to one channel. In the blocked layout ORT pads the output
channels to its block (8 or 16), so the layer costs as much as a full-width
one: 18 % of a decoder's kernel time. ``Conv(x, W[1, C, k, k])`` equals a
depthwise convolution (each channel with its own kernel) followed by a 1x1
convolution of ones that sums the channels, and both run blocked at a
fraction of the cost. Measured (one thread, interleaved): 32->1 at 128 x 128
1.31 -> 0.48 ms, 16->1 at 32 x 32 63 -> 25 us, 8->1 at 32 x 32 41 -> 33 us.
For more than one output channel the depthwise form needs a channel
multiplier, which ORT does not run blocked (2x slower), so those are left alone.

Measured on the nets: docs/BENCHMARKS.md (ort_vs_torch).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

log = logging.getLogger(__name__)


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _replace_nodes(graph: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> None:
    """Give ``graph`` these nodes and drop the initializers no node uses any more."""
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def split_concat_convs(model: onnx.ModelProto) -> int:
    """Rewrite every ``Conv(Concat([a, b], axis=1))`` whose concatenation has no
    other use into ``Conv(a, Wa) + Conv(b, Wb, bias)``, in place. Returns how many.

    The new partial outputs get the original output's shape (symbolic sizes
    included), so ORT can prove the two addends have equal shapes and fuse
    the ``Add`` into the second convolution.
    """
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    outputs = {o.name for o in graph.output}
    producer = {out: node for node in graph.node for out in node.output}
    candidates: dict[str, onnx.NodeProto] = {}  # conv output -> concat
    for node in graph.node:
        if node.op_type != "Conv" or node.domain not in ("", "ai.onnx") or len(node.input) < 2:
            continue
        cat = producer.get(node.input[0])
        if (
            cat is None
            or cat.op_type != "Concat"
            or _attrs(cat).get("axis") != 1
            or len(cat.input) != 2
            or uses.get(cat.output[0], 0) != 1
            or cat.output[0] in outputs
            or node.input[1] not in inits
            or _attrs(node).get("group", 1) != 1
        ):
            continue
        candidates[node.output[0]] = cat
    if not candidates:
        return 0
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # noqa: BLE001 - an odd graph keeps its Concat; the rewrite is an optimisation
        log.debug("no Conv(Concat) split: shape inference failed (%s)", exc)
        return 0
    infos = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)}
    new_nodes: list[onnx.NodeProto] = []
    dropped: set[str] = set()
    done = 0
    plans: dict[str, tuple[onnx.NodeProto, int, np.ndarray]] = {}  # conv output -> (concat, split, weight)
    for node in graph.node:
        cat = candidates.get(node.output[0]) if node.op_type == "Conv" else None
        info = infos.get(cat.input[0]) if cat is not None else None
        if cat is None or info is None:
            continue
        dims = info.type.tensor_type.shape.dim
        first = dims[1].dim_value if len(dims) > 1 and dims[1].HasField("dim_value") else 0
        weight = numpy_helper.to_array(inits[node.input[1]])
        if 0 < first < weight.shape[1]:  # the first input's channel count is known: split there
            plans[node.output[0]] = (cat, first, weight)
            dropped.add(cat.output[0])
    for node in graph.node:
        if node.op_type == "Concat" and node.output[0] in dropped:
            continue
        plan = plans.get(node.output[0]) if node.op_type == "Conv" else None
        if plan is None:
            new_nodes.append(node)
            continue
        cat, first, weight = plan
        base = node.name or node.output[0]
        names = (f"{base}.split_a.weight", f"{base}.split_b.weight")
        for name, part in zip(names, (weight[:, :first], weight[:, first:]), strict=True):
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(part), name))
        part_a, part_b = f"{node.output[0]}.split_a", f"{node.output[0]}.split_b"
        conv_a = helper.make_node("Conv", [cat.input[0], names[0]], [part_a], name=f"{base}.split_a")
        conv_b = helper.make_node("Conv", [cat.input[1], names[1], *node.input[2:]], [part_b], name=f"{base}.split_b")
        for conv in (conv_a, conv_b):
            conv.attribute.extend(node.attribute)
        new_nodes.extend([conv_a, conv_b, helper.make_node("Add", [part_a, part_b], [node.output[0]], name=f"{base}.split_sum")])
        shape = infos.get(node.output[0])
        if shape is not None:
            for name in (part_a, part_b):
                copy = onnx.ValueInfoProto()
                copy.CopyFrom(shape)
                copy.name = name
                graph.value_info.append(copy)
        done += 1
    _replace_nodes(graph, new_nodes)
    if done:
        log.debug("split %d Conv(Concat) pairs", done)
    return done


def depthwise_single_output_convs(model: onnx.ModelProto, *, min_channels: int = 8) -> int:
    """Rewrite every ``Conv(x, W[1, C, kh, kw], b)`` (group 1, kernel larger than 1x1,
    ``C`` a multiple of 8) into ``Conv(Conv(x, W as depthwise, group=C), ones[1, C, 1, 1], b)``,
    in place. Returns how many."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    new_nodes: list[onnx.NodeProto] = []
    done = 0
    for node in graph.node:
        weight = None
        if node.op_type == "Conv" and node.domain in ("", "ai.onnx") and len(node.input) >= 2 and node.input[1] in inits:
            weight = numpy_helper.to_array(inits[node.input[1]])
        if (
            weight is None
            or weight.ndim != 4
            or weight.shape[0] != 1
            or weight.shape[1] < min_channels
            or weight.shape[1] % 8
            or weight.shape[2] * weight.shape[3] == 1
            or _attrs(node).get("group", 1) != 1
        ):
            new_nodes.append(node)
            continue
        channels = weight.shape[1]
        base = node.name or node.output[0]
        dw_name, sum_name = f"{base}.depthwise.weight", f"{base}.channel_sum.weight"
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight.transpose(1, 0, 2, 3)), dw_name))
        graph.initializer.append(numpy_helper.from_array(np.ones((1, channels, 1, 1), dtype=weight.dtype), sum_name))
        mid = f"{node.output[0]}.depthwise"
        depthwise = helper.make_node("Conv", [node.input[0], dw_name], [mid], name=f"{base}.depthwise", group=channels)
        depthwise.attribute.extend(a for a in node.attribute if a.name != "group")
        total = helper.make_node("Conv", [mid, sum_name, *node.input[2:]], list(node.output), name=f"{base}.channel_sum", kernel_shape=[1, 1])
        new_nodes.extend([depthwise, total])
        done += 1
    if done:
        _replace_nodes(graph, new_nodes)
    return done


def optimise_for_ort(path: Any) -> dict[str, int]:
    """Apply every rewrite to the ONNX file at ``path`` (rewritten in place); returns counts by rewrite."""
    model = onnx.load(str(path))
    counts = {
        "split_concat_convs": split_concat_convs(model),
        "depthwise_single_output_convs": depthwise_single_output_convs(model),
    }
    if any(counts.values()):
        onnx.save(model, str(path))
    return counts
