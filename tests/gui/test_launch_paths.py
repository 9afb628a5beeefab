"""``aestudio PATH``: the window opens on the tab the path is for, and stays there.

A first start loads the zoo's default model (the digits VAE) and then switches to that model's
tab (Latent). Before, that switch came after the launch paths were opened and moved the window
away from the project or the images the user asked for.
"""

from __future__ import annotations

from guitools import write_png

WAIT = 60_000


def _launch(qtbot, paths):
    from aestudio.gui.app import create_window

    w = create_window(paths)
    qtbot.addWidget(w)
    return w


def _settle(qtbot, w) -> None:
    """Until the start-up model is active and the window's idle jobs (the tab switch among them) ran."""
    qtbot.waitUntil(lambda: w.active_model is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: not w._idle_jobs, timeout=WAIT)
    qtbot.wait(200)


def _close(w) -> None:
    w.train_panel.shutdown(timeout=10)
    w.close()


def test_a_project_on_the_command_line_opens_on_label_on_a_first_start(qtbot, settings_dir, tmp_path, monkeypatch) -> None:
    from aestudio.data.project import LabelProject

    monkeypatch.setenv("AESTUDIO_FIRST_RUN", "1")  # the default model loads and wants its tab, as for a new user
    project = LabelProject.create(tmp_path / "proj", ["sky", "tree"])
    (tmp_path / "src").mkdir()
    project.add_images([write_png(tmp_path / "src" / "a.png", size=32)])
    w = _launch(qtbot, [project.root])
    _settle(qtbot, w)
    assert w.tabs.tabText(w.tabs.currentIndex()) == "Label"
    label = w.current_explore_panel()
    assert label.project.root == project.root
    # The keys work at once: the canvas has the focus (they went to the tab bar until a first click).
    qtbot.waitUntil(lambda: label.image is not None, timeout=WAIT)
    assert w.focusWidget() is label.canvas
    size = label.size_slider.value()
    qtbot.keyClick(w.focusWidget(), "]")
    assert label.size_slider.value() > size
    _close(w)


def test_an_image_on_the_command_line_stays_in_the_panel_it_went_to(qtbot, settings_dir, tmp_path, monkeypatch) -> None:
    from aestudio.gui.main_window import MainWindow

    monkeypatch.setenv("AESTUDIO_FIRST_RUN", "1")
    # The tab's own offer (a denoiser) raced the default VAE: whichever loaded last decided the tab.
    # Without the offer the VAE always loads, and its tab (Latent) must not be shown.
    monkeypatch.setattr(MainWindow, "_offer_model_for_tab", lambda self: None)
    image = write_png(tmp_path / "noisy.png", size=32)
    w = _launch(qtbot, [image])
    qtbot.waitUntil(lambda: w.current_explore_panel() is not None and image in w.current_explore_panel().images,
                    timeout=WAIT)
    _settle(qtbot, w)
    assert w.active_model.info.task.value == "generate"  # the model whose tab used to win
    assert w.tabs.tabText(w.tabs.currentIndex()) == "Noise lab"  # a first start's images land there
    assert image in w.current_explore_panel().images
    _close(w)


def test_a_noisy_photo_on_a_first_start_opens_in_the_noise_lab_with_the_photo_denoiser(
        qtbot, settings_dir, tmp_path, monkeypatch) -> None:
    """`aestudio noisy.png` on a first start: the Noise lab, its shipped denoiser, and a hint that the photo
    is noisy already. It opened on Reconstruct with the 8 x 8 digits model, which shrank the photo to a blob."""
    import numpy as np
    from PIL import Image

    monkeypatch.setenv("AESTUDIO_FIRST_RUN", "1")
    yy, xx = np.mgrid[0:96, 0:128]
    clean = 0.5 + 0.3 * np.sin(xx / 9.0) * np.cos(yy / 7.0)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape), 0, 1)
    image = tmp_path / "noisy.png"
    Image.fromarray((noisy * 255).round().astype(np.uint8)).save(image)
    w = _launch(qtbot, [image])
    qtbot.waitUntil(lambda: w.active_model is not None and w.active_model.path.name == "photo-denoiser", timeout=WAIT)
    lab = w.current_explore_panel()
    assert w.tabs.tabText(w.tabs.currentIndex()) == "Noise lab" and image in lab.images
    qtbot.waitUntil(lambda: lab.result is not None and lab.result.get("denoised") is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: "looks noisy already" in lab.state_label.text(), timeout=WAIT)
    assert "noisy.png" in lab.state_label.text() and "Input is already noisy" in lab.state_label.text()
    lab.already_noisy.setChecked(True)  # the hint's advice: the photo is denoised as it is, and the hint goes
    qtbot.waitUntil(lambda: lab.result is not None and lab.result["noise"] is None, timeout=WAIT)
    assert "looks noisy already" not in lab.state_label.text()
    _close(w)


def test_a_model_on_the_command_line_opens_on_its_tab(qtbot, settings_dir, bundles, monkeypatch) -> None:
    from aestudio.gui.workspace import Key, make_settings

    monkeypatch.setenv("AESTUDIO_FIRST_RUN", "0")  # not a first start: the last session's tab is restored
    settings = make_settings()
    settings.setValue(Key.TAB, 5)  # Latent
    settings.sync()
    w = _launch(qtbot, [bundles("unet")])
    _settle(qtbot, w)
    assert w.tabs.tabText(w.tabs.currentIndex()) == "Segment"
    _close(w)


def test_a_folder_on_the_command_line_stays_the_data_on_a_first_start(qtbot, settings_dir, tmp_path, monkeypatch) -> None:
    """The first start's default model is a shipped one, which brings its own training data (digits) to
    the data panel: it replaced the folder the user asked for."""
    monkeypatch.setenv("AESTUDIO_FIRST_RUN", "1")
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        write_png(folder / f"p{i}.png", size=32, seed=i)
    w = _launch(qtbot, [folder])
    _settle(qtbot, w)
    qtbot.waitUntil(lambda: w.data_panel.summary is not None, timeout=WAIT)
    qtbot.wait(300)
    assert w.data_panel.spec == f"folder:{folder}"
    assert w.data_panel.summary.spec == f"folder:{folder}"
    _close(w)


def test_opening_a_project_builds_only_the_label_tab(qtbot, settings_dir, tmp_path) -> None:
    """At `aestudio PROJECT` the paths are opened before the window's first paint: building every panel
    there (with its imports) held that paint ~3 s; only the Label tab is needed."""
    from aestudio.data.project import LabelProject
    from aestudio.gui.app import application
    from aestudio.gui.main_window import MainWindow
    from aestudio.gui.workspace import make_settings

    (tmp_path / "src").mkdir()
    project = LabelProject.create(tmp_path / "proj")
    project.add_images([write_png(tmp_path / "src" / "a.png", size=32)])
    application()
    w = MainWindow(make_settings())
    qtbot.addWidget(w)
    w.open_paths([project.root], at_launch=True)  # as create_window's queued call may run: before any paint
    built = [p for p in w._panels if p is not None]
    assert [p.title for p in built] == ["Label"]
    assert w.current_explore_panel() is built[0]
    w.show()
    qtbot.waitUntil(lambda: built[0].project is not None and built[0].project.root == project.root, timeout=WAIT)
    _close(w)
