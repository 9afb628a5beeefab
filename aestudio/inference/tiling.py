"""Run a fully convolutional model over a large image in overlapping, blended tiles.

Numpy only. The image is cut into a grid of overlapping tiles; each tile's
output is weighted by a window that ramps smoothly (raised cosine) across the
overlap on every side that has a neighbour and is flat elsewhere, then
accumulated into one output array the size of the image. Because the tiles
form a grid and the window is separable (``wy[y] * wx[x]``), the sum of weights
at any pixel is ``sum_y[y] * sum_x[x]``: normalising needs two 1-D arrays, not a
full weight image. Extra memory beyond the output is a few tiles at a time.

Why the ramp: a conv net's output near a tile edge sees zero padding instead
of the neighbouring pixels, so it is wrong there; the ramp gives those pixels
almost no weight where a neighbour covers them with its own interior.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_TILE = 256  # big enough that per-call overhead is small, small enough for bounded memory
DEFAULT_OVERLAP = 32  # wider than the receptive-field "damage" of the built-in nets' edges
# Tiles per model call. One: a 256 px tile already amortises the call overhead, and
# batches of 4 filled ONNX Runtime's memory pool (bench tiled, 4096² RGB: 1298 -> 903 MiB
# peak extra memory at the same speed).
DEFAULT_TILE_BATCH = 1

TileFn = Callable[[np.ndarray], np.ndarray]  # [N, C, th, tw] float32 -> [N, K, th, tw]


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles go along each axis (starts) and how big they are."""

    height: int
    width: int
    tile_h: int
    tile_w: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    overlap: int

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)


