"""The interpolation view: two chosen ends, a strip of decoded frames, and a slider across it.

:class:`InterpolationStrip` is a view: the panel decides the ends (the last two
dropped images, or the sliders' code taken with "Current → A/B"), decodes, and
hands back the frames (:meth:`set_frames`) and the in-between frame
(:meth:`set_between`). The widget emits ``changed`` when an end or the number
of frames changes and ``t_changed(t)`` as the slider across the strip moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from aestudio.gui.panels.common import ImagePane

T_STEPS = 1000  # slider resolution across the strip
DEFAULT_FRAMES = 8


@dataclass(frozen=True)
class End:
    """One end of the interpolation: a code and what it came from."""

    code: np.ndarray  # float32 [D]
    image: np.ndarray | None  # [C, H, W] what it came from (dropped image, decoded sliders), if any
    name: str  # e.g. "digit.png", "item 12 (label 3)", "sliders"


class InterpolationStrip(QWidget):
    changed = Signal()  # an end or the frame count changed: recompute the strip
    t_changed = Signal(float)  # the in-between slider moved (0..1)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ends: list[End | None] = [None, None]
        self.frames: np.ndarray | None = None  # [N, C, H, W] decoded strip
        self.end_labels = [QLabel("A: —"), QLabel("B: —")]
        self.end_labels[1].setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        for label in self.end_labels:
            label.setObjectName("hint")
        self.take_a = QPushButton("Current → A")
        self.take_b = QPushButton("Current → B")
        self.swap = QPushButton("Swap")
        for b, tip in ((self.take_a, "Use the code under the sliders as end A"),
                       (self.take_b, "Use the code under the sliders as end B"),
                       (self.swap, "Exchange A and B")):
            b.setToolTip(tip)
        self.swap.clicked.connect(self._swap)
        self.frames_box = QSpinBox()
        self.frames_box.setRange(3, 16)
        self.frames_box.setValue(DEFAULT_FRAMES)
        self.frames_box.setSuffix(" frames")
        self.frames_box.valueChanged.connect(lambda _v: self.changed.emit())
        self.strip = ImagePane("", "Drop two images, or put codes on A and B with the buttons below")
        self.strip.title.hide()
        self.strip.caption.hide()
        self.strip.canvas.setMinimumSize(200, 48)
        self.t_slider = QSlider(Qt.Orientation.Horizontal)
        self.t_slider.setRange(0, T_STEPS)
        self.t_slider.setValue(T_STEPS // 2)
        self.t_slider.setEnabled(False)
        self.t_slider.setToolTip("Slide from A to B: a smooth in-between frame")
        self.t_slider.valueChanged.connect(lambda v: self.t_changed.emit(v / T_STEPS))
        self.between = ImagePane("In between", "")
        self.between.canvas.setMinimumSize(64, 64)
        self.between.setFixedWidth(110)
        self.save_button = QPushButton("Save strip…")
        self.save_button.setEnabled(False)

        names = QHBoxLayout()
        names.addWidget(self.end_labels[0], 1)
        names.addWidget(self.end_labels[1], 1)
        buttons = QHBoxLayout()
        for w in (self.take_a, self.take_b, self.swap, self.frames_box):
            buttons.addWidget(w)
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)
        centre = QVBoxLayout()
        centre.setContentsMargins(0, 0, 0, 0)
        centre.setSpacing(2)
        centre.addWidget(self.strip, 1)
        centre.addWidget(self.t_slider)
        centre.addLayout(names)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addLayout(centre, 1)
        top.addWidget(self.between)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top, 1)
        lay.addLayout(buttons)

    # -------------------------------------------------------------- ends

    def set_end(self, k: int, end: End | None, *, emit: bool = True) -> None:
        self.ends[k] = end
        name = "—" if end is None else end.name
        self.end_labels[k].setText(f"{'AB'[k]}: {name}")
        self.end_labels[k].setToolTip(name)
        if emit:
            self.changed.emit()

    def push(self, end: End) -> None:
        """A new end: B moves to A, the new one becomes B (the last two dropped images)."""
        if self.ends[1] is None and self.ends[0] is None:
            self.set_end(0, end)
            return
        if self.ends[1] is None:
            self.set_end(1, end)
            return
        self.set_end(0, self.ends[1], emit=False)
        self.set_end(1, end)

    def _swap(self) -> None:
        a, b = self.ends
        self.set_end(0, b, emit=False)
        self.set_end(1, a)

    @property
    def ready(self) -> bool:
        return self.ends[0] is not None and self.ends[1] is not None

    @property
    def t(self) -> float:
        return self.t_slider.value() / T_STEPS

    # -------------------------------------------------------------- results

    def set_frames(self, frames: np.ndarray | None, grid: np.ndarray | None = None) -> None:
        """The decoded strip ([N, C, H, W]) and its image (a one-row grid), or ``None``."""
        self.frames = frames
        ok = frames is not None and grid is not None
        self.t_slider.setEnabled(ok)
        self.save_button.setEnabled(ok)
        if not ok:
            self.strip.clear()
            self.between.clear()
            return
        self.strip.set_array(grid)

    def set_between(self, image: np.ndarray | None, t: float) -> None:
        if image is None:
            self.between.clear()
        else:
            self.between.set_array(image, f"t = {t:.2f}")
