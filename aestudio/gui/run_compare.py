"""The "Compare with" list: tick past runs of the workspace to overlay their curves.

Reads each ticked run's per-epoch history (``metrics.jsonl`` through
``read_run``) and hands it to :class:`CurvesView` as a dashed overlay; the item's
text takes the overlay's colour so the list doubles as the legend.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from aestudio.gui import engine
from aestudio.gui.curves import CurvesView, RunSeries
from aestudio.gui.messages import Level
from aestudio.gui.workspace import runs_dir


class RunCompareList(QWidget):
    notify = Signal(object, str, str)  # Level, text, details

    def __init__(self, curves: CurvesView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._curves = curves
        self._colors: dict[str, str] = {}  # run name -> overlay colour, kept across refreshes
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        label = QLabel("Compare with (dashed on the curves)")
        label.setObjectName("hint")
        lay.addWidget(label)
        self.list = QListWidget()
        self.list.setObjectName("compare")
        self.list.setToolTip("Tick past runs to overlay their curves (dashed, in the colour shown)")
        self.list.itemChanged.connect(self._toggled)
        lay.addWidget(self.list)

    def refresh(self, workspace: Path, exclude: Path | None = None) -> None:
        """List the workspace's runs, newest first, except ``exclude`` (the live run)."""
        folder = runs_dir(workspace)
        runs = sorted((p for p in folder.iterdir() if engine.is_run_dir(p)), reverse=True) if folder.is_dir() else []
        shown = set(self._curves.overlay_names())
        self.list.blockSignals(True)
        self.list.clear()
        for p in runs:
            if p == exclude:
                continue
            item = QListWidgetItem(p.name)
            item.setData(Qt.ItemDataRole.UserRole, str(p))
            item.setToolTip(str(p))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            ticked = p.name in shown
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
            if ticked and p.name in self._colors:
                item.setForeground(QColor(self._colors[p.name]))
            self.list.addItem(item)
        self.list.blockSignals(False)

    def set_checked(self, name: str, checked: bool = True) -> bool:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.text() == name:
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
                return True
        return False

    def _toggled(self, item: QListWidgetItem) -> None:
        path = Path(item.data(Qt.ItemDataRole.UserRole))
        self.list.blockSignals(True)  # colouring the item must not re-enter this slot
        try:
            if item.checkState() != Qt.CheckState.Checked:
                self._curves.remove_overlay(path.name)
                self._colors.pop(path.name, None)
                item.setData(Qt.ItemDataRole.ForegroundRole, None)
                return
            try:
                info = engine.read_run(path)
            except Exception as exc:  # noqa: BLE001 - an unreadable run folder is reported, not raised
                item.setCheckState(Qt.CheckState.Unchecked)
                self.notify.emit(Level.WARNING, f"Cannot read {path.name}: {exc}", "")
                return
            color = self._curves.add_overlay(path.name, RunSeries.from_history(getattr(info, "history", [])))
            self._colors[path.name] = color
            item.setForeground(QColor(color))
        finally:
            self.list.blockSignals(False)
