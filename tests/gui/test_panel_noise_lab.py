"""The Noise lab tab, driven through its widgets with real (tiny, random-weight) ONNX bundles."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from aestudio.config import NoiseConfig
from aestudio.data.noise import apply_noise
from aestudio.gui import engine
from aestudio.gui.engine import LoadedModel
from aestudio.gui.messages import Level
from aestudio.gui.panels.noise_lab import NOISES, NoiseLabPanel
from aestudio.gui.workers import TaskRunner
from aestudio.inference.predictor import TilingOptions

WAIT = 5000  # ms


@pytest.fixture
def panel(qtbot):
    tasks = TaskRunner()
    p = NoiseLabPanel(tasks)
    p.messages = []
    p.notify.connect(lambda level, text, details: p.messages.append((level, text)))
    qtbot.addWidget(p)
    p.resize(1000, 600)
    p.show()
    yield p
    p.shutdown()
    tasks.shutdown()


@pytest.fixture(scope="module")
def denoiser(bundles) -> LoadedModel:
    return engine.load_model(bundles("denoising_ae"))


@pytest.fixture(scope="module")
def conv_model(bundles) -> LoadedModel:
    return engine.load_model(bundles("conv_ae"))


def photo(path: Path, h: int = 40, w: int = 48, colour: bool = False) -> Path:
    yy, xx = np.mgrid[0:h, 0:w]
    grey = 0.5 + 0.35 * np.sin(xx / 4.0) * np.cos(yy / 5.0)
    img = np.stack([grey, grey[::-1], 1 - grey], axis=2) if colour else grey
    Image.fromarray((img * 255).astype(np.uint8)).save(path)
    return path


def wait_result(qtbot, panel, previous=None, **expect):
    def ready() -> bool:
        r = panel.result
        if r is None or r is previous:
            return False
        noise = r["noise"]
        return all(noise is not None and dict(zip(("kind", "strength", "seed"), noise, strict=True))[k] == v
                   for k, v in expect.items())

    qtbot.waitUntil(ready, timeout=WAIT)
    return panel.result


class FailingPredictor:
    def __init__(self, info) -> None:
        self.info = info

    def run_image(self, image, *, progress=None):
        raise RuntimeError("denoiser exploded")


def test_empty_state_says_what_to_drop_and_load(panel):
    text = panel.state_label.text()
    assert "Drop a photo" in text and "No model loaded" in text
    assert not panel.save_button.isEnabled()
    assert [panel.kind_box.itemData(i) for i in range(panel.kind_box.count())] == [n.kind for n in NOISES]


def test_moving_the_slider_changes_noisy_denoised_and_metrics(qtbot, panel, denoiser, tmp_path):
    path = photo(tmp_path / "p.png")
    panel.set_model(denoiser)
    panel.set_noise("gaussian", 0.05)
    panel.add_images([path])
    low = wait_result(qtbot, panel, strength=0.05)
    low_texts = {k: t.text() for k, t in panel.tiles.items()}

    clean = engine.read_image(path)
    np.testing.assert_array_equal(low["clean"], clean)
    # The noise is the core's, with the panel's seed; the denoised image is the model's output.
    expected_noisy = apply_noise(clean.transpose(2, 0, 1), NoiseConfig("gaussian", 0.05),
                                 np.random.default_rng(panel.seed)).transpose(1, 2, 0)
    np.testing.assert_allclose(low["noisy"], expected_noisy, atol=1e-7)
    np.testing.assert_allclose(low["denoised"], denoiser.predictor.run_image(low["noisy"]), atol=1e-6)
    psnr = peak_signal_noise_ratio(clean, low["noisy"], data_range=1.0)
    ssim = structural_similarity(clean[:, :, 0].astype(np.float64), low["noisy"][:, :, 0].astype(np.float64),
                                 data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert low["metrics_noisy"]["psnr"] == pytest.approx(psnr, rel=1e-4)
    assert low["metrics_noisy"]["ssim"] == pytest.approx(ssim, abs=1e-5)
    denoised_psnr = low["metrics_denoised"]["psnr"]
    assert panel.tiles["psnr"].text() == f"{psnr:.1f} → {denoised_psnr:.1f} dB"
    assert panel.noisy_pane.caption.text().startswith(f"PSNR {psnr:.1f} dB")

    panel.strength.setValue(0.3)  # as a user dragging the slider
    high = wait_result(qtbot, panel, low, strength=0.3)
    assert not np.allclose(high["noisy"], low["noisy"])
    assert not np.allclose(high["denoised"], low["denoised"])
    assert high["metrics_noisy"]["psnr"] < low["metrics_noisy"]["psnr"] - 3
    assert high["metrics_denoised"]["psnr"] != low["metrics_denoised"]["psnr"]
    assert {k: t.text() for k, t in panel.tiles.items()} != low_texts
    np.testing.assert_allclose(panel.noisy_pane.array, high["noisy"])
    np.testing.assert_allclose(panel.denoised_pane.array, high["denoised"])

    panel.strength.setValue(0.05)  # back: the same noise (fixed seed)
    again = wait_result(qtbot, panel, high, strength=0.05)
    np.testing.assert_array_equal(again["noisy"], low["noisy"])
    assert {k: t.text() for k, t in panel.tiles.items()} == low_texts

    panel.new_noise()  # another draw at the same strength
    other = wait_result(qtbot, panel, again, strength=0.05, seed=panel.seed)
    assert not np.allclose(other["noisy"], low["noisy"])


@pytest.mark.parametrize("kind", [n.kind for n in NOISES])
def test_every_noise_kind_runs(qtbot, panel, denoiser, tmp_path, kind):
    panel.set_model(denoiser)
    panel.add_images([photo(tmp_path / "k.png", 16, 16)])
    choice = next(n for n in NOISES if n.kind == kind)
    panel.set_noise(kind, choice.default)
    r = wait_result(qtbot, panel, kind=kind)
    assert r["noisy"].shape == r["denoised"].shape == (16, 16, 1)
    assert panel.strength_name.text() == choice.strength_name
    assert panel.strength.minimum() == choice.low and panel.strength.maximum() == choice.high


def test_colour_photo_tiled_with_progress(qtbot, panel, denoiser, tmp_path):
    denoiser.predictor.tiling = TilingOptions(tile=64, overlap=8, batch=4)  # tile a small photo
    try:
        path = photo(tmp_path / "big.png", 150, 170, colour=True)
        panel.set_model(denoiser)
        panel.add_images([path])
        r = wait_result(qtbot, panel)
        assert r["denoised"].shape == r["noisy"].shape == (150, 170, 3)
        done, total = panel._job_progress.read()
        assert total > 0 and done == total  # tiles were counted (three channels through a grey model)
        # The grey model denoised each colour plane; same as run_image on that plane.
        red = denoiser.predictor.run_image(r["noisy"][:, :, :1])
        np.testing.assert_allclose(r["denoised"][:, :, :1], red, atol=1e-5)
    finally:
        denoiser.predictor.tiling = TilingOptions()


def test_already_noisy_input_shows_noisy_and_denoised_only(qtbot, panel, denoiser, tmp_path):
    path = photo(tmp_path / "n.png")
    panel.set_model(denoiser)
    panel.add_images([path])
    wait_result(qtbot, panel)
    previous = panel.result
    panel.already_noisy.setChecked(True)
    qtbot.waitUntil(lambda: panel.result is not previous and panel.result["noise"] is None, timeout=WAIT)
    r = panel.result
    np.testing.assert_array_equal(r["noisy"], engine.read_image(path))  # no noise added
    assert r["clean"] is None and r["metrics_noisy"] is None and r["metrics_denoised"] is None
    assert r["denoised"] is not None
    assert not panel.clean_pane.isVisible() and not panel.metrics_row.isVisible()
    # Nothing that only shapes the added noise stays enabled (issue 16).
    for w in (panel.noise_label, panel.kind_box, panel.strength_name, panel.strength, panel.new_noise_button):
        assert not w.isEnabled(), w
    panel.already_noisy.setChecked(False)
    wait_result(qtbot, panel, r)
    assert panel.clean_pane.isVisible() and panel.metrics_row.isVisible()


def test_a_noisy_file_gets_a_hint_a_clean_one_does_not(qtbot, panel, tmp_path):
    clean = photo(tmp_path / "clean.png", 64, 64)
    noisy_pixels = np.asarray(Image.open(clean), dtype=np.float64) + np.random.default_rng(1).normal(0, 20, (64, 64))
    noisy = tmp_path / "noisy.png"
    Image.fromarray(np.clip(noisy_pixels, 0, 255).astype(np.uint8)).save(noisy)
    panel.add_images([clean, noisy])
    r = wait_result(qtbot, panel)
    assert r["path"] == clean and r["file_sigma"] < 0.03
    assert "looks noisy already" not in panel.state_label.text()
    panel.browse.next_button.click()
    r = wait_result(qtbot, panel, r)
    assert r["path"] == noisy and r["file_sigma"] > 0.05  # sigma 20/255 = 0.078
    assert "noisy.png looks noisy already" in panel.state_label.text()


def test_fixed_size_autoencoder_and_no_model(qtbot, panel, conv_model, tmp_path):
    path = photo(tmp_path / "f.png", 30, 40)
    panel.add_images([path])
    r = wait_result(qtbot, panel)  # no model: the noise and its metrics, nothing denoised
    assert r["denoised"] is None and r["metrics_noisy"] is not None
    assert panel.tiles["psnr"].text() == f"{r['metrics_noisy']['psnr']:.1f} dB"  # the noisy side only
    assert panel.tiles["psnr"].name.text() == "PSNR of the noisy image"  # and the caption says so
    panel.set_model(conv_model)  # a 16x16 autoencoder: the photo is resized to it and back
    qtbot.waitUntil(lambda: panel.result is not None and panel.result["denoised"] is not None, timeout=WAIT)
    assert panel.tiles["ssim"].name.text() == "SSIM, noisy → denoised"
    assert panel.result["denoised"].shape == (30, 40, 1)
    assert "16×16" in panel.state_label.text() and "resized" in panel.state_label.text()
    # A reconstructing autoencoder is no denoiser: said, with the shipped one that is (issue 16).
    assert "not a denoiser" in panel.state_label.text() and "photo-denoiser" in panel.state_label.text()


def test_data_set_images_are_browsable(qtbot, panel, denoiser):
    panel.set_model(denoiser)
    panel.set_data(SimpleNamespace(spec="digits"))
    qtbot.waitUntil(lambda: panel.arrays is not None and panel.result is not None, timeout=15000)
    np.testing.assert_array_equal(panel.result["clean"][:, :, 0], panel.arrays.images[0, 0])
    first = panel.result
    panel.browse.next_button.click()
    wait_result(qtbot, panel, first)
    np.testing.assert_array_equal(panel.result["clean"][:, :, 0], panel.arrays.images[1, 0])


def test_save_denoised_writes_png_and_never_overwrites_the_input(qtbot, panel, denoiser, tmp_path, monkeypatch):
    from aestudio.data.io import read_image

    path = photo(tmp_path / "in.png", colour=True)
    before = path.read_bytes()
    panel.set_model(denoiser)
    panel.add_images([path])
    r = wait_result(qtbot, panel)
    out = panel.save(tmp_path / "clean.png")
    saved = read_image(out)
    assert saved.shape == (40, 48, 3)
    assert np.abs(saved - r["denoised"]).max() <= 1 / 255 + 1e-6
    assert panel.save(tmp_path / "clean.png") is None and "already exists" in panel.messages[-1][1]
    assert panel.save(path) is None and "never overwritten" in panel.messages[-1][1]
    assert path.read_bytes() == before
    monkeypatch.setattr("aestudio.gui.panels.noise_lab.QFileDialog.getSaveFileName",
                        lambda *a: (str(tmp_path / "dialog.png"), ""))
    assert panel.save() == tmp_path / "dialog.png" and (tmp_path / "dialog.png").is_file()


def test_a_model_that_raises_is_reported_and_the_panel_stays_usable(qtbot, panel, denoiser, tmp_path):
    broken = LoadedModel(path=denoiser.path, info=denoiser.info, predictor=FailingPredictor(denoiser.info),
                         runtime="broken")
    panel.set_model(broken)
    panel.add_images([photo(tmp_path / "b.png")])
    qtbot.waitUntil(lambda: any(lvl is Level.ERROR for lvl, _ in panel.messages), timeout=WAIT)
    assert "denoiser exploded" in panel.messages[-1][1]
    assert panel.result is None and not panel.save_button.isEnabled()
    panel.strength.setValue(0.2)  # dragging over a failing model: still one message
    panel.runner.wait_idle(5)
    qtbot.wait(50)
    assert sum(lvl is Level.ERROR for lvl, _ in panel.messages) == 1

    panel.set_model(denoiser)
    r = wait_result(qtbot, panel)
    assert r["denoised"] is not None and panel.save_button.isEnabled()


def test_a_segmentation_model_only_shows_the_noise(qtbot, panel, denoiser, tmp_path):
    from dataclasses import replace

    from aestudio.config import Task

    seg = LoadedModel(path=denoiser.path, info=replace(denoiser.info, task=Task.SEGMENT),
                      predictor=FailingPredictor(denoiser.info), runtime="seg")
    panel.set_model(seg)
    panel.add_images([photo(tmp_path / "s.png")])
    r = wait_result(qtbot, panel)
    assert r["denoised"] is None and r["metrics_noisy"] is not None
    assert "segmentation model" in panel.state_label.text() and not panel.messages


def test_a_folder_data_set_is_browsed_at_full_size(qtbot, panel, denoiser, tmp_path):
    files = [photo(tmp_path / "a.png", 40, 48), photo(tmp_path / "b.png", 30, 20, colour=True)]
    panel.set_model(denoiser)
    panel.set_data(SimpleNamespace(spec=f"folder:{tmp_path}", files=files))
    r = wait_result(qtbot, panel)
    assert r["clean"].shape == (40, 48, 1) and r["path"] == files[0]
    panel.browse.next_button.click()
    r2 = wait_result(qtbot, panel, r)
    assert r2["clean"].shape == (30, 20, 3) and r2["path"] == files[1]


def test_a_narrow_16_bit_micrograph_is_shown_stretched_and_saved_back_in_its_range(qtbot, panel, denoiser, tmp_path):
    """A 12-bit camera's frame (0-4095 of 65535) dropped on the lab: shown and denoised at its own range, as
    `aestudio denoise` and "Learn this noise" read it, and saved as a 16-bit TIFF in that range."""
    import tifffile

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:40, 0:48]
    raw = np.clip(2000 + 1500 * np.sin(xx / 4.0) * np.cos(yy / 5.0) + rng.normal(0, 80, (40, 48)), 0, 4095)
    raw = raw.astype(np.uint16)
    path = tmp_path / "cam.tif"
    tifffile.imwrite(path, raw)
    panel.set_model(denoiser)
    panel.already_noisy.setChecked(True)
    panel.add_images([path])
    qtbot.waitUntil(lambda: panel.result is not None and panel.result.get("sigma") is not None, timeout=WAIT)
    r = panel.result
    assert r["noisy"].min() == 0.0 and r["noisy"].max() == 1.0  # not 0-0.06 of the type's white level
    assert r["sigma"] > 0.01  # its noise at the size the denoiser sees it (80 counts of ~4000, not of 65535)
    assert panel.item_label.text().endswith(f"cam.tif · 16-bit {raw.min()}-{raw.max()}, stretched")
    out = panel.save(tmp_path / "cam_denoised.png")  # a 16-bit input is saved as a 16-bit TIFF
    assert out == tmp_path / "cam_denoised.tif"
    saved = tifffile.imread(out)
    assert saved.dtype == np.uint16 and raw.min() <= saved.min() and saved.max() <= raw.max()
    np.testing.assert_allclose(saved / 65535.0, r["levels"].restore(r["denoised"])[..., 0], atol=1 / 65535)


def test_tiny_dropped_images_are_denoised_without_an_error(qtbot, panel, denoiser, tmp_path):
    """1 x 1 and 3 x 3 images (too small to crop for learning) still show and denoise; no noise estimate."""
    panel.set_model(denoiser)
    panel.already_noisy.setChecked(True)
    for i, shape in enumerate(((1, 1), (3, 3))):
        path = tmp_path / f"tiny{i}.png"
        Image.fromarray(np.full(shape, 120, np.uint8)).save(path)
        previous = panel.result
        panel.add_images([path])
        qtbot.waitUntil(lambda p=previous: panel.result is not None and panel.result is not p, timeout=WAIT)
        r = panel.result
        assert r["denoised"].shape == (*shape, 1) and r["sigma"] is None
        assert panel.noise_level_label.text() == ""
    assert not any(level is Level.ERROR for level, _ in panel.messages)


def test_already_noisy_greys_the_noise_controls_and_says_why(qtbot, panel, tmp_path):
    """The sigma slider did nothing in "already noisy" mode yet looked as enabled as before: the app
    palette gave disabled widgets the enabled colours."""
    from PySide6.QtWidgets import QApplication

    from aestudio.gui.style import apply_style

    apply_style(QApplication.instance())  # the app's look, as a user sees it (once per application)
    panel.add_images([photo(tmp_path / "p.png")])
    qtbot.waitUntil(lambda: panel.result is not None, timeout=WAIT)
    before = {w: w.grab().toImage() for w in (panel.strength_name, panel.strength, panel.kind_box)}
    panel.already_noisy.setChecked(True)
    qtbot.wait(50)
    for widget, image in before.items():
        assert not widget.isEnabled()
        assert "already noisy" in widget.toolTip(), widget  # says why it is off
        assert widget.grab().toImage() != image, f"{widget} looks the same disabled as enabled"
    panel.already_noisy.setChecked(False)
    assert panel.strength.isEnabled() and "already noisy" not in panel.strength.toolTip()
    assert panel.kind_box.toolTip().startswith("The corruption added")  # its own tip is back


def test_an_int8_denoiser_runs_in_the_lab_and_says_it_is_int8(qtbot, panel, int8_bundles, tmp_path):
    """`aestudio export --int8` bundles load like any other; the runtime line names the int8 graph."""
    model = engine.load_model(int8_bundles("denoising_ae"))
    assert model.runtime.endswith(", int8)") and model.info.precision == "int8"
    panel.set_model(model)
    panel.set_noise("gaussian", 0.1)
    panel.add_images([photo(tmp_path / "p.png")])
    result = wait_result(qtbot, panel, strength=0.1)
    np.testing.assert_allclose(result["denoised"], model.predictor.run_image(result["noisy"]), atol=1e-6)
    assert not np.allclose(result["denoised"], result["noisy"])
