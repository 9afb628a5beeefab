"""16-bit images in the app's views: thumbnails are stretched like the canvas (a 12-bit camera's frame was
a black square in the data panel), and the Reconstruct panel saves a 16-bit input's reconstruction back
in the input's range as a 16-bit TIFF (it wrote an 8-bit PNG of the stretched image)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from aestudio.data.io import read_image, write_image
from aestudio.data.levels import read_stretched
from tests.data.test_levels_labelling import deep_images


def qimage_to_array(image) -> np.ndarray:
    """A QImage as grey float [H, W] in [0, 1] (what a person sees, 8 bits)."""
    from PySide6.QtGui import QImage

    grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
    rows = np.frombuffer(grey.constBits(), np.uint8).reshape(grey.height(), grey.bytesPerLine())
    return rows[:, :grey.width()].astype(np.float32) / 255.0


def test_16_bit_thumbnails_are_stretched_like_the_canvas(qtbot, tmp_path: Path) -> None:
    from aestudio.gui.thumbnails import THUMB, decode_thumbnail

    paths = deep_images(tmp_path)  # both nearly black when read by 65535
    for path in paths.values():
        thumb = qimage_to_array(decode_thumbnail(path, THUMB))
        assert thumb.max() > 0.9 and thumb.mean() > 0.2, path  # not a black square
        # the same picture the canvas shows (read_stretched), only smaller
        assert abs(float(thumb.mean()) - float(read_stretched(path).mean())) < 0.05
    eight = write_image(tmp_path / "eight.png", np.full((20, 20), 0.1, np.float32))
    assert abs(float(qimage_to_array(decode_thumbnail(eight, THUMB)).mean()) - 0.1) < 0.01  # 8-bit: as it is


def _saved_reconstruction(qtbot, bundles, monkeypatch, path: Path):
    """The Reconstruct panel on ``path`` after a Save of its reconstruction: (the panel, the written file,
    the Save dialog's filters). The caller ends it with ``panel.close_all()``."""
    from aestudio.gui import engine
    from aestudio.gui.panels.reconstruct import ReconstructPanel
    from aestudio.gui.workers import TaskRunner

    tasks = TaskRunner()
    panel = ReconstructPanel(tasks)
    qtbot.addWidget(panel)
    panel.resize(1000, 600)
    panel.show()

    def close_all() -> None:
        panel.shutdown()
        tasks.shutdown()

    panel.close_all = close_all
    try:
        panel.set_model(engine.load_model(bundles("conv_ae")))
        panel.add_images([path])
        qtbot.waitUntil(lambda: panel.current is not None, timeout=10_000)
        seen: dict[str, str] = {}

        def fake_dialog(parent, caption, suggestion, filters):
            seen["filters"] = filters
            return suggestion, filters

        monkeypatch.setattr("aestudio.gui.panels.reconstruct.QFileDialog.getSaveFileName", fake_dialog)
        out = panel.save("reconstruction")
        assert out is not None
    except BaseException:
        close_all()
        raise
    return panel, out, seen["filters"]


def test_reconstruct_saves_a_16_bit_input_back_in_its_range(qtbot, bundles, tmp_path: Path, monkeypatch) -> None:
    path = deep_images(tmp_path / "in")["dim"]  # 16-bit PNG holding 1000-3000
    panel, out, filters = _saved_reconstruction(qtbot, bundles, monkeypatch, path)
    try:
        assert out.suffix == ".tif" and "16-bit TIFF" in filters
        written = tifffile.imread(out)
        assert written.dtype == np.uint16
        assert 999 <= written.min() and written.max() <= 3001  # the input's range, not 0-65535 or 8 bits
        levels = panel.current["levels"]
        expected = np.round(levels.restore(panel.current["reconstruction"])[..., 0] * 65535.0)
        assert np.abs(written.astype(np.float64) - expected).max() <= 1.0
        heat = panel.save("heatmap", tmp_path / "error.png")  # a picture of the error: 8-bit colour PNG
        assert heat is not None and read_image(heat).shape[-1] == 3
    finally:
        panel.close_all()


def test_reconstruct_saves_a_float_input_as_a_float32_tiff_in_its_range(qtbot, bundles, tmp_path: Path,
                                                                        monkeypatch) -> None:
    """A float TIFF holding -3..500: the Save dialog offers a float32 TIFF and writes the reconstruction back
    in -3..500 (it wrote an 8-bit PNG of the stretched image)."""
    raw = (-3.0 + 503.0 * np.random.default_rng(2).random((24, 24))).astype(np.float32)
    raw[0, 0], raw[0, 1] = -3.0, 500.0
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "wide.tif", raw)
    panel, out, filters = _saved_reconstruction(qtbot, bundles, monkeypatch, tmp_path / "in" / "wide.tif")
    try:
        assert out.suffix == ".tif" and "float32 TIFF" in filters
        written = tifffile.imread(out)
        assert written.dtype == np.float32
        assert -3.01 <= written.min() and written.max() <= 500.01 and written.max() > 1.5  # in -3..500
        expected = panel.current["levels"].restore(panel.current["reconstruction"])[..., 0]
        np.testing.assert_allclose(written, expected, rtol=1e-5, atol=1e-3)
    finally:
        panel.close_all()
