"""Training curves: loss per step and a chosen validation metric per epoch, with overlays.

The x axis is epochs (fractional for steps) so runs with different batch sizes
or data sizes line up when overlaid. Data is buffered in numpy and pushed to
pyqtgraph only from :meth:`CurvesView.redraw`, which the train panel calls at
most ~10 times a second; every array is checked (finite, positive on a log
axis, equal lengths) before it reaches an item, because a ValueError inside a
pyqtgraph ``paint()`` can abort the process (DESIGN.md, Known pitfalls).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from aestudio.gui.elided_label import ElidedLabel

if TYPE_CHECKING:  # pyqtgraph loads when the plots are built, after the window's first paint
    import pyqtgraph as pg

    from aestudio.gui.curves_plot import CurvesPlot

PLOT_MIN_HEIGHT = 220
MAX_STEP_POINTS = 4000  # decimate beyond this: more points than pixels only costs paint time
OVERLAY_COLORS = ["#8e6c8a", "#d1802f", "#5a9e6f", "#b04a4a", "#6d7fcc", "#a0a032"]
RUN_COLOR = "#2f6db5"
VAL_COLOR = "#d1493f"
# Metrics where lower is better get a log axis when they span decades.
LOG_METRICS = frozenset({"mse", "loss", "nelbo", "train_loss"})
PREFERRED_METRICS = ("miou", "psnr", "mse", "ssim", "nelbo")
_NOT_METRICS = frozenset({"epoch", "step", "train_loss", "seconds", "time", "batch_size", "lr"})
# What the plot area says until its plots are built (the first seconds after launch): the two
# plots' titles over what each will show, in their places, so the area is never a blank box.
PLACEHOLDER = (("Training loss", "drawn step by step once a run starts"),
               ("Validation", "the metric chosen above, after each epoch"))


def clean_xy(x: np.ndarray, y: np.ndarray, *, positive: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Keep only points a plot can draw: same length, finite, and > 0 for a log axis."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    ok = np.isfinite(x) & np.isfinite(y)
    if positive:
        ok &= y > 0
    return x[ok], y[ok]


def decimate(x: np.ndarray, y: np.ndarray, limit: int = MAX_STEP_POINTS) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= limit:
        return x, y
    k = int(np.ceil(len(x) / limit))
    n = len(x) // k * k
    return x[:n].reshape(-1, k).mean(1), y[:n].reshape(-1, k).mean(1)


@dataclass
class RunSeries:
    """Buffered points of one run (the live one, or an overlaid past run)."""

    step_x: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    epoch_x: list[float] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def add_epoch(self, x: float, train_loss: float, metrics: dict[str, float]) -> None:
        self.epoch_x.append(x)
        self.epoch_loss.append(train_loss)
        for k, v in metrics.items():
            if isinstance(v, (int, float)):
                self.metrics.setdefault(k, []).append((x, float(v)))

    @classmethod
    def from_history(cls, history: list[dict[str, Any]] | None) -> RunSeries:
        """From ``RunInfo.history`` (a list of per-epoch dicts) or metrics.jsonl rows."""
        series = cls()
        for i, row in enumerate(history or []):
            if not isinstance(row, dict):
                continue
            # "epoch" counts completed epochs (1 after the first), like the live x axis.
            epoch = row.get("epoch", i + 1)
            metrics = row.get("metrics") if isinstance(row.get("metrics"), dict) else {
                k: v for k, v in row.items() if k not in _NOT_METRICS}
            loss = row.get("train_loss", row.get("loss", float("nan")))
            series.add_epoch(float(epoch), float(loss) if loss is not None else float("nan"), metrics)
        return series


def _placeholder() -> QWidget:
    """The plot area before pyqtgraph is loaded: white, the plots' size, their titles and what they will show."""
    slot = QWidget()
    slot.setObjectName("plotSlot")
    slot.setStyleSheet("QWidget#plotSlot { background: white; } QLabel { color: #777; }")
    slot.setMinimumHeight(PLOT_MIN_HEIGHT)
    row = QHBoxLayout(slot)
    for title, hint in PLACEHOLDER:
        column = QVBoxLayout()
        head = QLabel(title)  # where the built plot's title will be, so nothing jumps
        head.setStyleSheet("color: #333; font-size: 11pt;")
        head.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        body = QLabel(hint)
        body.setAlignment(Qt.AlignmentFlag.AlignCenter)
        body.setWordWrap(True)  # a narrow window wraps the hint instead of widening the tab
        column.addWidget(head)
        column.addWidget(body, 1)
        row.addLayout(column, 1)
    return slot


