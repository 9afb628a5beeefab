"""Procedural datasets: ``shapes`` (dSprites-like sprites with known factors) and ``shapes-seg``.

Both are fixed datasets: item ``i`` is the same picture on every machine and
for every seed (the seed only changes the train/val split), so runs with
different seeds see the same data. Items are rendered on first access and
cached as uint8, so opening is instant and later epochs are cheap.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from aestudio.data.base import adapt_channels

log = logging.getLogger(__name__)

# Fixed content seeds: the datasets must not change between runs or seeds.
_SHAPES_SEED = 20_240_601
_SEG_SEED = 20_240_602
# Above this many cached bytes, render every access instead (huge image_size requests).
_CACHE_LIMIT_BYTES = 512 * 2**20


class Sprite(enum.IntEnum):
    """Shapes of the ``shapes`` dataset; the value is the label."""

    SQUARE = 0
    ELLIPSE = 1
    TRIANGLE = 2
    HEART = 3


class SegClass(enum.IntEnum):
    """Classes of ``shapes-seg`` masks."""

    BACKGROUND = 0
    CIRCLE = 1
    SQUARE = 2
    TRIANGLE = 3


FACTOR_NAMES = ("shape", "scale", "rotation", "x", "y")
SPRITE_NAMES = [s.name.lower() for s in Sprite]
SEG_CLASS_NAMES = [c.name.lower() for c in SegClass]
SEG_CLASS_COLORS = [(0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200)]

_MAX_RADIUS = 0.24  # sprite radius at scale 1, as a fraction of the image side
_CENTRE_RANGE = (0.3, 0.7)  # sprite centres stay here so every sprite is fully visible


def _inside(kind: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Is local point (u, v) (unit radius, v pointing down as in images) inside the shape?"""
    if kind == Sprite.SQUARE:
        return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    if kind == Sprite.ELLIPSE:
        w = v * (1 / 0.55)
        return u * u + w * w <= 1.0
    if kind == Sprite.TRIANGLE:
        # Equilateral, apex up: three half-planes at inradius 0.5 (circumradius 1).
        return (v <= 0.5) & (0.866 * u - 0.5 * v <= 0.5) & (-0.866 * u - 0.5 * v <= 0.5)
    if kind == Sprite.HEART:
        x, y = u * 1.2, -v * 1.2 + 0.15  # the implicit heart spans about [-1.14, 1.14] x [-1, 1.25]
        x2, y2 = x * x, y * y
        t = x2 + y2 - 1.0
        return t * t * t <= x2 * y2 * y  # (x^2+y^2-1)^3 - x^2 y^3 <= 0; products, as pow is slow
    raise ValueError(f"unknown sprite {kind}")


