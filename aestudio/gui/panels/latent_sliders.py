"""One labelled slider per latent dimension, most important first, in a scroll area.

:class:`LatentSliders` owns the current code ``z`` (float32 [D], in the code's own
dimension order). Moving a slider changes one entry and passes a copy to
``on_move`` when the owner set it (the hot path of a drag: a plain call, not a
signal), else emits ``code_changed``; :meth:`set_code` moves every slider at
once (a clicked map point, a dropped image) and emits once. Rows are ordered by importance (mean KL per
dimension for a VAE, variance of the code otherwise); each row names its
dimension and shows the importance so a person sees which sliders do something.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from aestudio.explore.latent_codes import Ranges

DECIMALS = 2  # slider steps of 0.01: smooth to drag, and the label stays short


class _Bar(QWidget):
    """A thin horizontal bar: the dimension's importance relative to the largest."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fraction = 0.0
        self.setFixedSize(36, 6)

    def set_fraction(self, f: float) -> None:
        self.fraction = float(np.clip(f if np.isfinite(f) else 0.0, 0.0, 1.0))
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        from PySide6.QtGui import QColor, QPainter

        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#e3e6eb"))
        w = int(round(self.width() * self.fraction))
        if w:
            p.fillRect(0, 0, w, self.height(), QColor("#2f6db5"))


class LatentSliders(QWidget):
    """Sliders for a code of ``D`` values; ``code_changed(np.ndarray)`` on every move."""

    code_changed = Signal(object)  # float32 [D] copy, in the code's dimension order

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._z = np.zeros(0, np.float32)
        self._ranges: Ranges | None = None
        self.sliders: list[QLabeledDoubleSlider] = []  # index = code dimension (not row)
        self.order = np.zeros(0, np.int64)  # row -> dimension
        self._names: list[QLabel] = []
        self._bars: list[_Bar] = []
        self._quiet = False
        self.on_move: Callable[[np.ndarray], None] | None = None  # the owner's slider-move handler, if set

        self._rows = QWidget()
        self._grid = QGridLayout(self._rows)
        self._grid.setContentsMargins(4, 2, 8, 2)
        self._grid.setHorizontalSpacing(8)
        self._grid.setVerticalSpacing(2)
        self._grid.setColumnStretch(2, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self._rows)
        self.scroll = scroll
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(scroll)

    # -------------------------------------------------------------- building

    def set_ranges(self, ranges: Ranges, code: np.ndarray | None = None) -> None:
        """Rebuild the rows for these ranges (ordered by importance) and show ``code`` (else the centre)."""
        d = len(ranges.low)
        if d != len(self.sliders):
            self._build(d)
        self._ranges = ranges
        self.order = ranges.order if ranges.importance_kind else np.arange(d)
        top = float(ranges.importance.max()) if d and ranges.importance_kind else 0.0
        for w in (*self._names, *self._bars, *self.sliders):
            self._grid.removeWidget(w)  # re-added below in the new order (Qt warns on a double add)
        for row, dim in enumerate(self.order):
            dim = int(dim)
            name, bar, slider = self._names[row], self._bars[row], self.sliders[dim]
            for col, w in enumerate((name, bar, slider)):
                self._grid.addWidget(w, row, col, Qt.AlignmentFlag.AlignVCenter)
            name.setText(f"z{dim}")
            imp = float(ranges.importance[dim])
            if ranges.importance_kind == "KL":
                tip = f"dimension {dim}: mean KL {imp:.3f} nats over the data (how much the model uses it)"
            elif ranges.importance_kind:
                tip = f"dimension {dim}: variance {imp:.3g} of the code over the data"
            else:
                tip = f"dimension {dim} (open a data set to rank the dimensions)"
            for w in (name, bar, slider):
                w.setToolTip(tip)
            bar.set_fraction(imp / top if top > 0 else 0.0)
            bar.setVisible(bool(ranges.importance_kind))
            self._quiet = True
            try:
                slider.setRange(float(ranges.low[dim]), float(ranges.high[dim]))
            finally:
                self._quiet = False
        self.set_code(ranges.center if code is None else code, emit=False)

    def _build(self, d: int) -> None:
        for w in (*self._names, *self._bars, *self.sliders):
            self._grid.removeWidget(w)
            w.deleteLater()
        self._names, self._bars, self.sliders = [], [], []
        for dim in range(d):
            name = QLabel(f"z{dim}")
            name.setObjectName("latentDim")
            name.setMinimumWidth(28)
            bar = _Bar()
            slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
            slider.setDecimals(DECIMALS)
            slider.setSingleStep(0.05)
            slider.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            slider.valueChanged.connect(lambda v, dim=dim: self._moved(dim, v))
            self._names.append(name)
            self._bars.append(bar)
            self.sliders.append(slider)
        self._z = np.zeros(d, np.float32)

    # -------------------------------------------------------------- the code

    @property
    def dim(self) -> int:
        return len(self.sliders)

    def code(self) -> np.ndarray:
        return self._z.copy()

    def row_slider(self, row: int) -> QLabeledDoubleSlider:
        """The slider shown in ``row`` (row 0 = the most important dimension)."""
        return self.sliders[int(self.order[row])]

    def set_code(self, z: np.ndarray, *, emit: bool = True) -> None:
        """Move every slider to ``z`` (values outside a range are kept in the code, the knob clamps)."""
        z = np.asarray(z, dtype=np.float32).reshape(-1)
        if len(z) != self.dim:
            raise ValueError(f"a code of {len(z)} values for {self.dim} sliders")
        if not np.isfinite(z).all():
            raise ValueError("the code contains NaN or infinite values")
        self._quiet = True
        try:
            for dim, slider in enumerate(self.sliders):
                slider.setValue(float(z[dim]))
        finally:
            self._quiet = False
        self._z = z.copy()
        if emit:
            self.code_changed.emit(self._z.copy())

    def _moved(self, dim: int, value: float) -> None:
        if self._quiet:
            return
        self._z[dim] = value
        if self.on_move is not None:
            self.on_move(self._z.copy())  # a plain call: a Qt signal emit costs ~0.2 ms per move
        else:
            self.code_changed.emit(self._z.copy())
