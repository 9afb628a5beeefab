"""Image metrics and model runs on one image (plain numpy; they run on worker threads).

- :func:`image_metrics` — MSE, PSNR and SSIM of one image against a reference,
  with the same SSIM settings as training's validation metric (11x11 Gaussian
  window, sigma 1.5; smaller images use the largest odd window that fits), so the
  numbers in the panels and in the run's metrics table mean the same thing.
- :func:`error_map` / :func:`colorize` — absolute error per pixel, and a colour table applied to it.
- :func:`run_model_image` — ``predictor.run_image`` with two additions: a
  ``progress(done, total)`` callback for large tiled images, and colour images
  through a grayscale model one channel at a time (so a photo keeps its colours).
- :func:`display_copy` — a downscaled copy for the screen (a 24-megapixel photo is
  never scaled in ``paintEvent``).
- :func:`input_mismatch` — how an image differs from what a fixed-size model takes.
- :func:`fmt_metric`, :func:`compression_ratio` — how the numbers are written (where a result is
  saved without overwriting: :func:`aestudio._fs.unique_path`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from aestudio.explore.sessions import whole_image_predictor

if TYPE_CHECKING:
    from aestudio.inference.bundle import ModelInfo
    from aestudio.inference.predictor import Predictor

PSNR_CAP = 100.0  # dB for identical images, as training's metric (never inf on screen)
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
DISPLAY_MAX_SIDE = 1024  # larger images are shown downscaled (saved at full size)


def as_float_hwc(image: np.ndarray) -> np.ndarray:
    """[H, W] / [H, W, C] / [C, H, W] (C 1 or 3) float in [0, 1] -> contiguous float32 [H, W, C]."""
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    elif a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3, 4):
        a = a.transpose(1, 2, 0)
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an image [H, W(, C)] or [C, H, W], got shape {np.shape(image)}")
    return np.ascontiguousarray(a[:, :, :3])


def match_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """[H, W, C] -> [H, W, channels] (grey -> RGB by repeat, RGB -> grey by luma)."""
    from aestudio.inference.imageops import convert_channels

    return np.ascontiguousarray(convert_channels(image, channels), dtype=np.float32)


def ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """SSIM of two [H, W, C] images in [0, 1]; NaN for images under 3 pixels on a side."""
    from skimage.metrics import structural_similarity

    side = min(reference.shape[0], reference.shape[1])
    if side < 3:
        return math.nan
    kw: dict[str, Any] = {"data_range": 1.0, "channel_axis": 2}
    if side >= SSIM_WINDOW:
        kw.update(gaussian_weights=True, sigma=SSIM_SIGMA, use_sample_covariance=False)
    else:  # the largest odd window that fits, as training's metric does for small images
        kw.update(win_size=side - (side + 1) % 2, use_sample_covariance=False)
    return float(structural_similarity(reference.astype(np.float64), test.astype(np.float64), **kw))


def psnr_from_mse(mse: float) -> float:
    if not math.isfinite(mse):
        return math.nan
    return PSNR_CAP if mse <= 10 ** (-PSNR_CAP / 10) else float(-10.0 * math.log10(mse))


def image_metrics(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """``mse``, ``psnr`` (dB, peak 1, capped at 100) and ``ssim`` of ``test`` against ``reference``.

    Both are images in [0, 1] of the same height and width; ``test`` is brought
    to ``reference``'s channel count first.
    """
    ref = as_float_hwc(reference)
    out = match_channels(as_float_hwc(test), ref.shape[2])
    if ref.shape != out.shape:
        raise ValueError(f"cannot compare images of shapes {ref.shape} and {out.shape}")
    mse = float(np.mean((ref.astype(np.float64) - out) ** 2))
    return {"mse": mse, "psnr": psnr_from_mse(mse), "ssim": ssim(ref, out)}


def error_map(reference: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Absolute error per pixel, averaged over channels: float32 [H, W] in [0, 1]."""
    ref = as_float_hwc(reference)
    out = match_channels(as_float_hwc(test), ref.shape[2])
    return np.abs(ref - out).mean(axis=2).astype(np.float32)


