"""Start the desktop studio: QApplication, style, settings, the window, preloaded paths.

``aestudio`` and ``aestudio PATH...`` land here through ``aestudio.cli``. Paths
are opened exactly as if they were dropped on the window.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication

from aestudio import __version__
from aestudio.gui.main_window import MainWindow
from aestudio.gui.style import apply_style
from aestudio.gui.workspace import APP_NAME, ORG_NAME, make_settings

logger = logging.getLogger(__name__)


def application() -> QApplication:
    """The QApplication, created once with the names QSettings keys on."""
    QCoreApplication.setOrganizationName(ORG_NAME)
    QCoreApplication.setApplicationName(APP_NAME)
    QCoreApplication.setApplicationVersion(__version__)
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
    apply_style(app)  # type: ignore[arg-type]
    return app  # type: ignore[return-value]


def create_window(paths: Sequence[str | Path] = ()) -> MainWindow:
    """A shown window with ``paths`` queued for opening once the event loop runs."""
    application()
    window = MainWindow(make_settings())
    window.show()
    if paths:
        targets = [Path(p).expanduser() for p in paths]
        QTimer.singleShot(0, window, lambda: window.open_paths(targets, at_launch=True))
    return window


def main(paths: Sequence[str] | None = None) -> int:
    app = application()
    window = create_window(list(paths or []))  # noqa: F841 - kept alive for the event loop
    code = int(app.exec())
    # The window is closed and its settings are saved. Tearing down the interpreter then ran
    # the cyclic garbage collector over every object torch, torchvision and ONNX Runtime
    # made: the process outlived its window by 5-10 s after Ctrl+Q. Objects alive now are
    # left out of that collection (freed by reference counting as before; atexit still runs).
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
