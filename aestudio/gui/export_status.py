"""A status-bar line that stays while export children run, with a busy bar and a Cancel button.

An export takes 15-50 s on a loaded 2-core machine; a status message that fades after
10 s left users guessing, and closing the window left an invisible process behind. The
widget polls :func:`aestudio.gui.engine.running_exports` (a cheap list read) twice a
second, so it shows every export however it was started (a finished run, a load, File >
Export), and Cancel ends them through :func:`aestudio.gui.engine.cancel_exports`.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from aestudio.gui import engine

POLL_MS = 500


class ExportStatus(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # the child reports no steps: a busy bar says it is alive
        self.bar.setFixedWidth(80)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("End the export; the run keeps its checkpoint and is exported again when loaded")
        self.cancel_button.clicked.connect(self.cancel)
        for w in (self.label, self.bar, self.cancel_button):
            lay.addWidget(w)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.hide()

    def refresh(self) -> None:
        running = engine.running_exports()
        if not running:
            self.hide()
            self.cancel_button.setEnabled(True)
            return
        run_dir, seconds = running[0]
        more = f" (+{len(running) - 1} more)" if len(running) > 1 else ""
        self.label.setText(f"Exporting {run_dir.name} to ONNX… {int(seconds)} s{more}")
        self.show()

    def cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.label.setText("Cancelling the export…")
        # cancel_exports waits for the child to clean up: not on the GUI thread.
        threading.Thread(target=engine.cancel_exports, name="aestudio-export-cancel", daemon=True).start()
