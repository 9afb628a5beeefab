"""The Reconstruct tab: what the model keeps, and reconstruction error as an anomaly detector.

Top: original | reconstruction | absolute-error heatmap (with its colour scale),
and MSE, PSNR, SSIM and the model's compression ratio, for an image of the data
set (the data panel's current spec, at the model's size and channels) or a
dropped file. Bottom: the anomaly view — the reconstruction MSE of every image of
the data split (batched through ``predictor.predict`` on a worker, with
progress) as a histogram with a draggable threshold; images above it are listed,
worst first, and clicking one shows it with its error map above.

Threads: the data set and the scan run on the shared TaskRunner; the image shown
is computed on a :class:`LatestRunner` (browsing quickly only computes the last
image). Results carry a generation number, so a result that arrives after the
model or the data changed is dropped.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from aestudio._fs import unique_path
from aestudio.config import Task
from aestudio.data.levels import FLOAT_BITS, Levels, read_levelled, result_suffix
from aestudio.errors import Cancelled
from aestudio.explore.image_metrics import (
    as_float_hwc,
    colorize,
    compression_ratio,
    display_copy,
    error_map,
    error_scale,
    fmt_metric,
    image_metrics,
    input_mismatch,
    run_model_image,
    scan_errors,
)
from aestudio.gui import engine
from aestudio.gui.engine import DataArrays, LoadedModel
from aestudio.gui.images import array_to_qimage
from aestudio.gui.messages import Level
from aestudio.gui.panels.common import ImagePane
from aestudio.gui.panels.metrics_view import (
    BrowseBar,
    BrowsedImagePanel,
    ColorBar,
    MetricTile,
    Progress,
    ShownImage,
    error_lut,
    save_png,
)
from aestudio.gui.plots import pg
from aestudio.gui.workers import TaskRunner

if TYPE_CHECKING:
    from aestudio.gui.data_panel import DataSummary
    from aestudio.inference.predictor import Predictor

logger = logging.getLogger(__name__)

DATA_LIMIT = 2000  # images of the split browsed and scanned (evenly spaced over it)
LIST_CAP = 300  # rows in the anomaly list (the worst first)
THUMB = 40  # anomaly list icon size, px


# ---------------------------------------------------------------------- worker-side functions


class Reconstruction(ShownImage):
    """What the top row shows for one image (computed off the GUI thread)."""

    original: np.ndarray  # float32 [H, W, C] in [0, 1]
    reconstruction: np.ndarray  # the model's output, same shape
    error: np.ndarray  # float32 [H, W] per-pixel squared error
    heatmap: np.ndarray  # the error map coloured (RGB)
    scale: float  # the error the colour bar's top stands for
    metrics: dict[str, float]  # mse, psnr, ssim
    qimages: list[QImage]  # original, reconstruction, heatmap, ready to paint
    levels: Levels | None  # a dropped file's stored range (16-bit: stretched, saved back in it); None for data set items


def load_arrays(spec: str, model: LoadedModel | None) -> DataArrays:
    """The data split at the model's size and channel count (its own size when fully convolutional)."""
    info = model.info if model is not None else None
    return engine.data_arrays(
        spec, split="val", limit=DATA_LIMIT,
        image_size=getattr(info, "fixed_size", None), channels=getattr(info, "in_channels", None))


def reconstruct(predictor: Predictor, image: np.ndarray, scale: float | None = None,
                progress: Progress | None = None) -> Reconstruction:
    """Everything the top row shows for one image [H, W, C]: arrays, metrics and display QImages."""
    original = as_float_hwc(image)
    recon = run_model_image(predictor, original, progress)
    err = error_map(original, recon)
    top = scale if scale is not None else error_scale(err)
    heat = colorize(err, top, error_lut())
    return {
        "original": original, "reconstruction": recon, "error": err, "heatmap": heat, "scale": top,
        "metrics": image_metrics(original, recon),
        "qimages": [array_to_qimage(display_copy(a)) for a in (original, recon, heat)],
        "levels": None,
    }


# ---------------------------------------------------------------------- the panel


