"""Noise lab, "Learn this noise": trains on the dropped noisy images, previews live, Stop swaps the model in."""

from __future__ import annotations

import numpy as np
import pytest
from guitools import message_texts, requires

from aestudio.config import Task
from aestudio.data.io import write_image
from aestudio.gui.panels.noise_lab import NoiseLabPanel

WAIT = 120_000  # ms: a shared 2-core machine, and the export runs in a child process


def _noisy_images(folder, n=2, size=48):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    folder.mkdir()
    paths = []
    for i in range(n):
        clean = 0.5 + 0.35 * np.sin(7 * xx + i) * np.cos(5 * yy - i)
        noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)[..., None]
        paths.append(folder / f"noisy{i}.png")
        write_image(paths[-1], noisy, bit_depth=16)
    return paths


@pytest.mark.slow
@requires("aestudio.export.exporter")
def test_learn_this_noise_trains_previews_and_stop_makes_it_the_active_model(window, qtbot, tmp_path) -> None:
    from aestudio.cli import main

    paths = _noisy_images(tmp_path / "in")
    before = [p.read_bytes() for p in paths]
    panel = next(p for p in window.explore if isinstance(p, NoiseLabPanel))
    window.show_panel(panel)
    window.open_paths(paths)
    qtbot.waitUntil(lambda: len(panel.images) == 2, timeout=WAIT)
    assert panel.learn_row.learn_button.isEnabled() and not panel.learn_row.stop_button.isEnabled()
    panel.learn_row.learn_button.click()
    assert panel.already_noisy.isChecked() and panel.learner.running
    assert panel.learn_row.stop_button.isEnabled() and not panel.learn_row.learn_button.isEnabled()
    # The denoised pane refreshes from the newest checkpoint while training goes on.
    qtbot.waitUntil(lambda: "learning: step" in panel.denoised_pane.caption.text(), timeout=WAIT)
    assert panel.denoised_pane.array is not None and panel.denoised_pane.array.shape == (48, 48, 1)
    assert "step" in panel.learn_row.label.text()
    run_dir = panel.learner.run_dir
    from aestudio.training.runs import read_run

    # A loaded grey denoising_ae (the shipped one, on a first start) is fine-tuned rather than replaced.
    active = window.active_model
    expect_init = active is not None and getattr(active.info, "net", None) == "denoising_ae" and active.info.in_channels == 1
    assert ("init_weights" in read_run(run_dir).extra) == expect_init
    assert ("fine-tuning" in panel.learn_row.label.text()) == expect_init  # the step line says where it started
    panel.learn_row.stop_button.click()
    qtbot.waitUntil(lambda: window.active_model is not None and run_dir.name in str(window.active_model.path),
                    timeout=WAIT)
    assert not panel.learner.running and panel.learn_row.learn_button.isEnabled()
    bundle = run_dir / "bundle"
    assert (bundle / "model.json").is_file() and any("Active model" in t for t in message_texts(window))
    # The row says which model is now active (it said "exporting…" until the next session), and the
    # model's name is the images' folder, not its whole path.
    qtbot.waitUntil(lambda: panel.learn_row.label.text().startswith("Active model: "), timeout=WAIT)
    name = window.active_model.name
    assert "noisy0-and-1-more" in name and "self-supervised" in name and "folder:" not in name
    assert [p.read_bytes() for p in paths] == before  # the inputs were only read
    # The learned bundle denoises a whole folder from the command line.
    out = tmp_path / "out"
    assert main(["denoise", "--model", str(bundle), str(tmp_path / "in"), "-o", str(out)]) == 0
    # 16-bit inputs: 16-bit TIFF results in their own range (aestudio.data.levels)
    assert sorted(p.name for p in out.iterdir()) == ["noisy0_denoised.tif", "noisy1_denoised.tif"]


def test_learn_without_images_says_what_to_do(window, qtbot) -> None:
    panel = next(p for p in window.explore if isinstance(p, NoiseLabPanel))
    assert panel.learn_this_noise() is False
    assert any("noisy images to learn from" in t for t in message_texts(window))


def _panel(qtbot):
    from aestudio.gui.workers import TaskRunner

    tasks = TaskRunner()
    p = NoiseLabPanel(tasks)
    qtbot.addWidget(p)
    p.resize(1200, 700)
    p.show()
    return p, tasks


