"""GUI test fixtures: settings in a temp folder, a fresh main window, simulated drops."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from aestudio.gui.workspace import make_settings  # noqa: E402


@pytest.fixture
def settings_dir(tmp_path: Path) -> Path:
    """QSettings caches its folders per process, so point it at this test's folder explicitly."""
    from PySide6.QtCore import QSettings

    folder = tmp_path / "settings"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    return folder


@pytest.fixture
def window(qtbot, settings_dir):
    from aestudio.gui.app import application
    from aestudio.gui.main_window import MainWindow

    application()
    w = MainWindow(make_settings())
    qtbot.addWidget(w)
    w.show()
    yield w
    w.train_panel.shutdown(timeout=10)
    w.close()
