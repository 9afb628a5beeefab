"""What the napari plug-in does, without Qt or napari: layer data in, layer data out.

The dock widget (:mod:`aestudio.napari._widget`) and the reader
(:mod:`aestudio.napari._reader`) are thin shells over these functions, so they
are tested without a display. Models are any aestudio bundle, run (with its
exported ``bundle/``), shipped zoo model or BioImage Model Zoo package; they
run through the torch-free ONNX Runtime predictor, tiled for large images.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class LayerResult:
    """A new napari layer: ``kind`` is ``"image"`` or ``"labels"``; ``meta`` are the layer's keyword arguments."""

    data: np.ndarray
    kind: str
    meta: dict[str, Any] = field(default_factory=dict)

    def as_layer_data(self) -> tuple[np.ndarray, dict[str, Any], str]:
        """napari's LayerData tuple (what readers return and ``viewer._add_layer_from_data`` takes)."""
        return self.data, dict(self.meta), self.kind


def model_choices() -> list[tuple[str, Path]]:
    """(label, path) of the shipped zoo models, for the widget's list."""
    from aestudio.zoo.catalog import list_models

    return [(f"{m.name} ({m.task})", m.path) for m in list_models()]


def open_model(path: str | os.PathLike[str], *, profile: str = "batch") -> Any:
    """A predictor for a bundle folder, a run folder (its ``bundle/``), a package .zip, or a zoo name."""
    from aestudio.inference.bioimageio_package import is_package
    from aestudio.inference.bundle import BundleError, is_bundle
    from aestudio.inference.ort import OrtPredictor
    from aestudio.zoo.catalog import resolve_model

    p = resolve_model(path)
    if is_package(p):
        from aestudio.inference.bioimageio_predictor import PackagePredictor

        return PackagePredictor(p, profile=profile)
    if (p / "run.json").is_file() and not is_bundle(p):
        if not is_bundle(p / "bundle"):
            raise BundleError(f"{p}: this run has no bundle yet; export it first with `aestudio export {p}` (or load it once in the app)")
        p = p / "bundle"
    return OrtPredictor(p, profile=profile)


def _to_unit(plane: np.ndarray) -> np.ndarray:
    """Integer images as they are (the predictor scales uint8/uint16); floats outside [0, 1] by min-max."""
    if plane.dtype.kind in "ub" or plane.dtype == np.uint16:
        return plane
    f = np.asarray(plane, dtype=np.float32)
    lo, hi = float(np.nanmin(f)), float(np.nanmax(f))
    if lo >= 0.0 and hi <= 1.0:
        return f
    return (f - lo) / (hi - lo) if hi > lo else np.zeros_like(f)


def run_on_layer(predictor: Any, data: Any, *, rgb: bool = False, name: str = "image",
                 progress: Progress | None = None) -> LayerResult:
    """Run ``predictor`` on an image layer's data; 2D (grey or ``rgb``) or a stack of 2D planes.

    Returns a denoised/reconstructed image layer, or for segmentation models a
    labels layer (class indices) with the model's class colours.
    """
    arr = np.asarray(data)
    spatial = arr.ndim - (1 if rgb else 0)
    if spatial not in (2, 3):
        raise ValueError(f"layer {name!r} has shape {arr.shape}; aestudio models run on 2D images (or a stack of them)")
    planes = arr if spatial == 3 else arr[None]
    info = predictor.info
    segment = info.task.value == "segment"
    outs = []
    for i, plane in enumerate(planes):
        def tile_progress(done: int, total: int, i: int = i) -> None:
            if progress is not None:
                progress(i * total + done, len(planes) * total)

        img = _to_unit(plane)
        if segment:
            mask, _ = predictor.segment(img, progress=tile_progress)
            outs.append(mask.astype(np.uint8 if info.num_classes < 256 else np.int32))
        else:
            out = predictor.run_image(img, progress=tile_progress)
            outs.append(out[..., 0] if out.shape[-1] == 1 else out)
    result = np.stack(outs) if spatial == 3 else outs[0]
    if segment:
        colors = {i: tuple(c / 255 for c in rgb_) + (1.0,) for i, rgb_ in enumerate(info.class_colors)}
        meta = {"name": f"{name} {info.name} labels",
                "metadata": {"class_names": list(info.class_names), "class_colors": colors, "model": info.name}}
        return LayerResult(result, "labels", meta)
    verb = {"denoise": "denoised", "reconstruct": "reconstructed", "generate": "reconstructed"}.get(info.task.value, "output")
    meta = {"name": f"{name} {verb}", "rgb": result.ndim == (4 if spatial == 3 else 3), "contrast_limits": (0.0, 1.0),
            "metadata": {"model": info.name}}
    return LayerResult(result.astype(np.float32), "image", meta)


