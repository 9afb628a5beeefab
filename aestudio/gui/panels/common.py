"""Building blocks shared by the exploration panels: an image pane and a latest-only runner.

:class:`ImagePane` shows a numpy image (or a QImage) scaled to fit, crisp when
upscaled (28x28 digits stay pixels, not blur), with a caption under it.

:class:`LatestRunner` is how a slider talks to a model: one dedicated thread runs
the *latest* submitted job; a job submitted while another runs replaces any job
still waiting, so dragging a slider never queues up stale work and the GUI thread
never waits. Results come back in the GUI thread. A job that raises is reported
through ``on_error`` and the runner goes on.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from aestudio.gui.images import array_to_qimage

logger = logging.getLogger(__name__)


R = TypeVar("R")  # what a submitted job returns, and its callback receives


class _Canvas(QWidget):
    """Paints a QImage centred and scaled to fit, nearest-neighbour when enlarging."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._placeholder = ""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(96, 96)

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self.update()

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def image_rect(self):  # noqa: ANN201 - QRect
        """Where the image is drawn in widget coordinates (for mapping clicks to pixels)."""
        from PySide6.QtCore import QRect

        if self._image is None or self._image.isNull():
            return QRect()
        size = self._image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - size.width()) // 2
        y = (self.height() - size.height()) // 2
        return QRect(x, y, size.width(), size.height())

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().window())
        if self._image is None or self._image.isNull():
            if self._placeholder:
                p.setPen(self.palette().placeholderText().color())
                p.drawText(self.rect().adjusted(8, 8, -8, -8),
                           Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            return
        target = self.image_rect()
        enlarge = target.width() > self._image.width()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not enlarge)
        p.drawImage(target, self._image)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(256, 256)


class ImagePane(QWidget):
    """A titled image view: ``set_array(hwc_or_chw_float01)``, ``set_qimage(img)``, ``clear()``."""

    def __init__(self, title: str, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(2)
        self.title = QLabel(title)
        self.title.setObjectName("paneTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.canvas = _Canvas()
        self.canvas.set_placeholder(placeholder)
        self.caption = QLabel("")
        self.caption.setObjectName("paneCaption")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setWordWrap(True)
        lay.addWidget(self.title)
        lay.addWidget(self.canvas, 1)
        lay.addWidget(self.caption)
        self.array: np.ndarray | None = None  # the last array shown (what tests and "Save" read)

    def set_array(self, image: np.ndarray | None, caption: str | None = None) -> None:
        """Show a float image in [0, 1] ([H, W], [H, W, C] or [C, H, W]); ``None`` clears."""
        if image is None:
            self.clear()
            return
        self.array = np.asarray(image)
        self.set_qimage(array_to_qimage(self.array), caption)

    def set_qimage(self, image: QImage, caption: str | None = None) -> None:
        self.canvas.set_image(image)
        if caption is not None:
            self.caption.setText(caption)

    def qimage(self) -> QImage | None:
        return self.canvas._image

    def pixmap(self) -> QPixmap:
        img = self.canvas._image
        return QPixmap() if img is None else QPixmap.fromImage(img)

    def clear(self) -> None:
        self.array = None
        self.canvas.set_image(None)
        self.caption.setText("")

    def set_placeholder(self, text: str) -> None:
        self.canvas.set_placeholder(text)


class LatestRunner(QObject):
    """Runs the newest submitted job on one dedicated thread; stale waiting jobs are dropped.

    ``submit(fn, *args, on_result=..., on_error=...)`` returns at once. Callbacks run
    in the GUI thread. ``busy`` is True while a job runs or waits. ``shutdown()``
    stops the thread after the current job (call it when the panel goes away).
    """

    _done = Signal(object, object, object)  # job, result, (exc, details) | None

    def __init__(self, parent: QObject | None = None, name: str = "aestudio-latest") -> None:
        super().__init__(parent)
        self._cond = threading.Condition()
        self._pending: tuple | None = None
        self._running = False
        self._closed = False
        self._done.connect(self._deliver)
        self.dropped = 0  # jobs replaced before they ran (for tests and benchmarks)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., R], *args: object, on_result: Callable[[R], None],
               on_error: Callable[[BaseException, str], None] | None = None) -> None:
        with self._cond:
            if self._closed:
                return
            if self._pending is not None:
                self.dropped += 1
            self._pending = (fn, args, on_result, on_error)
            self._cond.notify()

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._running or self._pending is not None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no job runs or waits (tests and benchmarks only, never the GUI)."""
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.busy:
                return True
            time.sleep(0.002)
        return False

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify()

    def join(self, timeout: float) -> bool:
        """Only at shutdown: wait up to ``timeout`` s for the current job; True when the thread ended.

        A job still inside torch or ONNX Runtime when the interpreter exits can abort the
        process ("terminate called without an active exception")."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job, self._pending = self._pending, None
                self._running = True
            fn, args, _, _ = job
            try:
                result, error = fn(*args), None
            except BaseException as exc:  # noqa: BLE001 - reported to the panel, never kills the thread
                details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                result, error = None, (exc, details)
            with self._cond:
                self._running = False
            if not self._closed:
                self._done.emit(job, result, error)

    def _deliver(self, job: tuple, result: object, error: tuple | None) -> None:
        _, _, on_result, on_error = job
        if error is None:
            on_result(result)
        elif on_error is not None:
            on_error(*error)
        else:
            logger.error("interactive job failed: %s\n%s", error[0], error[1])
