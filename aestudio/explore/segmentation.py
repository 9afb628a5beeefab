"""Segmentation results (plain numpy): masks from class probabilities, overlays, IoU/Dice, and the folder work.

The Segment panel's slider work (threshold, opacity, per-class visibility,
IoU/Dice) runs off the GUI thread from cached class probabilities, never from a
new inference:

* :func:`mask_from_probs`: argmax, or for two classes ``p(class 1) >= threshold``;
* :func:`compose_overlay`: class colours over the image, per-class alpha;
* :func:`class_shares` / :func:`iou_dice`: pixel share per class, and per-class
  IoU and Dice from one confusion matrix.

:func:`segment_work` is what the one folder job (:mod:`aestudio.explore.folder_job`)
does to each image when it segments a folder: ``<stem>_mask.png`` (index PNG) and
optionally ``<stem>_overlay.png``. The CLI's ``aestudio segment`` and the Segment
panel (on a thread of its own, :class:`aestudio.gui.panels.folder_job.FolderJob`)
both run it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from aestudio.explore.folder_job import FolderWork, IndexMask, Result

if TYPE_CHECKING:
    from aestudio.inference.predictor import Predictor

MASK_SUFFIX = "_mask.png"
OVERLAY_SUFFIX = "_overlay.png"


# ------------------------------------------------------------------ numpy helpers


def mask_from_probs(probs: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Class index per pixel (int64 [H, W]) from probabilities [K, H, W].

    With two classes and a ``threshold``, a pixel is class 1 when its probability
    reaches the threshold (0.5 gives the argmax, up to ties); otherwise the argmax.
    """
    p = np.asarray(probs)
    if p.ndim != 3 or p.shape[0] < 1:
        raise ValueError(f"class probabilities must be [K, H, W], got shape {p.shape}")
    if p.shape[0] == 2 and threshold is not None:
        return (p[1] >= np.float32(threshold)).astype(np.int64)
    return p.argmax(axis=0).astype(np.int64)


def to_rgb_u8(image: np.ndarray) -> np.ndarray:
    """float [H, W] / [H, W, 1|3|4] in [0, 1] -> uint8 [H, W, 3] (grey repeated, alpha dropped)."""
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an image [H, W] or [H, W, C], got shape {np.shape(image)}")
    a = np.nan_to_num(a[:, :, :3], nan=0.0, posinf=1.0, neginf=0.0)
    u8 = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(u8, 3, axis=2) if u8.shape[2] == 1 else u8)


def outline_width(height: int, width: int) -> int:
    """Outline thickness in image pixels that stays visible when the image is shown ~500 px wide."""
    return max(1, round(max(height, width) / 400))


