"""Int8 bundles: a bundle's main graph quantized by ONNX Runtime (static, calibrated), checked against float32.

``quantize_bundle(BUNDLE, OUT, calibration)`` writes a copy of a float32 bundle whose ``model.onnx`` is
ONNX Runtime's QDQ int8 form of the same graph (weights int8 per output channel, activations int8 with
ranges from the calibration images), and ``export_run_int8(RUN, OUT)`` (CLI ``aestudio export RUN --int8``)
exports a run and quantizes it calibrated on the run's own training inputs (the noisy images for a
denoiser). ``weights.safetensors`` stays float32 (fine-tuning and ``--init-from`` read it), and so do
``encoder.onnx``/``decoder.onnx`` (the latent sliders' small graphs gain nothing). ``model.json`` says the
graph is int8 in ``quantization`` (``ModelInfo.precision``), with the int8 graph's error against the float32
one and both graphs' speed on this machine, so a person sees what the speed cost before using it.

Choices (measured on the shipped photo-denoiser, docs/DESIGN-notes.md "Shipped photo-denoiser vs BM3D"):
QDQ with int8 activations and weights is ONNX Runtime's recommended format and ran fastest here (QOperator
and uint8 activations no faster; uint8 weights slower than float32); activation ranges are the 99.9th
percentile of the calibration values (MinMax and entropy lost 2.4-4 dB more: a few inputs drive deep
features 5-10x beyond their usual range, and a range that covers them leaves too few steps for the rest).
Weights use 7 bits (``reduce_range``): on x86 CPUs without VNNI (most laptops: AVX2 only) ORT multiplies
uint8 by int8 with VPMADDUBSW, whose 16-bit pair sums saturate for 8-bit weights (ORT's quantization
docs, "When and why do I need to try U8U8?"); with 7-bit weights 2 x 255 x 64 < 2^15, so the graph gives
the same result on every CPU. It cost 0.07-0.21 dB on the photo-denoiser, next to 8-bit weights.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from aestudio.errors import AestudioError
from aestudio.inference.bundle import (
    BundleFile,
    ModelInfo,
    read_bundle,
    write_model_json,
)

log = logging.getLogger(__name__)

QUANT_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")  # the compute; everything else stays float32
CALIBRATION_IMAGES = 64  # ORT's percentile calibrator holds every intermediate tensor of all of them in memory
CHECK_IMAGES = 8  # held back from calibration: the int8 graph's error against float32 is measured on these


class QuantizeError(AestudioError, RuntimeError):
    """A bundle that cannot be quantized; the message names it and the fix."""


@dataclass(frozen=True)
class Int8Options:
    """How a graph is quantized (the defaults are the measured best; see the module docstring)."""

    percentile: float = 99.9  # activation ranges: this percentile of the calibration values
    reduce_range: bool = True  # 7-bit weights: the same result on AVX2 CPUs without VNNI (no saturation)
    float_nodes: tuple[int, ...] = ()  # indices (graph order, -1 = last) of quantizable nodes left in float32


class _Reader:
    """ORT's CalibrationDataReader protocol over a list of [1, C, H, W] float32 arrays."""

    def __init__(self, name: str, images: Sequence[np.ndarray]) -> None:
        self._it: Iterator[np.ndarray] = iter(images)
        self._name = name

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self._name: np.ascontiguousarray(x, dtype=np.float32)}


def _as_batches(images: Sequence[np.ndarray], channels: int) -> list[np.ndarray]:
    out = []
    for x in images:
        a = np.asarray(x, dtype=np.float32)
        a = a[None] if a.ndim == 3 else a
        if a.ndim != 4 or a.shape[1] != channels or a.shape[0] < 1:
            raise QuantizeError(f"calibration images must be [C, H, W] or [N, C, H, W] with C = {channels}, got {a.shape}")
        out.extend(a[i : i + 1] for i in range(a.shape[0]))
    return out


