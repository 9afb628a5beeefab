"""GUI test fixtures: settings in a temp folder, a fresh main window, simulated drops."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


# settings_dir and window live in tests/conftest.py (shared with tests/zoo and tests/reliability).