def boundaries(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """bool [H, W]: pixels within ``width`` pixels of a pixel of another class (both sides of an edge)."""
    m = np.asarray(mask)
    edge = np.zeros(m.shape, dtype=bool)
    dy = m[1:, :] != m[:-1, :]
    dx = m[:, 1:] != m[:, :-1]
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    for _ in range(max(0, width - 1)):  # widen by one pixel per pass (4-neighbourhood)
        grown = edge.copy()
        grown[1:, :] |= edge[:-1, :]
        grown[:-1, :] |= edge[1:, :]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return edge


def compose_overlay(image_u8: np.ndarray, mask: np.ndarray, colors: np.ndarray,
                    alphas: np.ndarray, *, outline: int = 0) -> np.ndarray:
    """Blend ``colors[mask]`` over ``image_u8`` [H, W, 3] with a per-class opacity ``alphas`` [K].

    ``outline`` > 0 draws the class boundaries that wide, twice as opaque as the fill
    (so shapes stay readable over busy textures). A class with alpha 0 (hidden, or
    opacity 0) leaves its pixels exactly as in the image. Mask values outside the
    palette are left unpainted.
    """
    if image_u8.shape[:2] != mask.shape:
        raise ValueError(f"mask {mask.shape} does not match image {image_u8.shape[:2]}")
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    k = len(colors)
    # Opacities in 1/256 steps, so the blend is integer arithmetic in uint16 (~5x faster than
    # float32 on a 1024² image); alpha 0 gives back the image's exact pixels.
    lut = np.zeros(k + 1, dtype=np.uint16)  # last slot: out-of-range classes, never painted
    lut[:k] = np.round(np.clip(np.asarray(alphas, dtype=np.float32)[:k], 0.0, 1.0) * 256).astype(np.uint16)
    idx = mask if mask.size == 0 or (mask.min() >= 0 and mask.max() < k) else np.where((mask >= 0) & (mask < k), mask, k)
    alpha = lut.take(idx)
    if outline > 0:
        edge = boundaries(idx, outline)
        alpha[edge] = np.minimum(256, 2 * alpha[edge])
    if not alpha.any():
        return image_u8.copy()
    pal = np.vstack([colors, np.zeros((1, 3), np.uint8)]).astype(np.uint16)
    a = alpha[:, :, None]
    out = image_u8.astype(np.uint16) * (256 - a)
    out += pal.take(idx, axis=0) * a
    out += 128
    out >>= 8
    return out.astype(np.uint8)


def class_shares(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Fraction of the pixels in each class, float64 [K] (sums to 1 over in-range pixels)."""
    m = np.asarray(mask).ravel()
    counts = np.bincount(m[(m >= 0) & (m < num_classes)], minlength=num_classes)[:num_classes]
    return counts / max(m.size, 1)


def iou_dice(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class IoU and Dice of ``pred`` against ``truth`` (both int [H, W]), float64 [K] each.

    Truth pixels outside 0..K-1 (e.g. 255, "void") are ignored. A class in neither
    mask has no score: NaN.
    """
    if pred.shape != truth.shape:
        raise ValueError(f"masks differ in size: prediction {pred.shape}, truth {truth.shape}")
    k = num_classes
    t = np.asarray(truth, dtype=np.int64).ravel()
    p = np.asarray(pred, dtype=np.int64).ravel()
    keep = (t >= 0) & (t < k) & (p >= 0) & (p < k)
    cm = np.bincount(t[keep] * k + p[keep], minlength=k * k).reshape(k, k).astype(np.float64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
        dice = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    return iou, dice


def fewer_tiles(tiling: Any, height: int, width: int, multiple: int, *, grow: float = 1.25) -> Any:
    """The predictor's tiling options, with a tile up to ``grow`` times larger when that needs fewer tiles.

    A 1024 px image with 512 px tiles overlapping by 64 takes 3 x 3 tiles (2.25 times
    its pixels); 544 px tiles cover it with 2 x 2 (1.13 times), about half the work
    for the same memory bound give or take 13 %.
    """
    from dataclasses import replace

    from aestudio.inference.tiling import plan_tiles

    m = max(1, int(multiple))
    h, w = -(-height // m) * m, -(-width // m) * m  # the predictor pads to the multiple first
    tile, overlap = int(tiling.tile), int(tiling.overlap)
    if max(h, w) <= tile:
        return tiling
    biggest = int(tile * grow) // m * m
    longest = max(h, w)
    n = math.ceil((longest - overlap) / (biggest - overlap))  # tiles along the longest side
    candidate = min(biggest, math.ceil(math.ceil((longest + (n - 1) * overlap) / n) / m) * m)

    def work(t: int) -> int:
        plan = plan_tiles(h, w, tile=t, overlap=overlap, multiple=m)
        return plan.count * plan.tile_h * plan.tile_w

    return replace(tiling, tile=candidate) if work(candidate) < work(tile) else tiling


# ------------------------------------------------------------------ the folder job


@dataclass(frozen=True)
class FolderSettings:
    """How to segment and draw, frozen when the job starts."""

    colors: np.ndarray  # uint8 [K, 3]
    alphas: np.ndarray  # float32 [K]: per-class opacity of the overlay
    threshold: float | None  # two-class models: probability threshold
    overlays: bool = True  # also write <stem>_overlay.png
    outlines: bool = True  # draw class boundaries in the overlays


def segment_work(predictor: Predictor, settings: FolderSettings) -> FolderWork:
    """The folder job's work for segmentation: ``<stem>_mask.png`` (index PNG), and
    ``<stem>_overlay.png`` when ``settings.overlays`` (run by :func:`aestudio.explore.folder_job.run_folder`)."""
    palette = [(int(c[0]), int(c[1]), int(c[2])) for c in settings.colors]
    suffixes = (MASK_SUFFIX, OVERLAY_SUFFIX) if settings.overlays else (MASK_SUFFIX,)

    def compute(image: np.ndarray) -> dict[str, Result]:
        _, probs = predictor.segment(image)
        mask = mask_from_probs(probs, settings.threshold)
        out: dict[str, Result] = {MASK_SUFFIX: IndexMask(mask, palette)}
        if settings.overlays:
            width = outline_width(*mask.shape) if settings.outlines else 0
            over = compose_overlay(to_rgb_u8(image), mask, settings.colors, settings.alphas, outline=width)
            out[OVERLAY_SUFFIX] = over.astype(np.float32) / 255.0
        return out

    return FolderWork(verb="Segmented", noun="segmentation", suffixes=suffixes, compute=compute)
