"""The look: Fusion with a light palette and a small style sheet (pyqtgraph's: gui/plots.py).

Kept as Python (not a file beside the package) so an installed wheel looks the
same as a source checkout. The window icon is package data (``aestudio/gui/resources/``),
found with importlib.resources, so a wheel and a source checkout both have it.
"""

from __future__ import annotations

from importlib.resources import as_file, files

from PySide6.QtGui import QColor, QFont, QIcon, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = "#2f6db5"
DISABLED_TEXT = "#a0a5ad"  # greyed text: disabled buttons (style sheet) and every other disabled widget (palette)

STYLE_SHEET = f"""
QMainWindow, QWidget#central {{ background: #f4f5f7; }}
QGroupBox {{ font-weight: 600; border: 1px solid #d5d8de; border-radius: 6px; margin-top: 14px; padding: 8px 6px 6px 6px; background: #fbfbfc; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 4px; color: #333; }}
QLabel#hint {{ color: #5f6670; }}
QLabel#runTitle {{ font-size: 12pt; font-weight: 600; color: #222; }}
QLabel#stats {{ color: #333; font-family: monospace; }}
QLabel#emptyTitle {{ font-size: 20pt; font-weight: 600; color: #3a3f47; }}
QLabel#emptyText {{ font-size: 11pt; color: #4a515b; margin: 8px 80px; }}
QLabel#emptyHint {{ font-size: 11pt; color: {ACCENT}; margin: 4px 80px; }}
QLabel#emptyState {{ color: #7a818b; margin-top: 18px; }}
QPushButton {{ padding: 5px 12px; border: 1px solid #c3c8d0; border-radius: 4px; background: #ffffff; }}
QPushButton:hover {{ border-color: {ACCENT}; }}
QPushButton:checked {{ background: #e3ecf8; }}
QPushButton:disabled {{ color: {DISABLED_TEXT}; background: #f0f1f3; }}
QPushButton#primary {{ background: {ACCENT}; color: white; border-color: {ACCENT}; font-weight: 600; }}
QPushButton#primary:disabled {{ background: #9bb5d8; border-color: #9bb5d8; }}
QProgressBar {{ border: 1px solid #c3c8d0; border-radius: 4px; background: #ffffff; text-align: center; height: 18px; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 3px; }}
QTabWidget::pane {{ border: 1px solid #d5d8de; border-radius: 4px; background: #ffffff; top: -1px; }}
QTabBar::tab {{ padding: 6px 16px; border: 1px solid transparent; color: #444; }}
QTabBar::tab:selected {{ background: #ffffff; border: 1px solid #d5d8de; border-bottom-color: #ffffff; color: #111; }}
QFrame#messageRow {{ border-radius: 4px; padding: 2px; }}
QFrame#messageRow[level="info"] {{ background: #e5eefa; border: 1px solid #b8cdea; }}
QFrame#messageRow[level="warning"] {{ background: #fdf3dc; border: 1px solid #ecd08a; }}
QFrame#messageRow[level="error"] {{ background: #fbe3e1; border: 1px solid #e5a7a1; }}
QStatusBar QLabel {{ color: #444; padding: 0 8px; }}
QListView#thumbnails {{ background: #ffffff; }}
QTableWidget {{ background: #ffffff; gridline-color: #e3e5e9; }}
"""


_STYLED = "aestudio_styled"  # an app property: the style is applied once per QApplication


def apply_style(app: QApplication) -> None:
    # Once per application: setting the style sheet again re-polishes every widget alive,
    # including those of a window being torn down, which crashed Qt (seen in tests that open
    # one window after another while the last one's workers still ran).
    if app.property(_STYLED):
        return
    app.setProperty(_STYLED, True)
    app.setStyle("Fusion")
    pal = app.palette()
    for role, color in (
        (QPalette.ColorRole.Window, "#f4f5f7"), (QPalette.ColorRole.Base, "#ffffff"),
        (QPalette.ColorRole.AlternateBase, "#f5f7fa"), (QPalette.ColorRole.Highlight, ACCENT),
        (QPalette.ColorRole.Text, "#1d2026"), (QPalette.ColorRole.WindowText, "#1d2026"),
        (QPalette.ColorRole.Button, "#ffffff"), (QPalette.ColorRole.ButtonText, "#1d2026"),
    ):
        pal.setColor(role, QColor(color))  # (every colour group, the disabled one too)
    # Disabled widgets must look disabled: the colours above went to the Disabled group as well, so a
    # disabled label, combo box or slider looked exactly like an enabled one (the Noise lab's sigma
    # slider in "already noisy" mode). Greyed text as on disabled buttons, a faded slider fill.
    disabled = QPalette.ColorGroup.Disabled
    for role, color in (
        (QPalette.ColorRole.Text, DISABLED_TEXT), (QPalette.ColorRole.WindowText, DISABLED_TEXT),
        (QPalette.ColorRole.ButtonText, DISABLED_TEXT), (QPalette.ColorRole.Highlight, "#b9c3d0"),
        (QPalette.ColorRole.Button, "#f0f1f3"), (QPalette.ColorRole.Base, "#f4f5f7"),
    ):
        pal.setColor(disabled, role, QColor(color))
    app.setPalette(pal)
    font = app.font()
    if font.pointSizeF() < 9.5:
        font.setPointSizeF(9.5)
    font.setStyleHint(QFont.StyleHint.SansSerif)
    app.setFont(font)
    app.setStyleSheet(STYLE_SHEET)
    # (pyqtgraph's defaults are set where it is imported: aestudio.gui.plots)
    icon = window_icon()
    if not icon.isNull():
        app.setWindowIcon(icon)


def window_icon() -> QIcon:
    """The studio's icon from the package data; a null QIcon if it is missing."""
    resource = files("aestudio.gui") / "resources" / "aestudio.svg"
    if not resource.is_file():
        return QIcon()
    with as_file(resource) as path:  # an installed package is plain files: this is the file itself
        return QIcon(str(path))