def _starts(length: int, tile: int, overlap: int, multiple: int) -> list[int]:
    """Tile starts covering [0, length) with at least ``overlap`` shared between neighbours.

    Starts are multiples of ``multiple`` when possible so every tile sees the
    same pixel grid alignment as the untiled image (matters for strided nets).
    """
    if tile >= length:
        return [0]
    step = max(multiple, (tile - overlap) // multiple * multiple)
    starts = list(range(0, length - tile, step))
    last = length - tile  # the last tile ends exactly at the border
    if not starts or starts[-1] != last:
        starts.append(last)
    return starts


def plan_tiles(
    height: int, width: int, *, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, multiple: int = 1
) -> TilePlan:
    """Lay out a grid of tiles over an image of ``height`` x ``width``.

    ``tile`` is rounded down to a multiple of ``multiple`` (the model's size
    multiple); an image axis shorter than the tile is one tile of the full
    length (the caller pads the image to a multiple first).
    """
    if multiple < 1 or tile < multiple:
        raise ValueError(f"tile size {tile} must be at least the size multiple {multiple}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap {overlap} must be >= 0 and smaller than the tile size {tile}")
    tile = tile // multiple * multiple
    th, tw = min(tile, height), min(tile, width)
    return TilePlan(
        height=height,
        width=width,
        tile_h=th,
        tile_w=tw,
        ys=tuple(_starts(height, th, overlap, multiple)),
        xs=tuple(_starts(width, tw, overlap, multiple)),
        overlap=overlap,
    )


def _ramp(n: int) -> np.ndarray:
    """Rising weights over ``n`` samples: a near-zero margin, then a raised cosine to near 1.

    The first quarter (the margin) is where the tile's own output is worst (it
    sees the tile edge's zero padding), so it gets a token weight only; the
    neighbour, which sees those pixels from its interior, decides them.
    Never exactly 0, so every pixel keeps a defined weight.
    """
    margin = n // 4
    w = np.full(n, _EPS, dtype=np.float64)
    k = n - margin
    t = (np.arange(k, dtype=np.float64) + 0.5) / k
    w[margin:] = np.maximum(_EPS, 0.5 - 0.5 * np.cos(np.pi * t))
    return w.astype(np.float32)


_EPS = 1e-4


def axis_window(length: int, start: int, tile: int, overlap: int) -> np.ndarray:
    """1-D blending weights for one tile along one axis of total ``length``.

    Ramps only on sides that have a neighbour: the image border has no other
    tile to hand over to, so the weight there stays 1.
    """
    w = np.ones(tile, dtype=np.float32)
    if overlap <= 0:
        return w
    ramp = _ramp(overlap)
    if start > 0:
        w[:overlap] = ramp
    if start + tile < length:
        w[tile - overlap :] = np.minimum(w[tile - overlap :], ramp[::-1])
    return w


def _weight_sums(length: int, starts: tuple[int, ...], tile: int, overlap: int) -> np.ndarray:
    total = np.zeros(length, dtype=np.float32)
    for s in starts:
        total[s : s + tile] += axis_window(length, s, tile, overlap)
    return total


def iter_tiles(plan: TilePlan) -> Iterator[tuple[int, int]]:
    for y in plan.ys:
        for x in plan.xs:
            yield y, x


TileReader = Callable[[int, int, np.ndarray], None]  # (y, x, out [C, th, tw]): fill the tile at (y, x)


def tiled_apply(
    image: np.ndarray,
    fn: TileFn,
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    multiple: int = 1,
    tile_batch: int = DEFAULT_TILE_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Apply ``fn`` to ``image`` [C, H, W] tile by tile; return blended [K, H, W] float32.

    ``fn`` takes a float32 batch [N, C, th, tw] and returns [N, K, th, tw] (same
    spatial size, as a fully convolutional net does). H and W must already be
    multiples of ``multiple``. ``progress(done, total)`` is called after each
    batch of tiles (plain callback; no UI types).
    """
    if image.ndim != 3:
        raise ValueError(f"tiled_apply needs a [C, H, W] image, got shape {image.shape}")
    channels, height, width = image.shape

    def read(y: int, x: int, out: np.ndarray) -> None:
        out[...] = image[:, y : y + out.shape[1], x : x + out.shape[2]]

    return tiled_map(read, channels, height, width, fn, tile=tile, overlap=overlap, multiple=multiple,
                     tile_batch=tile_batch, progress=progress)


def tiled_map(
    read_tile: TileReader,
    channels: int,
    height: int,
    width: int,
    fn: TileFn,
    *,
    crop: tuple[int, int] | None = None,
    channels_last: bool = False,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    multiple: int = 1,
    tile_batch: int = DEFAULT_TILE_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Blend ``fn`` over a ``height`` x ``width`` image that ``read_tile`` supplies tile by tile.

    The image itself is never needed as a whole: ``read_tile(y, x, out)`` writes
    the float32 tile [channels, th, tw] at (y, x) into ``out`` (a reused buffer),
    so a caller can convert dtype, channels and padding per tile. The only
    full-size array is the result, float32 [K, h, w] or, with ``channels_last``,
    [h, w, K], where (h, w) is ``crop`` (the unpadded size; default the full
    size): tiles are weighted, cropped and added straight into it. The blending
    weights are normalised per tile (separable, see the module docstring), so
    no pass over the result is needed afterwards.
    """
    if height % multiple or width % multiple:
        raise ValueError(f"image size {height}x{width} must be a multiple of {multiple}; pad it first")
    ch, cw = crop if crop is not None else (height, width)
    if not (0 < ch <= height and 0 < cw <= width):
        raise ValueError(f"crop {ch}x{cw} must lie within the image {height}x{width}")
    plan = plan_tiles(height, width, tile=tile, overlap=overlap, multiple=multiple)
    th, tw = plan.tile_h, plan.tile_w
    # Normalised separable weights: the weight sum at (y, x) is sy[y] * sx[x].
    sy = _weight_sums(height, plan.ys, th, overlap)
    sx = _weight_sums(width, plan.xs, tw, overlap)
    wy = {y: (axis_window(height, y, th, overlap) / sy[y : y + th])[:, None] for y in plan.ys}
    wx = {x: (axis_window(width, x, tw, overlap) / sx[x : x + tw])[None, :] for x in plan.xs}
    positions = list(iter_tiles(plan))
    step = max(1, tile_batch)
    buf = np.empty((min(step, len(positions)), channels, th, tw), dtype=np.float32)
    log.debug("tiling %dx%d into %d tiles of %dx%d", height, width, len(positions), th, tw)
    out: np.ndarray | None = None
    weighted: np.ndarray | None = None
    done = 0
    for i in range(0, len(positions), step):
        chunk = positions[i : i + step]
        batch = buf[: len(chunk)]
        for slot, (y, x) in zip(batch, chunk, strict=True):
            read_tile(y, x, slot)
        result = fn(batch)
        if out is None and result.ndim == 4:
            k = result.shape[1]
            out = np.zeros((ch, cw, k) if channels_last else (k, ch, cw), dtype=np.float32)
            weighted = np.empty((k, th, tw), dtype=np.float32)
        expected = (len(chunk), weighted.shape[0] if weighted is not None else -1, th, tw)
        if out is None or weighted is None or result.shape != expected:
            raise ValueError(f"tile function returned shape {result.shape}, expected {expected}")
        for (y, x), r in zip(chunk, result, strict=True):
            rh, rw = min(th, ch - y), min(tw, cw - x)
            if rh <= 0 or rw <= 0:  # a tile wholly in the padding (only with a crop larger than a step)
                continue
            np.multiply(r, wy[y], out=weighted)
            weighted *= wx[x]
            part = weighted[:, :rh, :rw]
            if channels_last:
                out[y : y + rh, x : x + rw] += part.transpose(1, 2, 0)
            else:
                out[:, y : y + rh, x : x + rw] += part
        done += len(chunk)
        if progress is not None:
            progress(done, len(positions))
    assert out is not None  # the plan always has at least one tile
    return out
