"""The Label tab shows a 16-bit micrograph at its own range (not nearly black) and the live U-Net
trains on what the canvas shows: the same stretch as pairs: training and aestudio segment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PySide6.QtCore import QPoint, Qt

from aestudio.data.levels import read_levelled
from aestudio.gui.panels.label import LabelPanel

WAIT = 30_000


def _twelve_bit(path: Path) -> Path:
    """A 12-bit camera frame (0-4095 in a 16-bit TIFF): a bright square on a dark field."""
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 1200, (48, 64)).astype(np.uint16)
    raw[12:36, 16:48] = rng.integers(2900, 4096, (24, 32))
    raw[0, 0], raw[0, 1] = 0, 4095
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, raw)
    return path


@pytest.fixture
def panel(qtbot):
    from tests.gui.guitools import label_panel

    yield from label_panel(qtbot)


def _drag(qtbot, panel: LabelPanel, points: list[tuple[float, float]]) -> None:
    def at(y: float, x: float) -> QPoint:
        return panel.canvas.to_widget(y + 0.5, x + 0.5).toPoint()

    qtbot.mousePress(panel.canvas, Qt.MouseButton.LeftButton, pos=at(*points[0]))
    for p in points[1:]:
        qtbot.mouseMove(panel.canvas, at(*p))
    qtbot.mouseRelease(panel.canvas, Qt.MouseButton.LeftButton, pos=at(*points[-1]))


def test_a_12_bit_tiff_is_shown_bright_and_the_live_net_trains_on_it_stretched(qtbot, panel, tmp_path) -> None:
    src = _twelve_bit(tmp_path / "src" / "cam.tif")
    assert panel.create_project(tmp_path / "proj")
    panel.on_images([src])
    qtbot.waitUntil(lambda: panel.image is not None, timeout=WAIT)
    shown = panel.canvas._image_u8  # the pixels the canvas paints
    assert shown is not None and int(shown.max()) - int(shown.min()) > 200  # not 0-16 of 255: nearly black
    assert float(np.mean(shown[12:36, 16:48])) > 150  # the object is bright
    # On screen too (the grabbed widget, where the image is drawn)
    grab = panel.canvas.grab().toImage()
    centre = panel.canvas.to_widget(24.5, 32.5).toPoint()
    assert grab.pixelColor(centre).value() > 150
    assert "16-bit values 0-4095, stretched" in panel.image_list.item(0).toolTip()  # the list says why it is bright

    panel.size_slider.setValue(4)
    qtbot.keyClick(panel.canvas, Qt.Key.Key_2)
    _drag(qtbot, panel, [(20, 20), (24, 40)])
    qtbot.keyClick(panel.canvas, Qt.Key.Key_1)
    _drag(qtbot, panel, [(4, 4), (4, 60)])
    qtbot.mouseClick(panel.train_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.trainer is not None and panel.trainer.has_example("cam.tif"), timeout=WAIT)
    seen = panel.trainer._examples["cam.tif"].image.float().numpy().transpose(1, 2, 0)
    expected = read_levelled(panel.project.items[0].image_path)[0]
    np.testing.assert_allclose(seen, expected.astype(np.float16).astype(np.float32))  # what the canvas shows
    qtbot.mouseClick(panel.train_btn, Qt.MouseButton.LeftButton)  # Stop
    qtbot.waitUntil(lambda: panel.worker is not None and not panel.worker.running, timeout=WAIT)


def test_the_segment_panel_shows_and_segments_a_12_bit_tiff_stretched(tmp_path) -> None:
    """The Segment panel reads a dropped file with engine.read_image: the own-range stretch, as
    aestudio segment and pairs: training read it."""
    from aestudio.gui.panels.segment_view import SegItem, infer_item

    src = _twelve_bit(tmp_path / "cam.tif")
    shown = infer_item(None, SegItem(key=0, name="cam.tif", path=src)).image_u8
    assert int(shown.max()) - int(shown.min()) > 200 and float(np.mean(shown[12:36, 16:48])) > 150
    expected = np.round(read_levelled(src)[0][..., 0] * 255)
    assert np.abs(shown[..., 0].astype(float) - expected).max() <= 1