# ----------------------------------------------------------------- the reader's samples


def model_path_kind(path: str | os.PathLike[str]) -> str | None:
    """``"bundle"``, ``"run"``, ``"package"`` or None: what the reader accepts."""
    from aestudio.inference.bioimageio_package import is_package
    from aestudio.inference.bundle import is_bundle

    p = Path(path)
    if p.is_dir():
        if is_bundle(p):
            return "bundle"
        if (p / "run.json").is_file():
            return "run"
        return None
    if p.suffix.lower() == ".zip" and is_package(p):
        return "package"
    return None


def _data_spec(path: Path) -> str:
    import json

    for name in ("model.json", "run.json"):
        try:
            data = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        spec = (data.get("training") or {}).get("data_spec") or data.get("data_spec") or (data.get("data") or {}).get("spec")
        if isinstance(spec, str):
            return spec
    return ""


def sample_for(path: str | os.PathLike[str]) -> np.ndarray:
    """A sample input for the model at ``path``: a package's own test input, else a shipped sample
    image like the model's training data, else a synthetic one. [H, W] or [H, W, 3] in [0, 1]."""
    from aestudio.data.io import read_image
    from aestudio.zoo.catalog import sample_for_data

    p = Path(path)
    kind = model_path_kind(p)
    if kind == "package":
        from aestudio.inference.bioimageio_package import read_package, read_tensor

        pkg = read_package(p)
        if pkg.test_input:
            from aestudio.inference.bioimageio_predictor import _from_layout

            x = _from_layout(read_tensor(p, pkg.test_input).astype(np.float32), pkg.input_axes)[0]  # [C, H, W]
            return x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)
    sample = sample_for_data(_data_spec(p))
    if sample is not None:
        arr = read_image(sample)
        return arr[..., 0] if arr.shape[-1] == 1 else arr
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32) / 127
    return (0.5 + 0.4 * np.sin(6 * xx) * np.cos(4 * yy)).astype(np.float32)


def read_model_sample(path: str | os.PathLike[str]) -> list[tuple[np.ndarray, dict[str, Any], str]]:
    """What dropping a bundle, run or package on napari opens: its sample and the model's output on it."""
    p = Path(path)
    sample = sample_for(p)
    layers = [(sample, {"name": f"{p.name} sample", "rgb": sample.ndim == 3}, "image")]
    try:
        pred = open_model(p)
    except (ValueError, OSError) as exc:  # a run without a bundle still shows its sample
        log.warning("%s: not run on its sample: %s", p, exc)
        return layers
    img = sample if pred.info.in_channels == (3 if sample.ndim == 3 else 1) else _convert(sample, pred.info.in_channels)
    layers.append(run_on_layer(pred, img, rgb=img.ndim == 3, name=f"{p.name} sample").as_layer_data())
    return layers


def _convert(sample: np.ndarray, channels: int) -> np.ndarray:
    from aestudio.inference.imageops import convert_channels

    hwc = sample[..., None] if sample.ndim == 2 else sample
    out = convert_channels(hwc, channels)
    return out[..., 0] if channels == 1 else out
