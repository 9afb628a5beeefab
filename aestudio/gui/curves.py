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
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

MAX_STEP_POINTS = 4000  # decimate beyond this: more points than pixels only costs paint time
OVERLAY_COLORS = ["#8e6c8a", "#d1802f", "#5a9e6f", "#b04a4a", "#6d7fcc", "#a0a032"]
RUN_COLOR = "#2f6db5"
VAL_COLOR = "#d1493f"
# Metrics where lower is better get a log axis when they span decades.
LOG_METRICS = frozenset({"mse", "loss", "nelbo", "train_loss"})
PREFERRED_METRICS = ("miou", "psnr", "mse", "ssim", "nelbo")
_NOT_METRICS = frozenset({"epoch", "step", "train_loss", "seconds", "time", "batch_size", "lr"})


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


class UncrowdedAxis(pg.AxisItem):
    """An axis that never draws two tick labels over each other.

    On a log axis spanning less than a decade pyqtgraph labels every minor tick, and on a
    short plot "0.1", "0.09", "0.08", "0.07" overlapped. Labels are kept in pyqtgraph's own
    order (major ticks first) and one that would touch a label already kept is dropped.
    """

    GAP = 2  # px between two labels

    def generateDrawSpecs(self, p):  # noqa: ANN001, ANN201, N802 - pyqtgraph override
        specs = super().generateDrawSpecs(p)
        if specs is None:
            return specs
        axis_spec, tick_specs, text_specs = specs
        kept: list = []
        for spec in text_specs:
            rect = spec[0].adjusted(0, -self.GAP / 2, 0, self.GAP / 2)
            if not any(rect.intersects(k[0]) for k in kept):
                kept.append(spec)
        return axis_spec, tick_specs, kept


class CurvesView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
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
        caption = QLabel("Solid: this run (thin line every step, dots per epoch). Dashed: compared runs.")
        caption.setObjectName("hint")
        caption.setWordWrap(True)  # never let the caption widen the window
        top.addWidget(caption, 1)
        lay.addLayout(top)

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.graphics.setMinimumHeight(220)
        lay.addWidget(self.graphics, 1)
        self.loss_plot = self._make_plot("Training loss", 0)
        self.loss_plot.setLogMode(y=True)
        self.val_plot = self._make_plot("Validation", 1)
        # No pyqtgraph legend: it covers the curves in a small plot; the caption above explains.

        self.live = RunSeries()
        self._live_items = {
            "steps": self.loss_plot.plot(pen=pg.mkPen(RUN_COLOR + "80", width=1)),
            "epochs": self.loss_plot.plot(pen=pg.mkPen(RUN_COLOR, width=2.5), symbol="o", symbolSize=6,
                                          symbolBrush=RUN_COLOR, symbolPen=None),
            "val": self.val_plot.plot(pen=pg.mkPen(VAL_COLOR, width=2.5), symbol="o", symbolSize=7,
                                      symbolBrush=VAL_COLOR, symbolPen=None),
        }
        self._overlays: dict[str, tuple[RunSeries, list[pg.PlotDataItem]]] = {}
        self._colors = itertools.cycle(OVERLAY_COLORS)
        self.redraws = 0  # counted so tests can check the throttle does its job
        self.redraw()  # bare axes until the first point
        self.redraws = 0

    def _make_plot(self, title: str, col: int) -> pg.PlotItem:
        plot = self.graphics.addPlot(row=0, col=col, axisItems={"left": UncrowdedAxis("left")})
        plot.setTitle(title, color="#333", size="11pt")
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setLabel("bottom", "epoch", color="#555")
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTextPen("#444")
            plot.getAxis(axis).setPen("#999")
        plot.setMenuEnabled(False)
        plot.getViewBox().setMouseEnabled(x=True, y=False)
        return plot

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
        pen = pg.mkPen(color, width=2, style=Qt.PenStyle.DashLine)
        items = [self.loss_plot.plot(pen=pen), self.val_plot.plot(pen=pen)]
        self._overlays[name] = (series, items)
        for row in series.metrics:
            self._offer_metrics({row: 0.0})
        self.redraw()
        return color

    def remove_overlay(self, name: str) -> None:
        entry = self._overlays.pop(name, None)
        if entry is None:
            return
        loss_item, val_item = entry[1]
        self.loss_plot.removeItem(loss_item)
        self.val_plot.removeItem(val_item)

    def overlay_names(self) -> list[str]:
        return list(self._overlays)

    # -------------------------------------------------------------- drawing

    def redraw(self) -> None:
        metric = self.metric_box.currentText()
        positive = metric in LOG_METRICS
        # Before any point, a log axis shows meaningless 2..9 ticks: show bare axes instead.
        empty = not self.live.step_x and not self.live.epoch_x and not self._overlays
        self.loss_plot.setLogMode(y=not empty)
        for plot in (self.loss_plot, self.val_plot):
            plot.getAxis("left").setStyle(showValues=not empty)
            plot.getAxis("bottom").setStyle(showValues=not empty)
        self.val_plot.setLogMode(y=positive)
        self.val_plot.setTitle(f"Validation {metric}" if metric else "Validation", color="#333", size="11pt")
        sx, sy = clean_xy(self.live.step_x, self.live.step_loss, positive=True)
        self._live_items["steps"].setData(*decimate(sx, sy))
        self._live_items["epochs"].setData(*clean_xy(self.live.epoch_x, self.live.epoch_loss, positive=True))
        self._live_items["val"].setData(*self._metric_xy(self.live, metric, positive))
        for series, (loss_item, val_item) in self._overlays.values():
            loss_item.setData(*clean_xy(series.epoch_x, series.epoch_loss, positive=True))
            val_item.setData(*self._metric_xy(series, metric, positive))
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
        return {k: len(item.xData) if item.xData is not None else 0 for k, item in self._live_items.items()}