def quantize_graph(src: Path, dst: Path, calibration: Sequence[np.ndarray], options: Int8Options = Int8Options()) -> dict[str, Any]:
    """Write ``dst``: ``src``'s float32 graph in QDQ int8, calibrated on ``calibration`` ([1, C, H, W] each).

    Returns the facts ``model.json`` records (format, types, calibration); the caller measures the error.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    with tempfile.TemporaryDirectory(prefix="aestudio-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quiet = io.StringIO()  # the calibrators print their progress to stdout; the CLI's output is ours
        with contextlib.redirect_stdout(quiet):
            # Constant folding and shape inference first, as ORT's docs advise; the exported graphs' symbolic
            # sizes (Shape/Mod for the padding) defeat ORT's symbolic shape inference, ONNX's own one copes.
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            graph = onnx.load(str(pre)).graph
            nodes = [n.name for n in graph.node if n.op_type in QUANT_OPS]
            if not nodes:
                raise QuantizeError(f"{src}: no {'/'.join(QUANT_OPS)} node to quantize; int8 would gain nothing")
            try:
                exclude = sorted({nodes[i] for i in options.float_nodes})
            except IndexError:
                raise QuantizeError(f"float_nodes {options.float_nodes}: the graph has {len(nodes)} quantizable nodes") from None
            input_name = graph.input[0].name
            quantize_static(
                str(pre), str(dst), _Reader(input_name, calibration),
                quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                per_channel=True, reduce_range=options.reduce_range, op_types_to_quantize=list(QUANT_OPS),
                nodes_to_exclude=exclude, calibrate_method=CalibrationMethod.Percentile,
                extra_options={"CalibPercentile": options.percentile},
            )
        log.debug("ORT quantization said: %s", quiet.getvalue()[-2000:])
    return {
        "dtype": "int8",
        "format": "QDQ (ONNX Runtime quantize_static)",
        "weights": f"int8 per output channel, {7 if options.reduce_range else 8}-bit range",
        "activations": f"int8, ranges at the {options.percentile:g}th percentile of the calibration values",
        "ops": list(QUANT_OPS),
        "quantized_nodes": len(nodes) - len(exclude),
        "float_nodes": exclude,
        "files": [BundleFile.MODEL.value],
        "calibration": {"images": len(calibration)},
    }


def _error(info: ModelInfo, refs: Sequence[np.ndarray], gots: Sequence[np.ndarray]) -> dict[str, float]:
    """The int8 outputs against the float32 ones: max and RMS difference, and what a person sees of it
    (PSNR of the image against float32's; for a segmentation, how many pixels keep their class)."""
    diff = np.concatenate([(g - r).astype(np.float64).ravel() for r, g in zip(refs, gots, strict=True)])
    mse = float(np.mean(diff**2))
    out = {"max_abs": round(float(np.max(np.abs(diff))), 6), "rmse": round(math.sqrt(mse), 6)}
    if info.output_name == "logits":
        same = np.concatenate([(np.argmax(r, 1) == np.argmax(g, 1)).ravel() for r, g in zip(refs, gots, strict=True)])
        out["mask_agreement"] = round(float(np.mean(same)), 6)
    else:
        span = info.value_range[1] - info.value_range[0]
        out["psnr_vs_float32_db"] = round(10 * math.log10(span**2 / mse), 2) if mse > 0 else 99.0
    return out


def quantize_bundle(
    bundle: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    calibration: Sequence[np.ndarray],
    *,
    check: Sequence[np.ndarray] = (),
    options: Int8Options = Int8Options(),
    source: str = "",
) -> ModelInfo:
    """Write ``out_dir``: ``bundle`` with an int8 ``model.onnx``; return its :class:`ModelInfo`.

    ``calibration`` are inputs as the net sees them in use, [C, H, W] or [N, C, H, W] in the bundle's value
    range; ``check`` (else the last of ``calibration``, not used to calibrate then) measure the int8 graph's
    error against the float32 one. ``source`` says in model.json where the calibration images came from.
    The copy is written beside ``out_dir`` and renamed into place (an existing bundle there is replaced;
    any other existing folder refused).
    """
    from aestudio.export.exporter import _check_target, median_ms, publish_bundle, staged_bundle
    from aestudio.inference.ort import OrtPredictor, SessionProfile

    src, out = Path(bundle), Path(out_dir)
    info = read_bundle(src)
    if info.precision != "float32":
        raise QuantizeError(f"{src}: its graph is already {info.precision}; quantize the float32 bundle it came from")
    images = _as_batches(calibration, info.in_channels)
    checks = _as_batches(check, info.in_channels) if check else []
    if not checks:
        held = min(CHECK_IMAGES, len(images) // 4)
        images, checks = images[: len(images) - held], images[len(images) - held :]
    if len(images) < 2 or not checks:
        raise QuantizeError(f"{src}: int8 needs at least a few calibration images (got {len(images)}); give it the training inputs")
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with staged_bundle(out) as tmp:
        for name in info.files.values():
            shutil.copy2(src / name, tmp / name)
        model = tmp / info.files[BundleFile.MODEL.value]
        facts = quantize_graph(src / info.files[BundleFile.MODEL.value], model, images, options)
        facts["calibration"]["check_images"] = len(checks)
        if source:
            facts["calibration"]["source"] = source
        write_model_json(tmp, replace(info, quantization=facts))  # provisional, so OrtPredictor opens it
        # Both graphs on the same held-back inputs and on this machine: the figures model.json keeps.
        ref = OrtPredictor(src, profile=SessionProfile.INTERACTIVE, providers=["CPUExecutionProvider"])
        q = OrtPredictor(tmp, profile=SessionProfile.INTERACTIVE, providers=["CPUExecutionProvider"])
        refs = [ref.predict(x) for x in checks]
        gots = [q.predict(x) for x in checks]
        if not all(np.all(np.isfinite(g)) for g in gots):
            raise QuantizeError(f"{src}: the int8 graph gives non-finite outputs; keep the float32 bundle")
        facts["error_vs_float32"] = _error(info, refs, gots)
        x1 = checks[0]
        ms = median_ms({"float32": lambda: ref.predict(x1), "int8": lambda: q.predict(x1)})
        facts["timings"] = {"float32_ms": round(ms["float32"], 3), "int8_ms": round(ms["int8"], 3),
                            "speedup": round(ms["float32"] / ms["int8"], 2), "input": list(x1.shape),
                            "ort_profile": SessionProfile.INTERACTIVE.value}
        info = replace(info, quantization=facts)
        publish_bundle(tmp, out, info)
    err = facts["error_vs_float32"]
    log.info("int8 bundle %s: %.2fx float32's speed, output RMSE %.3g vs float32", out, facts["timings"]["speedup"], err["rmse"])
    return info


# ----------------------------------------------------------------- runs


def calibration_inputs(run_dir: str | os.PathLike[str], count: int = CALIBRATION_IMAGES + CHECK_IMAGES, *, seed: int = 0) -> list[np.ndarray]:
    """``count`` training inputs of a run as its net saw them: its own data (crops as it trained), with its
    training noise added for a denoiser (clipped to [0, 1], as in training); a self-supervised run's data
    is already its noisy images. Each is [1, C, H, W] float32."""
    from aestudio.data.noise import apply_noise
    from aestudio.data.specs import open_data
    from aestudio.training.runner import native_from_options
    from aestudio.training.runs import read_run

    run = read_run(run_dir)
    opts = run.data_options or {}
    try:
        data = open_data(run.data_spec, image_size=opts.get("image_size"), channels=opts.get("channels"),
                         val_fraction=opts.get("val_fraction", 0.2), seed=opts.get("seed", 0),
                         patches=bool(opts.get("patches", False)), native=native_from_options(opts),
                         noisy=bool(opts.get("noisy", False)))
    except Exception as exc:  # noqa: BLE001 - any reason the data is gone; int8 needs it
        raise QuantizeError(f"{run_dir}: int8 is calibrated on the run's training data, which cannot be opened now "
                            f"({run.data_spec}: {exc}); put the data back or export without --int8") from None
    n = len(data.train)
    if n == 0:
        raise QuantizeError(f"{run_dir}: the run's training data ({run.data_spec}) is empty; export without --int8")
    rng = np.random.default_rng(seed)
    picks = rng.choice(n, size=count, replace=count > n)
    noise = run.train_cfg.noise
    out = []
    for i in picks:
        item = data.train[int(i)]
        x = np.asarray(item[0] if isinstance(item, (tuple, list)) else item, dtype=np.float32)[None]
        if noise.kind != "none":
            x = np.asarray(apply_noise(x, noise, rng), dtype=np.float32)
        out.append(x)
    return out


def export_run_int8(run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None, *,
                    which: str = "best", options: Int8Options = Int8Options()) -> Path:
    """``aestudio export RUN --int8``: the run's float32 bundle (checked against torch), then its int8 copy
    calibrated on the run's own training inputs, at ``out_dir`` (default ``RUN_DIR/bundle``)."""
    from aestudio._fs import make_temp_dir
    from aestudio.export.exporter import _check_target, export_run
    from aestudio.export.target import temp_prefix

    run_dir = Path(run_dir)
    target = Path(out_dir) if out_dir is not None else run_dir / "bundle"
    _check_target(target)
    inputs = calibration_inputs(run_dir)  # before the slow export: missing data fails early
    target.parent.mkdir(parents=True, exist_ok=True)
    # The float32 bundle is staged under the export's own temp name, so a killed export's is cleaned like
    # any other (export.target.clean_stale, on the next export to the same folder).
    tmp = make_temp_dir(target.parent, prefix=temp_prefix(target))
    try:
        float_bundle = export_run(run_dir, tmp / "bundle", which=which)
        held = CHECK_IMAGES
        quantize_bundle(float_bundle, target, inputs[:-held], check=inputs[-held:], options=options,
                        source=f"{len(inputs) - held} training inputs of {run_dir.name} ({read_bundle(float_bundle).training.get('data_spec')})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
