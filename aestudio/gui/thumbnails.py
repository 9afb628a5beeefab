"""A list model of thumbnails decoded lazily on a thread pool, for folders of thousands of images.

The view asks only for visible rows; the model answers with a placeholder and
queues a decode (QImageReader with a scaled size, so JPEGs decode at thumbnail
resolution; the core's ``read_image`` for formats Qt lacks, such as float TIFF, and for 16-bit
images, which it stretches by their own range as every panel shows them: :mod:`aestudio.data.levels`).
Decoded QImages come back through a queued signal and become cached pixmaps.
A generation counter drops results from a previous folder.
"""

from __future__ import annotations

import collections
import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QImageReader, QPixmap

from aestudio.gui import engine
from aestudio.gui.images import array_to_qimage

logger = logging.getLogger(__name__)

THUMB = 60  # px; big enough to recognise a digit or a photo, small enough for 100 a screen
CACHE_LIMIT = 3000  # pixmaps kept (~60 MB at 72 px); older ones are decoded again if scrolled back
DECODE_THREADS = 2  # leaves the other cores to training on small machines

Item = Path | np.ndarray
# What QImageReader gives for 16-bit PNGs and TIFFs (grey and colour, with and without alpha).
_DEEP_FORMATS = frozenset({QImage.Format.Format_Grayscale16, QImage.Format.Format_RGBX64,
                           QImage.Format.Format_RGBA64, QImage.Format.Format_RGBA64_Premultiplied})


def decode_thumbnail(item: Item, size: int = THUMB) -> QImage:
    """A QImage of at most size x size; raises ValueError naming the file when unreadable."""
    if isinstance(item, np.ndarray):
        img = array_to_qimage(item)
    else:
        reader = QImageReader(str(item))
        reader.setAutoTransform(True)
        full = reader.size()
        if full.isValid() and (full.width() > size or full.height() > size):
            reader.setScaledSize(full.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio))
        # 16-bit images (known from the header): Qt shows them by the type's white level, so a 12-bit
        # camera's frame was a black square; read_image stretches them as the canvas and the models see them.
        img = QImage() if reader.imageFormat() in _DEEP_FORMATS else reader.read()
        if img.isNull():  # formats Qt lacks, and 16-bit images
            img = array_to_qimage(engine.read_image(Path(item)))  # raises ImageLoadError(ValueError)
    if img.width() > size or img.height() > size:
        img = img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    elif max(img.width(), img.height()) * 2 <= size:
        # Tiny images (8x8 digits, 28x28 MNIST): enlarge with crisp pixels so they can be seen.
        factor = size // max(img.width(), img.height())
        img = img.scaled(img.width() * factor, img.height() * factor, Qt.AspectRatioMode.KeepAspectRatio,
                         Qt.TransformationMode.FastTransformation)
    return img


class _Signals(QObject):
    done = Signal(int, int, object, str)  # generation, row, QImage | None, error


class _DecodeJob(QRunnable):
    def __init__(self, signals: _Signals, generation: int, row: int, item: Item) -> None:
        super().__init__()
        self.signals, self.generation, self.row, self.item = signals, generation, row, item

    def run(self) -> None:  # pool thread
        try:
            img, err = decode_thumbnail(self.item), ""
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
            img, err = None, str(exc) or type(exc).__name__
        self.signals.done.emit(self.generation, self.row, img, err)


class ThumbnailModel(QAbstractListModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: list[Item] = []
        self._labels: list[str] = []
        self._cache: collections.OrderedDict[int, QPixmap] = collections.OrderedDict()
        self._pending: set[int] = set()
        self.errors: dict[int, str] = {}
        self._generation = 0
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(DECODE_THREADS)
        self._signals = _Signals(self)
        self._signals.done.connect(self._on_done)
        self._placeholder = QPixmap(THUMB, THUMB)
        self._placeholder.fill(QColor("#e6e8ec"))
        self._broken = QPixmap(THUMB, THUMB)
        self._broken.fill(QColor("#f3c6c2"))

    def set_items(self, items: list[Item], labels: list[str] | None = None) -> None:
        self.beginResetModel()
        self._generation += 1
        self._pool.clear()  # drop queued jobs of the previous set
        self._items = list(items)
        # In-memory samples have no names worth showing; files show their name.
        self._labels = labels or [p.name if isinstance(p, Path) else "" for p in items]
        self._cache.clear()
        self._pending.clear()
        self.errors.clear()
        self.endResetModel()

    def item(self, row: int) -> Item:
        return self._items[row]

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = index.row()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._labels[row]
        if role == Qt.ItemDataRole.ToolTipRole:
            item = self._items[row]
            text = str(item) if isinstance(item, Path) else f"sample {row}"
            return f"{text}\n{self.errors[row]}" if row in self.errors else text
        if role == Qt.ItemDataRole.DecorationRole:
            if row in self.errors:
                return self._broken
            pix = self._cache.get(row)
            if pix is not None:
                self._cache.move_to_end(row)
                return pix
            self._request(row)
            return self._placeholder
        if role == Qt.ItemDataRole.SizeHintRole:
            return QSize(THUMB + 16, THUMB + 24)
        return None

    def _request(self, row: int) -> None:
        if row in self._pending:
            return
        self._pending.add(row)
        self._pool.start(_DecodeJob(self._signals, self._generation, row, self._items[row]))

    def _on_done(self, generation: int, row: int, image: QImage | None, error: str) -> None:
        if generation != self._generation:
            return  # a result for the previous folder
        self._pending.discard(row)
        if image is None:
            self.errors[row] = error
        else:
            self._cache[row] = QPixmap.fromImage(image)
            while len(self._cache) > CACHE_LIMIT:
                self._cache.popitem(last=False)
        idx = self.index(row)
        self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    def decoded_count(self) -> int:
        return len(self._cache)

    def wait_idle(self, msecs: int = 5000) -> bool:
        """Tests and scripts: wait for queued decodes (results still arrive via the event loop)."""
        return self._pool.waitForDone(msecs)
