"""Validation metrics as they arrive: latest value, best value and the epoch of the best."""

from __future__ import annotations

import math

from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

HIGHER_IS_BETTER = ("psnr", "ssim", "miou", "iou_", "dice_", "acc")


def higher_is_better(name: str) -> bool:
    return name.startswith(HIGHER_IS_BETTER)


def format_value(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.2e}"
    return f"{v:.4g}"


class MetricsTable(QTableWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 3, parent)
        self.setHorizontalHeaderLabels(["latest", "best", "at epoch"])
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setDefaultSectionSize(22)
        self.setAlternatingRowColors(True)
        self._best: dict[str, tuple[float, int]] = {}
        self._rows: dict[str, int] = {}

    def reset(self) -> None:
        self.setRowCount(0)
        self._best.clear()
        self._rows.clear()

    def add_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            if not isinstance(value, (int, float)):
                continue
            value = float(value)
            if name not in self._rows:
                self._rows[name] = self.rowCount()
                self.insertRow(self.rowCount())
                self.setVerticalHeaderItem(self._rows[name], QTableWidgetItem(name))
            best = self._best.get(name)
            better = best is None or (math.isfinite(value) and (
                value > best[0] if higher_is_better(name) else value < best[0]))
            if better:
                self._best[name] = best = (value, epoch)
            row = self._rows[name]
            for col, text in enumerate((format_value(value), format_value(best[0]), str(best[1] + 1))):
                self.setItem(row, col, QTableWidgetItem(text))

    def latest(self) -> dict[str, str]:
        return {name: self.item(row, 0).text() for name, row in self._rows.items() if self.item(row, 0)}
