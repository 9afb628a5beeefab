"""Helpers for the GUI tests: simulated drops, tiny images, message texts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent


def requires(module: str) -> pytest.MarkDecorator:
    """Skip until another part of the core lands, naming the missing module."""
    parent = module.rpartition(".")[0]
    present = (not parent or importlib.util.find_spec(parent) is not None) and importlib.util.find_spec(module) is not None
    return pytest.mark.skipif(not present, reason=f"{module} is not there yet (owned by another part)")


def drop_paths(widget, paths: list[Path]) -> None:
    """Deliver a real QDropEvent with file URLs, as a file manager would.

    QApplication.sendEvent() drops Drop events when no drag is in progress, so the
    event goes to the widget's handler directly (after the same dragEnter check).
    """
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    from PySide6.QtGui import QDragEnterEvent

    enter = QDragEnterEvent(QPointF(20, 20).toPoint(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    widget.dragEnterEvent(enter)
    assert enter.isAccepted(), "the window refused the drag"
    widget.dropEvent(event)


def write_png(path: Path, size: int = 16, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((size, size)) * 255).astype(np.uint8)).save(path)
    return path


def message_texts(window) -> list[str]:
    return [m.text for m in window.messages.history]


def label_panel(qtbot):
    """A shown Label panel whose live trainer is tiny (the Label tests' ``panel`` fixture):
    ``yield from label_panel(qtbot)``; shut down afterwards."""
    from aestudio.gui.panels.label import LabelPanel
    from aestudio.gui.workers import TaskRunner
    from aestudio.training.live import LiveConfig

    tasks = TaskRunner()
    p = LabelPanel(tasks)
    p.live_config = LiveConfig(crop=32, batch_size=2, base_channels=4, depth=2, snapshot_seconds=0.2)
    qtbot.addWidget(p)
    p.resize(1300, 700)
    p.show()
    yield p
    p.shutdown()
    tasks.shutdown()


def open_scene(qtbot, panel, tmp_path: Path, h: int = 240, w: int = 320, wait_ms: int = 30_000) -> None:
    """A new project in ``panel`` (a Label panel) with one noisy h x w colour image holding a bright block."""
    from aestudio.data.io import write_image

    rng = np.random.default_rng(0)
    img = rng.random((h, w, 3)).astype(np.float32) * 0.3
    img[60:180, 80:240] += 0.6
    write_image(tmp_path / "a.png", np.clip(img, 0, 1))
    assert panel.create_project(tmp_path / "proj")
    panel.on_images([tmp_path / "a.png"])
    qtbot.waitUntil(lambda: panel.image is not None, timeout=wait_ms)
