"""Image corruptions as pure, seedable numpy functions (no torch).

Shared by denoising training and the noise lab. Every function takes a float
array in [0, 1] laid out ``[..., H, W]`` like a tensor: ``[H, W]`` and
``[C, H, W]`` are one image, ``[N, C, H, W]`` (or more leading axes) a batch.
Outputs are new float32 arrays of the same shape clipped to [0, 1]; inputs
are never modified. Randomness comes only from the ``rng`` argument
(``numpy.random.Generator``), so a seed reproduces the same corruption.

"Pixel" corruptions (salt-and-pepper, pixel and block masking) hit all
channels of a pixel together, as a dead or saturated sensor pixel does; they
are drawn independently per image of a batch.
"""

from __future__ import annotations

import enum
import math

import numpy as np

from aestudio.config import NoiseConfig


class NoiseKind(str, enum.Enum):
    """The names used in ``NoiseConfig.kind`` and noise spec strings."""

    NONE = "none"
    GAUSSIAN = "gaussian"
    SALT_PEPPER = "saltpepper"
    SPECKLE = "speckle"
    POISSON = "poisson"
    MASK = "mask"
    BLOCK = "block"
    BLUR = "blur"


def _prepare(x: np.ndarray) -> np.ndarray:
    array = np.asarray(x)
    if array.ndim < 2:
        raise ValueError(f"noise needs an array laid out [..., H, W], got shape {array.shape}")
    return array.astype(np.float32, copy=True)  # copy: callers' arrays stay untouched


def _finish(y: np.ndarray) -> np.ndarray:
    return np.clip(y, 0.0, 1.0, out=y)


def _pixel_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of a per-pixel draw that broadcasts over channels but not over batch items."""
    if len(shape) <= 2:
        return shape
    if len(shape) == 3:  # [C, H, W]: one image
        return (1, *shape[-2:])
    return (*shape[:-3], 1, *shape[-2:])  # [..., N, C, H, W]


def _check_probability(p: float, name: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} probability must be within [0, 1], got {p}")


def gaussian(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise with standard deviation ``sigma``."""
    if sigma < 0:
        raise ValueError(f"gaussian sigma must be >= 0, got {sigma}")
    y = _prepare(x)
    y += rng.standard_normal(y.shape, dtype=np.float32) * np.float32(sigma)
    return _finish(y)