def _local(
    xx: np.ndarray, yy: np.ndarray, cx: Any, cy: Any, radius: Any, angle: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates -> shape-local coordinates (rotated by -angle, unit radius)."""
    dx, dy = (xx - cx) / radius, (yy - cy) / radius
    c, s = np.cos(angle), np.sin(angle)
    return c * dx + s * dy, -s * dx + c * dy


# ------------------------------------------------------------------ shapes


def shape_factors(n: int) -> np.ndarray:
    """The fixed factor table of the ``shapes`` dataset, float32 [n, 5] (see FACTOR_NAMES)."""
    rng = np.random.default_rng(_SHAPES_SEED)
    table = np.empty((n, len(FACTOR_NAMES)), dtype=np.float32)
    table[:, 0] = rng.integers(0, len(Sprite), size=n)
    table[:, 1] = rng.uniform(0.5, 1.0, size=n)  # dSprites' scale range
    table[:, 2] = rng.uniform(0.0, 2.0 * np.pi, size=n)
    table[:, 3] = rng.uniform(0.0, 1.0, size=n)
    table[:, 4] = rng.uniform(0.0, 1.0, size=n)
    return table


def render_sprites(factors: np.ndarray, size: int) -> np.ndarray:
    """White sprites on black, uint8 [N, size, size], antialiased by supersampling.

    Vectorised over the batch: rendering 64 sprites at once costs about as
    much as a few one at a time, which keeps the first epoch fast.
    """
    factors = np.atleast_2d(np.asarray(factors, dtype=np.float32))
    sub = (
        3 if size <= 64 else 2
    )  # supersampling factor: 10 grey levels on edges at a third of 4x4's cost
    coords = (np.arange(size * sub, dtype=np.float32) + 0.5) / (size * sub)
    xx, yy = np.meshgrid(coords, coords)
    lo, hi = _CENTRE_RANGE
    kinds = factors[:, 0].astype(np.int64)
    column = factors[:, 1:, None, None]  # [N, 4, 1, 1] broadcasts against the pixel grid
    scale, angle, fx, fy = column[:, 0], column[:, 1], column[:, 2], column[:, 3]
    u, v = _local(xx, yy, lo + fx * (hi - lo), lo + fy * (hi - lo), _MAX_RADIUS * scale, angle)
    hit = np.zeros(u.shape, dtype=np.float32)
    for kind in np.unique(kinds):
        rows = kinds == kind
        hit[rows] = _inside(int(kind), u[rows], v[rows])
    coverage = hit.reshape(len(factors), size, sub, size, sub).mean(axis=(2, 4))
    return np.round(coverage * 255.0).astype(np.uint8)


def render_sprite(factors: np.ndarray, size: int) -> np.ndarray:
    """One sprite, uint8 [size, size] (see :func:`render_sprites`)."""
    return render_sprites(np.asarray(factors)[None], size)[0]


_CHUNK = 64  # sprites rendered together when one of them is first needed


class ShapesDataset(Dataset):
    """``shapes`` items: (sprite image [C, S, S], shape label)."""

    def __init__(self, factors: np.ndarray, size: int, channels: int) -> None:
        self.factors = factors
        self.size = size
        self.channels = channels
        n = len(factors)
        self._cache: np.ndarray | None = None
        if n * size * size <= _CACHE_LIMIT_BYTES:
            self._cache = np.zeros(
                (n, size, size), dtype=np.uint8
            )  # zero pages: free until touched
            self._done = np.zeros(n, dtype=bool)

    def __len__(self) -> int:
        return len(self.factors)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        index = int(index)
        if index < 0:
            index += len(self)
        if self._cache is not None:
            if not self._done[index]:
                start = index - index % _CHUNK
                stop = min(start + _CHUNK, len(self))
                self._cache[start:stop] = render_sprites(self.factors[start:stop], self.size)
                self._done[start:stop] = True
            pixels = self._cache[index]
        else:
            pixels = render_sprite(self.factors[index], self.size)
        image = torch.from_numpy(pixels.astype(np.float32) / 255.0)[None]
        return adapt_channels(image, self.channels), int(self.factors[index, 0])


# ------------------------------------------------------------------ shapes-seg


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.0, 1.0, size=3).astype(np.float32)


def _background(
    rng: np.random.Generator, size: int, xx: np.ndarray, yy: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """A textured background [size, size, 3] and the colours it is made of."""
    c1, c2 = _random_colour(rng), _random_colour(rng)
    style = rng.integers(0, 3)
    if style == 0:  # linear gradient
        angle = rng.uniform(0, 2 * np.pi)
        t = np.cos(angle) * xx + np.sin(angle) * yy
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
        image = c1 * (1 - t[..., None]) + c2 * t[..., None]
    elif style == 1:  # smooth blotches: coarse random field, bilinearly upsampled
        cells = int(rng.integers(3, 7))
        coarse = torch.from_numpy(rng.uniform(0, 1, size=(1, 1, cells, cells)).astype(np.float32))
        t = torch.nn.functional.interpolate(
            coarse, size=(size, size), mode="bicubic", align_corners=False
        )
        t = t[0, 0].clamp(0, 1).numpy()
        image = c1 * (1 - t[..., None]) + c2 * t[..., None]
    else:  # stripes
        angle = rng.uniform(0, np.pi)
        freq = rng.uniform(3.0, 10.0)
        phase = rng.uniform(0, 2 * np.pi)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
        t = np.clip((t - 0.5) * rng.uniform(1.0, 4.0) + 0.5, 0, 1)  # from soft waves to hard bars
        image = c1 * (1 - t[..., None]) + c2 * t[..., None]
    return image.astype(np.float32), [c1, c2]


def seg_shape(cls: SegClass | int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Is shape-local point (u, v) (unit radius, see ``_local``) inside a ``shapes-seg`` object of class ``cls``?"""
    cls = SegClass(int(cls))
    if cls is SegClass.CIRCLE:
        return u**2 + v**2 <= 1.0
    if cls is SegClass.SQUARE:
        return _inside(Sprite.SQUARE, u, v)
    if cls is SegClass.TRIANGLE:
        return _inside(Sprite.TRIANGLE, u, v)
    raise ValueError(f"{cls.name.lower()} is not a shape")


def shape_local(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, radius: float,
                angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (fractions of the side) -> shape-local coordinates (rotated by -angle, unit radius)."""
    return _local(xx, yy, cx, cy, radius, angle)


def render_seg(index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Item ``index`` of ``shapes-seg``: uint8 image [size, size, 3] and uint8 mask [size, size].

    2-5 shapes of random class, size, position and rotation, drawn in order
    (later ones cover earlier ones). Half the shapes take a colour close to the
    background's, and shape colours come from the same distribution as the
    background's, so colour alone cannot tell classes apart: a model must look
    at the outline.
    """
    rng = np.random.default_rng([_SEG_SEED, index])
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    xx, yy = np.meshgrid(coords, coords)
    image, palette = _background(rng, size, xx, yy)
    mask = np.zeros((size, size), dtype=np.uint8)
    for _ in range(int(rng.integers(2, 6))):
        cls = SegClass(int(rng.integers(1, len(SegClass))))
        radius = rng.uniform(0.08, 0.22)
        cx, cy = rng.uniform(0.05, 0.95, size=2)
        angle = rng.uniform(0, 2 * np.pi)
        u, v = _local(xx, yy, cx, cy, radius, angle)
        hit = seg_shape(cls, u, v)
        if rng.random() < 0.5:
            base = palette[int(rng.integers(0, len(palette)))]
            colour = np.clip(base + rng.uniform(-0.2, 0.2, size=3), 0, 1)
        else:
            colour = _random_colour(rng)
        shade = 1.0 + rng.uniform(-0.15, 0.15) * (u[hit] / 1.0)[:, None]  # a little shading inside
        image[hit] = np.clip(colour * shade, 0, 1)
        mask[hit] = cls
    image += rng.normal(0.0, rng.uniform(0.02, 0.08), size=image.shape).astype(np.float32)
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), mask


class ShapesSegDataset(Dataset):
    """``shapes-seg`` items: (RGB or grey image [C, S, S], int64 mask [S, S])."""

    def __init__(self, indices: np.ndarray, size: int, channels: int) -> None:
        self.indices = np.asarray(
            indices, dtype=np.int64
        )  # item i renders content index indices[i]
        self.size = size
        self.channels = channels
        n = len(self.indices)
        self._images: np.ndarray | None = None
        if n * size * size * 4 <= _CACHE_LIMIT_BYTES:
            self._images = np.zeros((n, size, size, 3), dtype=np.uint8)
            self._masks = np.zeros((n, size, size), dtype=np.uint8)
            self._done = np.zeros(n, dtype=bool)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        index = int(index)
        if index < 0:
            index += len(self)
        if self._images is not None:
            if not self._done[index]:
                self._images[index], self._masks[index] = render_seg(
                    int(self.indices[index]), self.size
                )
                self._done[index] = True
            pixels, mask = self._images[index], self._masks[index]
        else:
            pixels, mask = render_seg(int(self.indices[index]), self.size)
        image = torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()
        return adapt_channels(image, self.channels), torch.from_numpy(mask.astype(np.int64))
