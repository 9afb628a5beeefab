"""The live trainer's published weights as an ONNX Runtime session, for the Label tab's prediction.

Predicting a 1024 x 1024 image with the live U-Net (16 channels, depth 3) on one torch thread took
3.2 CPU-seconds (tiled at 512 px with a fixed step: 2.25x the pixels); ONNX Runtime with the
exporter's rewrites and as few tiles as fit takes 0.9 (measured side by side, one thread). Exporting a graph costs ~0.8 CPU-s, too much for every snapshot, so the graph is exported
once per net shape and each snapshot only swaps the weights in: the BatchNorms are folded into their
convolutions in torch first (the exporter would fold them itself under names nobody can map back),
the folded state dict's tensors replace the graph's initializers of the same name, the exporter's
graph rewrites for ORT are applied, and a session is made from the bytes (~20-30 ms).

Qt-free; imports torch (the snapshot is torch tensors), so it lives with the exporter.
"""

from __future__ import annotations

import copy
import io
import logging
import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn

from aestudio.export.graph_rewrites import depthwise_single_output_convs, split_concat_convs
from aestudio.inference.ort import SessionProfile, session_options

if TYPE_CHECKING:
    from aestudio.training.live import LiveConfig

log = logging.getLogger(__name__)

MAX_TILE = 512  # whole images up to this side, larger ones in as few tiles as fit: ~100 MB of activations, as fast as whole
OVERLAP = 32
OPSET = 17


def fold_batchnorms(net: nn.Module) -> nn.Module:
    """A copy of ``net`` (eval mode) with every ``Conv2d -> BatchNorm2d`` pair of a Sequential folded into the conv."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net = copy.deepcopy(net).eval()
    for module in net.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (name_a, a), (name_b, b) in zip(children, children[1:], strict=False):
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                setattr(module, name_a, fuse_conv_bn_eval(a, b))
                setattr(module, name_b, nn.Identity())
    return net


class SnapshotSession:
    """An ORT session per published snapshot of one live U-Net shape (use on one thread)."""

    def __init__(self, channels: int, num_classes: int, cfg: LiveConfig) -> None:
        from aestudio.training.live import live_net_config, net_from_snapshot

        self.channels, self.num_classes, self.cfg = channels, num_classes, cfg
        self.multiple = live_net_config(channels, num_classes, cfg).size_multiple
        net = fold_batchnorms(net_from_snapshot(channels, num_classes, {}, cfg))
        # Distinct values in every tensor: the exporter merges equal initializers (a fresh net's folded
        # biases are all zeros), and a merged one could not take two different weights later.
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for v in net.state_dict().values():
                if v.is_floating_point():
                    v.copy_(torch.randn(v.shape, generator=gen) * 0.01)
        buf = io.BytesIO()
        with warnings.catch_warnings():  # the exporter's deprecation chatter, once per net shape
            warnings.simplefilter("ignore")
            torch.onnx.export(net, torch.zeros(1, channels, 4 * self.multiple, 4 * self.multiple), buf,
                              input_names=["image"], output_names=["logits"], opset_version=OPSET, dynamo=False,
                              dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}},
                              do_constant_folding=False)
        self._model = onnx.load_from_string(buf.getvalue())
        state = net.state_dict()
        self._names = [i.name for i in self._model.graph.initializer]
        # Every folded weight must be an initializer of its own name, with the values exported:
        # else a swap would leave stale weights in the graph (the caller falls back to torch).
        missing = [k for k, v in state.items() if v.is_floating_point() and k not in self._names]
        wrong = [n for n in self._names if n in state
                 and not np.array_equal(numpy_helper.to_array(self._init(n)), state[n].numpy())]
        if missing or wrong:
            raise ValueError(f"cannot map the net's weights onto its ONNX graph (missing {missing[:3]}, "
                             f"changed {wrong[:3]})")
        self._key: tuple[int, int] | None = None
        self._session: ort.InferenceSession | None = None

    def _init(self, name: str) -> onnx.TensorProto:
        return next(i for i in self._model.graph.initializer if i.name == name)

    def load(self, step: int, state: dict[str, torch.Tensor], threads: int) -> None:
        """Use the weights of snapshot ``step`` (a no-op when they are already loaded); ``threads`` 1 runs
        on one thread (while a training run shares the cores), anything else on every core."""
        from aestudio.training.live import net_from_snapshot

        if self._key == (step, threads) and self._session is not None:
            return
        folded = fold_batchnorms(net_from_snapshot(self.channels, self.num_classes, state, self.cfg)).state_dict()
        model = onnx.ModelProto()
        model.CopyFrom(self._model)
        for init in model.graph.initializer:
            if init.name in folded:
                init.CopyFrom(numpy_helper.from_array(folded[init.name].detach().numpy(), init.name))
        split_concat_convs(model)
        depthwise_single_output_convs(model)
        # The runtime's profiles: one thread while training (interactive), every core otherwise; no spinning.
        opts = session_options(SessionProfile.INTERACTIVE if threads == 1 else SessionProfile.BATCH)
        # No arena: a session per snapshot, and a 1024^2 image's activations are returned after each run.
        opts.enable_cpu_mem_arena = False
        self._session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        self._key = (step, threads)

    def predict_probs(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities float32 [K, H, W] of image [H, W, C] in [0, 1] (as ``live.predict_probs``)."""
        from aestudio.inference.imageops import pad_to_multiple
        from aestudio.inference.tiling import tiled_apply

        assert self._session is not None, "load() a snapshot first"
        session = self._session
        img = np.asarray(image, np.float32)
        if img.ndim == 2:
            img = img[..., None]
        height, width = img.shape[:2]
        chw, _ = pad_to_multiple(np.ascontiguousarray(img.transpose(2, 0, 1)), self.multiple)

        def run(batch: np.ndarray) -> np.ndarray:
            logits = session.run(None, {"image": np.ascontiguousarray(batch, np.float32)})[0]
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        side = max(chw.shape[1:])
        if side <= MAX_TILE:
            probs = run(chw[None])[0]
        else:
            probs = tiled_apply(chw, run, tile=fewest_tiles(side, self.multiple), overlap=OVERLAP,
                                multiple=self.multiple, tile_batch=1)
        return np.ascontiguousarray(probs[:, :height, :width], dtype=np.float32)


def fewest_tiles(side: int, multiple: int) -> int:
    """The smallest tile (a multiple of ``multiple``, at most about MAX_TILE) that covers ``side`` in the
    fewest overlapping tiles: 1024 -> 3 x 3 tiles of 368, not of 512 (half the pixels computed)."""
    n = math.ceil((side - OVERLAP) / (MAX_TILE - OVERLAP))
    tile = math.ceil((side + OVERLAP * (n - 1)) / n)
    return min(side, math.ceil(tile / multiple) * multiple)
