"""Pieces shared by the Reconstruct and Noise lab panels: a colour bar, metric tiles, the browse bar.

The numbers they show come from :mod:`aestudio.explore.image_metrics` (Qt-free).
:func:`error_lut` is the error maps' colour table (pyqtgraph's colormaps).

The widgets: :class:`ColorBar` (the scale of an error map), :class:`MetricTile`
(a big number with a name under it), :class:`BrowseBar` (data set or dropped
files, previous/next). :class:`Progress` is a thread-safe done/total pair a
worker writes and a timer in the GUI thread reads.

:class:`BrowsedImagePanel` is the base of both panels: their top bar (browse bar,
the image's name, a busy label and bar with tile progress) and their image jobs
on a :class:`LatestRunner`, whose errors are said once until one succeeds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypedDict

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeySequence, QLinearGradient, QPainter, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from aestudio.errors import Cancelled
from aestudio.explore.image_metrics import as_float_hwc
from aestudio.gui.elided_label import ElidedLabel
from aestudio.gui.messages import Level
from aestudio.gui.panels.base import ExplorePanel
from aestudio.gui.panels.common import LatestRunner
from aestudio.gui.workers import TaskRunner

if TYPE_CHECKING:
    from aestudio.data.levels import Levels

ERROR_CMAP = "inferno"  # perceptually uniform, dark = no error, bright = large error
SHOW_BUSY_AFTER_S = 0.3  # an image job running longer than this shows the busy label and bar


# ------------------------------------------------------------------ colours and progress (worker threads)


def _lut(name: str = ERROR_CMAP, n: int = 256) -> np.ndarray:
    """float32 [n, 3] colour table in [0, 1] (pyqtgraph's bundled maps; grey when missing)."""
    try:
        from aestudio.gui.plots import pg

        table = pg.colormap.get(name).getLookupTable(0.0, 1.0, n, alpha=False)
        return np.asarray(table, dtype=np.float32)[:, :3] / 255.0
    except Exception:  # noqa: BLE001 - a colormap missing from this pyqtgraph: grey is still readable
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        return np.stack([ramp] * 3, axis=1)


_LUT_CACHE: dict[str, np.ndarray] = {}


def error_lut(name: str = ERROR_CMAP) -> np.ndarray:
    """The error maps' colour table (256 colours, cached), for :func:`aestudio.explore.image_metrics.colorize`."""
    lut = _LUT_CACHE.get(name)
    if lut is None:
        lut = _LUT_CACHE[name] = _lut(name)
    return lut


class Progress:
    """``done`` / ``total`` written by a worker, read by a timer in the GUI thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.done = 0
        self.total = 0
        self.cancel = threading.Event()

    def __call__(self, done: int, total: int) -> None:
        with self._lock:
            self.done, self.total = int(done), int(total)
        if self.cancel.is_set():
            raise Cancelled()

    def read(self) -> tuple[int, int]:
        with self._lock:
            return self.done, self.total


class ShownImage(TypedDict, total=False):
    """The part of a panel's result that says where the shown image came from."""

    path: Path | None  # the dropped file, or None for a data set item (added when shown)


# ------------------------------------------------------------------ saving


def save_png(panel: ExplorePanel, path: Path, array: np.ndarray, source: Path | None, *,
             overwrite: bool = False, levels: Levels | None = None) -> Path | None:
    """Write ``array`` as an 8-bit PNG atomically; refuse the input's own path. Messages go to ``panel.notify``.

    ``levels`` of a 16-bit or float input read at its own range (:mod:`aestudio.data.levels`): written as a
    16-bit (float32) TIFF back in the input's range instead."""
    from aestudio.data.io import write_image
    from aestudio.data.levels import result_suffix, write_levelled

    deep = result_suffix(levels) == ".tif"
    want = ".tif" if deep else ".png"
    if path.suffix.lower() not in ((".tif", ".tiff") if deep else (".png",)):
        path = path.with_suffix(want)
    if source is not None and _same_file(path, source):
        panel.notify.emit(Level.ERROR, f"Not saved: {path.name} is the image it came from; "
                          "choose another name (the original is never overwritten).", "")
        return None
    try:
        unit = np.clip(np.nan_to_num(as_float_hwc(array)), 0.0, 1.0)
        if deep:
            write_levelled(path, unit, levels, overwrite=overwrite)
        else:
            write_image(path, unit, overwrite=overwrite)
    except FileExistsError:
        panel.notify.emit(Level.ERROR, f"Not saved: {path} already exists; choose another name.", "")
        return None
    except (OSError, ValueError) as exc:
        panel.notify.emit(Level.ERROR, f"Cannot save {path}: {exc}", "")
        return None
    panel.notify.emit(Level.INFO, f"Saved {path}.", "")
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == Path(b).resolve() or (a.exists() and Path(b).exists() and a.samefile(b))
    except OSError:
        return False


# ------------------------------------------------------------------ formatting


# ------------------------------------------------------------------ widgets


class ColorBar(QWidget):
    """A vertical colour scale from 0 (bottom) to ``scale`` (top), labelled."""

    def __init__(self, name: str = ERROR_CMAP, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lut = _lut(name, 64)
        self._scale: float | None = None
        self.setFixedWidth(64)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.setToolTip("Absolute error per pixel (mean over channels); the top is the value at which colours saturate")

    def set_scale(self, scale: float | None) -> None:
        self._scale = scale if scale is not None and math.isfinite(scale) and scale > 0 else None
        self.update()

    @property
    def scale(self) -> float | None:
        return self._scale

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(64, 200)

    TITLE = "|error|"

    def _bar_rect(self) -> QRectF:
        fm = self.fontMetrics()
        top = 6 + fm.height() + fm.ascent()  # the title's line, then half a tick label above the bar
        return QRectF(6, top, 14, max(0, self.height() - 10 - fm.height() - top))

    def title_rect(self) -> QRectF:
        """Where the title is drawn: its own line, clear of the top tick label."""
        fm = self.fontMetrics()
        return QRectF(0, 2, self.width(), fm.height())

    def tick_rects(self) -> list[QRectF]:
        """Bounding boxes of the three tick labels (0, half, top), as drawn."""
        fm = self.fontMetrics()
        bar = self._bar_rect()
        out = []
        for frac in (0.0, 0.5, 1.0):
            y = bar.bottom() - frac * bar.height()
            text = f"{(self._scale or 0.0) * frac:.2g}"
            baseline = int(y + fm.ascent() / 2 - 1)
            out.append(QRectF(bar.right() + 4, baseline - fm.ascent(), fm.horizontalAdvance(text), fm.height()))
        return out

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = p.fontMetrics()
        bar = self._bar_rect()
        if bar.height() < 20 or self._scale is None:
            return
        grad = QLinearGradient(bar.bottomLeft(), bar.topLeft())
        for i, (r, g, b) in enumerate(self._lut):
            grad.setColorAt(i / (len(self._lut) - 1), QColor.fromRgbF(float(r), float(g), float(b)))
        p.fillRect(bar, grad)
        p.setPen(QColor("#8a9099"))
        p.drawRect(bar)
        p.setPen(self.palette().windowText().color())
        x = int(bar.right()) + 4
        for frac, rect in zip((0.0, 0.5, 1.0), self.tick_rects(), strict=True):
            y = bar.bottom() - frac * bar.height()
            p.drawLine(int(bar.right()), int(y), x - 1, int(y))
            p.drawText(x, int(rect.top() + fm.ascent()), f"{self._scale * frac:.2g}")
        # The title has its own line above the top tick label (it used to overlap it).
        p.drawText(self.title_rect(), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, self.TITLE)


class MetricTile(QWidget):
    """A value in a large font with its name under it (``set_value(text, tooltip)``)."""

    def __init__(self, name: str, tooltip: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 4, 10, 4)
        lay.setSpacing(0)
        self.value = QLabel("–")
        self.value.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.value.setStyleSheet("font-size: 15pt; font-weight: 600; color: #1d2026;")
        self.name = QLabel(name)
        self.name.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.name.setStyleSheet("color: #5f6670;")
        lay.addWidget(self.value)
        lay.addWidget(self.name)
        self.setToolTip(tooltip)

    def set_value(self, text: str) -> None:
        self.value.setText(text)

    def text(self) -> str:
        return self.value.text()


class BrowseBar(QWidget):
    """Which images a panel shows (the data set or the dropped files) and which one: ◀ n / N ▶.

    ``changed`` fires when the source or the position changes (by the user or by
    :meth:`set_position`). ``source()`` is :attr:`DATA` or :attr:`FILES`.
    """

    DATA = "data"
    FILES = "files"
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.setToolTip("Browse the data set chosen in the data panel, or the images you dropped")
        self.prev_button = QToolButton(text="◀")
        self.prev_button.setToolTip("Previous image (Page Up)")
        self.next_button = QToolButton(text="▶")
        self.next_button.setToolTip("Next image (Page Down)")
        self.position = QLabel("")
        self.position.setMinimumWidth(80)
        self.position.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for w in (self.combo, self.prev_button, self.position, self.next_button):
            lay.addWidget(w)
        # The keys the tooltips name; window-wide, live while the panel holding the bar is shown.
        QShortcut(QKeySequence(Qt.Key.Key_PageDown), self, activated=lambda: self.step(1))
        QShortcut(QKeySequence(Qt.Key.Key_PageUp), self, activated=lambda: self.step(-1))
        self._counts = {self.DATA: 0, self.FILES: 0}
        self._index = {self.DATA: 0, self.FILES: 0}
        self._names: dict[str, str] = {self.DATA: "Data set", self.FILES: "Dropped images"}
        self.combo.currentIndexChanged.connect(self._source_picked)
        self.prev_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))
        self._rebuild()

    # ---------------------------------------------------------------- state

    def source(self) -> str:
        return self.combo.currentData() or self.DATA

    def index(self) -> int:
        return self._index[self.source()]

    def count(self, source: str | None = None) -> int:
        return self._counts[source or self.source()]

    def set_count(self, source: str, n: int, name: str | None = None) -> None:
        """Set how many images ``source`` has (and its name in the list); keeps the position when it can."""
        self._counts[source] = max(0, int(n))
        if name:
            self._names[source] = name
        self._index[source] = min(self._index[source], max(0, self._counts[source] - 1))
        self._rebuild()

    def set_position(self, source: str, index: int) -> None:
        self._index[source] = max(0, min(int(index), max(0, self._counts[source] - 1)))
        i = self.combo.findData(source)
        if i >= 0 and i != self.combo.currentIndex():
            self.combo.blockSignals(True)
            self.combo.setCurrentIndex(i)
            self.combo.blockSignals(False)
        self._update_label()
        self.changed.emit()

    def step(self, delta: int) -> None:
        n = self.count()
        if n:
            self.set_position(self.source(), (self.index() + delta) % n)

    # ---------------------------------------------------------------- internals

    def _rebuild(self) -> None:
        current = self.combo.currentData()
        self.combo.blockSignals(True)
        self.combo.clear()
        for src in (self.DATA, self.FILES):
            if self._counts[src]:
                self.combo.addItem(f"{self._names[src]} ({self._counts[src]})", src)
        if self.combo.count() == 0:
            self.combo.addItem("No images yet", None)
        i = self.combo.findData(current)
        self.combo.setCurrentIndex(max(0, i))
        self.combo.blockSignals(False)
        self.combo.setEnabled(self.combo.count() > 1)
        # Room for the longest entry whatever its neighbours ask for: a long file name beside
        # it squeezed the combo to "Dropped images (".
        fm = self.combo.fontMetrics()
        longest = max(fm.horizontalAdvance(self.combo.itemText(i)) for i in range(self.combo.count()))
        self.combo.setMinimumWidth(longest + self.combo.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent) + 28)
        self._update_label()

    def _update_label(self) -> None:
        n = self.count() if self.combo.currentData() else 0
        self.position.setText(f"{self.index() + 1} / {n}" if n else "")
        self.prev_button.setEnabled(n > 1)
        self.next_button.setEnabled(n > 1)

    def _source_picked(self, _i: int) -> None:
        self._update_label()
        self.changed.emit()