def salt_pepper(x: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """A fraction ``p`` of pixels set to 0 or 1 (half each)."""
    _check_probability(p, "salt-and-pepper")
    y = _prepare(x)
    shape = _pixel_shape(y.shape)
    hit = rng.random(shape) < p
    salt = rng.random(shape) < 0.5
    y = np.where(hit & salt, np.float32(1.0), np.where(hit, np.float32(0.0), y)).astype(np.float32)
    return _finish(y)


def speckle(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative noise ``x * (1 + sigma * n)``: bright areas get noisier, as in radar/ultrasound."""
    if sigma < 0:
        raise ValueError(f"speckle sigma must be >= 0, got {sigma}")
    y = _prepare(x)
    y *= 1.0 + rng.standard_normal(y.shape, dtype=np.float32) * np.float32(sigma)
    return _finish(y)


def poisson(x: np.ndarray, photons: float, rng: np.random.Generator) -> np.ndarray:
    """Shot noise: counts ~ Poisson(x * photons), rescaled. Fewer photons is noisier."""
    if photons <= 0:
        raise ValueError(f"poisson needs photons > 0 (fewer is noisier), got {photons}")
    y = _prepare(x)
    counts = rng.poisson(np.clip(y, 0.0, 1.0).astype(np.float64) * photons)
    return _finish((counts / photons).astype(np.float32))


def mask_pixels(x: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Random pixel dropout: each pixel set to 0 with probability ``p``."""
    _check_probability(p, "mask")
    y = _prepare(x)
    y *= rng.random(_pixel_shape(y.shape)) >= p
    return _finish(y)


def mask_blocks(x: np.ndarray, p: float, rng: np.random.Generator, block: int = 8) -> np.ndarray:
    """Random ``block`` x ``block`` squares set to 0, covering about a fraction ``p`` of each image.

    The image is cut into a grid of blocks and ``round(p * blocks)`` of them are
    dropped, so the covered fraction is exact up to the partial edge blocks.
    """
    _check_probability(p, "block")
    if block < 1:
        raise ValueError(f"block size must be >= 1, got {block}")
    y = _prepare(x)
    height, width = y.shape[-2:]
    rows, cols = math.ceil(height / block), math.ceil(width / block)
    shape = _pixel_shape(y.shape)
    lead = shape[:-2]
    count = int(round(p * rows * cols))
    # One random permutation per image; its first `count` blocks are dropped.
    keys = rng.random((*lead, rows * cols))
    drop = np.argsort(keys, axis=-1) < count
    grid = drop.reshape(*lead, rows, cols)
    full = np.repeat(np.repeat(grid, block, axis=-2), block, axis=-1)[..., :height, :width]
    y *= ~full
    return _finish(y)


def blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur over H and W only (separable, reflected borders); deterministic."""
    if sigma < 0:
        raise ValueError(f"blur sigma must be >= 0, got {sigma}")
    y = _prepare(x)
    if sigma == 0:
        return _finish(y)
    radius = max(1, int(math.ceil(3.0 * sigma)))
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (-2, -1):
        y = _convolve_axis(y, kernel.astype(np.float32), axis)
    return _finish(y)


def _convolve_axis(y: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    radius = len(kernel) // 2
    size = y.shape[axis]
    # Reflect padding, repeated for images smaller than the kernel (np.pad 'reflect' handles that).
    pad = [(0, 0)] * y.ndim
    pad[axis] = (radius, radius)
    mode = "reflect" if size > 1 else "edge"
    padded = np.pad(y, pad, mode=mode)
    out = np.zeros_like(y)
    for i, weight in enumerate(kernel):
        out += weight * np.take(padded, np.arange(i, i + size), axis=axis)
    return out


def apply_noise(x: np.ndarray, cfg: NoiseConfig, rng: np.random.Generator) -> np.ndarray:
    """Apply ``cfg`` to ``x``. With ``cfg.strength_max`` set, every image of a batch
    ([N, C, H, W]: each of N; otherwise the whole array) draws its strength
    uniformly from [strength, strength_max]."""
    kind = NoiseKind(cfg.kind)
    if kind is NoiseKind.NONE:
        return _finish(_prepare(x))
    if cfg.strength_max is None:
        return _apply_one(x, kind, cfg.strength, rng)
    array = np.asarray(x)
    if array.ndim != 4:
        strength = float(rng.uniform(cfg.strength, cfg.strength_max))
        return _apply_one(array, kind, strength, rng)
    strengths = rng.uniform(cfg.strength, cfg.strength_max, size=array.shape[0])
    return np.stack(
        [_apply_one(item, kind, float(s), rng) for item, s in zip(array, strengths, strict=True)]
    )


def _apply_one(
    x: np.ndarray, kind: NoiseKind, strength: float, rng: np.random.Generator
) -> np.ndarray:
    if kind is NoiseKind.GAUSSIAN:
        return gaussian(x, strength, rng)
    if kind is NoiseKind.SALT_PEPPER:
        return salt_pepper(x, strength, rng)
    if kind is NoiseKind.SPECKLE:
        return speckle(x, strength, rng)
    if kind is NoiseKind.POISSON:
        return poisson(x, strength, rng)
    if kind is NoiseKind.MASK:
        return mask_pixels(x, strength, rng)
    if kind is NoiseKind.BLOCK:
        return mask_blocks(x, strength, rng)
    if kind is NoiseKind.BLUR:
        return blur(x, strength)
    return _finish(_prepare(x))
