"""A bundle's model graph run in bfloat16 by torch, on CPUs with native bfloat16 (AVX512-BF16 or AMX).

ONNX Runtime has no bfloat16 convolutions on the CPU, and its float32 ones already run near the core's
peak here (the shipped photo-denoiser: ~35 GFLOP per 512^2 image in ~175 ms on two cores). oneDNN's
bfloat16 convolutions do twice the arithmetic per cycle on these CPUs: the same image took ~112 ms,
channels-last (measured side by side, two threads; bench ``zoo_quality`` keeps the figures).

What it costs in quality is measured, not assumed: the exporter runs the model graph both ways on the
export's own parity inputs (the run's real images when it has them) and records the difference in
``model.json`` (``bfloat16``: PSNR of the bfloat16 output against float32's, the largest error, and the
share of pixels whose class agrees for a segmenter). :func:`choose_bf16` runs a bundle this way only
when that record is within :data:`MIN_PSNR_DB` / :data:`MIN_AGREEMENT` and the CPU is native; elsewhere
emulated bfloat16 is several times slower than float32 and the ONNX graph stays the runtime.

Precision layout (measured on the photo-denoiser, held-out photos, sigma 15/25/50, against float32):
everything in bfloat16 lost 0.024-0.026 dB; the first convolution kept in float32 (it reads the raw
image, which bfloat16 would round to 8 bits of mantissa) lost 0.019-0.024 dB for the same time. The
residual ``x - noise`` is computed in float32 either way (autocast promotes the sum). Folding the
BatchNorms into the convolutions first lost more (0.022-0.038 dB): folded weights round worse.

Only the ``model`` graph of denoisers and segmenters (``precision.TASKS``); encoders, decoders and the small
fixed-size autoencoders stay in ONNX Runtime.
Imports torch, so it lives with the exporter; the front ends (CLI, app) choose it.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aestudio.config import Task
from aestudio.export.live_session import (
    bf16_supported as bf16_native,  # the Label tab's check, shared
)
from aestudio.inference.bundle import BundleFile, ModelInfo
from aestudio.inference.precision import PRECISIONS, TASKS, Precision, record_ok
from aestudio.inference.predictor import Predictor

log = logging.getLogger(__name__)


_BF16_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


class _Float32(nn.Module):
    """Runs ``inner`` in float32 inside a bfloat16 autocast region."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", enabled=False):
            return self.inner(x.float())


def to_bf16(net: nn.Module) -> nn.Module:
    """A copy of ``net`` (eval) in bfloat16 and channels-last, its first convolution kept in float32."""
    net = copy.deepcopy(net).eval()
    first = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    for m in net.modules():
        # Only the layers autocast runs in bfloat16 hold bfloat16 weights (cast once here, not per call);
        # BatchNorm keeps float32 parameters, which CPU batch_norm takes with a bfloat16 or a float32 input.
        if isinstance(m, _BF16_LAYERS) and m is not first:
            m.to(torch.bfloat16)
    if first is not None:
        parents = [(m, name) for m in net.modules() for name, child in m.named_children() if child is first]
        for parent, name in parents:
            setattr(parent, name, _Float32(first))
    return net.to(memory_format=torch.channels_last)


