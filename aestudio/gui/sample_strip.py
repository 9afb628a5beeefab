"""A strip of the shipped sample images: drag one onto any panel, or click it to open it.

The first-run companion of the model zoo: a photo for the Noise lab, pictures
for Segment, digits and sprites for Reconstruct and Latent. Items drag out as
file URLs (exactly what a file manager would drop), so every drop target in the
window handles them the same way; a click emits ``open_requested([path])``.
Only a handful of small files: thumbnails are decoded once, in the GUI thread.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QMimeData, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QWidget,
)

from aestudio.gui import engine
from aestudio.gui.thumbnails import decode_thumbnail

logger = logging.getLogger(__name__)

THUMB = 40  # small enough that every tab fits above the strip on a 1366x768 screen
PATH_ROLE = Qt.ItemDataRole.UserRole

# What each sample is for, by file-name prefix (shown as the tooltip).
HINTS = {
    "photo": "a photo: drop it on the Noise lab (add noise, then denoise)",
    "shapes-seg": "a shapes-seg picture: drop it on Segment",
    "shapes": "a shapes sprite: drop it on Reconstruct or Latent (shapes-vae)",
    "digit": "an 8x8 digit: drop it on Reconstruct or Latent (digits models)",
}


# Short labels under the thumbnails: the file-name prefix says what a sample is for.
LABEL_PREFIXES = {"photo-": "", "shapes-seg-": "seg ", "shapes-": "sprite ", "digit-": "digit "}


def label_for(path: Path) -> str:
    for prefix, short in LABEL_PREFIXES.items():
        if path.stem.startswith(prefix):
            return short + path.stem[len(prefix):]
    return path.stem


def hint_for(path: Path) -> str:
    for prefix, text in HINTS.items():  # longest prefixes first where they overlap ("shapes-seg")
        if path.stem.startswith(prefix):
            return text
    return "drop it on a panel"


class _SampleList(QListWidget):
    """Icons in one row; drags carry file URLs."""

    def mimeData(self, items: list[QListWidgetItem]) -> QMimeData:  # noqa: N802 - Qt override
        data = QMimeData()
        data.setUrls([QUrl.fromLocalFile(str(it.data(PATH_ROLE))) for it in items])
        return data

    def mimeTypes(self) -> list[str]:  # noqa: N802 - Qt override
        return ["text/uri-list"]


class SampleStrip(QWidget):
    """``Samples: [thumbnails...]`` with a short how-to; hidden when no samples are installed."""

    open_requested = Signal(list)  # list[Path]

    def __init__(self, paths: list[Path] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sampleStrip")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 2, 0, 2)
        title = QLabel("<b>Samples</b><br>drag onto a panel<br>or click to open")
        title.setObjectName("hint")
        lay.addWidget(title)
        self.list = _SampleList()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setFlow(QListView.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setSpacing(3)
        self.list.setDragEnabled(True)
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.list.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setFixedHeight(THUMB + 34)
        self.list.itemClicked.connect(lambda item: self.open_requested.emit([Path(item.data(PATH_ROLE))]))
        lay.addWidget(self.list, 1)
        self.set_paths(engine.sample_images() if paths is None else paths)

    def set_paths(self, paths: list[Path]) -> None:
        self.list.clear()
        for path in paths:
            try:
                icon = QIcon(QPixmap.fromImage(decode_thumbnail(path, THUMB)))
            except ValueError as exc:  # a broken sample is skipped, not fatal
                logger.warning("sample %s: %s", path, exc)
                continue
            item = QListWidgetItem(icon, label_for(path))
            item.setData(PATH_ROLE, str(path))
            item.setToolTip(f"{path.name}: {hint_for(path)}")
            item.setSizeHint(QSize(THUMB + 30, THUMB + 28))
            self.list.addItem(item)
        self.setVisible(self.list.count() > 0)

    def paths(self) -> list[Path]:
        return [Path(self.list.item(i).data(PATH_ROLE)) for i in range(self.list.count())]
