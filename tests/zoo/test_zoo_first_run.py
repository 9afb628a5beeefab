"""First run: a fresh window opens with the default zoo model loaded and the sample strip ready."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


@pytest.fixture
def first_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AESTUDIO_FIRST_RUN", "1")  # the suite sets AESTUDIO_HOME, which turns first runs off


@pytest.fixture
def fresh_window(first_run, window):
    """The window as a new user first sees it (first_run is set before the window exists)."""
    return window


def test_first_run_loads_the_default_zoo_model_and_shows_samples(qtbot, fresh_window) -> None:
    from aestudio.zoo import catalog as zoo

    w = fresh_window
    assert w.first_run
    qtbot.waitUntil(lambda: w.active_model is not None, timeout=60000)
    assert w.active_model.path == zoo.default_model().path
    qtbot.waitUntil(lambda: w.data_panel.spec == "digits", timeout=60000)  # opened on a worker
    # It opens the tab where the default model (a VAE) is useful, once the start-up loads are done.
    qtbot.waitUntil(lambda: w.current_explore_panel() is not None
                    and w.current_explore_panel().supports(w.active_model), timeout=30000)
    assert w.samples.isVisible()
    assert [p.name for p in w.samples.paths()] == [p.name for p in zoo.sample_images()]
    from aestudio.gui.models_panel import Group

    shipped = w.models_panel.entries(Group.SHIPPED)
    assert {p.name for p in shipped} == {m.name for m in zoo.list_models()}


def test_samples_drag_out_as_file_urls_and_click_opens_them(qtbot, fresh_window) -> None:
    w = fresh_window
    qtbot.waitUntil(lambda: w.active_model is not None, timeout=60000)
    item = w.samples.list.item(0)
    mime = w.samples.list.mimeData([item])
    (url,) = mime.urls()
    assert url.isLocalFile() and Path(url.toLocalFile()).is_file()
    opened: list[list[Path]] = []
    w.samples.open_requested.connect(opened.append)
    w.samples.list.itemClicked.emit(item)
    assert opened == [[Path(url.toLocalFile())]]


def test_segment_tab_offers_the_shapes_seg_unet(qtbot, fresh_window) -> None:
    w = fresh_window
    qtbot.waitUntil(lambda: w.active_model is not None, timeout=60000)
    segment = next(p for p in w.explore if "segment" in p.title.lower())
    w.show_panel(segment)
    qtbot.waitUntil(lambda: w.active_model.path.name == "shapes-seg-unet", timeout=60000)
    # ...and brings the data it was trained on, so the panel can browse images with masks.
    qtbot.waitUntil(lambda: w.data_panel.summary is not None and w.data_panel.summary.spec == "shapes-seg",
                    timeout=60000)
    qtbot.waitUntil(lambda: segment.data is not None and segment.data.spec == "shapes-seg", timeout=10000)


def test_noise_lab_offers_the_photo_denoiser_over_a_reconstructing_model(qtbot, fresh_window) -> None:
    # Issue 16: the Noise lab kept digits-conv-ae active and a dropped photo came out as a blob.
    from aestudio.zoo import catalog as zoo

    w = fresh_window
    qtbot.waitUntil(lambda: w.active_model is not None, timeout=60000)
    w.load_model(zoo.find_model("digits-conv-ae").path)
    qtbot.waitUntil(lambda: w.active_model.path.name == "digits-conv-ae", timeout=60000)
    noise = next(p for p in w.explore if "noise" in p.title.lower())
    w.show_panel(noise)
    qtbot.waitUntil(lambda: w.active_model.path.name == "photo-denoiser", timeout=60000)
    assert any("Noise lab works best with a denoise model: loading the shipped photo-denoiser" in m.text
               for m in w.messages.history)


def test_scripted_setups_skip_the_first_run_model(qtbot, settings_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    from aestudio.gui.app import application
    from aestudio.gui.main_window import MainWindow
    from aestudio.gui.workspace import make_settings

    monkeypatch.delenv("AESTUDIO_FIRST_RUN", raising=False)  # AESTUDIO_HOME is set by the suite
    application()
    w = MainWindow(make_settings())
    qtbot.addWidget(w)
    assert not w.first_run
    w.close()
