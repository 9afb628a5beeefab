"""Non-modal notifications: a dismissable message bar and an error dialog with details.

Nothing here blocks: errors from workers, bad drops and finished runs all arrive
while the user keeps working. Every message is also logged and kept in
:attr:`MessageBar.history`, so tests (and a future log view) can read them.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

logger = logging.getLogger(__name__)

MAX_VISIBLE = 2  # older messages go (history keeps them): the banner floats over the sample strip, not the panels
INFO_TIMEOUT_MS = 8000  # info messages fade on their own; warnings and errors stay until closed


class Level(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Message:
    level: Level
    text: str
    details: str = ""
    # Messages about one thing (e.g. TOPIC_MODEL: "loading the shipped photo-denoiser" then "Active model:
    # ..."): a new one replaces the visible infos of its topic, so one banner tells the latest state.
    topic: str = ""


TOPIC_MODEL = "model"  # the active model: offered, loading, loaded, failed to load


class _MessageRow(QFrame):
    closed = Signal(object)

    def __init__(self, message: Message, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = message
        self.setObjectName("messageRow")
        self.setProperty("level", message.level.value)  # styled by resources/style.qss
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 4, 4)
        label = QLabel(message.text)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(label, 1)
        if message.details:
            more = QToolButton(text="Details…")
            more.clicked.connect(self._show_details)
            lay.addWidget(more)
        close = QToolButton(text="✕")
        close.setToolTip("Dismiss")
        close.setAutoRaise(True)
        close.clicked.connect(lambda: self.closed.emit(self))
        lay.addWidget(close)

    def _show_details(self) -> None:
        show_error_dialog(self.window(), self.message.text, self.message.details)


class MessageBar(QWidget):
    """A stack of short messages.

    :meth:`float_over` makes it float over the bottom edge of a host widget instead of
    taking a place in a layout: a bar in the layout pushed the whole tab area down and
    back up as messages came and went, and a click landed on the wrong control.
    """

    posted = Signal(object)  # Message

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history: list[Message] = []
        self._host: QWidget | None = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)
        self.hide()

    def float_over(self, host: QWidget) -> None:
        """Float over ``host``'s bottom edge (following its resizes); no layout moves."""
        self._host = host
        self.setParent(host)
        host.installEventFilter(self)
        self._place()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt override
        if obj is self._host and event.type() in (QEvent.Type.Resize, QEvent.Type.Show):
            self._place()
        return False

    def _place(self) -> None:
        host = self._host
        if host is None:
            return
        margin = 12
        width = max(100, host.width() - 2 * margin)
        rows = [w for w in (self._layout.itemAt(i).widget() for i in range(self._layout.count())) if w is not None]
        heights = [max(r.heightForWidth(width) if r.hasHeightForWidth() else r.sizeHint().height(),
                       r.minimumSizeHint().height()) for r in rows]
        needed = sum(heights) + 2 * max(0, len(rows) - 1)
        height = min(needed, max(40, host.height() // 2))
        self.setGeometry(margin, max(0, host.height() - height - margin), width, height)
        self.raise_()

    def post(self, level: Level, text: str, details: str = "", *, topic: str = "") -> Message:
        """Show a message; with a ``topic`` it replaces the visible infos of that topic (warnings and
        errors of it stay until dismissed)."""
        msg = Message(level, text, details, topic)
        self.history.append(msg)
        log_level = {Level.INFO: logging.INFO, Level.WARNING: logging.WARNING, Level.ERROR: logging.ERROR}[level]
        logger.log(log_level, "%s", text)
        if topic:
            for old in [self._layout.itemAt(i).widget() for i in range(self._layout.count())]:
                if isinstance(old, _MessageRow) and old.message.topic == topic and old.message.level is Level.INFO:
                    self._remove(old)
        row = _MessageRow(msg, self)
        row.closed.connect(self._remove)
        self._layout.addWidget(row)
        while self._layout.count() > MAX_VISIBLE:
            rows = [self._layout.itemAt(i).widget() for i in range(self._layout.count())]
            # The oldest info goes first: a warning or an error stays until it is dismissed.
            infos = [r for r in rows if isinstance(r, _MessageRow) and r.message.level is Level.INFO and r is not row]
            self._remove(infos[0] if infos else rows[0])
        if level is Level.INFO:
            QTimer.singleShot(INFO_TIMEOUT_MS, row, lambda r=row: self._remove(r))
        self.show()
        self._place()
        self.posted.emit(msg)
        return msg

    def info(self, text: str, details: str = "") -> Message:
        return self.post(Level.INFO, text, details)

    def warning(self, text: str, details: str = "") -> Message:
        return self.post(Level.WARNING, text, details)

    def error(self, text: str, details: str = "") -> Message:
        return self.post(Level.ERROR, text, details)

    def visible_messages(self) -> list[Message]:
        rows = (self._layout.itemAt(i).widget() for i in range(self._layout.count()))
        return [r.message for r in rows if isinstance(r, _MessageRow)]

    def clear(self) -> None:
        for row in [self._layout.itemAt(i).widget() for i in range(self._layout.count())]:
            self._remove(row)

    def _remove(self, row: QWidget) -> None:
        if row is None or row.parent() is not self:
            return
        self._layout.removeWidget(row)
        row.setParent(None)
        row.deleteLater()
        if self._layout.count() == 0:
            self.hide()
        else:
            self._place()


def show_error_dialog(parent: QWidget | None, text: str, details: str = "",
                      title: str = "aestudio") -> QMessageBox:
    """A non-modal error box; the traceback sits behind "Show Details…"."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Close, parent)
    box.setWindowModality(Qt.WindowModality.NonModal)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    if details:
        box.setDetailedText(details)
    box.show()
    return box
