"""Brush strokes grown to the image regions they fall in (superpixel label propagation).

A few strokes label ~3% of an image's pixels and, because a person paints well
inside objects, almost never the pixels near an edge: a net trained on them
alone learns where objects are but not where they end. Over-segmenting the
image into regions of uniform colour (Felzenszwalb's graph method, from
scikit-image) and giving each region that strokes of only one class touch that
class labels most of the image, with few mistakes where a region leaks across
an edge. The trainer weighs these grown labels less than painted ones
(:attr:`aestudio.training.live.LiveConfig.regions`); painted pixels are never
changed.

Measured (bench ``label_quality``'s 40 painted 128 x 128 scenes): the strokes
cover 3.0% of the pixels; grown, 63% at 98.4% agreement with the true masks
(``shapes-seg``), 56% at 96.5% (``photo-shapes``, photo textures).
"""

from __future__ import annotations

import math

import numpy as np

UNLABELLED = 255
SCALE = 100.0  # Felzenszwalb's scale: larger regions for larger values (tuned on bench label_quality's scenes)
SIGMA = 0.8  # pre-smoothing, as scikit-image's default
MIN_SIZE = 20  # smallest region, pixels
PURITY = 0.9  # a region takes a class only when at least this share of its painted pixels have it
# Larger images are segmented shrunk to at most this many pixels. Felzenszwalb cost 3.4 CPU-s on a 1024^2
# image (and the Label tab's Train waits for it); shrunk by 2 it took 0.2 s of the 1.2 at 768^2, and
# on 4 photo-shapes scenes at 768^2 (15 strokes per class) the grown labels covered 14-16% of the
# pixels at 95-98% agreement with the true masks, vs 8-9% at 99% at full size (the regions' size is
# in pixels, so at full size they shrink relative to the objects). Images up to 512^2 are unchanged.
MAX_PIXELS = 512 * 512


def segments(image: np.ndarray, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Regions of uniform colour: int32 [H, W] region ids of image [H, W] or [H, W, C] in [0, 1].

    Images above ``max_pixels`` are segmented at a whole-number fraction of their size (block means),
    the ids then repeated back to full size: the cost stays bounded whatever the image's size."""
    from skimage.segmentation import felzenszwalb

    img = np.asarray(image, np.float32)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    height, width = img.shape[:2]
    f = max(1, math.ceil(math.sqrt(height * width / max_pixels)))
    if f > 1:
        img = _block_mean(img, f)
    axis = -1 if img.ndim == 3 else None
    regions = felzenszwalb(img, scale=SCALE, sigma=SIGMA, min_size=MIN_SIZE, channel_axis=axis).astype(np.int32)
    if f == 1:
        return regions
    full = np.repeat(np.repeat(regions, f, axis=0), f, axis=1)
    return np.ascontiguousarray(np.pad(full, ((0, height - full.shape[0]), (0, width - full.shape[1])),
                                       mode="edge")[:height, :width])


def _block_mean(img: np.ndarray, f: int) -> np.ndarray:
    """``img`` shrunk by ``f`` (means of f x f blocks; a partial last row or column of blocks is dropped)."""
    h, w = img.shape[0] // f * f, img.shape[1] // f * f
    blocks = img[:h, :w].reshape(h // f, f, w // f, f, *img.shape[2:])
    return np.ascontiguousarray(blocks.mean(axis=(1, 3)), dtype=np.float32)


def grow(mask: np.ndarray, regions: np.ndarray, purity: float = PURITY) -> np.ndarray:
    """The painted ``mask`` (uint8, 255 unlabelled) with every region painted in one class filled with it.

    A region whose painted pixels disagree (less than ``purity`` of one class) stays
    unlabelled; painted pixels keep their value whatever their region says."""
    mask = np.asarray(mask)
    out = mask.astype(np.uint8, copy=True)
    painted = mask != UNLABELLED
    if not painted.any():
        return out
    n_regions = int(regions.max()) + 1
    k = int(mask[painted].max()) + 1
    counts = np.bincount(regions[painted].astype(np.int64) * k + mask[painted], minlength=n_regions * k)
    counts = counts.reshape(n_regions, k)
    total = counts.sum(axis=1)
    best = counts.argmax(axis=1)
    take = (total > 0) & (counts.max(axis=1) >= purity * total)
    fill = np.where(take, best, UNLABELLED).astype(np.uint8)[regions]
    out[~painted] = fill[~painted]
    return out
