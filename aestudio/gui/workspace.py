"""Where the studio keeps things: settings, the workspace folder, run names, recent items.

The workspace holds ``runs/`` (one folder per training run, each with its own
``bundle/`` once exported) and ``bundles/`` (bundles made or copied elsewhere).
Its location is, in order: the ``AESTUDIO_HOME`` environment variable (tests and
scripted setups), the folder chosen in the app (saved in settings), else a per-user
data folder from platformdirs.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path

import platformdirs
from PySide6.QtCore import QSettings

from aestudio._fs import unique_path

ORG_NAME = "aestudio"
APP_NAME = "aestudio"
ENV_HOME = "AESTUDIO_HOME"
MAX_RECENT = 12


class Key:
    """QSettings keys, in one place so a typo cannot lose a setting."""

    WORKSPACE = "workspace"
    RECENT = "recent"
    GEOMETRY = "window/geometry"
    STATE = "window/state"
    SPLITTER = "window/splitter"
    TAB = "window/tab"
    DATA_SPEC = "train/data_spec"
    NET = "train/net"
    DEVICE = "train/device"
    PRECISION = "inference/precision"  # "auto" (bfloat16 for batch work where allowed) or "float32"
    MODEL = "session/model"  # the active model's path (bundle, run or .onnx), reopened at launch


def make_settings() -> QSettings:
    """INI settings in the user's config folder (XDG_CONFIG_HOME on Linux)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG_NAME, APP_NAME)


def default_workspace() -> Path:
    return platformdirs.user_data_path(APP_NAME, appauthor=False) / "workspace"


def workspace_dir(settings: QSettings) -> Path:
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    saved = settings.value(Key.WORKSPACE, "", type=str)
    return Path(saved).expanduser() if saved else default_workspace()


def runs_dir(workspace: Path) -> Path:
    return workspace / "runs"


def bundles_dir(workspace: Path) -> Path:
    return workspace / "bundles"


def shipped_models_dir() -> Path | None:
    """The project's ``models/`` zoo beside the package (a source checkout), if present."""
    candidate = Path(__file__).resolve().parents[2] / "models"
    return candidate if candidate.is_dir() else None


def slug(text: str) -> str:
    """A file-name-safe short form of a data spec: ``folder:/a/photos`` -> ``folder-photos``."""
    kind, _, rest = text.partition(":")
    if rest:
        rest = Path(rest.split(",")[0].rstrip("/\\")).name
    out = re.sub(r"[^A-Za-z0-9_.]+", "-", f"{kind}-{rest}" if rest else kind).strip("-.")
    return out or "data"


def new_run_dir(workspace: Path, net_name: str, data_spec: str, now: _dt.datetime | None = None) -> Path:
    """``runs/<family>-<data>-YYYYmmdd-HHMMSS`` (suffixed when two starts share a second)."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return unique_path(runs_dir(workspace) / f"{net_name}-{slug(data_spec)}-{stamp}", "-", folder=True)


def recent_items(settings: QSettings) -> list[Path]:
    raw = settings.value(Key.RECENT, [], type=list) or []
    return [Path(p) for p in raw if isinstance(p, str) and p]


def add_recent(settings: QSettings, path: Path) -> None:
    items = [p for p in recent_items(settings) if p != path]
    items.insert(0, path)
    settings.setValue(Key.RECENT, [str(p) for p in items[:MAX_RECENT]])