def run_bf16(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net`` (from :func:`to_bf16`) on float32 ``x``; the output as float32."""
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x.contiguous(memory_format=torch.channels_last))
    if isinstance(out, (tuple, list)):  # a VAE's forward: (reconstruction, mu, logvar)
        out = out[0]
    return out.float().contiguous()


def bf16_record(net: nn.Module, info: ModelInfo, inputs: list[torch.Tensor], source: str) -> dict[str, Any]:
    """The ``bfloat16`` entry of ``model.json``: the model graph in bfloat16 against float32 on ``inputs``.

    ``psnr_vs_float32_db`` compares the outputs as images in the model's value range (logits through a
    softmax for a segmenter); ``class_agreement`` is the share of pixels whose arg-max class is the same.
    """
    if info.task not in TASKS or not inputs:
        return {}
    fast = to_bf16(net)
    lo, hi = info.value_range
    sq_err, count, worst, agree, pixels = 0.0, 0, 0.0, 0, 0
    for x in inputs:
        with torch.no_grad():
            ref = net.eval()(x)
        ref = (ref[0] if isinstance(ref, (tuple, list)) else ref).float()
        got = run_bf16(fast, x)
        worst = max(worst, float((got - ref).abs().max()))
        if info.task is Task.SEGMENT:
            agree += int((got.argmax(1) == ref.argmax(1)).sum())
            pixels += ref.shape[0] * ref.shape[2] * ref.shape[3]
            got, ref = got.softmax(1), ref.softmax(1)
            scale = 1.0
        else:
            scale = float(hi - lo) or 1.0
        sq_err += float(((got - ref) / scale).double().pow(2).sum())
        count += ref.numel()
    mse = sq_err / max(count, 1)
    record: dict[str, Any] = {
        "psnr_vs_float32_db": round(float(10 * np.log10(1.0 / mse)), 2) if mse > 0 else 99.0,
        "max_abs_error": round(worst, 6),
        "checked_on": source,
        "first_conv": "float32",
    }
    if pixels:
        record["class_agreement"] = round(agree / pixels, 6)
    return record


class Bf16Predictor(Predictor):
    """A bundle's model graph in bfloat16 (torch, oneDNN); other graphs through ``fallback`` (ONNX Runtime).

    Same interface, validation, tiling and image handling as the ONNX Runtime predictor it stands for.
    Uses every core (torch's intra-op threads): the front ends choose it only for batch work while
    nothing trains (``aestudio.explore.sessions.profile_for``).
    """

    def __init__(self, path: str | os.PathLike[str], fallback: Predictor) -> None:
        from aestudio.export.torch_predictor import TorchPredictor

        self.path = Path(path)
        torch_pred = TorchPredictor.from_bundle(self.path)
        super().__init__(torch_pred.info)
        self.tiling = copy.copy(fallback.tiling)
        self.fallback = fallback
        self.net = to_bf16(torch_pred.net)
        self._lock = threading.Lock()  # one forward at a time: oneDNN's scratch is per call, the net is shared

    @property
    def provider(self) -> str:
        return "torch bfloat16 (CPU)"

    @property
    def runtime(self) -> str:
        """How the app and the CLI name it."""
        return "bfloat16 (torch, native on this CPU)"

    def _run(self, graph: BundleFile, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if graph is not BundleFile.MODEL:
            return self.fallback._run(graph, feeds)
        (x,) = feeds.values()
        with self._lock:
            out = run_bf16(self.net, torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return {self._output_name: out.numpy()}


_cache: dict[tuple[str, float], Bf16Predictor] = {}
_cache_lock = threading.Lock()


def choose_bf16(predictor: Predictor, precision: Precision | str = "auto") -> tuple[Predictor, str]:
    """``predictor`` or its bfloat16 twin, and a one-line reason for the choice (for a log or stderr).

    ``auto``: the twin when the CPU is native and the bundle's record allows it (:func:`record_ok`);
    ``bfloat16``: the twin, or ``ValueError`` naming why not; ``float32``: ``predictor`` as it is.
    The twin of a bundle is built once per process (the net in bfloat16 is kept)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "float32" or isinstance(predictor, Bf16Predictor):
        return predictor, ""
    path = getattr(predictor, "path", None)
    why = None
    if path is None or not Path(path).is_dir():
        why = "it is not an aestudio bundle"
    elif not bf16_native():
        why = "this CPU has no native bfloat16 (AVX512-BF16 or AMX), where it is slower than float32"
    else:
        why = record_ok(predictor.info)
    if why is not None:
        if precision == "bfloat16":
            raise ValueError(f"{path}: cannot run in bfloat16: {why}; use --precision float32")
        return predictor, f"float32 (ONNX Runtime): {why}"
    key = (str(Path(path).resolve()), _mtime(Path(path)))
    with _cache_lock:
        twin = _cache.get(key)
        if twin is None:
            twin = Bf16Predictor(path, predictor)
            _cache.clear()  # one model at a time: a folder job per model
            _cache[key] = twin
    twin.fallback = predictor
    rec = predictor.info.bfloat16
    return twin, (f"bfloat16 (torch, native on this CPU): its output is {rec['psnr_vs_float32_db']} dB PSNR "
                  "from float32's; --precision float32 runs the ONNX graph exactly")


def _mtime(folder: Path) -> float:
    try:
        return (folder / "model.json").stat().st_mtime
    except OSError:
        return 0.0