class ReconstructPanel(BrowsedImagePanel):
    title = "Reconstruct"
    purpose = ("See what the model keeps: each image beside its reconstruction and the error map, "
               "the compression ratio, and the images the model reconstructs worst (anomalies).")
    drop_hint = "Drop images (PNG, JPEG, TIFF…), or open a data set in the data panel, to reconstruct them."
    tasks_supported = frozenset({Task.RECONSTRUCT, Task.DENOISE, Task.GENERATE})
    runner_name = "aestudio-reconstruct"
    busy_tiles = "Reconstructing: tile {done} of {total}…"
    busy_text = "Reconstructing…"

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(tasks, parent)
        self.arrays: DataArrays | None = None  # the current spec at the model's size
        self.errors: np.ndarray | None = None  # reconstruction MSE per row of arrays.images
        self.order: np.ndarray | None = None  # rows sorted by error, worst first
        self.current: Reconstruction | None = None  # what the top row shows (for Save)
        self._mismatch: str | None = None  # how the image shown differs from what the model takes (words)
        self.current_path: Path | None = None  # the dropped file shown, if any
        self._gen = 0  # bumped when the model or the data changes
        self._loading_spec: str | None = None
        self._scan_progress: Progress | None = None
        self._deferred_load = False  # the data set changed while the tab was hidden: load it when shown
        self._deferred_show = False  # the same for the image shown
        self._scan_started = 0.0
        self._build()
        self._refresh_state()

    # ================================================================ layout

    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 8)
        root.setSpacing(6)

        bar = self._top_bar(self.show_current)
        self.save_recon_button = QPushButton("Save reconstruction…")
        self.save_recon_button.setToolTip("Write the reconstruction as a PNG (never over the original)")
        self.save_recon_button.clicked.connect(lambda: self.save("reconstruction"))
        self.save_error_button = QPushButton("Save error map…")
        self.save_error_button.setToolTip("Write the coloured error map as a PNG")
        self.save_error_button.clicked.connect(lambda: self.save("heatmap"))
        bar.addWidget(self.save_recon_button)
        bar.addWidget(self.save_error_button)
        root.addLayout(bar)

        self.state_label = QLabel("")
        self.state_label.setObjectName("emptyHint")
        self.state_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.state_label.setWordWrap(True)
        root.addWidget(self.state_label)

        top = QWidget()
        panes = QHBoxLayout(top)
        panes.setContentsMargins(0, 0, 0, 0)
        self.original_pane = ImagePane("Original", self.drop_hint)
        self.recon_pane = ImagePane("Reconstruction", "")
        self.error_pane = ImagePane("Absolute error", "")
        self.colorbar = ColorBar()
        for pane in (self.original_pane, self.recon_pane, self.error_pane):
            panes.addWidget(pane, 1)
        panes.addWidget(self.colorbar)
        tiles = QHBoxLayout()
        tiles.addStretch(1)
        self.tiles = {
            "mse": MetricTile("MSE", "Mean squared error per value, images in [0, 1]"),
            "psnr": MetricTile("PSNR", "Peak signal-to-noise ratio (peak 1): higher is closer"),
            "ssim": MetricTile("SSIM", "Structural similarity (11x11 Gaussian window): 1 is identical"),
            "ratio": MetricTile("Compression", "Input values per code value (the model's bottleneck)"),
        }
        for tile in self.tiles.values():
            tiles.addWidget(tile)
        tiles.addStretch(1)

        viewer = QWidget()
        vlay = QVBoxLayout(viewer)
        vlay.setContentsMargins(0, 0, 0, 0)
        vlay.addWidget(top, 1)
        vlay.addLayout(tiles)

        self.anomaly_box = QGroupBox("Anomalies: reconstruction error over the data set")
        alay = QVBoxLayout(self.anomaly_box)
        row = QHBoxLayout()
        self.scan_button = QPushButton("Rescan")
        self.scan_button.setToolTip("Reconstruct every image of the split again and rebuild the histogram")
        self.scan_button.clicked.connect(self.start_scan)
        self.scan_progress = QProgressBar()
        self.scan_progress.setMaximumWidth(220)
        self.scan_progress.setVisible(False)
        self.scan_label = QLabel("")
        self.scan_label.setObjectName("hint")
        row.addWidget(self.scan_label, 1)
        row.addWidget(self.scan_progress)
        row.addWidget(self.scan_button)
        alay.addLayout(row)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(150)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "reconstruction MSE per image")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.setLabel("left", "images")
        self.plot.showGrid(x=False, y=True, alpha=0.25)
        self.hist_item = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=pg.mkBrush(47, 109, 181, 110),
                                         pen=pg.mkPen("#2f6db5", width=1.5))
        self.plot.addItem(self.hist_item)
        self.threshold_line = pg.InfiniteLine(
            angle=90, movable=True, pen=pg.mkPen("#d1495b", width=2), hoverPen=pg.mkPen("#f0506e", width=3),
            label="threshold {value:.3g}", labelOpts={"position": 0.9, "color": "#d1495b", "movable": True})
        self.threshold_line.setVisible(False)
        self.threshold_line.sigPositionChanged.connect(self._threshold_moved)
        self.plot.addItem(self.threshold_line)
        self.shown_line = pg.InfiniteLine(  # where the image shown above sits in the distribution
            angle=90, movable=False, pen=pg.mkPen("#444a52", width=1.5, style=Qt.PenStyle.DashLine),
            label="shown", labelOpts={"position": 0.5, "color": "#444a52"})  # clear of the threshold label (0.9)
        self.shown_line.setVisible(False)
        self.plot.addItem(self.shown_line)
        split.addWidget(self.plot)
        right = QWidget()
        rlay = QVBoxLayout(right)
        rlay.setContentsMargins(0, 0, 0, 0)
        self.above_label = QLabel("Above the threshold (worst first)")
        self.above_label.setObjectName("hint")
        self.anomaly_list = QListWidget()
        self.anomaly_list.setIconSize(QSize(THUMB, THUMB))
        self.anomaly_list.setUniformItemSizes(True)
        self.anomaly_list.currentRowChanged.connect(self._anomaly_picked)
        self.anomaly_list.itemClicked.connect(lambda it: self._anomaly_picked(self.anomaly_list.row(it)))
        rlay.addWidget(self.above_label)
        rlay.addWidget(self.anomaly_list, 1)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.anomaly_stack = QStackedWidget()
        self.anomaly_empty = QLabel("")
        self.anomaly_empty.setObjectName("emptyState")
        self.anomaly_empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.anomaly_empty.setWordWrap(True)
        self.anomaly_stack.addWidget(self.anomaly_empty)
        self.anomaly_stack.addWidget(split)
        alay.addWidget(self.anomaly_stack, 1)

        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(viewer)
        body.addWidget(self.anomaly_box)
        body.setStretchFactor(0, 3)
        body.setStretchFactor(1, 2)
        root.addWidget(body, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._poll_scan)

    # ================================================================ window hooks

    def on_model_changed(self, model: LoadedModel | None) -> None:
        self._reset_data()
        self._mismatch = None
        self._show_ratio()
        if self.data is not None:
            self._load_data()
        self._refresh_state()
        self.show_current()

    def _show_ratio(self) -> None:
        """The model's compression ratio, unless the image shown does not fit the model (then it does not apply)."""
        model = self.model
        ratio = compression_ratio(model.info) if model is not None else None
        if self._mismatch:
            self.tiles["ratio"].set_value("– (resized)")
            self.tiles["ratio"].setToolTip(f"Not for this image ({self._mismatch}): the ratio describes images "
                                           "the size and kind the model was trained on")
            return
        self.tiles["ratio"].setToolTip("Input values per code value: how much the model compresses an image")
        self.tiles["ratio"].set_value(fmt_metric("ratio", ratio) if ratio else "– (no code)" if model else "–")

    def on_data_changed(self, summary: DataSummary | None) -> None:
        self._reset_data()
        if summary is not None:
            self._load_data()
        self._refresh_state()
        self.show_current()

    def on_images(self, paths: list[Path]) -> None:
        self.browse.set_count(BrowseBar.FILES, len(self.images))
        self.browse.set_position(BrowseBar.FILES, len(self.images) - len(paths))  # the first new one
        self._refresh_state()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._deferred_load:
            self._load_data()
        if self._deferred_show:
            self.show_current()

    def shutdown(self) -> None:
        super().shutdown()
        if self._scan_progress is not None:
            self._scan_progress.cancel.set()

    # ================================================================ data set and scan

    def _reset_data(self) -> None:
        self._gen += 1
        if self._scan_progress is not None:
            self._scan_progress.cancel.set()
            self._scan_progress = None
        self._timer.stop()
        self.scan_progress.setVisible(False)
        self.arrays = None
        self.errors = self.order = None
        self._loading_spec = None
        self.browse.set_count(BrowseBar.DATA, 0)
        self.hist_item.setData([], [])
        self.threshold_line.setVisible(False)
        self.shown_line.setVisible(False)
        self.anomaly_list.clear()
        self.anomaly_stack.setCurrentIndex(0)
        self.scan_label.setText("")

    def _load_data(self) -> None:
        spec = getattr(self.data, "spec", None)
        if not spec:
            return
        self._loading_spec = spec
        if not self.isVisible():  # a hidden tab waits: no scan competing with a training run unasked
            self._deferred_load = True
            return
        self._deferred_load = False
        gen, model = self._gen, self.model
        self.scan_label.setText(f"Opening {spec}…")
        self.tasks.submit(load_arrays, spec, model if self._usable(model) else None,
                          on_result=lambda a: self._data_loaded(gen, a),
                          on_error=lambda e, d: self._data_failed(gen, spec, e, d))

    def _data_loaded(self, gen: int, arrays: DataArrays) -> None:
        if gen != self._gen:
            return
        images = getattr(arrays, "images", None)
        if not isinstance(images, np.ndarray) or images.ndim != 4 or len(images) == 0:
            self._data_failed(gen, str(getattr(arrays, "spec", "")), ValueError("no images"), "")
            return
        self.arrays = arrays
        self._loading_spec = None
        self.browse.set_count(BrowseBar.DATA, len(images), f"{arrays.spec} ({arrays.split})")
        if not self.images or self.browse.source() == BrowseBar.DATA:
            self.browse.set_position(BrowseBar.DATA, 0)
        self._refresh_state()
        self.start_scan()

    def _data_failed(self, gen: int, spec: str, exc: BaseException, details: str) -> None:
        if gen != self._gen:
            return
        self._loading_spec = None
        self.scan_label.setText(f"Cannot open {spec}.")
        self.notify.emit(Level.ERROR, f"Reconstruct: cannot open {spec}: {exc}", details)
        self._refresh_state()

    def start_scan(self) -> None:
        """Reconstruct every image of the loaded split in the background and fill the histogram."""
        if self.arrays is None or not self._usable(self.model):
            return
        if self._scan_progress is not None:
            self._scan_progress.cancel.set()
        gen, progress = self._gen, Progress()
        self._scan_progress = progress
        self._scan_started = time.monotonic()
        n = len(self.arrays.images)
        self.scan_label.setText(f"Reconstructing {n} images of {self.arrays.spec} ({self.arrays.split})…")
        self.scan_progress.setRange(0, n)
        self.scan_progress.setValue(0)
        self.scan_progress.setVisible(True)
        self.scan_button.setEnabled(False)
        self.anomaly_empty.setText(f"Reconstructing {n} images…")
        self._timer.start()
        self.tasks.submit(scan_errors, self.model.predictor, self.arrays.images, progress,
                          on_result=lambda e: self._scan_done(gen, progress, e),
                          on_error=lambda e, d: self._scan_failed(gen, progress, e, d))

    def _poll_scan(self) -> None:
        p = self._scan_progress
        if p is None:
            self._timer.stop()
            return
        done, total = p.read()
        if total:
            self.scan_progress.setRange(0, total)
            self.scan_progress.setValue(done)

    def _scan_finished(self, gen: int, progress: Progress) -> bool:
        if gen != self._gen or progress is not self._scan_progress:
            return False
        self._scan_progress = None
        self._timer.stop()
        self.scan_progress.setVisible(False)
        self.scan_button.setEnabled(True)
        return True

    def _scan_failed(self, gen: int, progress: Progress, exc: BaseException, details: str) -> None:
        if not self._scan_finished(gen, progress) or isinstance(exc, Cancelled):
            return
        self.scan_label.setText("The scan failed (see the message).")
        self.anomaly_empty.setText(f"The scan failed: {exc}")
        self.notify.emit(Level.ERROR, f"Reconstruct: the anomaly scan failed: {exc}", details)

    def _scan_done(self, gen: int, progress: Progress, errors: np.ndarray) -> None:
        if not self._scan_finished(gen, progress):
            return
        errors = np.asarray(errors, dtype=np.float64)
        finite = np.isfinite(errors)
        if not finite.any():
            self.scan_label.setText("The model's errors are not finite numbers; nothing to show.")
            return
        errors = np.where(finite, errors, np.nanmax(errors[finite]))
        self.errors = errors
        self.order = np.argsort(-errors, kind="stable")
        counts, edges = np.histogram(errors, bins=int(np.clip(len(errors) // 8, 10, 60)))
        self.hist_item.setData(edges.astype(np.float64), counts.astype(np.float64))
        self.threshold_line.setBounds((float(edges[0]), float(edges[-1])))
        self.plot.setXRange(float(edges[0]), float(edges[-1]), padding=0.02)
        self.plot.setYRange(0, float(counts.max()) * 1.1 + 1, padding=0)
        self.threshold_line.setVisible(True)
        self.anomaly_stack.setCurrentIndex(1)
        took = time.monotonic() - self._scan_started
        self.scan_label.setText(
            f"{len(errors)} images of {self.arrays.spec} ({self.arrays.split}): MSE median "
            f"{np.median(errors):.3g}, worst {errors.max():.3g} ({took:.1f} s). Drag the red line.")
        self.set_threshold(float(np.percentile(errors, 95)))
        if self.browse.source() == BrowseBar.DATA:
            self.show_current()  # its rank and its place on the histogram are known now

    # ================================================================ threshold and list

    def set_threshold(self, value: float) -> None:
        self.threshold_line.setValue(float(value))
        self._threshold_moved()

    @property
    def threshold(self) -> float:
        return float(self.threshold_line.value())

    def above_threshold(self) -> list[int]:
        """Rows of the data arrays whose error is above the threshold, worst first."""
        if self.errors is None or self.order is None:
            return []
        return [int(i) for i in self.order if self.errors[i] > self.threshold]

    def _threshold_moved(self, *_: object) -> None:
        if self.errors is None or self.order is None:
            return
        k = int((self.errors > self.threshold).sum())
        n = len(self.errors)
        self.above_label.setText(f"{k} of {n} images above {self.threshold:.3g} ({100 * k / n:.1f}%), worst first"
                                 + (f"; the first {LIST_CAP} listed" if k > LIST_CAP else ""))
        want = min(k, LIST_CAP)
        lst = self.anomaly_list
        lst.blockSignals(True)
        while lst.count() > want:  # the list is a prefix of the sorted order: trim or extend its end
            lst.takeItem(lst.count() - 1)
        for pos in range(lst.count(), want):
            lst.addItem(self._anomaly_item(int(self.order[pos])))
        lst.blockSignals(False)

    def _anomaly_item(self, row: int) -> QListWidgetItem:
        a = self.arrays
        label = ""
        if a.labels is not None and 0 <= int(a.labels[row]) < len(a.label_names or ()):
            label = f"  ·  label {a.label_names[int(a.labels[row])]}"
        idx = int(a.indices[row]) if a.indices is not None else row
        item = QListWidgetItem(f"#{idx}   MSE {self.errors[row]:.4g}{label}")
        try:
            icon = QPixmap.fromImage(array_to_qimage(a.images[row]).scaled(
                THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))
            item.setIcon(QIcon(icon))
        except ValueError:
            pass
        item.setData(Qt.ItemDataRole.UserRole, row)
        return item

    def _anomaly_picked(self, list_row: int) -> None:
        item = self.anomaly_list.item(list_row) if list_row >= 0 else None
        if item is not None:
            self.browse.set_position(BrowseBar.DATA, int(item.data(Qt.ItemDataRole.UserRole)))

    # ================================================================ the image shown

    def show_current(self) -> None:
        """Compute and show the image the browse bar points at (on the LatestRunner)."""
        if not self.isVisible():
            self._deferred_show = True
            return
        self._deferred_show = False
        src, i = self.browse.source(), self.browse.index()
        image: np.ndarray | None = None  # a data item [C, H, W], or None: read the file at path
        path: Path | None = None
        if src == BrowseBar.DATA and self.arrays is not None and i < len(self.arrays.images):
            image = self.arrays.images[i]
            idx = int(self.arrays.indices[i]) if self.arrays.indices is not None else i
            text = f"{self.arrays.spec} {self.arrays.split} #{idx}"
            if self.errors is not None:
                rank = int(np.where(self.order == i)[0][0]) + 1
                text += f" · error rank {rank}/{len(self.errors)}, 1 = worst"  # the long form was elided at 1366 px
                self.shown_line.label.setFormat("shown")
                self.shown_line.setValue(float(self.errors[i]))
            self.shown_line.setVisible(self.errors is not None)
            self.item_label.setText(text)
        elif src == BrowseBar.FILES and i < len(self.images):
            path = self.images[i]
            self.item_label.setText(str(path))
            self.shown_line.setVisible(False)
        else:
            self._clear_view()
            return
        self.current_path = path
        if not self._usable(self.model):
            self.runner.submit(self._original_only, image, path, on_result=self._show_original,
                               on_error=self._failed)
            return
        predictor, gen = self.model.predictor, self._gen
        key = self.item_label.text()
        progress = self._start_job(key)  # a large image still running for an older pick stops between tiles
        self.runner.submit(self._compute, predictor, image, path, progress,
                           on_result=lambda r: self._show(gen, path, r, key), on_error=self._failed)

    @staticmethod
    def _load(image: np.ndarray | None, path: Path | None) -> np.ndarray:
        return as_float_hwc(engine.read_image(path) if path is not None else image)

    def _compute(self, predictor: Predictor, image: np.ndarray | None, path: Path | None,
                 progress: Progress) -> Reconstruction:
        # A file keeps how it was stretched (engine.read_image's rule), so Save writes a 16-bit input back in its range.
        image, levels = read_levelled(path) if path is not None else (image, None)
        return {**reconstruct(predictor, as_float_hwc(image), progress=progress), "levels": levels}

    def _hide_stale(self) -> None:
        if self.original_pane.array is not None:
            self._shown_key = self._pending_key  # a slow new image: never show the previous one under its name
            for pane in (self.original_pane, self.recon_pane, self.error_pane):
                pane.clear()
            self.colorbar.set_scale(None)
            self.current = None

    def _original_only(self, image: np.ndarray | None, path: Path | None) -> tuple[QImage, np.ndarray]:
        original = self._load(image, path)
        return array_to_qimage(display_copy(original)), original

    def _show_original(self, result: tuple) -> None:
        qimage, original = result
        self.original_pane.set_qimage(qimage, self._size_text(original))
        self.original_pane.array = original
        self.recon_pane.clear()
        self.error_pane.clear()
        self.colorbar.set_scale(None)
        self.current = None
        self._refresh_state()

    def _show(self, gen: int, path: Path | None, r: Reconstruction, key: str = "") -> None:
        if gen != self._gen:
            return
        self._shown_key = key
        self._last_error = ""
        q_orig, q_recon, q_heat = r["qimages"]
        m = r["metrics"]
        self.original_pane.set_qimage(q_orig, self._size_text(r["original"]))
        self.original_pane.array = r["original"]
        self.recon_pane.set_qimage(q_recon, f"PSNR {fmt_metric('psnr', m['psnr'])}")
        self.recon_pane.array = r["reconstruction"]
        self.error_pane.set_qimage(q_heat, f"mean {float(r['error'].mean()):.3g}, max {float(r['error'].max()):.3g}")
        self.error_pane.array = r["heatmap"]
        self.colorbar.set_scale(r["scale"])
        for key in ("mse", "psnr", "ssim"):
            self.tiles[key].set_value(fmt_metric(key, m[key]))
        self.current = {**r, "path": path}
        self._mismatch = input_mismatch(self.model.info, r["original"].shape) if self.model is not None else None
        self._show_ratio()
        if path is not None and self.errors is not None:
            # A dropped image on the data set's error histogram: is it an anomaly for this model?
            self.shown_line.label.setFormat("dropped")
            self.shown_line.setValue(float(m["mse"]))
            self.shown_line.setVisible(True)
        self._refresh_state()

    def _failed(self, exc: BaseException, details: str) -> None:
        if isinstance(exc, Cancelled):
            return
        self.recon_pane.clear()
        self.error_pane.clear()
        self.recon_pane.set_placeholder("The model failed on this image (see the message).")
        self.colorbar.set_scale(None)
        for key in ("mse", "psnr", "ssim"):
            self.tiles[key].set_value("–")
        self.current = None
        self._say_error_once(exc, details)  # browsing through many failing images: say it once
        self._refresh_state()

    def _clear_view(self) -> None:
        self.current = None
        self._mismatch = None
        self._show_ratio()
        self.item_label.setText("")
        for pane in (self.original_pane, self.recon_pane, self.error_pane):
            pane.clear()
        self.colorbar.set_scale(None)
        for key in ("mse", "psnr", "ssim"):
            self.tiles[key].set_value("–")
        self._refresh_state()

    @staticmethod
    def _size_text(image: np.ndarray) -> str:
        h, w, c = image.shape
        return f"{w}×{h}, {'grey' if c == 1 else 'colour'}"

    # ================================================================ saving

    def save(self, what: str, path: Path | None = None) -> Path | None:
        """Write the shown ``"reconstruction"`` or ``"heatmap"`` as a PNG; ask where when ``path`` is None.

        Never overwrites the image it came from; an existing file is replaced only
        after the file dialog asked (a ``path`` given in code never replaces one).
        Returns the written path, or None (refused, cancelled or failed: a message says why).
        """
        if self.current is None:
            self.notify.emit(Level.WARNING, "Nothing to save yet: reconstruct an image first.", "")
            return None
        array = self.current[what]
        overwrite = False
        if path is None:
            path = self._ask_path(what)
            if path is None:
                return None
            overwrite = path.exists()  # the dialog asked before replacing it
        # The reconstruction is an image of the input: a 16-bit input's is written as a 16-bit TIFF in its range.
        # The error map is a picture of the error (a colour table), an 8-bit PNG whatever the input.
        levels = self.current.get("levels") if what == "reconstruction" else None
        return save_png(self, Path(path), array, self.current.get("path"), overwrite=overwrite, levels=levels)

    def _ask_path(self, what: str) -> Path | None:
        source = self.current.get("path") if self.current else None
        stem = source.stem if source is not None else (self.item_label.text().replace(" ", "_").replace("#", "")
                                                        .split("·")[0].strip("_") or "image")
        folder = source.parent if source is not None else Path.home()
        levels = self.current.get("levels") if self.current and what == "reconstruction" else None
        ext = result_suffix(levels)
        suggestion = unique_path(folder / f"{stem}_{'recon' if what == 'reconstruction' else 'error'}{ext}")
        deep = "float32" if levels is not None and levels.bits == FLOAT_BITS else "16-bit"
        kind = f"{deep} TIFF image (*.tif *.tiff)" if ext == ".tif" else "PNG image (*.png)"
        name, _ = QFileDialog.getSaveFileName(self, f"Save the {'reconstruction' if what == 'reconstruction' else 'error map'}",
                                              str(suggestion), kind)
        if not name:
            return None
        return Path(name)  # (save_png gives it the right suffix)

    # ================================================================ state

    def _usable(self, model: LoadedModel | None) -> bool:
        return model is not None and model.info.task is not Task.SEGMENT

    def _refresh_state(self) -> None:
        has_model = self._usable(self.model)
        has_images = bool(self.images) or self.arrays is not None
        if self.model is None:
            text = ("No model loaded: train one on the Train tab, or drop a run or bundle folder. "
                    + ("" if has_images else "Then drop images, or open a data set in the data panel."))
        elif not has_model:
            text = f"{self.model.name} is a segmentation model; load an autoencoder to reconstruct."
        elif self._loading_spec:
            text = f"Opening {self._loading_spec}…"
        elif not has_images:
            text = self.drop_hint
        elif self._mismatch and self.current is not None:
            text = (f"⚠ This image does not fit {self.model.name} ({self._mismatch}): the reconstruction "
                    "says little about it, and the compression ratio does not apply. Drop images like the "
                    "model's training data, or train a model on yours.")
        else:
            text = ""
        self.state_label.setText(text)
        self.state_label.setVisible(bool(text))
        self.original_pane.set_placeholder(self.drop_hint if not has_images else "")
        self.recon_pane.set_placeholder("" if has_model else "Load a model to see its reconstruction.")
        can_save = self.current is not None
        self.save_recon_button.setEnabled(can_save)
        self.save_error_button.setEnabled(can_save)
        self.anomaly_box.setEnabled(has_model and self.arrays is not None)
        if self.errors is None:
            self.anomaly_stack.setCurrentIndex(0)
            self.anomaly_empty.setText(
                "Reconstructing the data set…" if self._scan_progress is not None else
                "Opening the data set…" if self._loading_spec else
                "The histogram of reconstruction errors over the data set appears here; the images the model "
                "reconstructs worst (the anomalies) are listed beside it.")
        if self.arrays is None and not self._loading_spec:
            self.scan_label.setText("Open a data set in the data panel to rank its images by reconstruction error."
                                    if has_model else "Load a model and open a data set to find anomalies.")


__all__ = ["ReconstructPanel", "reconstruct", "scan_errors"]
