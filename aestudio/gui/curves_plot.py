"""The pyqtgraph side of the training curves: two plots, the live run's items, the overlays.

Imported by :class:`aestudio.gui.curves.CurvesView` when it builds its plots (after the
window's first paint), so the window opens without pyqtgraph. It only draws what it is given:
:class:`CurvesView` keeps the series and cleans every array first (a ValueError inside a
pyqtgraph ``paint()`` can abort the process, DESIGN.md, Known pitfalls).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from aestudio.gui.curves import PLOT_MIN_HEIGHT, RUN_COLOR, VAL_COLOR
from aestudio.gui.plots import pg

XY = tuple[np.ndarray, np.ndarray]


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


class CurvesPlot:
    """The loss plot (log y once there are points) and the validation metric's plot."""

    def __init__(self) -> None:
        self.graphics: pg.GraphicsLayoutWidget = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.graphics.setMinimumHeight(PLOT_MIN_HEIGHT)
        self.loss_plot = self._make_plot("Training loss", 0)
        self.loss_plot.setLogMode(y=True)
        self.val_plot = self._make_plot("Validation", 1)
        # No pyqtgraph legend: it covers the curves in a small plot; the caption above explains.
        self._live = {
            "steps": self.loss_plot.plot(pen=pg.mkPen(RUN_COLOR + "80", width=1)),
            "epochs": self.loss_plot.plot(pen=pg.mkPen(RUN_COLOR, width=2.5), symbol="o", symbolSize=6,
                                          symbolBrush=RUN_COLOR, symbolPen=None),
            "val": self.val_plot.plot(pen=pg.mkPen(VAL_COLOR, width=2.5), symbol="o", symbolSize=7,
                                      symbolBrush=VAL_COLOR, symbolPen=None),
        }
        self._overlays: dict[str, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}

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

    def set_empty(self, empty: bool) -> None:
        """Bare axes (no tick values, linear) until the first point."""
        self.loss_plot.setLogMode(y=not empty)
        for plot in (self.loss_plot, self.val_plot):
            plot.getAxis("left").setStyle(showValues=not empty)
            plot.getAxis("bottom").setStyle(showValues=not empty)

    def set_metric(self, metric: str, *, log: bool) -> None:
        self.val_plot.setLogMode(y=log)
        self.val_plot.setTitle(f"Validation {metric}" if metric else "Validation", color="#333", size="11pt")

    def set_live(self, *, steps: XY, epochs: XY, val: XY) -> None:
        self._live["steps"].setData(*steps)
        self._live["epochs"].setData(*epochs)
        self._live["val"].setData(*val)

    def add_overlay(self, name: str, color: str) -> None:
        pen = pg.mkPen(color, width=2, style=Qt.PenStyle.DashLine)
        self._overlays[name] = (self.loss_plot.plot(pen=pen), self.val_plot.plot(pen=pen))

    def remove_overlay(self, name: str) -> None:
        items = self._overlays.pop(name, None)
        if items is not None:
            self.loss_plot.removeItem(items[0])
            self.val_plot.removeItem(items[1])

    def set_overlay(self, name: str, loss: XY, val: XY) -> None:
        loss_item, val_item = self._overlays[name]
        loss_item.setData(*loss)
        val_item.setData(*val)

    def point_counts(self) -> dict[str, int]:
        return {k: len(item.xData) if item.xData is not None else 0 for k, item in self._live.items()}
