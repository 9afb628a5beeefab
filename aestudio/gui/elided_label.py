"""A label of at most a few lines that elides its text when short of room instead of widening or wrapping on."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

_TALL = 1 << 20


class ElidedLabel(QLabel):
    """At most ``lines`` lines (one by default) that elide when short of room: a long path, title or
    caption must not widen the panel, squeeze its neighbours, or wrap to many lines and push what is
    below out of view. One line elides in the middle by default (``mode``); several wrap at words, as
    many as the text needs up to ``lines``, and end in "…". ``text()`` stays the full text, which is
    also the tooltip. ``keep_lines``: its minimum height is all ``lines`` (a layout squeezed to its
    minimum then still shows them; else its minimum is one line)."""

    def __init__(self, text: str = "", parent: QWidget | None = None,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle, lines: int = 1, keep_lines: bool = False) -> None:
        super().__init__(parent)
        self._mode = mode
        self._lines = max(1, lines)
        self._keep = keep_lines
        self._shown: tuple[tuple[str, int, str], str] = (("", -1, ""), "")  # (text, width, font) -> what fits
        if self._lines > 1:
            policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
            policy.setHeightForWidth(True)
            self.setSizePolicy(policy)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override
        super().setText(text)
        self.setToolTip(text)
        self.updateGeometry()

    def _wrapped(self, text: str, width: int) -> QRect:
        return self.fontMetrics().boundingRect(QRect(0, 0, max(1, width), _TALL), int(Qt.TextFlag.TextWordWrap), text)

    def _lines_height(self, n: int) -> int:
        """The height ``n`` lines take in the current font (as the wrapping measures them)."""
        return self.fontMetrics().boundingRect(QRect(0, 0, 1 << 16, _TALL), 0, "\n".join("X" * n)).height()

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return self._lines > 1

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        if self._lines == 1:
            return super().heightForWidth(width)
        m = self.contentsMargins()
        inner = width - m.left() - m.right()
        return min(self._wrapped(self.text(), inner).height(), self._lines_height(self._lines)) + m.top() + m.bottom()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        if self._lines == 1:
            return QSize(60, super().minimumSizeHint().height())
        m = self.contentsMargins()
        return QSize(60, self._lines_height(self._lines if self._keep else 1) + m.top() + m.bottom())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        if self._lines == 1:
            return super().sizeHint()
        width = self.fontMetrics().horizontalAdvance(self.text()) + 8  # all on one line where there is room
        return QSize(width, self.heightForWidth(width))

    def _fits(self, text: str, width: int) -> bool:
        box = self._wrapped(text, width)
        return box.height() <= self._lines_height(self._lines) and box.width() <= width

    def elided(self) -> str:
        width = self.contentsRect().width()
        if self._lines == 1:
            return self.fontMetrics().elidedText(self.text(), self._mode, width)
        key = (self.text(), width, self.font().key())
        if self._shown[0] == key:  # paints repeat often (a training run's updates): reuse the search
            return self._shown[1]
        shown = self.text() if self._fits(self.text(), width) else self._fit_words(width)
        self._shown = (key, shown)
        return shown

    def _fit_words(self, width: int) -> str:
        """The most leading words that fit in ``lines`` lines with "…" after them (binary search)."""
        words = self.text().split()
        lo, hi = 0, len(words)  # the most words that fit with "…" after them
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._fits(" ".join(words[:mid]) + "…", width):
                lo = mid
            else:
                hi = mid - 1
        return " ".join(words[:lo]) + "…"

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        flags = int(self.alignment()) | (int(Qt.TextFlag.TextWordWrap) if self._lines > 1 else 0)
        self.style().drawItemText(p, self.contentsRect(), flags, self.palette(), self.isEnabled(),
                                  self.elided(), self.foregroundRole())
