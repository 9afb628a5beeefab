"""Retrieval by code: a dropped image beside the data items whose codes are nearest to its code."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from aestudio.gui.panels.common import ImagePane

NEIGHBOURS = 8  # how many nearest codes are shown


class NeighbourRow(QWidget):
    """The query image, then the ``k`` nearest items (two rows of four), each with its distance."""

    picked = Signal(int)  # a neighbour was clicked: its item index

    def __init__(self, k: int = NEIGHBOURS, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.indices = np.zeros(0, np.int64)
        self.title = QLabel("Drop an image to find the data items with the nearest codes.")
        self.title.setObjectName("hint")
        self.query = ImagePane("Dropped", "")
        self.query.canvas.setMinimumSize(72, 72)
        self.query.setMaximumWidth(120)
        self.panes: list[ImagePane] = []
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        cols = max(1, (k + 1) // 2)
        for i in range(k):
            pane = ImagePane("", "")
            pane.title.hide()
            pane.canvas.setMinimumSize(44, 44)
            pane.caption.setWordWrap(False)
            pane.caption.setStyleSheet("font-size: 8pt; color: #4a515b;")
            pane.canvas.mousePressEvent = lambda _e, i=i: self._clicked(i)  # type: ignore[method-assign]
            pane.canvas.setCursor(Qt.CursorShape.PointingHandCursor)
            pane.setToolTip("Click to put this item's code on the sliders")
            self.panes.append(pane)
            grid.addWidget(pane, i // cols, i % cols)
        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.query)
        body.addLayout(grid, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.title)
        lay.addLayout(body, 1)
        # Two rows of tiles with their captions, and the title: never squeezed until captions clip.
        self.setMinimumHeight(150)

    def show_neighbours(self, query: np.ndarray, name: str, indices: np.ndarray, distances: np.ndarray,
                        images: np.ndarray, captions: list[str]) -> None:
        """``images`` [k, C, H, W] of the items ``indices`` (nearest first), ``captions`` one per item."""
        self.indices = np.asarray(indices, dtype=np.int64)
        self.query.set_array(query, name if len(name) <= 20 else name[:18] + "…")
        self.title.setText(f"Nearest {len(self.indices)} to {name} (label · distance in code space)")
        self.title.setToolTip(f"The {len(self.indices)} data items whose codes are nearest to the code of {name} "
                              "(Euclidean distance); click one to put its code on the sliders")
        for i, pane in enumerate(self.panes):
            if i < len(self.indices):
                pane.set_array(images[i], f"{captions[i]} · {float(distances[i]):.2f}")
                pane.setToolTip(f"item {int(self.indices[i])}, distance {float(distances[i]):.3f}: "
                                "click to put its code on the sliders")
            else:
                pane.clear()

    def clear(self, text: str = "Drop an image to find the data items with the nearest codes.") -> None:
        self.indices = np.zeros(0, np.int64)
        self.query.clear()
        for pane in self.panes:
            pane.clear()
        self.title.setText(text)

    def _clicked(self, i: int) -> None:
        if i < len(self.indices):
            self.picked.emit(int(self.indices[i]))
