"""Zoo test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def settings_dir(tmp_path: Path) -> Path:
    """QSettings caches its folders per process, so point it at this test's folder explicitly."""
    pytest.importorskip("PySide6")
    from PySide6.QtCore import QSettings

    folder = tmp_path / "settings"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    return folder