class CurvesView(QWidget):
    """The metric picker, the buffered series and (built on demand) the two plots.

    The plots are pyqtgraph, imported when they are built: the Train tab is the first
    window a new user sees, and its empty plots wait until just after the window's first
    paint (``build_plot``, called by the window) or the first ``redraw``, whichever comes first.
    """

    def __init__(self, parent: QWidget | None = None, *, deferred: bool = False) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(QLabel("Validation metric:"))
        self.metric_box = QComboBox()
        self.metric_box.setMinimumContentsLength(8)
        self.metric_box.setPlaceholderText("after epoch 1")
        self.metric_box.currentTextChanged.connect(lambda _t: self.redraw())
        top.addWidget(self.metric_box)
        top.addSpacing(16)
        # Two lines at most, then "…" (the full text is the tooltip): it never widens the window, and below
        # ~1100 px a freely wrapping caption took 7 lines and pushed the plots' bottom axes out of view.
        self.caption = ElidedLabel("Solid: this run (thin line every step, dots per epoch). Dashed: compared runs.",
                                   lines=2, keep_lines=True)
        self.caption.setObjectName("hint")
        top.addWidget(self.caption, 1)
        lay.addLayout(top)
        # Until the plots exist, a white area of their size holds their place (no jump later)
        # and says what will be drawn there.
        self._slot = _placeholder()
        lay.addWidget(self._slot, 1)
        self._plot: CurvesPlot | None = None

        self.live = RunSeries()
        self._overlays: dict[str, tuple[RunSeries, str]] = {}  # name -> (series, colour)
        self._colors = itertools.cycle(OVERLAY_COLORS)
        self.redraws = 0  # counted so tests can check the throttle does its job
        if not deferred:
            self.build_plot()

    # -------------------------------------------------------------- the plots

    @property
    def plot_built(self) -> bool:
        return self._plot is not None

    def placeholder_text(self) -> str:
        """What the plot area says before its plots are built ("" once they are)."""
        if self._plot is not None:
            return ""
        return " ".join(label.text() for label in self._slot.findChildren(QLabel))

    def build_plot(self) -> CurvesPlot:
        """Build the plots (once) and draw what is buffered; bare axes until the first point."""
        if self._plot is None:
            from aestudio.gui.curves_plot import CurvesPlot  # imports pyqtgraph

            self._plot = CurvesPlot()
            self.layout().replaceWidget(self._slot, self._plot.graphics)
            self._slot.deleteLater()
            for name, (_series, color) in self._overlays.items():
                self._plot.add_overlay(name, color)
            redraws = self.redraws
            self.redraw()
            self.redraws = redraws  # building is not a redraw the throttle asked for
        return self._plot

    @property
    def graphics(self) -> pg.GraphicsLayoutWidget:
        return self.build_plot().graphics

    @property
    def loss_plot(self) -> pg.PlotItem:
        return self.build_plot().loss_plot

    @property
    def val_plot(self) -> pg.PlotItem:
        return self.build_plot().val_plot

    # -------------------------------------------------------------- live run

    def reset_live(self) -> None:
        self.live = RunSeries()
        self.metric_box.clear()
        self.redraw()

    def add_step(self, x: float, loss: float) -> None:
        self.live.step_x.append(x)
        self.live.step_loss.append(loss)

    def add_epoch(self, x: float, train_loss: float, metrics: dict[str, float]) -> None:
        self.live.add_epoch(x, train_loss, metrics)
        self._offer_metrics(metrics)

    def _offer_metrics(self, metrics: dict[str, float]) -> None:
        known = {self.metric_box.itemText(i) for i in range(self.metric_box.count())}
        new = [k for k in metrics if k not in known and not k.startswith(("iou_", "dice_"))]
        if not new:
            return
        self.metric_box.blockSignals(True)
        self.metric_box.addItems(new)
        self.metric_box.blockSignals(False)
        names = [self.metric_box.itemText(i) for i in range(self.metric_box.count())]
        if not known:
            best = next((m for m in PREFERRED_METRICS if m in names), names[0])
            self.metric_box.setCurrentText(best)

    # -------------------------------------------------------------- overlays

    def add_overlay(self, name: str, series: RunSeries) -> str:
        """Overlay a past run (dashed); returns its colour so a list can show it."""
        self.remove_overlay(name)
        color = next(self._colors)
        self._overlays[name] = (series, color)
        if self._plot is not None:
            self._plot.add_overlay(name, color)
        for row in series.metrics:
            self._offer_metrics({row: 0.0})
        self.redraw()
        return color

    def remove_overlay(self, name: str) -> None:
        if self._overlays.pop(name, None) is None:
            return
        if self._plot is not None:
            self._plot.remove_overlay(name)

    def overlay_names(self) -> list[str]:
        return list(self._overlays)

    # -------------------------------------------------------------- drawing

    def redraw(self) -> None:
        plot = self.build_plot()
        metric = self.metric_box.currentText()
        positive = metric in LOG_METRICS
        # Before any point, a log axis shows meaningless 2..9 ticks: show bare axes instead.
        empty = not self.live.step_x and not self.live.epoch_x and not self._overlays
        plot.set_empty(empty)
        plot.set_metric(metric, log=positive)
        sx, sy = clean_xy(self.live.step_x, self.live.step_loss, positive=True)
        plot.set_live(
            steps=decimate(sx, sy),
            epochs=clean_xy(self.live.epoch_x, self.live.epoch_loss, positive=True),
            val=self._metric_xy(self.live, metric, positive),
        )
        for name, (series, _color) in self._overlays.items():
            plot.set_overlay(name, clean_xy(series.epoch_x, series.epoch_loss, positive=True),
                             self._metric_xy(series, metric, positive))
        self.redraws += 1

    @staticmethod
    def _metric_xy(series: RunSeries, metric: str, positive: bool) -> tuple[np.ndarray, np.ndarray]:
        points = series.metrics.get(metric, [])
        if not points:
            return np.zeros(0), np.zeros(0)
        x, y = zip(*points, strict=True)
        return clean_xy(np.array(x), np.array(y), positive=positive)

    def point_counts(self) -> dict[str, int]:
        """How many points each live item holds (tests read it)."""
        if self._plot is None:
            return {"steps": 0, "epochs": 0, "val": 0}
        return self._plot.point_counts()
