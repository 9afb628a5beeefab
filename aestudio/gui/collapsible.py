"""A titled section that folds open and shut (the Train tab's "Advanced" settings).

superqt's ``QCollapsible`` did this, but ``import superqt`` loads qtpy and every superqt widget
(0.2 CPU s warm, 0.4 s on a first launch), and the Train tab is built before the window's
first paint (bench ``launch``). The tabs built after the paint still use superqt.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSizePolicy, QToolButton, QVBoxLayout, QWidget


class Collapsible(QWidget):
    """A flat arrow button with the title; its widgets show only while it is expanded."""

    def __init__(self, title: str, parent: QWidget | None = None, *, expanded: bool = False) -> None:
        super().__init__(parent)
        self.toggle = QToolButton()
        self.toggle.setText(title)
        self.toggle.setCheckable(True)
        self.toggle.setAutoRaise(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.toggle.toggled.connect(self._set_open)
        self.body = QWidget()
        self._body_layout = QVBoxLayout(self.body)
        self._body_layout.setContentsMargins(12, 0, 0, 0)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.toggle)
        lay.addWidget(self.body)
        self._set_open(expanded)
        self.toggle.setChecked(expanded)

    def addWidget(self, widget: QWidget) -> None:  # noqa: N802 - the Qt-style name QCollapsible had
        self._body_layout.addWidget(widget)

    def isExpanded(self) -> bool:  # noqa: N802
        return self.toggle.isChecked()

    def expand(self) -> None:
        self.toggle.setChecked(True)

    def collapse(self) -> None:
        self.toggle.setChecked(False)

    def _set_open(self, open_: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if open_ else Qt.ArrowType.RightArrow)
        self.body.setVisible(open_)
