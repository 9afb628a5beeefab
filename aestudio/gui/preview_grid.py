"""The per-epoch preview grid: rows of input / reconstruction (/ clean), or image / mask / truth.

Fed with a :class:`aestudio.training.events.Preview`; each row is labelled so a
reader knows which line is which without a legend.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QResizeEvent
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from aestudio.gui.images import array_to_qimage, mask_to_qimage, scaled_pixmap
from aestudio.training.events import Preview

logger = logging.getLogger(__name__)

MIN_TILE, MAX_TILE = 40, 112  # px per preview image; the grid fills the width it gets


class PreviewGrid(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tile = MIN_TILE
        self._rows_data: list[tuple[str, list[QImage]]] = []
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self._title = QLabel("Previews appear after the first epoch.")
        self._title.setObjectName("hint")
        self._title.setWordWrap(True)  # the column can be narrow: wrap rather than cut the hint off
        outer.addWidget(self._title)
        self._grid_host = QWidget()
        self._grid = QGridLayout(self._grid_host)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(3)
        outer.addWidget(self._grid_host)
        outer.addStretch(1)
        # Ignored horizontally: the grid shrinks its tiles instead of forcing a scroll bar.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.rows = 0  # how many rows are shown (tests read it)

    def clear(self, hint: str = "Previews appear after the first epoch.") -> None:
        self._clear_grid()
        self._rows_data = []
        self.rows = 0
        self._title.setText(hint)

    def _clear_grid(self) -> None:
        while self._grid.count():
            item = self._grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()

    def set_preview(self, preview: Preview, epoch: int | None = None) -> None:
        rows: list[tuple[str, list[QImage]]] = []
        try:
            rows.append(("input", [array_to_qimage(x) for x in preview.inputs]))
            if preview.outputs is not None:
                rows.append(("output", [array_to_qimage(x) for x in preview.outputs]))
            if preview.clean is not None:
                rows.append(("clean", [array_to_qimage(x) for x in preview.clean]))
            if preview.masks is not None:
                rows.append(("predicted", [mask_to_qimage(m) for m in preview.masks]))
            if preview.targets is not None and np.ndim(preview.targets) == 3:
                rows.append(("truth", [mask_to_qimage(m) for m in preview.targets]))
        except (ValueError, TypeError) as exc:  # a malformed preview must not reach a painter
            logger.warning("skipping a malformed preview: %s", exc)
            return
        self.clear(f"Validation preview, epoch {epoch + 1}" if epoch is not None else "Validation preview")
        self._rows_data = rows
        self._tile = self._fit_tile()
        self._render()

    def _fit_tile(self) -> int:
        count = max((len(images) for _, images in self._rows_data), default=1)
        label_w = 70  # the row names
        tile = (self.width() - label_w) // max(count, 1) - self._grid.horizontalSpacing()
        return int(min(MAX_TILE, max(MIN_TILE, tile)))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._rows_data:
            tile = self._fit_tile()
            if abs(tile - self._tile) >= 4:  # re-render only on real changes, not every pixel
                self._tile = tile
                self._render()

    def _render(self) -> None:
        self._clear_grid()
        rows = self._rows_data
        for r, (name, images) in enumerate(rows):
            label = QLabel(name)
            label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            label.setObjectName("hint")
            self._grid.addWidget(label, r, 0)
            for c, img in enumerate(images):
                tile = QLabel()
                tile.setPixmap(scaled_pixmap(img, self._tile))
                tile.setFixedSize(self._tile, self._tile)
                tile.setAlignment(Qt.AlignmentFlag.AlignCenter)
                self._grid.addWidget(tile, r, c + 1)
        self._grid.setColumnStretch(len(rows[0][1]) + 1 if rows else 1, 1)
        self.rows = len(rows)
