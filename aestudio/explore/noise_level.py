"""How noisy is an image, and does the active denoiser know that much noise?

:func:`estimate_sigma` estimates the standard deviation of additive white
Gaussian noise from the image alone (scikit-image's wavelet-based
``estimate_sigma``, Donoho's MAD of the finest diagonal coefficients).
:func:`trained_noise` reads what a bundle was trained on from its training
summary (``training.noise``, written by the exporter; for older bundles the
``--noise`` of the zoo recipe's train command). :func:`range_warning` puts the
two together in one sentence for the Noise lab; :func:`add_noise` makes the lab's
noisy copy of a clean image.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

import numpy as np

from aestudio.config import NoiseConfig, from_dict, parse_noise
from aestudio.data.noise import apply_noise
from aestudio.explore.image_metrics import as_float_hwc

_TOLERANCE = 0.01  # sigma: estimates within this of the trained range count as inside it


@dataclass(frozen=True)
class TrainedNoise:
    """The noise a denoiser learned: a kind and a strength range, or its own images' noise."""

    kind: str  # gaussian, poisson, ... or "self-supervised"
    low: float = 0.0
    high: float = 0.0

    def describe(self) -> str:
        if self.kind == "self-supervised":
            return "learned from its training images' own noise"
        span = f"{self.low:.3g}" if self.high <= self.low else f"{self.low:.3g}-{self.high:.3g}"
        return f"{self.kind} noise, strength {span}"


MIN_ESTIMATE_SIDE = 8  # below this the wavelet estimate has a handful of coefficients (and skimage warns): no estimate


def estimate_sigma(image: np.ndarray) -> float | None:
    """Estimated Gaussian noise sigma of ``image`` ([H, W] or [H, W, C] in [0, 1]), averaged over channels;
    None for an image smaller than :data:`MIN_ESTIMATE_SIDE` a side (nothing to estimate from)."""
    from skimage.restoration import estimate_sigma as _estimate

    img = np.asarray(image, dtype=np.float64)
    if min(img.shape[:2]) < MIN_ESTIMATE_SIDE:
        return None
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 3:
        return float(_estimate(img, channel_axis=-1, average_sigmas=True))
    return float(_estimate(img))


def trained_noise(training: dict[str, Any] | None) -> TrainedNoise | None:
    """What a bundle's ``training`` summary says its model was trained on; None when it does not say."""
    training = training or {}
    if str(training.get("self_supervised", "none")) not in ("none", ""):
        return TrainedNoise("self-supervised")
    noise = training.get("noise")
    cfg: NoiseConfig | None = None
    if isinstance(noise, dict):
        try:
            cfg = from_dict(NoiseConfig, noise)
        except (TypeError, ValueError):
            cfg = None
    if cfg is None:  # bundles exported before the summary named the noise: the zoo recipe's command does
        command = str((training.get("zoo") or {}).get("train_command", ""))
        m = re.search(r"--noise[ =](\S+)", command)
        if m:
            try:
                cfg = parse_noise(shlex.split(m.group(1))[0])
            except ValueError:
                cfg = None
    if cfg is None or cfg.kind == "none":
        return None
    high = cfg.strength_max if cfg.strength_max is not None else cfg.strength
    return TrainedNoise(cfg.kind, float(cfg.strength), float(high))


def range_warning(model_name: str, trained: TrainedNoise | None, sigma: float) -> str | None:
    """A sentence when a Gaussian-trained model meets noise outside its range (else None)."""
    if trained is None or trained.kind != "gaussian":
        return None
    if sigma > trained.high + _TOLERANCE:
        return (f"{model_name} was trained on Gaussian sigma {trained.low:.2f}-{trained.high:.2f}; this image's noise "
                f"(about {sigma:.3f}) is beyond it, so expect leftover noise: press \"Learn this noise\" to train on it.")
    if trained.low > _TOLERANCE and sigma < trained.low - _TOLERANCE:
        return (f"{model_name} was trained on Gaussian sigma {trained.low:.2f}-{trained.high:.2f}; this image's noise "
                f"(about {sigma:.3f}) is below it, so expect over-smoothing.")
    return None


def add_noise(clean: np.ndarray, kind: str, strength: float, seed: int) -> np.ndarray:
    """``clean`` [H, W, C] corrupted by one noise, reproducibly (same seed, same noise)."""
    chw = np.ascontiguousarray(as_float_hwc(clean).transpose(2, 0, 1))
    noisy = apply_noise(chw, NoiseConfig(kind=kind, strength=float(strength)), np.random.default_rng(seed))
    return np.ascontiguousarray(np.asarray(noisy, dtype=np.float32).transpose(1, 2, 0))
