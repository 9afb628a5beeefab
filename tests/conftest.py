"""Suite-wide settings: offscreen Qt before any QApplication, small thread pools."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Tests use tiny tensors; many threads only add contention on 2-core CI machines.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # the ORT-only path has no torch
        pass


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep settings and workspaces out of the real home folder."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("AESTUDIO_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
