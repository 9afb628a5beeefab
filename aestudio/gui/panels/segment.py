"""The Segment tab: class masks drawn over images, with a legend, live IoU/Dice, export and folder runs.

Work is split so the GUI thread never waits on a model:

* inference (read the image, ``predictor.segment``) runs on one :class:`LatestRunner`;
  its class probabilities are cached per image (a few images, least recently used
  dropped first);
* composing what is shown (threshold -> mask, overlay, pixel shares, IoU/Dice
  against the ground truth, the QImage) runs on a second :class:`LatestRunner`
  from the cached probabilities, so opacity, visibility and threshold changes
  cost no inference and a dragged slider never queues stale work;
* exports go to the shared task pool; a whole folder runs on its own thread
  (:class:`~aestudio.gui.panels.folder_job.FolderJob`).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QSplitter,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from aestudio.config import Task
from aestudio.explore.folder_job import FolderReport
from aestudio.explore.segmentation import MASK_SUFFIX, OVERLAY_SUFFIX, FolderSettings, segment_work
from aestudio.gui import engine
from aestudio.gui.engine import DataArrays, LoadedModel
from aestudio.gui.messages import Level
from aestudio.gui.panels.base import ExplorePanel
from aestudio.gui.panels.common import ImagePane, LatestRunner
from aestudio.gui.panels.folder_job import FolderJob
from aestudio.gui.panels.segment_view import (
    Composed,
    DropPredictors,
    Inferred,
    SegItem,
    compose_item,
    fit_rows,
    fmt_score,
    infer_item,
    make_table,
    pair_mask,
    swatch,
)
from aestudio.gui.workers import TaskRunner, describe_error

if TYPE_CHECKING:
    from aestudio.gui.data_panel import DataSummary


CACHE_ITEMS = 8  # images whose probabilities stay cached (1024² x 4 classes = 16 MiB each)...
CACHE_BYTES = 400 * 2**20  # ...within this much memory (one 4096² image alone takes ~300 MiB)
DATA_LIMIT = 200  # data set items loaded for browsing
BACKGROUND_NAMES = {"background", "bg", "void", "none"}  # hidden by default: they would tint everything
MASK_FILTER = "Index masks (*.png *.tif *.tiff *.bmp);;All files (*)"

EMPTY_NO_MODEL = ("Load a U-Net (segment) model (train one on shapes-seg, or pick one under Models), "
                  "then drop images here. Large images are tiled.")
NO_SEG_DATA = "Pick segmentation data (shapes-seg, pairs:…) to browse it with its masks."
EMPTY_NO_IMAGES = "Drop images here, open some, or browse the data set's images on the left."


class SegmentPanel(ExplorePanel):
    title = "Segment"
    purpose = "Pixel-wise class masks over your images, with a legend, IoU/Dice against a ground truth, and export."
    drop_hint = "Load a U-Net (segment) model, then drop images to segment; large images are tiled."
    tasks_supported = frozenset({Task.SEGMENT})

    shown = Signal()  # a composed result reached the screen (tests, bench)
    saved = Signal(object)  # Path of an exported file
    folder_finished = Signal(object)  # FolderReport

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(tasks, parent)
        self.items: list[SegItem] = []
        self.current: SegItem | None = None
        self._next_key = 0
        self._model_gen = 0
        self._predictors: DropPredictors | None = None
        self._cache: OrderedDict[int, Inferred] = OrderedDict()
        self._class_names: list[str] = []
        self._colors = np.zeros((0, 3), np.uint8)
        self._visible: list[bool] = []
        self._data_arrays: DataArrays | None = None
        self._data_items: dict[int, SegItem] = {}
        # what is on screen (tests and export read these)
        self.mask: np.ndarray | None = None
        self.overlay: np.ndarray | None = None
        self.shares: np.ndarray | None = None
        self.iou: np.ndarray | None = None
        self.dice: np.ndarray | None = None
        self._infer_runner = LatestRunner(self, name="aestudio-segment")
        self._compose_runner = LatestRunner(self, name="aestudio-segment-view")
        self.folder_job = FolderJob(self)
        self.folder_job.progress.connect(self._folder_progress)
        self.folder_job.finished.connect(self._folder_finished)
        # Stop the threads with the widget: they must not deliver to a deleted panel.
        runners, job = (self._infer_runner, self._compose_runner), self.folder_job
        self.destroyed.connect(lambda *_: (job.cancel(), [r.shutdown() for r in runners]))
        self._build()
        self._setup_classes(([], []))
        self._refresh_state()

    # ================================================================ layout

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.setSpacing(4)
        self.banner = QLabel()
        self.banner.setObjectName("hint")
        self.banner.setWordWrap(True)
        outer.addWidget(self.banner)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        outer.addWidget(split, 1)
        split.addWidget(self._build_left())
        centre = QWidget()
        views = QHBoxLayout(centre)
        views.setContentsMargins(0, 0, 0, 0)
        self.view = ImagePane("Prediction", EMPTY_NO_MODEL)
        self.truth_view = ImagePane("Ground truth")
        self.truth_view.hide()
        views.addWidget(self.view, 1)
        views.addWidget(self.truth_view, 1)
        split.addWidget(centre)
        # The controls column scrolls on its own: with a mask loaded (the score table) it is
        # taller than a 1366x768 screen leaves, and the whole tab scrolled instead, cutting
        # the data-set arrows at the bottom of the left column.
        right = QScrollArea()
        right.setWidgetResizable(True)
        right.setFrameShape(QFrame.Shape.NoFrame)
        right.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        right.setWidget(self._build_right())
        right.setMinimumWidth(right.widget().minimumSizeHint().width() + right.verticalScrollBar().sizeHint().width())
        self.controls_scroll = right
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setStretchFactor(2, 0)
        split.setSizes([190, 780, 300])

    def _build_left(self) -> QWidget:
        col = QWidget()
        lay = QVBoxLayout(col)
        lay.setContentsMargins(0, 0, 0, 0)
        box = QGroupBox("Images")
        v = QVBoxLayout(box)
        self.file_list = QListWidget()
        self.file_list.currentRowChanged.connect(self._file_selected)
        self.open_button = QPushButton("Open images…")
        self.open_button.clicked.connect(self._open_dialog)
        v.addWidget(self.file_list, 1)
        v.addWidget(self.open_button)
        lay.addWidget(box, 1)
        data = QGroupBox("Data set")
        g = QGridLayout(data)
        self.data_label = QLabel(NO_SEG_DATA)
        self.data_label.setObjectName("hint")
        self.data_label.setWordWrap(True)
        self.prev_button = QPushButton("◀")
        self.next_button = QPushButton("▶")
        self.data_index = QSpinBox()
        self.data_index.setKeyboardTracking(False)
        self.prev_button.clicked.connect(lambda: self.data_index.setValue(self.data_index.value() - 1))
        self.next_button.clicked.connect(lambda: self.data_index.setValue(self.data_index.value() + 1))
        self.data_index.valueChanged.connect(self.show_data_item)
        g.addWidget(self.data_label, 0, 0, 1, 3)
        g.addWidget(self.prev_button, 1, 0)
        g.addWidget(self.data_index, 1, 1)
        g.addWidget(self.next_button, 1, 2)
        lay.addWidget(data)
        self._set_data_enabled(False)
        col.setMinimumWidth(170)
        return col

    def _build_right(self) -> QWidget:
        col = QWidget()
        lay = QVBoxLayout(col)
        lay.setContentsMargins(0, 0, 0, 0)
        display = QGroupBox("Display")
        g = QGridLayout(display)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity_label = QLabel()
        self.opacity.valueChanged.connect(self._display_changed)
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(1, 99)
        self.threshold.setValue(50)
        self.threshold_label = QLabel()
        self.threshold.valueChanged.connect(self._display_changed)
        self.threshold_title = QLabel("Threshold")
        self.threshold_title.setToolTip("Two-class models: a pixel is foreground when its probability reaches this value.")
        g.addWidget(QLabel("Opacity"), 0, 0)
        g.addWidget(self.opacity, 0, 1)
        g.addWidget(self.opacity_label, 0, 2)
        g.addWidget(self.threshold_title, 1, 0)
        g.addWidget(self.threshold, 1, 1)
        g.addWidget(self.threshold_label, 1, 2)
        self.outlines = QCheckBox("Outline shapes")
        self.outlines.setToolTip("Draw class boundaries more opaque than the fill")
        self.outlines.setChecked(True)
        self.outlines.toggled.connect(self._display_changed)
        g.addWidget(self.outlines, 2, 0, 1, 3)
        lay.addWidget(display)

        classes = QGroupBox("Classes")
        v = QVBoxLayout(classes)
        self.legend = make_table(["Class", "Pixels"])
        self.legend.itemChanged.connect(self._legend_changed)
        self.legend_hint = QLabel("The classes of the model appear here.")
        self.legend_hint.setObjectName("hint")
        v.addWidget(self.legend)
        v.addWidget(self.legend_hint)
        lay.addWidget(classes)

        truth = QGroupBox("Against ground truth")
        v = QVBoxLayout(truth)
        row = QHBoxLayout()
        self.truth_button = QPushButton("Load mask…")
        self.truth_button.setToolTip("An index mask (P or L mode PNG) of the same size as the image")
        self.truth_button.clicked.connect(self._truth_dialog)
        self.clear_truth_button = QPushButton("Clear")
        self.clear_truth_button.clicked.connect(self.clear_truth)
        row.addWidget(self.truth_button)
        row.addWidget(self.clear_truth_button)
        v.addLayout(row)
        self.truth_label = QLabel("No ground truth for this image.")
        self.truth_label.setObjectName("hint")
        self.truth_label.setWordWrap(True)
        v.addWidget(self.truth_label)
        self.scores = make_table(["Class", "IoU", "Dice"])
        v.addWidget(self.scores)
        lay.addWidget(truth)

        out = QGroupBox("Export")
        g = QGridLayout(out)
        self.save_mask_button = QPushButton("Save mask…")
        self.save_mask_button.setToolTip("The class index of every pixel as a palette PNG (read_mask reads it back)")
        self.save_mask_button.clicked.connect(lambda: self._save_dialog("mask"))
        self.save_overlay_button = QPushButton("Save overlay…")
        self.save_overlay_button.clicked.connect(lambda: self._save_dialog("overlay"))
        self.folder_button = QPushButton("Segment a folder…")
        self.folder_button.setToolTip(f"Writes <name>{MASK_SUFFIX} (and <name>{OVERLAY_SUFFIX}) for every image")
        self.folder_button.clicked.connect(self._folder_dialog)
        self.folder_overlays = QCheckBox("Write overlays too")
        self.folder_overlays.setChecked(True)
        self.folder_progress = QProgressBar()
        self.folder_progress.setFormat("%v / %m")
        self.folder_cancel = QPushButton("Cancel")
        self.folder_cancel.clicked.connect(self.folder_job.cancel)
        self.folder_status = QLabel("")
        self.folder_status.setObjectName("hint")
        self.folder_status.setWordWrap(True)
        g.addWidget(self.save_mask_button, 0, 0)
        g.addWidget(self.save_overlay_button, 0, 1)
        g.addWidget(self.folder_button, 1, 0, 1, 2)
        g.addWidget(self.folder_overlays, 2, 0, 1, 2)
        g.addWidget(self.folder_progress, 3, 0)
        g.addWidget(self.folder_cancel, 3, 1)
        g.addWidget(self.folder_status, 4, 0, 1, 2)
        self.folder_progress.hide()
        self.folder_cancel.hide()
        self.clear_truth_button.setEnabled(False)
        lay.addWidget(out)
        lay.addStretch(1)
        col.setMinimumWidth(290)
        return col

    # ================================================================ window hooks

    def on_model_changed(self, model: LoadedModel | None) -> None:
        self._model_gen += 1
        self._cache.clear()
        self._predictors = DropPredictors(model) if self._model_ok() else None
        if self._predictors is not None and self.current is None:
            self._infer_runner.submit(self._predictors.warm, on_result=lambda _: None,
                                      on_error=lambda exc, details: None)  # the first drop reports errors
        self._setup_classes(self._model_classes(model))
        self._refresh_state()
        if self.current is not None:
            self._show(self.current)

    def on_images(self, paths: list[Path]) -> None:
        first = None
        for p in paths:
            item = self._new_item(Path(p).name, path=Path(p))
            self.items.append(item)
            li = QListWidgetItem(item.name)
            li.setToolTip(str(p))
            li.setData(Qt.ItemDataRole.UserRole, item.key)
            self.file_list.addItem(li)
            first = first or item
            spec = getattr(self.data, "spec", "") or ""
            if spec.startswith("pairs:"):
                self.tasks.submit(pair_mask, spec, item.path,
                                  on_result=lambda found, it=item: found and self._set_truth(it, found[1], found[0].name),
                                  on_error=lambda exc, details: None)  # no usable mask: the image is shown without one
        if first is not None:
            self.file_list.setCurrentRow(self.items.index(first))  # -> _file_selected -> _show

    def on_data_changed(self, summary: DataSummary | None) -> None:
        self._data_arrays = None
        self._data_items.clear()
        kind = getattr(summary, "kind", "") if summary is not None else ""
        if summary is None or str(kind) != "segmentation":
            self.data_label.setText(NO_SEG_DATA)
            self._set_data_enabled(False)
            return
        spec = summary.spec
        self.data_label.setText(f"Loading {spec}…")
        self.tasks.submit(lambda: engine.data_arrays(spec, split="val", limit=DATA_LIMIT),
                          on_result=lambda arrays, s=spec: self._data_loaded(s, arrays),
                          on_error=lambda exc, details: self._data_label_error(spec, exc, details))

    # ================================================================ public actions (buttons call these)

    def show_data_item(self, index: int) -> None:
        arrays = self._data_arrays
        if arrays is None or not 0 <= index < len(arrays.images):
            return
        item = self._data_items.get(index)
        if item is None:
            image = np.ascontiguousarray(np.asarray(arrays.images[index], np.float32).transpose(1, 2, 0))
            truth = None if arrays.masks is None else np.asarray(arrays.masks[index], np.int64)
            item = self._new_item(f"{arrays.spec} {arrays.split} #{index}", image=image, truth=truth)
            item.truth_name = "data set mask" if truth is not None else ""
            self._data_items[index] = item
        self.file_list.blockSignals(True)
        self.file_list.setCurrentRow(-1)
        self.file_list.blockSignals(False)
        self._show(item)

    def load_truth(self, path: Path) -> None:
        """Read an index mask as the current image's ground truth (off the GUI thread)."""
        item = self.current
        if item is None:
            self.notify.emit(Level.WARNING, "Show an image first, then load its ground-truth mask.", "")
            return
        from aestudio.data.io import read_mask

        self.tasks.submit(read_mask, Path(path), on_result=lambda mask: self._set_truth(item, mask, Path(path).name),
                          on_error=lambda exc, details: self.notify.emit(Level.ERROR, describe_error(exc, Path(path)), details))

    def _set_truth(self, item: SegItem, mask: np.ndarray, name: str) -> None:
        item.truth, item.truth_name = np.asarray(mask, np.int64), name
        if item is self.current:
            self._recompose()

    def clear_truth(self) -> None:
        if self.current is not None:
            self.current.truth, self.current.truth_name = None, ""
            self._recompose()

    def export_mask(self, path: Path, *, overwrite: bool = False) -> None:
        self._export(Path(path), "mask", overwrite)

    def export_overlay(self, path: Path, *, overwrite: bool = False) -> None:
        self._export(Path(path), "overlay", overwrite)

    def segment_folder(self, in_dir: Path, out_dir: Path) -> bool:
        """Start segmenting every image under ``in_dir`` into ``out_dir``; False when refused."""
        in_dir, out_dir = Path(in_dir), Path(out_dir)
        refuse = None
        if not self._model_ok():
            refuse = "Load a U-Net (segment) model before segmenting a folder."
        elif self.folder_job.running:
            refuse = "A folder is already being segmented; cancel it first."
        elif in_dir.resolve() == out_dir.resolve():
            refuse = "Pick an output folder other than the input folder (inputs are never overwritten)."
        if refuse:
            self.notify.emit(Level.WARNING, refuse, "")
            return False
        settings = FolderSettings(self._colors.copy(), self._alphas(), self._threshold(),
                                  overlays=self.folder_overlays.isChecked(), outlines=self.outlines.isChecked())
        self.folder_job.start(self.model.predictor, in_dir, out_dir, partial(segment_work, settings=settings))
        self.folder_progress.setRange(0, 0)
        self.folder_progress.show()
        self.folder_cancel.show()
        self.folder_cancel.setEnabled(True)
        self.folder_button.setEnabled(False)
        self.folder_status.setText(f"Segmenting {in_dir.name}…")
        return True

    def shutdown(self) -> None:
        self.folder_job.cancel()
        self._infer_runner.shutdown()
        self._compose_runner.shutdown()

    # ================================================================ showing an image

    def _new_item(self, name: str, **kw: Any) -> SegItem:
        self._next_key += 1
        return SegItem(self._next_key, name, **kw)

    def _file_selected(self, row: int) -> None:
        if 0 <= row < len(self.items):
            self._show(self.items[row])

    def _show(self, item: SegItem) -> None:
        self.current = item
        self._refresh_state()
        entry = self._cache.get(item.key)
        if entry is not None:
            self._cache.move_to_end(item.key)
            self._recompose()
            return
        self.view.caption.setText(f"{item.name}: segmenting…" if self._model_ok() else f"{item.name}: loading…")
        gen = self._model_gen
        self._infer_runner.submit(infer_item, self._predictors, item,
                                  on_result=lambda r, g=gen: self._inferred(r, g),
                                  on_error=lambda exc, details, it=item: self._infer_failed(it, exc, details))

    def _inferred(self, result: Inferred, gen: int) -> None:
        if gen != self._model_gen:
            return  # made by a model that is gone
        if result.probs is not None and result.probs.shape[0] != len(self._colors):
            self._setup_classes(self._model_classes(self.model, result.probs.shape[0]))
        self._cache[result.key] = result
        def nbytes(e: Inferred) -> int:
            return e.image_u8.nbytes + (0 if e.probs is None else e.probs.nbytes)

        while len(self._cache) > 1 and (len(self._cache) > CACHE_ITEMS
                                        or sum(nbytes(e) for e in self._cache.values()) > CACHE_BYTES):
            self._cache.popitem(last=False)  # least recently shown first; the newest always stays
        if self.current is not None and self.current.key == result.key:
            self._recompose()

    def _infer_failed(self, item: SegItem, exc: BaseException, details: str) -> None:
        text = describe_error(exc, item.path)
        if item is self.current:
            self.view.clear()
            self.view.set_placeholder(f"Could not segment {item.name}:\n{text}")
        self.notify.emit(Level.ERROR, f"Segment: {text}", details)

    def _recompose(self) -> None:
        item = self.current
        entry = self._cache.get(item.key) if item is not None else None
        if entry is None:
            return
        self._compose_runner.submit(compose_item, entry, item.truth, self._colors.copy(), self._alphas(),
                                    self._threshold(), self.outlines.isChecked(), on_result=self._composed,
                                    on_error=lambda exc, details: self.notify.emit(Level.ERROR, f"Segment: {exc}", details))

    def _composed(self, c: Composed) -> None:
        item = self.current
        if item is None or item.key != c.key:
            return
        entry = self._cache.get(c.key)
        self.mask, self.overlay, self.shares, self.iou, self.dice = c.mask, c.overlay, c.shares, c.iou, c.dice
        h, w = c.overlay.shape[:2]
        parts = [item.name, f"{w}×{h}"]
        if entry is not None and entry.probs is not None:
            parts.append(f"{entry.seconds:.2f} s")
        elif not self._model_ok():
            parts.append("no segmentation model")
        self.view.set_qimage(c.qimage, " · ".join(parts))
        self.view.title.setText("Prediction" if c.mask is not None else "Image")
        self._update_shares(c.shares)
        self._update_truth(item, c)
        self.shown.emit()

    # ================================================================ classes, legend, scores

    def _model_ok(self) -> bool:
        return self.model is not None and self.supports(self.model)

    def _model_classes(self, model: LoadedModel | None, k: int | None = None) -> tuple[list[str], list]:
        info = getattr(model, "info", None) if model is not None and self.supports(model) else None
        names = list(getattr(info, "class_names", None) or [])
        colors = list(getattr(info, "class_colors", None) or [])
        data = self._data_arrays
        k = k or len(names) or 0
        if not names and data is not None and len(data.class_names) == k:
            names, colors = list(data.class_names), list(data.class_colors)
        names = (names + [f"class {i}" for i in range(len(names), k)])[:k]
        if len(colors) < k:
            from aestudio.palette import default_palette

            colors = (colors + default_palette(k)[len(colors):])[:k]
        return names, colors[:k]

    def _setup_classes(self, classes: tuple[list[str], list]) -> None:
        names, colors = classes
        self._class_names = names
        self._colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
        self._visible = [n.lower() not in BACKGROUND_NAMES for n in names]
        self.legend.blockSignals(True)
        self.legend.setRowCount(len(names))
        for i, (name, rgb) in enumerate(zip(names, self._colors, strict=True)):
            it = QTableWidgetItem(swatch(tuple(int(v) for v in rgb)), name)
            it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
            it.setCheckState(Qt.CheckState.Checked if self._visible[i] else Qt.CheckState.Unchecked)
            it.setToolTip(f"Show or hide {name} in the overlay")
            self.legend.setItem(i, 0, it)
            share = QTableWidgetItem("—")
            share.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.legend.setItem(i, 1, share)
        self.legend.blockSignals(False)
        fit_rows(self.legend, 8)
        self.legend.setVisible(bool(names))
        self.legend_hint.setVisible(not names)
        self.scores.setRowCount(0)
        self.scores.hide()
        self.threshold_title.setVisible(len(names) == 2)
        self.threshold.setVisible(len(names) == 2)
        self.threshold_label.setVisible(len(names) == 2)
        self._update_labels()

    def set_class_visible(self, index: int, visible: bool) -> None:
        it = self.legend.item(index, 0)
        if it is not None:
            it.setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)

    def _legend_changed(self, it: QTableWidgetItem) -> None:
        if it.column() == 0 and it.row() < len(self._visible):
            self._visible[it.row()] = it.checkState() == Qt.CheckState.Checked
            self._recompose()

    def _alphas(self) -> np.ndarray:
        return np.asarray(self._visible, np.float32) * (self.opacity.value() / 100.0)

    def _threshold(self) -> float | None:
        return self.threshold.value() / 100.0 if len(self._colors) == 2 else None

    def _display_changed(self) -> None:
        self._update_labels()
        self._recompose()

    def _update_labels(self) -> None:
        self.opacity_label.setText(f"{self.opacity.value()}%")
        self.threshold_label.setText(f"{self.threshold.value() / 100:.2f}")

    def _update_shares(self, shares: np.ndarray | None) -> None:
        self.legend.blockSignals(True)
        for i in range(self.legend.rowCount()):
            it = self.legend.item(i, 1)
            if it is not None:
                it.setText("—" if shares is None or i >= len(shares) else f"{100 * shares[i]:.1f}%")
        self.legend.blockSignals(False)

    def _update_truth(self, item: SegItem, c: Composed) -> None:
        has = item.truth is not None and c.truth_qimage is not None
        self.truth_view.setVisible(has)
        if has:
            self.truth_view.set_qimage(c.truth_qimage, item.truth_name)
        self.clear_truth_button.setEnabled(item.truth is not None)
        if c.truth_error:
            self.truth_label.setText(c.truth_error)
        elif item.truth is None:
            self.truth_label.setText("No ground truth for this image: load its mask to score it.")
        elif c.iou is None:
            self.truth_label.setText(f"Ground truth: {item.truth_name}")
        else:
            miou = np.nanmean(c.iou) if np.isfinite(c.iou).any() else float("nan")
            self.truth_label.setText(f"{item.truth_name} · mean IoU {fmt_score(miou)}")
        rows = [] if c.iou is None else list(range(len(self._class_names)))
        self.scores.setRowCount(len(rows))
        self.scores.setVisible(bool(rows))
        for r in rows:
            self.scores.setItem(r, 0, QTableWidgetItem(swatch(tuple(int(v) for v in self._colors[r])), self._class_names[r]))
            for col, v in ((1, c.iou[r]), (2, c.dice[r])):
                cell = QTableWidgetItem(fmt_score(v))
                cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.scores.setItem(r, col, cell)
        fit_rows(self.scores, 8)

    # ================================================================ state and data set

    def _refresh_state(self) -> None:
        model = self.model
        if model is None:
            self.banner.setText("No model loaded.")
            placeholder = EMPTY_NO_MODEL
        elif not self._model_ok():
            task = Task(model.info.task).value
            text = (f"{model.name} is a {task} model, not a segmentation model: this tab needs a "
                    "U-Net (segment) model. Load one under Models, or train a unet on shapes-seg.")
            self.banner.setText(f"<span style='color:#b04a4a'>{text}</span>")
            placeholder = text
        else:
            k = len(self._class_names)
            self.banner.setText(f"<b>{model.name}</b> · {k} classes · {model.runtime}")
            placeholder = EMPTY_NO_IMAGES
        if self.current is None:
            self.view.set_placeholder(placeholder)
        has_view = self.current is not None
        for b in (self.truth_button, self.save_mask_button, self.save_overlay_button):
            b.setEnabled(has_view)
        self.save_mask_button.setEnabled(has_view and self._model_ok())
        self.folder_button.setEnabled(self._model_ok() and not self.folder_job.running)

    def _set_data_enabled(self, on: bool) -> None:
        for w in (self.prev_button, self.next_button, self.data_index):
            w.setEnabled(on)

    def _data_loaded(self, spec: str, arrays: DataArrays) -> None:
        if self.data is None or getattr(self.data, "spec", None) != spec:
            return  # the data changed meanwhile
        self._data_arrays = arrays
        n = len(arrays.images)
        self.data_label.setText(f"{spec}: {n} {arrays.split} images with masks")
        self.data_index.blockSignals(True)
        self.data_index.setRange(0, n - 1)
        self.data_index.setValue(0)
        self.data_index.blockSignals(False)
        self._set_data_enabled(n > 0)
        if self.current is None and n:
            self.show_data_item(0)

    def _data_label_error(self, spec: str, exc: BaseException, details: str) -> None:
        self.data_label.setText(f"Could not load {spec}: {exc}")
        self.notify.emit(Level.WARNING, f"Segment: could not load {spec} for browsing: {exc}", details)

    # ================================================================ export and dialogs

    def _export(self, path: Path, what: str, overwrite: bool) -> None:
        item = self.current
        array = self.mask if what == "mask" else self.overlay
        if item is None or array is None:
            self.notify.emit(Level.WARNING, f"Nothing to save yet: no {what} is shown.", "")
            return
        if item.path is not None and path.resolve() == item.path.resolve():
            self.notify.emit(Level.ERROR, f"Refused to overwrite the input image {item.path.name}; pick another name.", "")
            return
        from aestudio.data import io as dio

        palette = [tuple(int(v) for v in c) for c in self._colors]
        if what == "mask":
            fn, args = dio.write_mask, (path, array.copy(), palette)
        else:
            fn, args = dio.write_image, (path, array.astype(np.float32) / 255.0)

        def write() -> Path:
            return Path(fn(*args, overwrite=overwrite))

        def done(p: Path) -> None:
            self.notify.emit(Level.INFO, f"Saved the {what} to {p}.", "")
            self.saved.emit(p)

        self.tasks.submit(write, on_result=done,
                          on_error=lambda exc, details: self.notify.emit(Level.ERROR, f"Could not save the {what}: {exc}", details))

    def _open_dialog(self) -> None:
        suffixes = " ".join(f"*{s}" for s in sorted(engine.image_suffixes()))
        files, _ = QFileDialog.getOpenFileNames(self, "Open images to segment", "", f"Images ({suffixes})")
        if files:
            self.add_images([Path(f) for f in files])

    def _truth_dialog(self) -> None:
        start = str(self.current.path.parent) if self.current is not None and self.current.path else ""
        file, _ = QFileDialog.getOpenFileName(self, "Load a ground-truth mask", start, MASK_FILTER)
        if file:
            self.load_truth(Path(file))

    def _save_dialog(self, what: str) -> None:
        item = self.current
        if item is None:
            return
        stem = item.path.stem if item.path is not None else item.name.replace(" ", "_").replace("#", "")
        folder = item.path.parent if item.path is not None else Path.home()
        suffix = MASK_SUFFIX if what == "mask" else OVERLAY_SUFFIX
        file, _ = QFileDialog.getSaveFileName(self, f"Save the {what}", str(folder / f"{stem}{suffix}"), "PNG (*.png)")
        if file:
            path = Path(file) if file.lower().endswith(".png") else Path(file + ".png")
            self._export(path, what, overwrite=True)  # the dialog asked before replacing a file

    def _folder_dialog(self) -> None:
        in_dir = QFileDialog.getExistingDirectory(self, "Folder of images to segment")
        if not in_dir:
            return
        out_dir = QFileDialog.getExistingDirectory(self, "Folder to write the masks into", str(Path(in_dir).parent))
        if out_dir:
            self.segment_folder(Path(in_dir), Path(out_dir))

    def _folder_progress(self, done: int, total: int, name: str) -> None:
        self.folder_progress.setRange(0, max(total, 1))
        self.folder_progress.setValue(done)
        if name:
            self.folder_status.setText(f"{done} / {total}: {name}")

    def _folder_finished(self, report: FolderReport) -> None:
        self.folder_cancel.hide()
        self.folder_progress.hide()
        self.folder_button.setEnabled(self._model_ok())
        self.folder_status.setText(report.summary())
        level = Level.ERROR if report.error else Level.WARNING if report.bad else Level.INFO
        self.notify.emit(level, report.summary(), report.details())
        self.folder_finished.emit(report)