def colorize(values: np.ndarray, scale: float, lut: np.ndarray) -> np.ndarray:
    """[H, W] values in [0, scale] -> float32 RGB [H, W, 3] in [0, 1] through a colour table ``lut`` [n, 3]."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=scale, neginf=0.0)
    scale = scale if math.isfinite(scale) and scale > 0 else 1.0
    idx = np.clip(v / scale * (len(lut) - 1) + 0.5, 0, len(lut) - 1).astype(np.intp)
    return lut[idx]


def error_scale(errors: np.ndarray) -> float:
    """A readable top of the colour scale: the 99.5th percentile, rounded up to 2 significant digits."""
    e = np.asarray(errors, dtype=np.float32)
    e = e[np.isfinite(e)]
    top = float(np.percentile(e, 99.5)) if e.size else 0.0
    if top <= 1e-6:
        top = float(e.max()) if e.size else 0.0
    if top <= 1e-6:
        return 0.01
    digits = 1 - int(math.floor(math.log10(top)))
    return min(1.0, math.ceil(top * 10**digits) / 10**digits)


def display_copy(image: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """A copy no larger than ``max_side`` on a side for the screen ([H, W, C] float32)."""
    from aestudio.inference.imageops import resize

    a = as_float_hwc(image)
    h, w = a.shape[:2]
    if max(h, w) <= max_side:
        return a
    s = max_side / max(h, w)
    return resize(a, max(1, round(h * s)), max(1, round(w * s)))


def run_model_image(predictor: Predictor, image: np.ndarray,
                    progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """The model's image output for ``image`` [H, W, C] at its size, with ``image``'s channel count.

    Like ``predictor.run_image`` (which resizes for fixed-size models and tiles
    large images for fully convolutional ones), plus ``progress(done, total)``
    while tiling, and colour images through a grayscale model one channel at a
    time. Raises ``ValueError`` for a segmentation model (no image output).
    """
    from aestudio.config import Task

    info = predictor.info
    if getattr(info, "task", None) is Task.SEGMENT:
        raise ValueError(f"{info.name} is a segmentation model: it outputs class masks, not images. "
                         "Use the Segment tab, or load an autoencoder")
    img = as_float_hwc(image)
    c = img.shape[2]
    model_c = int(getattr(info, "in_channels", c) or c)
    if model_c == 1 and c == 3:
        planes = img.transpose(2, 0, 1)[:, :, :, None]
        outs = []
        for i, plane in enumerate(planes):
            step = None if progress is None else (lambda d, t, i=i: progress(i * t + d, 3 * t))
            outs.append(match_channels(_run_one(predictor, plane, step), 1))
        return np.concatenate(outs, axis=2)
    return match_channels(_run_one(predictor, img, progress), c)


def _run_one(predictor: Predictor, img: np.ndarray, progress: Callable[[int, int], None] | None) -> np.ndarray:
    """``run_image`` with a per-tile progress callback (it may raise to cancel), output checked.

    The predictor tiles large images itself, reading each tile from ``img`` and blending
    into the result, so no full-size copy of the input is made here.
    """
    info = predictor.info
    out = whole_image_predictor(predictor, img.shape).run_image(img, progress=progress)
    out = np.asarray(out, dtype=np.float32)
    if out.ndim != 3 or out.shape[:2] != img.shape[:2] or not np.isfinite(out).all():
        raise ValueError(f"{info.name} returned an unusable image (shape {out.shape}) for a "
                         f"{img.shape[1]}x{img.shape[0]} input")
    return np.ascontiguousarray(out)


def fmt_metric(name: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if name == "psnr":
        return f"{value:.1f} dB" if value < PSNR_CAP else "∞ (identical)"
    if name == "ssim":
        return f"{value:.3f}"
    if name == "mse":
        return f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"
    if name == "ratio":
        return f"{value:.1f} : 1"
    return f"{value:.3g}"


def input_mismatch(info: ModelInfo, shape: tuple[int, ...]) -> str | None:
    """How an image [H, W, C] differs from what a fixed-size model takes, in words; None when it fits.

    A 256x256 colour photo through an 8x8 grey model is shrunk to 64 grey values and run
    per channel: its reconstruction says little about the photo and the model's
    compression ratio does not describe it.
    """
    h, w, c = (int(v) for v in shape[:3])
    size = getattr(info, "fixed_size", None)
    model_c = int(getattr(info, "in_channels", c) or c)
    kind = {1: "grey", 3: "colour"}
    differences = []
    if size and (h, w) != (size, size):
        differences.append(f"resized from {w}×{h} to {size}×{size}")
    if model_c != c:
        differences.append(f"a {kind.get(c, f'{c}-channel')} image through a {kind.get(model_c, f'{model_c}-channel')} "
                           "model" + (", one channel at a time" if model_c == 1 else ""))
    return "; ".join(differences) or None


def denoise_verdict(noisy: dict[str, float], denoised: dict[str, float]) -> str:
    """One sentence on what denoising did to an image, worded the same way every time.

    The numbers are the changes as shown (PSNR to 0.1 dB, SSIM to 0.001), so the verdict
    never contradicts them ("worse (-0.0 dB)" or "gains -11.6 dB" were both seen).
    """
    dp = round(denoised["psnr"] - noisy["psnr"], 1) + 0.0  # + 0.0: no "-0.0"
    ds = round(denoised["ssim"] - noisy["ssim"], 3) + 0.0
    numbers = f"PSNR {dp:+.1f} dB, SSIM {ds:+.3f}"
    if dp >= 0 and ds >= 0:
        return (f"Denoising improves this image ({numbers})." if dp > 0 or ds > 0
                else f"Denoising leaves this image about the same ({numbers}).")
    if dp <= 0 and ds <= 0:
        return (f"Denoising makes this image worse ({numbers}): the model was likely trained on another "
                "noise or other images.")
    return f"Denoising gives a mixed result ({numbers}): one measure better, the other worse."


def compression_ratio(info: ModelInfo) -> float | None:
    """Input values / code values: from the bundle's metrics or training summary, else computed."""
    for source in (getattr(info, "metrics", None) or {}, getattr(info, "training", None) or {}):
        v = source.get("compression_ratio") if isinstance(source, dict) else None
        if isinstance(v, (int, float)) and math.isfinite(v) and v > 0:
            return float(v)
    size, latent = getattr(info, "fixed_size", None), getattr(info, "latent_dim", None)
    if size and latent:
        return float(int(info.in_channels) * size * size) / float(latent)
    return None


