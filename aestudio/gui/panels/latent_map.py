"""A 2-D map of a data set's codes (pyqtgraph): colour by label or factor, hover preview, click.

:class:`LatentMap` draws one point per item at the positions it is given (PCA or
t-SNE, computed elsewhere), one scatter item per category so a legend can name
the colours; continuous factors (shapes' scale, rotation, x, y) use a colour
ramp. Dropped images are drawn as stars with their names, the code under the
sliders as a cross (PCA only: t-SNE has no way to place a new code). Hovering
a point shows its image in the preview pane beside the plot; clicking emits
``clicked(index)``. Positions are filtered to finite values before they reach
pyqtgraph, since an exception inside ``paint()`` can abort the process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QElapsedTimer, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from aestudio.explore.latent_codes import TSNE_MIN_CODES, CodeSet, finite_points
from aestudio.gui.images import DEFAULT_PALETTE
from aestudio.gui.panels.common import ImagePane
from aestudio.gui.plots import pg

PROJECTIONS = ("PCA", "t-SNE")
NO_COLOUR = "none"
PLAIN_COLOUR = QColor(47, 109, 181, 170)  # the accent, translucent: overlaps read as density
POINT_SIZE = 7


@dataclass(frozen=True)
class DropMark:
    """A dropped image on the map."""

    xy: tuple[float, float]
    name: str
    approximate: bool = False  # t-SNE: placed at its nearest neighbour's position


def category_colors(n: int) -> list[QColor]:
    """``n`` distinct colours (tab10, repeating), slightly translucent."""
    return [QColor(*map(int, DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)]), 200) for i in range(n)]


def legend_html(entries: list[tuple[QColor, str]]) -> str:
    """Coloured dots and names, in two columns when there are more than five."""
    cols = 2 if len(entries) > 5 else 1
    cells = [f'<td><span style="color:{c.name()}; font-size:12pt">&#9679;</span>&nbsp;{t}&nbsp;&nbsp;</td>'
             for c, t in entries]
    rows = ["<tr>" + "".join(cells[i : i + cols]) + "</tr>" for i in range(0, len(cells), cols)]
    return "<table cellspacing=0 cellpadding=0>" + "".join(rows) + "</table>"


class LatentMap(QWidget):
    """The map: ``set_codes``, ``set_positions``, ``set_drops``, ``set_current``; emits hover/click."""

    hovered = Signal(int)  # item index under the pointer
    clicked = Signal(int)  # item index clicked
    projection_requested = Signal(str)  # "PCA" | "t-SNE": the user picked a projection

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.codes: CodeSet | None = None
        self.xy: np.ndarray | None = None  # [N, 2] positions of the current projection
        self.projection = PROJECTIONS[0]
        self.items: list[pg.ScatterPlotItem] = []  # one per category (or one for all)
        self._drops: list[DropMark] = []
        self._drop_texts: list[pg.TextItem] = []
        self._hover_index = -1

        self.projection_box = QComboBox()
        self.projection_box.addItems(PROJECTIONS)
        self.projection_box.setToolTip("PCA: instant, linear. t-SNE: clusters, computed in the background "
                                       "(a few seconds per thousand points).")
        self.projection_box.currentTextChanged.connect(self._projection_picked)
        self.colour_box = QComboBox()
        self.colour_box.setToolTip("Colour the points by the data's labels or generative factors")
        self.colour_box.currentTextChanged.connect(lambda _t: self._redraw())
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate: t-SNE does not report progress
        self.busy.setMaximumWidth(90)
        self.busy.setTextVisible(False)
        self.busy.hide()
        self._busy_text = ""
        self._busy_clock = QElapsedTimer()
        self._busy_timer = QTimer(self)
        self._busy_timer.setInterval(1000)
        self._busy_timer.timeout.connect(self._tick_busy)
        self.status = QLabel("")
        self.status.setObjectName("hint")
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(QLabel("Map"))
        bar.addWidget(self.projection_box)
        bar.addSpacing(8)
        self.colour_label = QLabel("Colour")
        bar.addWidget(self.colour_label)
        bar.addWidget(self.colour_box)
        bar.addSpacing(8)
        bar.addWidget(self.busy)
        bar.addWidget(self.status, 1)

        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setAspectLocked(False)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setStyle(tickLength=-4)
            self.plot.getAxis(axis).setTextPen("#6b717b")
            # No "(x0.001)" scale after the axis name: it made the left label longer than a short
            # map is tall, and the cut label read "(x0.0". The ticks carry the numbers.
            self.plot.getAxis(axis).enableAutoSIPrefix(False)
        self.plot.setMinimumSize(240, 180)  # 180: the Latent tab fits above the sample strip at 1366x768
        self._drop_item = pg.ScatterPlotItem(size=17, symbol="star", pen=pg.mkPen("#111", width=1.2),
                                             brush=pg.mkBrush("#ffd21f"))
        self._drop_item.setZValue(20)
        self._current_item = pg.ScatterPlotItem(size=15, symbol="+", pen=pg.mkPen("#d62728", width=2.5),
                                                brush=pg.mkBrush("#d62728"))
        self._current_item.setZValue(30)
        self.plot.addItem(self._drop_item)
        self.plot.addItem(self._current_item, ignoreBounds=True)  # the view never jumps to follow it
        self._current_xy: np.ndarray | None = None  # the current code's position, unclamped
        self.current_off_map = False  # the cross sits on the edge, pointing at a code outside the view
        # Clicks and hovers are resolved to the nearest point in screen pixels here, so a click
        # on empty map space still picks something (it did nothing) and leaving a point clears
        # the preview (it kept a stale item).
        self.plot.scene().sigMouseClicked.connect(self._scene_clicked)
        self.plot.scene().sigMouseMoved.connect(self._scene_moved)
        self._view().sigRangeChanged.connect(lambda *_: self._place_current())

        self.placeholder = QLabel("")
        self.placeholder.setObjectName("emptyText")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.plot)

        self.preview = ImagePane("Hovered", "Point at a dot to see its image")
        self.preview.setFixedWidth(150)
        self.legend = QLabel("")
        self.legend.setObjectName("hint")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)

        side = QVBoxLayout()
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.preview)
        side.addWidget(self.legend)
        side.addStretch(1)
        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.stack, 1)
        body.addLayout(side)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addLayout(bar)
        lay.addLayout(body, 1)
        self.set_codes(None, "Open a data set (Data panel) to map its codes.")

    # -------------------------------------------------------------- inputs

    def set_codes(self, codes: CodeSet | None, placeholder: str = "") -> None:
        """New data: colour choices, points at the PCA positions; ``None`` shows ``placeholder``."""
        self.codes = codes
        self._drops = []
        self._hover_index = -1
        self.preview.clear()
        self.projection_box.blockSignals(True)
        self.projection_box.setCurrentText(PROJECTIONS[0])
        self.projection_box.blockSignals(False)
        self.projection = PROJECTIONS[0]
        self.colour_box.blockSignals(True)
        self.colour_box.clear()
        if codes is not None:
            choices = (["label"] if codes.labels is not None else []) + list(codes.factor_names)
            self.colour_box.addItems(choices or [NO_COLOUR])
        self.colour_box.blockSignals(False)
        visible = self.colour_box.count() > 1 or (codes is not None and self.colour_box.currentText() != NO_COLOUR)
        self.colour_box.setVisible(visible)
        self.colour_label.setVisible(visible)
        self.preview.setVisible(codes is not None)  # no dots to point at: the message gets the width
        if codes is None:
            self.xy = None
            self.placeholder.setText(placeholder)
            self.stack.setCurrentWidget(self.placeholder)
            self._clear_items()
            self._drop_item.setData([], [])
            self._current_item.setData([], [])
            self.legend.setText("")
            self.status.setText("")
            return
        self.stack.setCurrentWidget(self.plot)
        # t-SNE on 3 or 4 codes failed with a warning after the pick: offer it only when it can run.
        tsne = self.projection_box.model().item(PROJECTIONS.index("t-SNE"))
        tsne.setEnabled(len(codes) >= TSNE_MIN_CODES)
        tsne.setToolTip("" if tsne.isEnabled() else f"t-SNE needs at least {TSNE_MIN_CODES} codes; "
                        f"this data gave {len(codes)}")
        self.set_positions(PROJECTIONS[0], codes.xy_pca)

    def set_positions(self, projection: str, xy: np.ndarray) -> None:
        """Show the points at ``xy`` ([N, 2], row-aligned with the codes) under ``projection``."""
        if self.codes is None:
            return
        xy = np.asarray(xy, dtype=np.float64)
        if xy.shape != (len(self.codes), 2):
            raise ValueError(f"positions of shape {xy.shape} for {len(self.codes)} codes")
        self.projection = projection
        self.xy = xy
        self.projection_box.blockSignals(True)
        self.projection_box.setCurrentText(projection)
        self.projection_box.blockSignals(False)
        self.plot.getPlotItem().setLabels(bottom=self._axis_name(0), left=self._axis_name(1))
        self._redraw()
        self.plot.getPlotItem().enableAutoRange()
        if projection != "PCA":
            self._current_item.setData([], [])
        else:
            self._place_current()

    def set_busy(self, text: str | None) -> None:
        """An indeterminate busy bar and a note with the seconds spent so far (``None``: done)."""
        self.busy.setVisible(text is not None)
        self._busy_text = text or ""
        self.status.setText(self._busy_text)
        if text is None:
            self._busy_timer.stop()
        else:
            self._busy_clock.start()
            self._busy_timer.start()

    def _tick_busy(self) -> None:
        self.status.setText(f"{self._busy_text} {self._busy_clock.elapsed() // 1000} s")

    def set_drops(self, drops: list[DropMark]) -> None:
        self._drops = list(drops)
        self._draw_drops()

    def set_current(self, xy: np.ndarray | None) -> None:
        """The cross at the code under the sliders (PCA only; ``None`` hides it)."""
        if xy is None or self.codes is None or self.projection != "PCA":
            self._current_item.setData([], [])
            return
        p = np.asarray(xy, dtype=np.float64).reshape(-1)
        if p.size != 2 or not np.isfinite(p).all():
            self._current_xy = None
            self._current_item.setData([], [])
            return
        self._current_xy = p
        self._place_current()

    def _view(self) -> pg.ViewBox:
        return self.plot.getPlotItem().getViewBox()

    def _place_current(self) -> None:
        """Draw the cross at the current code, or on the view's edge pointing at it when it lies outside.

        At extreme slider values the code's PCA position leaves the map; a cross drawn there
        was outside the plot (over the axes). The view never follows it (ignoreBounds).
        """
        p = self._current_xy
        if p is None or self.projection != "PCA":
            return
        (x0, x1), (y0, y1) = self._view().viewRange()
        px, py = self._view().viewPixelSize()
        margin_x, margin_y = 8 * abs(px), 8 * abs(py)  # half the symbol, in data units
        x = min(max(p[0], x0 + margin_x), x1 - margin_x)
        y = min(max(p[1], y0 + margin_y), y1 - margin_y)
        dx, dy = p[0] - x, p[1] - y
        self.current_off_map = bool(dx or dy)
        if not self.current_off_map:
            symbol = "+"
        elif abs(dx) / max(abs(px), 1e-12) >= abs(dy) / max(abs(py), 1e-12):
            symbol = "t2" if dx > 0 else "t3"  # a triangle pointing right / left, towards the code
        else:
            symbol = "t1" if dy > 0 else "t"  # up / down
        self._current_item.setData([x], [y], symbol=symbol)
        self._current_item.setToolTip(
            f"The code on the sliders is at ({p[0]:.2g}, {p[1]:.2g}), off this view" if self.current_off_map
            else "The code on the sliders")

    def current_position(self) -> tuple[float, float] | None:
        """Where the cross is drawn (data units), or None when hidden."""
        xs, ys = self._current_item.getData()
        return (float(xs[0]), float(ys[0])) if xs is not None and len(xs) else None

    # -------------------------------------------------------------- pointer

    def nearest(self, scene_pos) -> tuple[int, float]:  # noqa: ANN001 - QPointF
        """(item index, distance in screen pixels) of the point nearest ``scene_pos``; (-1, inf) off the plot."""
        view = self._view()
        if self.xy is None or not len(self.xy) or not view.sceneBoundingRect().contains(scene_pos):
            return -1, float("inf")
        at = view.mapSceneToView(scene_pos)
        px, py = (abs(v) or 1.0 for v in view.viewPixelSize())
        with np.errstate(invalid="ignore"):
            d = np.hypot((self.xy[:, 0] - at.x()) / px, (self.xy[:, 1] - at.y()) / py)
        d[~np.isfinite(d)] = np.inf
        i = int(np.argmin(d))
        return (i, float(d[i])) if np.isfinite(d[i]) else (-1, float("inf"))

    def _scene_clicked(self, ev) -> None:  # noqa: ANN001 - pyqtgraph MouseClickEvent
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        index, _ = self.nearest(ev.scenePos())
        if index >= 0:
            self.clicked.emit(index)

    def _scene_moved(self, scene_pos) -> None:  # noqa: ANN001 - QPointF
        index, distance = self.nearest(scene_pos)
        if index >= 0 and distance <= POINT_SIZE / 2 + 4:
            if index != self._hover_index:
                self._hover_index = index
                self.show_preview(index)
                self.hovered.emit(index)
        elif self._hover_index != -1:
            self.clear_preview()

    def clear_preview(self) -> None:
        self._hover_index = -1
        self.preview.clear()

    # -------------------------------------------------------------- introspection (tests, panel)

    def point_count(self) -> int:
        return sum(len(item.data) for item in self.items)

    def point_colors(self) -> dict[int, tuple[int, int, int, int]]:
        """Item index -> RGBA of its point as drawn."""
        out: dict[int, tuple[int, int, int, int]] = {}
        for item in self.items:
            for spot in item.points():
                out[int(spot.data())] = spot.brush().color().getRgb()
        return out

    def spot(self, index: int):  # noqa: ANN201 - pyqtgraph SpotItem
        """The drawn point of item ``index`` (None when it is not shown)."""
        for item in self.items:
            for s in item.points():
                if int(s.data()) == index:
                    return s
        return None

    # -------------------------------------------------------------- drawing

    def _axis_name(self, k: int) -> str:
        """The bottom axis says what the percentage is; the left one (as tall as the map, 120 px
        at the least) only its number, so it always fits."""
        if self.projection == "PCA" and self.codes is not None:
            share = f"{100 * self.codes.pca.explained[k]:.0f}%"
            return f"PC{k + 1} ({share} of variance)" if k == 0 else f"PC{k + 1} ({share})"
        return f"{self.projection} {k + 1}"

    def _clear_items(self) -> None:
        for item in self.items:
            self.plot.removeItem(item)
        self.items = []

    def _new_item(self, index: np.ndarray, brush: QBrush | list[QBrush], name: str) -> pg.ScatterPlotItem:
        assert self.xy is not None
        item = pg.ScatterPlotItem(
            x=self.xy[index, 0], y=self.xy[index, 1], data=index, size=POINT_SIZE,
            pen=pg.mkPen(255, 255, 255, 120, width=0.5), brush=brush, hoverable=True, tip=None,
            hoverSize=POINT_SIZE + 5, hoverPen=pg.mkPen("#111", width=1.5), name=name)
        item.sigHovered.connect(self._on_hover)  # (clicks: _scene_clicked, for empty space too)
        self.plot.addItem(item)
        self.items.append(item)
        return item

    def _redraw(self) -> None:
        self._clear_items()
        codes, xy = self.codes, self.xy
        if codes is None or xy is None:
            return
        shown = np.flatnonzero(finite_points(xy))
        if len(shown) < len(xy):
            self.status.setText(f"{len(xy) - len(shown)} point(s) without a finite position are not drawn")
        colour = self.colour_box.currentText()
        legend: list[tuple[QColor, str]] = []
        if colour == "label" and codes.labels is not None:
            labels = codes.labels[shown]
            cats = sorted(int(v) for v in np.unique(labels))
            names = codes.label_names
            self._draw_categories(shown, labels, cats,
                                  [names[c] if 0 <= c < len(names) else str(c) for c in cats], legend)
        elif codes.factors is not None and colour in codes.factor_names:
            k = codes.factor_names.index(colour)
            values = codes.factors[shown, k]
            levels = codes.factor_levels.get(colour)
            if levels:
                cats = sorted(int(v) for v in np.unique(values))
                self._draw_categories(shown, values.astype(np.int64), cats,
                                      [levels[c] if 0 <= c < len(levels) else str(c) for c in cats], legend)
            else:
                self._draw_ramp(shown, values, colour)
        else:
            self._new_item(shown, QBrush(PLAIN_COLOUR), "codes")
            self.legend.setText(f"{len(shown)} codes")
        if legend:
            self.legend.setText(legend_html(legend))
        self._draw_drops()

    def _draw_categories(self, shown: np.ndarray, values: np.ndarray, cats: list[int], names: list[str],
                         legend: list[tuple[QColor, str]]) -> None:
        colors = category_colors(max(cats) + 1 if cats else 0) if cats and min(cats) >= 0 else category_colors(len(cats))
        for j, (cat, name) in enumerate(zip(cats, names, strict=True)):
            color = colors[cat] if cat >= 0 and cat < len(colors) else colors[j % len(colors)]
            idx = shown[values == cat]
            self._new_item(idx, QBrush(color), name)
            legend.append((color, name))

    def _draw_ramp(self, shown: np.ndarray, values: np.ndarray, name: str) -> None:
        values = np.nan_to_num(values.astype(np.float64))
        lo, hi = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
        t = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
        rgba = pg.colormap.get("viridis").map(t, mode="byte")
        cache: dict[tuple[int, ...], QBrush] = {}
        brushes = [cache.setdefault(tuple(int(v) for v in c[:3]), QBrush(QColor(*map(int, c[:3]), 210)))
                   for c in rgba]
        self._new_item(shown, brushes, name)
        stops = pg.colormap.get("viridis").map(np.array([0.0, 0.5, 1.0]), mode="byte")
        ramp = "".join(f'<span style="color:rgb({c[0]},{c[1]},{c[2]}); font-size:13pt">&#9679;</span>'
                       for c in stops)
        self.legend.setText(f"{name}<br>{ramp}<br>{lo:.2g} … {hi:.2g}")

    def _draw_drops(self) -> None:
        for t in self._drop_texts:
            self.plot.removeItem(t)
        self._drop_texts = []
        marks = [d for d in self._drops if np.isfinite(d.xy).all()]
        if not marks or self.codes is None:
            self._drop_item.setData([], [])
            return
        self._drop_item.setData([m.xy[0] for m in marks], [m.xy[1] for m in marks])
        for m in marks:
            label = m.name if len(m.name) <= 18 else m.name[:16] + "…"
            text = pg.TextItem(label + (" (≈)" if m.approximate else ""), color="#111",
                               anchor=(0, 1), fill=pg.mkBrush(255, 255, 255, 200))
            text.setPos(m.xy[0], m.xy[1])
            text.setZValue(25)
            self.plot.addItem(text)
            self._drop_texts.append(text)

    # -------------------------------------------------------------- events

    def _projection_picked(self, text: str) -> None:
        if self.codes is not None and text != self.projection:
            self.projection_requested.emit(text)

    def _on_hover(self, item: pg.ScatterPlotItem, points, ev) -> None:  # noqa: ANN001 - pyqtgraph API
        if points is None or len(points) == 0:
            return
        index = int(points[0].data())
        if index != self._hover_index:
            self._hover_index = index
            self.show_preview(index)
            self.hovered.emit(index)

    def show_preview(self, index: int) -> None:
        if self.codes is None or not 0 <= index < len(self.codes):
            return
        self.preview.set_array(self.codes.images[index], self.describe(index))

    def describe(self, index: int) -> str:
        codes = self.codes
        if codes is None:
            return ""
        parts = [f"item {index}"]
        if codes.labels is not None:
            lab = int(codes.labels[index])
            names = codes.label_names
            parts.append(f"label {names[lab] if 0 <= lab < len(names) else lab}")
        return " · ".join(parts)


__all__ = ["DropMark", "LatentMap", "PROJECTIONS", "category_colors"]