# ------------------------------------------------------------------ the panels' base


class BrowsedImagePanel(ExplorePanel):
    """A panel showing one browsed image at a time, computed on its own :class:`LatestRunner`.

    :meth:`_top_bar` builds the row both panels open with; :meth:`_start_job` gives
    each new job its :class:`Progress` (cancelling the previous one); a timer shows
    the busy label and bar, with tile progress, once a job runs longer than
    :data:`SHOW_BUSY_AFTER_S`, and calls :meth:`_hide_stale` while the image shown
    is not the one asked for. :meth:`_say_error_once` reports a failure unless it is
    the one said last (browsing or dragging a slider over a failing model); clear
    ``_last_error`` when a job succeeds or the model changes.
    """

    runner_name: ClassVar[str] = "aestudio-latest"  # the LatestRunner's thread
    busy_bar_width: ClassVar[int] = 160  # px
    busy_tiles: ClassVar[str] = "Working: tile {done} of {total}…"  # a tiled job's busy label
    busy_text: ClassVar[str] = "Working…"  # the busy label without a tile count

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(tasks, parent)
        self.runner = LatestRunner(self, name=self.runner_name)
        self._job_progress: Progress | None = None  # the newest image job's
        self._job_started = 0.0
        self._pending_key = ""  # the image the newest job is for (its label text)
        self._shown_key = ""  # the image on screen
        self._last_error = ""  # the failure said last
        self._busy_timer = QTimer(self)
        self._busy_timer.setInterval(100)
        self._busy_timer.timeout.connect(self._poll_busy)

    def _top_bar(self, on_change: Callable[[], None]) -> QHBoxLayout:
        """Browse bar, the image's name, the busy label and bar; the panel adds its buttons."""
        bar = QHBoxLayout()
        self.browse = BrowseBar()
        self.browse.changed.connect(on_change)
        bar.addWidget(self.browse)
        self.item_label = ElidedLabel("")
        self.item_label.setObjectName("hint")
        bar.addWidget(self.item_label, 1)
        self.busy_label = QLabel("")
        self.busy_label.setObjectName("hint")
        self.busy_label.setVisible(False)
        bar.addWidget(self.busy_label)
        self.busy_bar = QProgressBar()
        self.busy_bar.setMaximumWidth(self.busy_bar_width)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setVisible(False)
        bar.addWidget(self.busy_bar)
        return bar

    def _start_job(self, key: str) -> Progress:
        """A new image job for ``key``: the previous one stops between tiles; the busy timer runs."""
        if self._job_progress is not None:
            self._job_progress.cancel.set()
        progress = self._job_progress = Progress()
        self._job_started = time.monotonic()
        self._pending_key = key
        self._busy_timer.start()
        return progress

    def _poll_busy(self) -> None:
        p = self._job_progress
        if p is None or not self.runner.busy:
            self.busy_bar.setVisible(False)
            self.busy_label.setVisible(False)
            self._busy_timer.stop()
            return
        if time.monotonic() - self._job_started < SHOW_BUSY_AFTER_S:
            return
        done, total = p.read()
        if total:
            self.busy_bar.setRange(0, total)
            self.busy_bar.setValue(done)
            self.busy_label.setText(self.busy_tiles.format(done=done, total=total))
        else:
            self.busy_bar.setRange(0, 0)  # no tile count (a small image or a fixed-size model)
            self.busy_label.setText(self.busy_text)
        self.busy_bar.setVisible(True)
        self.busy_label.setVisible(True)
        if self._pending_key != self._shown_key:
            self._hide_stale()

    def _hide_stale(self) -> None:
        """A slow new image: never leave the previous one on screen under the new name."""

    def _say_error_once(self, exc: BaseException, details: str) -> None:
        """Report ``exc`` (after the panel's title) unless it is the failure said last."""
        text = f"{self.title}: {exc}"
        if text != self._last_error:
            self._last_error = text
            self.notify.emit(Level.ERROR, text, details)

    def shutdown(self) -> None:
        self.runner.shutdown()