SCAN_BATCH = 64  # images per predict() call in the anomaly scan


def scan_errors(predictor: Predictor, images: np.ndarray, progress: Callable[[int, int], None]) -> np.ndarray:
    """Reconstruction MSE per image of ``images`` [N, C, H, W] (batched; per image when sizes do not fit).

    The Reconstruct tab's anomaly scan; ``progress(done, total)`` after each batch (it may raise to cancel)."""
    info = predictor.info
    n = len(images)
    errors = np.empty(n, dtype=np.float64)
    lo, hi = getattr(info, "value_range", (0.0, 1.0))
    fits = True
    try:
        predictor.check_batch(np.ascontiguousarray(images[:1] * (hi - lo) + lo, dtype=np.float32))
    except ValueError:
        fits = False  # e.g. a U-Net-sized multiple: go image by image through run_image (pads)
    progress(0, n)
    for start in range(0, n, SCAN_BATCH):
        x = images[start:start + SCAN_BATCH]
        if fits:
            out = predictor.predict(np.ascontiguousarray(x * (hi - lo) + lo, dtype=np.float32))
            out = np.clip((np.asarray(out, dtype=np.float32) - lo) / (hi - lo), 0.0, 1.0)
            if out.shape != x.shape:
                raise ValueError(f"{info.name} returned shape {out.shape} for a batch of {x.shape}")
            errors[start:start + len(x)] = ((out - x) ** 2).reshape(len(x), -1).mean(axis=1)
        else:
            for j, img in enumerate(x):
                hwc = img.transpose(1, 2, 0)
                errors[start + j] = float(np.mean((run_model_image(predictor, hwc) - hwc) ** 2))
        progress(min(n, start + len(x)), n)
    return errors
