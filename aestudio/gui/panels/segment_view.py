"""The Segment panel's off-GUI-thread work: items, inference, composition; and its small table helpers.

:func:`infer_item` reads an image and segments it (:class:`DropPredictors` picks
the session and tile size); :func:`compose_item` turns cached class probabilities
into what is shown (mask at the threshold, overlay, pixel shares, IoU/Dice
against the ground truth, the QImage), so display changes never rerun a model.
Both run on worker threads and return frozen results; QImages are safe to build
there (QPixmaps are not).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget

from aestudio.explore.segmentation import (
    class_shares,
    compose_overlay,
    fewer_tiles,
    iou_dice,
    mask_from_probs,
    outline_width,
    to_rgb_u8,
)
from aestudio.explore.sessions import for_work, profile_for
from aestudio.gui import engine
from aestudio.gui.engine import LoadedModel

if TYPE_CHECKING:
    from aestudio.inference.predictor import Predictor


@dataclass
class SegItem:
    """One image in the panel: a file, or an item of the data set (image and mask in memory)."""

    key: int
    name: str
    path: Path | None = None
    image: np.ndarray | None = None  # float32 [H, W, C] for data set items
    truth: np.ndarray | None = None  # int64 [H, W] ground truth
    truth_name: str = ""


@dataclass(frozen=True)
class Inferred:
    """Inference result cached per item: the image as shown and the class probabilities."""

    key: int
    image_u8: np.ndarray  # uint8 [H, W, 3]
    probs: np.ndarray | None  # float32 [K, H, W]; None without a segmentation model
    seconds: float
    how: str = ""  # which predictor ran it ("interactive" / "batch", tiles)
    argmax: np.ndarray | None = None  # int64 [H, W]: the mask without a threshold (computed once)


@dataclass(frozen=True)
class Composed:
    key: int
    qimage: QImage
    overlay: np.ndarray  # uint8 [H, W, 3] as shown
    mask: np.ndarray | None  # int64 [H, W]
    shares: np.ndarray | None
    truth_qimage: QImage | None
    iou: np.ndarray | None
    dice: np.ndarray | None
    truth_error: str


def u8_to_qimage(rgb: np.ndarray) -> QImage:
    a = np.ascontiguousarray(rgb, dtype=np.uint8)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected uint8 [H, W, 3], got {a.shape}")
    h, w, _ = a.shape
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class DropPredictors:
    """Which predictor segments a dropped image; used from the inference thread only.

    While a training run is in progress: the window's interactive session (one thread,
    so training keeps its cores). Otherwise the same model's all-cores twin
    (``with_profile("batch")``, shared with folder jobs; its sessions are made on first use,
    in the worker), so a drop takes about half the time on 2 cores. Either way the tiles are sized so a large image needs as few as
    possible (a copy of the predictor carries the tiling: the shared one is not changed).
    """

    def __init__(self, model: LoadedModel | None) -> None:
        self.model = model

    def warm(self) -> None:
        """Make the session before the first drop (creating one holds the GIL for a moment)."""
        predictor, _ = self.get(64, 64)
        predictor.segment(np.zeros((64, 64, int(getattr(self.model.info, "in_channels", 3) or 3)), np.float32))

    def get(self, h: int, w: int) -> tuple[Predictor, str]:
        import copy

        model = self.model
        how = profile_for(heavy=True)  # a drop runs on every core unless a run trains here
        base = for_work(model.predictor, heavy=True)
        if base.provider.startswith("torch bfloat16"):  # the app's batch runtime chose the bfloat16 twin
            how += ", bfloat16"
        tiling = getattr(base, "tiling", None)
        if tiling is None:
            return base, how
        pred = copy.copy(base)
        multiple = int(getattr(model.info, "size_multiple", 1) or 1)
        pred.tiling = fewer_tiles(tiling, h, w, multiple)
        if max(h, w) > pred.tiling.tile and getattr(model.info, "fixed_size", None) is None:
            from aestudio.inference.tiling import plan_tiles

            hp, wp = -(-h // multiple) * multiple, -(-w // multiple) * multiple
            tiles = plan_tiles(hp, wp, tile=pred.tiling.tile, overlap=pred.tiling.overlap, multiple=multiple).count
            how += f", {tiles} tiles of {pred.tiling.tile} px"
        return pred, how


def infer_item(predictors: DropPredictors | None, item: SegItem) -> Inferred:
    t0 = time.perf_counter()
    image = item.image if item.image is not None else engine.read_image(item.path)
    probs, argmax, how = None, None, ""
    if predictors is not None:
        predictor, how = predictors.get(*image.shape[:2])
        argmax, probs = predictor.segment(image)
        probs = np.asarray(probs, dtype=np.float32)
        if probs.ndim != 3 or probs.shape[1:] != image.shape[:2] or not np.isfinite(probs).all():
            raise ValueError(f"the model returned unusable probabilities {probs.shape} for an image "
                             f"of {image.shape[1]}x{image.shape[0]}")
        argmax = np.asarray(argmax, dtype=np.int64)
        if argmax.shape != probs.shape[1:]:
            argmax = mask_from_probs(probs)
    return Inferred(item.key, to_rgb_u8(image), probs, time.perf_counter() - t0, how, argmax)


def pair_mask(spec: str, image: Path) -> tuple[Path, np.ndarray] | None:
    """For ``pairs:IMAGES,MASKS`` data: the mask of an image under IMAGES (matched by stem), read."""
    if not spec.startswith("pairs:"):
        return None
    images_text, comma, masks_text = spec.partition(":")[2].partition(",")
    if not comma:
        return None
    images_root = Path(images_text.strip()).expanduser().resolve()
    masks_root = Path(masks_text.strip()).expanduser()
    if images_root not in Path(image).resolve().parents or not masks_root.is_dir():
        return None
    from aestudio.data.folders import match_pairs
    from aestudio.data.io import read_mask

    pairs, _ = match_pairs([Path(image)], engine.iter_image_files(masks_root), spec)
    return (pairs[0][1], read_mask(pairs[0][1])) if pairs else None


def compose_item(entry: Inferred, truth: np.ndarray | None, colors: np.ndarray, alphas: np.ndarray,
             threshold: float | None, outlines: bool) -> Composed:
    mask = shares = iou = dice = None
    overlay, truth_q, error = entry.image_u8, None, ""
    k = len(colors)
    width = outline_width(*entry.image_u8.shape[:2]) if outlines else 0
    if entry.probs is not None:
        two_class = threshold is not None and entry.probs.shape[0] == 2
        mask = mask_from_probs(entry.probs, threshold) if two_class or entry.argmax is None else entry.argmax
        overlay = compose_overlay(entry.image_u8, mask, colors, alphas, outline=width)
        shares = class_shares(mask, k)
    if truth is not None:
        if truth.shape != entry.image_u8.shape[:2]:
            error = (f"The ground truth is {truth.shape[1]}×{truth.shape[0]} but the image is "
                     f"{entry.image_u8.shape[1]}×{entry.image_u8.shape[0]}.")
        else:
            truth_q = u8_to_qimage(compose_overlay(entry.image_u8, truth, colors, alphas, outline=width))
            if mask is not None:
                iou, dice = iou_dice(mask, truth, k)
    return Composed(entry.key, u8_to_qimage(overlay), overlay, mask, shares, truth_q, iou, dice, error)


def swatch(rgb: tuple[int, int, int], size: int = 14) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(QColor(*rgb))
    p = QPainter(pix)
    p.setPen(QColor("#6b717a"))
    p.drawRect(0, 0, size - 1, size - 1)
    p.end()
    return QIcon(pix)


def make_table(columns: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(columns)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    t.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    t.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    for c in range(1, len(columns)):
        t.horizontalHeader().setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
    return t


def fit_rows(t: QTableWidget, rows: int) -> None:
    """Size a table to show ``rows`` rows without a scroll bar (short legends, no empty area)."""
    h = t.horizontalHeader().height() + 2 * t.frameWidth()
    h += sum(t.rowHeight(r) for r in range(t.rowCount())) if t.rowCount() else t.verticalHeader().defaultSectionSize()
    t.setFixedHeight(min(h, t.verticalHeader().defaultSectionSize() * rows + t.horizontalHeader().height() + 2 * t.frameWidth()))


def fmt_score(v: float | None) -> str:
    return "—" if v is None or not np.isfinite(v) else f"{v:.3f}"
