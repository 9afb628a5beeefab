"""The Reconstruct tab, driven through its widgets with real (tiny, random-weight) ONNX bundles."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from aestudio.gui import engine
from aestudio.gui.engine import LoadedModel
from aestudio.gui.messages import Level
from aestudio.gui.panels.reconstruct import ReconstructPanel
from aestudio.gui.workers import TaskRunner

WAIT = 5000  # ms


@pytest.fixture
def panel(qtbot):
    tasks = TaskRunner()
    p = ReconstructPanel(tasks)
    p.messages = []
    p.notify.connect(lambda level, text, details: p.messages.append((level, text)))
    qtbot.addWidget(p)
    p.resize(1000, 700)
    p.show()
    yield p
    p.shutdown()
    tasks.shutdown()


@pytest.fixture(scope="module")
def conv_model(bundles) -> LoadedModel:
    return engine.load_model(bundles("conv_ae"))


def grey_png(path: Path, h: int = 24, w: int = 20) -> Path:
    yy, xx = np.mgrid[0:h, 0:w]
    img = (128 + 90 * np.sin(xx / 3.0) * np.cos(yy / 4.0)).astype(np.uint8)
    Image.fromarray(img).save(path)
    return path


class FailingPredictor:
    """A model whose inference raises, as a broken or foreign graph might."""

    def __init__(self, info) -> None:
        self.info = info

    def run_image(self, image, *, progress=None):
        raise RuntimeError("inference exploded: bad graph")

    def predict(self, batch):
        raise RuntimeError("inference exploded: bad graph")

    def check_batch(self, batch):
        return None


def wait_shown(qtbot, panel, previous=None):
    qtbot.waitUntil(lambda: panel.current is not None and panel.current is not previous, timeout=WAIT)
    return panel.current


def test_empty_state_says_what_to_load(panel):
    assert "No model loaded" in panel.state_label.text()
    assert "drop" in panel.state_label.text().lower()
    assert not panel.save_recon_button.isEnabled() and not panel.save_error_button.isEnabled()
    assert not panel.anomaly_box.isEnabled()
    assert panel.save("reconstruction", Path("nowhere.png")) is None  # nothing shown: refused with a message
    assert panel.messages and panel.messages[-1][0] is Level.WARNING


def test_dropped_image_reconstruction_and_metrics_match_direct_computation(qtbot, panel, conv_model, tmp_path):
    path = grey_png(tmp_path / "face.png")
    panel.set_model(conv_model)
    assert panel.tiles["ratio"].text() == "16.0 : 1"  # 1x16x16 values / 16 code values
    panel.add_images([path])
    r = wait_shown(qtbot, panel)

    original = engine.read_image(path)
    expected = conv_model.predictor.run_image(original)  # resized to 16x16 and back by the predictor
    assert r["reconstruction"].shape == original.shape == (24, 20, 1)
    np.testing.assert_allclose(r["reconstruction"], expected, atol=1e-6)
    np.testing.assert_allclose(panel.recon_pane.array, expected, atol=1e-6)
    mse = float(np.mean((original - expected) ** 2))
    psnr = peak_signal_noise_ratio(original, expected, data_range=1.0)
    ssim = structural_similarity(original[:, :, 0].astype(np.float64), expected[:, :, 0].astype(np.float64),
                                 data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert r["metrics"]["mse"] == pytest.approx(mse, rel=1e-5)
    assert r["metrics"]["psnr"] == pytest.approx(psnr, rel=1e-4)
    assert r["metrics"]["ssim"] == pytest.approx(ssim, abs=1e-5)
    assert panel.tiles["psnr"].text() == f"{psnr:.1f} dB"
    assert panel.tiles["ssim"].text() == f"{ssim:.3f}"
    # The error map is |original - reconstruction|, coloured, with its scale on the colour bar.
    np.testing.assert_allclose(r["error"], np.abs(original - expected)[:, :, 0], atol=1e-6)
    assert panel.error_pane.array.shape == (24, 20, 3)
    assert panel.colorbar.scale is not None and panel.colorbar.scale >= float(r["error"].max()) * 0.5
    assert panel.save_recon_button.isEnabled()
    # 20x24 is not the model's 16x16: said beside the images, and no compression ratio then.
    assert panel.state_label.isVisible() and "resized from 20×24 to 16×16" in panel.state_label.text()
    assert panel.tiles["ratio"].text() == "– (resized)"


def test_an_image_unlike_the_models_input_is_warned_and_gets_no_compression_ratio(qtbot, panel, conv_model, tmp_path):
    # Issue 16: a 256x256 colour photo through an 8x8 grey model went by without a word,
    # with the model's compression ratio shown as if it applied.
    fits = grey_png(tmp_path / "fits.png", 16, 16)
    rgb = (np.random.default_rng(2).random((64, 64, 3)) * 255).astype(np.uint8)
    photo = tmp_path / "photo.png"
    Image.fromarray(rgb).save(photo)
    panel.set_model(conv_model)
    panel.set_data(SimpleNamespace(spec="digits"))
    qtbot.waitUntil(lambda: panel.errors is not None, timeout=15000)
    panel.add_images([fits, photo])
    panel.browse.set_position(panel.browse.FILES, 0)
    qtbot.waitUntil(lambda: panel.current is not None and panel.current.get("path") == fits, timeout=WAIT)
    assert not panel.state_label.isVisible()
    assert panel.tiles["ratio"].text() == "16.0 : 1"
    # The dropped image is marked on the data set's error histogram, at its own MSE.
    assert panel.shown_line.isVisible() and panel.shown_line.label.format == "dropped"
    assert panel.shown_line.value() == pytest.approx(panel.current["metrics"]["mse"])

    panel.browse.set_position(panel.browse.FILES, 1)
    qtbot.waitUntil(lambda: panel.current is not None and panel.current.get("path") == photo, timeout=WAIT)
    text = panel.state_label.text()
    assert panel.state_label.isVisible() and "does not fit" in text
    assert "resized from 64×64 to 16×16" in text and "a colour image through a grey model" in text
    assert panel.tiles["ratio"].text() == "– (resized)"
    assert panel.shown_line.value() == pytest.approx(panel.current["metrics"]["mse"])


def test_colour_photo_keeps_its_colours_through_a_grey_model(qtbot, panel, conv_model, tmp_path):
    rgb = (np.random.default_rng(1).random((18, 22, 3)) * 255).astype(np.uint8)
    path = tmp_path / "colour.png"
    Image.fromarray(rgb).save(path)
    panel.set_model(conv_model)
    panel.add_images([path])
    r = wait_shown(qtbot, panel)
    assert r["reconstruction"].shape == (18, 22, 3)
    red = conv_model.predictor.run_image(engine.read_image(path)[:, :, :1])
    np.testing.assert_allclose(r["reconstruction"][:, :, :1], red, atol=1e-6)


def test_anomaly_histogram_covers_the_data_set_and_threshold_filters_the_list(qtbot, panel, conv_model):
    panel.set_model(conv_model)
    panel.set_data(SimpleNamespace(spec="digits"))
    qtbot.waitUntil(lambda: panel.errors is not None, timeout=15000)
    images = panel.arrays.images
    assert images.shape == (360, 1, 16, 16)  # digits' validation split at the model's size
    assert len(panel.errors) == 360
    counts = panel.hist_item.yData
    assert counts.sum() == 360  # every image is in the histogram
    # The scan's errors are the model's: check a few against a direct batch.
    out = conv_model.predictor.predict(images[:5])
    np.testing.assert_allclose(panel.errors[:5], ((out - images[:5]) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)

    def listed() -> list[int]:
        return [panel.anomaly_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(panel.anomaly_list.count())]

    panel.set_threshold(float(np.median(panel.errors)))
    many = listed()
    assert len(many) == int((panel.errors > np.median(panel.errors)).sum()) == len(panel.above_threshold())
    assert all(panel.errors[a] >= panel.errors[b] for a, b in zip(many, many[1:], strict=False))  # worst first
    panel.set_threshold(float(np.percentile(panel.errors, 90)))
    few = listed()
    assert 0 < len(few) < len(many) and few == many[: len(few)]
    assert str(len(few)) in panel.above_label.text()

    # Clicking a listed image shows it (with its error map) in the viewer.
    # (The first image's display may still be on its way: wait for the clicked one, by content.)
    row = few[1]
    panel.anomaly_list.setCurrentRow(1)
    qtbot.waitUntil(lambda: panel.current is not None and np.array_equal(panel.current["original"][:, :, 0],
                                                                          images[row, 0]), timeout=WAIT)
    r = panel.current
    assert panel.browse.index() == row
    np.testing.assert_allclose(r["original"][:, :, 0], images[row, 0], atol=1e-7)
    assert r["metrics"]["mse"] == pytest.approx(panel.errors[row], rel=1e-4)
    assert "#" in panel.item_label.text() and "error rank 2/360, 1 = worst" in panel.item_label.text()


def test_browsing_the_data_set_with_next(qtbot, panel, conv_model):
    panel.set_model(conv_model)
    panel.set_data(SimpleNamespace(spec="digits"))
    qtbot.waitUntil(lambda: panel.arrays is not None, timeout=15000)
    first = wait_shown(qtbot, panel)
    panel.browse.next_button.click()
    second = wait_shown(qtbot, panel, first)
    assert panel.browse.index() == 1
    np.testing.assert_allclose(second["original"][:, :, 0], panel.arrays.images[1, 0], atol=1e-7)
    assert panel.browse.position.text() == "2 / 360"


def test_save_writes_pngs_and_never_overwrites(qtbot, panel, conv_model, tmp_path, monkeypatch):
    from aestudio.data.io import read_image

    path = grey_png(tmp_path / "input.png")
    before = path.read_bytes()
    panel.set_model(conv_model)
    panel.add_images([path])
    r = wait_shown(qtbot, panel)

    out = panel.save("reconstruction", tmp_path / "recon.png")
    assert out == tmp_path / "recon.png"
    saved = read_image(out)
    assert saved.shape == (24, 20, 1)
    assert np.abs(saved - r["reconstruction"]).max() <= 1 / 255 + 1e-6  # 8-bit PNG of the same image
    heat = panel.save("heatmap", tmp_path / "error.png")
    assert read_image(heat).shape == (24, 20, 3)

    assert panel.save("reconstruction", tmp_path / "recon.png") is None  # exists: refused
    assert "already exists" in panel.messages[-1][1]
    assert panel.save("reconstruction", path) is None  # the input itself: refused
    assert panel.messages[-1][0] is Level.ERROR and "never overwritten" in panel.messages[-1][1]
    assert path.read_bytes() == before

    # Through the file dialog (suggests a free name next to the input).
    seen = {}

    def fake_dialog(parent, caption, suggestion, filters):
        seen["suggestion"] = suggestion
        return str(tmp_path / "picked"), filters

    monkeypatch.setattr("aestudio.gui.panels.reconstruct.QFileDialog.getSaveFileName", fake_dialog)
    assert panel.save("reconstruction") == tmp_path / "picked.png"
    assert Path(seen["suggestion"]).parent == tmp_path and Path(seen["suggestion"]).suffix == ".png"
    assert read_image(tmp_path / "picked.png").shape == (24, 20, 1)


def test_a_model_that_raises_is_reported_and_the_panel_stays_usable(qtbot, panel, conv_model, tmp_path):
    path = grey_png(tmp_path / "x.png")
    broken = LoadedModel(path=conv_model.path, info=conv_model.info,
                         predictor=FailingPredictor(conv_model.info), runtime="broken")
    panel.set_model(broken)
    panel.add_images([path])
    qtbot.waitUntil(lambda: any(lvl is Level.ERROR for lvl, _ in panel.messages), timeout=WAIT)
    assert "inference exploded" in panel.messages[-1][1]
    assert panel.current is None and panel.recon_pane.array is None
    assert not panel.save_recon_button.isEnabled()

    panel.set_data(SimpleNamespace(spec="digits"))  # the scan fails too, with a message, no crash
    qtbot.waitUntil(lambda: any("scan failed" in t for _, t in panel.messages), timeout=15000)
    assert panel.scan_button.isEnabled()

    panel.set_model(conv_model)  # a working model: everything works again
    panel.browse.set_position("files", 0)
    wait_shown(qtbot, panel)
    qtbot.waitUntil(lambda: panel.errors is not None, timeout=15000)
    assert panel.save_recon_button.isEnabled()


def test_browsing_through_failing_images_says_the_error_once(qtbot, panel, conv_model, tmp_path):
    broken = LoadedModel(path=conv_model.path, info=conv_model.info,
                         predictor=FailingPredictor(conv_model.info), runtime="broken")
    panel.set_model(broken)
    panel.add_images([grey_png(tmp_path / "a.png"), grey_png(tmp_path / "b.png", 20, 24)])
    qtbot.waitUntil(lambda: len(panel.messages) == 1, timeout=WAIT)
    panel.browse.next_button.click()  # the same failure on the next image: not said again
    qtbot.waitUntil(lambda: not panel.runner.busy, timeout=WAIT)
    qtbot.wait(200)
    assert [t for _, t in panel.messages] == ["Reconstruct: inference exploded: bad graph"]

    panel.set_model(conv_model)  # a success in between: the next failure is news again
    wait_shown(qtbot, panel)
    panel.set_model(broken)
    qtbot.waitUntil(lambda: len(panel.messages) == 2, timeout=WAIT)


def test_large_photo_through_a_fully_convolutional_model_is_tiled(qtbot, panel, bundles, tmp_path):
    from aestudio.inference.predictor import TilingOptions

    model = engine.load_model(bundles("denoising_ae"))
    model.predictor.tiling = TilingOptions(tile=64, overlap=8, batch=4)  # tile a small photo, quickly
    path = grey_png(tmp_path / "wide.png", 150, 170)
    panel.set_model(model)
    assert panel.tiles["ratio"].text() == "– (no code)"
    panel.add_images([path])
    r = wait_shown(qtbot, panel)
    done, total = panel._job_progress.read()
    assert total > 1 and done == total  # the tiles were counted
    np.testing.assert_allclose(r["reconstruction"], model.predictor.run_image(engine.read_image(path)), atol=1e-5)


def test_a_segmentation_model_is_not_run_and_the_panel_says_why(qtbot, panel, conv_model, tmp_path):
    from dataclasses import replace

    from aestudio.config import Task

    seg = LoadedModel(path=conv_model.path, info=replace(conv_model.info, task=Task.SEGMENT),
                      predictor=FailingPredictor(conv_model.info), runtime="seg")
    panel.set_model(seg)
    panel.add_images([grey_png(tmp_path / "s.png")])
    qtbot.waitUntil(lambda: panel.original_pane.array is not None, timeout=WAIT)
    assert "segmentation model" in panel.state_label.text()
    assert panel.current is None and not panel.messages  # nothing ran, nothing failed


def test_a_hidden_tab_waits_until_it_is_shown(qtbot, panel, conv_model):
    panel.hide()
    panel.set_model(conv_model)
    panel.set_data(SimpleNamespace(spec="digits"))
    qtbot.wait(100)
    assert panel.tasks.pending == 0 and panel.arrays is None  # no scan competes with a training run unasked
    panel.show()
    qtbot.waitUntil(lambda: panel.errors is not None and panel.current is not None, timeout=15000)


def test_page_down_and_up_step_through_the_images(qtbot, panel, conv_model) -> None:
    from PySide6.QtTest import QTest

    panel.set_model(conv_model)
    panel.set_data(SimpleNamespace(spec="digits"))
    qtbot.waitUntil(lambda: panel.browse.count() > 2, timeout=15000)
    panel.activateWindow()
    qtbot.waitUntil(panel.isActiveWindow, timeout=3000)
    start = panel.browse.index()
    QTest.keyClick(panel, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: panel.browse.index() == start + 1, timeout=3000)
    QTest.keyClick(panel, Qt.Key.Key_PageUp)
    qtbot.waitUntil(lambda: panel.browse.index() == start, timeout=3000)
