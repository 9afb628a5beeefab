"""The Latent tab's widgets and layout (no behaviour: :mod:`latent` connects and drives them).

Two pages in a stack: the empty state (what the tab does, what to load) and the
working page: the decoded image, Reset/Random/Save and the sliders on the
left; the map of the data's codes on the right, with retrieval by code and
interpolation under it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from aestudio.gui.panels.common import ImagePane
from aestudio.gui.panels.latent_interp import InterpolationStrip
from aestudio.gui.panels.latent_map import LatentMap
from aestudio.gui.panels.latent_neighbours import NEIGHBOURS, NeighbourRow
from aestudio.gui.panels.latent_sliders import LatentSliders


class EmptyPage(QWidget):
    """Title, purpose and hint of the tab, and a line saying why it is empty."""

    def __init__(self, title: str, purpose: str, hint: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.addStretch(2)
        for text, name in ((title, "emptyTitle"), (purpose, "emptyText"), (hint, "emptyHint")):
            label = QLabel(text)
            label.setObjectName(name)
            label.setWordWrap(True)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            lay.addWidget(label)
        self.state = QLabel()
        self.state.setObjectName("emptyState")
        self.state.setWordWrap(True)
        self.state.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.state)
        lay.addStretch(3)


class LatentPage(QWidget):
    """The working page: every widget the panel drives, laid out."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = QLabel()
        self.header.setObjectName("runTitle")
        self.subheader = QLabel()
        self.subheader.setObjectName("hint")
        self.progress = QProgressBar()
        self.progress.setFixedWidth(200)  # room for "encoding 1437 / 1437"; the title stretch squeezed it to half
        self.progress.hide()
        head = QHBoxLayout()
        titles = QVBoxLayout()
        titles.setSpacing(0)
        titles.addWidget(self.header)
        titles.addWidget(self.subheader)
        head.addLayout(titles, 1)
        head.addWidget(self.progress)

        self.decoded = ImagePane("Decoded", "Move a slider")
        self.decoded.canvas.setMinimumSize(200, 200)
        # The canvas fills its whole rect before drawing, so its parents need not repaint under it
        # on every slider move.
        self.decoded.canvas.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.reset_button = QPushButton("Reset")
        self.random_button = QPushButton("Random")
        self.save_image_button = QPushButton("Save image…")
        self.save_grid_button = QPushButton("Save 8×8 samples…")
        self.save_image_button.setToolTip("Save the decoded image as a PNG, at the model's size")
        self.save_grid_button.setToolTip("Save a grid of 64 decoded random codes as a PNG")
        buttons = QHBoxLayout()
        for b in (self.reset_button, self.random_button):
            buttons.addWidget(b)
        saves = QHBoxLayout()
        for b in (self.save_image_button, self.save_grid_button):
            saves.addWidget(b)
        self.sliders = LatentSliders()
        self.code_box = QGroupBox("Code")
        cl = QVBoxLayout(self.code_box)
        cl.setContentsMargins(4, 4, 4, 4)
        cl.addWidget(self.sliders)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 4, 0)
        ll.addWidget(self.decoded, 3)
        ll.addLayout(buttons)
        ll.addLayout(saves)
        ll.addWidget(self.code_box, 4)

        self.map = LatentMap()
        map_box = QGroupBox("Codes of the data")
        QVBoxLayout(map_box).addWidget(self.map)
        self.neighbour_row = NeighbourRow(NEIGHBOURS)
        self.interp = InterpolationStrip()
        # Neighbours and interpolation share one tabbed box: side by side they made the
        # panel ~1280 px wide at least, more than a laptop window leaves beside the side bar.
        # The panel switches to the tab whose content just changed.
        lower = self.lower_tabs = QTabWidget()
        lower.addTab(self.neighbour_row, "Nearest by code")
        lower.addTab(self.interp, "Interpolate")
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(map_box)
        right.addWidget(lower)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        right.setSizes([520, 230])
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(right)
        body.setStretchFactor(0, 2)
        body.setStretchFactor(1, 5)
        body.setSizes([330, 820])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addLayout(head)
        lay.addWidget(body, 1)


class LatentStack(QStackedWidget):
    """The empty page and the working page."""

    def __init__(self, title: str, purpose: str, hint: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.empty_page = EmptyPage(title, purpose, hint)
        self.page = LatentPage()
        self.addWidget(self.empty_page)
        self.addWidget(self.page)