def test_noise_estimate_and_warnings_outside_the_trained_range(qtbot, tmp_path) -> None:
    from aestudio.gui import engine

    shipped = engine.zoo_model_for_task(Task.DENOISE)
    if shipped is None:
        pytest.skip("the shipped photo-denoiser is not built")
    model = engine.load_model(shipped.path)
    panel, tasks = _panel(qtbot)
    try:
        panel.set_model(model)
        rng = np.random.default_rng(1)
        yy, xx = np.mgrid[0:96, 0:96] / 96
        clean = 0.5 + 0.3 * np.sin(9 * xx) * np.cos(7 * yy)
        paths = []
        for sigma in (0.05, 0.3):
            paths.append(tmp_path / f"s{sigma}.png")
            write_image(paths[-1], np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 1)[..., None], bit_depth=16)
        panel.already_noisy.setChecked(True)
        panel.add_images(paths[:1])
        qtbot.waitUntil(lambda: panel.result is not None and panel.result.get("sigma") is not None, timeout=30000)
        assert abs(panel.result["sigma"] - 0.05) < 0.015
        text = panel.noise_level_label.text()
        assert "sigma ≈ 0.05" in text and "gaussian noise, strength 0-0.216" in text
        assert "beyond it" not in panel.state_label.text()
        previous = panel.result
        panel.add_images(paths[1:])
        qtbot.waitUntil(lambda: panel.result is not previous and panel.result.get("sigma") is not None, timeout=30000)
        assert panel.result["sigma"] > 0.2
        assert "beyond it" in panel.state_label.text() and "Learn this noise" in panel.state_label.text()
        # Synthetic noise: the sigma slider past the trained range says so.
        panel.already_noisy.setChecked(False)
        panel.set_noise("gaussian", 0.3)
        qtbot.waitUntil(lambda: panel.result is not None and panel.result["noise"] == ("gaussian", 0.3, 0), timeout=30000)
        assert "Sigma 0.300 is beyond what" in panel.state_label.text()
        panel.set_noise("gaussian", 0.1)
        qtbot.waitUntil(lambda: panel.result["noise"] == ("gaussian", 0.1, 0), timeout=30000)
        assert "beyond what" not in panel.state_label.text()
    finally:
        panel.shutdown()
        tasks.shutdown()


def test_learning_from_awkward_images_names_the_ones_left_out_and_trains_on_the_rest(qtbot, tmp_path) -> None:
    """Too small to crop (named, left out; all of them: refused), mixed grey and colour, a narrow 16-bit frame
    and a float TIFF with NaNs: "Learn this noise" trains, previews on the grey image with the colour net,
    and a Stop between two validations hands over the weights it stopped on as the best so far."""
    import tifffile

    from aestudio.gui.panels.noise_learn import NoiseLearner
    from aestudio.gui.workers import TaskRunner
    from aestudio.training.runs import read_run

    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    write_image(src / "tiny.png", np.full((10, 40, 1), 0.5, np.float32))
    write_image(src / "tiny2.png", np.full((12, 12, 1), 0.5, np.float32))
    tifffile.imwrite(src / "narrow.tif", (1000 + rng.integers(0, 2000, (40, 40))).astype(np.uint16))
    nan = rng.random((40, 40)).astype(np.float32)
    nan[3:6, 3:6] = np.nan
    tifffile.imwrite(src / "nan.tif", nan)
    write_image(src / "rgb.png", rng.random((36, 40, 3)).astype(np.float32))
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    tasks = TaskRunner()
    grey = rng.random((40, 40, 1)).astype(np.float32)
    learner = NoiseLearner(tasks, lambda: grey)
    said, previews, ready = [], [], []
    learner.notify.connect(lambda level, text, details: said.append(text))
    learner.preview_ready.connect(previews.append)
    learner.model_ready.connect(ready.append)
    try:
        assert learner.start([src / "tiny.png", src / "tiny2.png"], tmp_path / "ws") is False
        assert "tiny.png: 40x10 is too small to learn from" in said[-1] and "drop larger images" in said[-1]
        paths = sorted(src.iterdir())
        assert learner.start(paths, tmp_path / "ws") is True
        assert any("left out 2 image(s)" in t and "tiny.png" in t for t in said)
        staged = sorted(p.relative_to(tmp_path / "ws" / "noisy").as_posix() for p in (tmp_path / "ws" / "noisy").glob("*/*"))
        assert staged == ["nan-and-2-more/000-nan.tif", "nan-and-2-more/001-narrow.tif", "nan-and-2-more/002-rgb.png"]
        assert learner.run_dir.name.startswith("denoising_ae-selfsup-nan-and-2-more-")
        qtbot.waitUntil(lambda: bool(previews), timeout=WAIT)
        assert previews[-1]["denoised"].shape == (40, 40, 1) and np.isfinite(previews[-1]["denoised"]).all()
        learner.stop()
        qtbot.waitUntil(lambda: bool(ready), timeout=WAIT)
        info = read_run(ready[0])
        assert info.net_cfg.in_channels == 3 and info.status == "stopped"
        assert info.best is not None and info.best["step"] <= info.step and np.isfinite(info.best["value"])
    finally:
        learner.shutdown()
        tasks.shutdown()
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # the originals were only read
