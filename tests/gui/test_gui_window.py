"""The main window: tabs, drops of each kind, messages for bad files, persisted settings."""

from __future__ import annotations

from guitools import drop_paths, message_texts, write_png

from aestudio.gui.app import application
from aestudio.gui.main_window import MainWindow
from aestudio.gui.messages import Level
from aestudio.gui.panels import ExplorePanel
from aestudio.gui.workspace import make_settings

TABS = ["Train", "Reconstruct", "Noise lab", "Segment", "Label", "Latent"]


def test_window_opens_with_all_tabs_and_status(window) -> None:
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == TABS
    assert window.device_label.text().startswith("Device: cpu")
    assert "no model" in window.runtime_label.text()
    for name in ("open_images", "open_folder", "open_model", "export", "quit"):
        assert name in window.actions
    assert window.actions["open_images"].shortcut().toString() == "Ctrl+O"
    assert window.actions["quit"].shortcut().toString() == "Ctrl+Q"


def test_first_launch_opens_digits_so_start_works(window, qtbot) -> None:
    qtbot.waitUntil(lambda: window.data_panel.summary is not None, timeout=20000)
    assert window.data_panel.spec == "digits"
    assert window.train_panel.data_spec == "digits"
    assert window.train_panel.family_box.currentText() == "conv_ae"  # the digits preset
    assert window.train_panel.net_form.values()["latent_dim"] == 16
    assert window.data_panel.model.rowCount() > 0


def test_dropped_images_go_to_the_current_panel_and_broken_ones_are_named(window, qtbot, tmp_path) -> None:
    good = [write_png(tmp_path / f"img{i}.png", seed=i) for i in range(2)]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    window.tabs.setCurrentIndex(TABS.index("Noise lab"))
    drop_paths(window, [*good, broken])
    panel = window.current_explore_panel()
    assert isinstance(panel, ExplorePanel) and panel.title == "Noise lab"
    qtbot.waitUntil(lambda: len(panel.images) == 2, timeout=10000)
    assert panel.images == good
    qtbot.waitUntil(lambda: any("broken.png" in t for t in message_texts(window)), timeout=10000)
    assert window.isVisible()


def test_images_dropped_on_train_go_to_reconstruct(window, qtbot, tmp_path) -> None:
    window.tabs.setCurrentIndex(0)
    drop_paths(window, [write_png(tmp_path / "a.png")])
    qtbot.waitUntil(lambda: window.tabs.currentIndex() == TABS.index("Reconstruct"), timeout=10000)
    assert window.explore[0].images == [tmp_path / "a.png"]


def test_dropped_folder_becomes_the_data_set(window, qtbot, tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(5):
        write_png(folder / f"p{i}.png", size=20, seed=i)
    (folder / "readme.txt").write_text("not an image")
    drop_paths(window, [folder])
    spec = f"folder:{folder}"
    qtbot.waitUntil(lambda: window.data_panel.spec == spec, timeout=20000)
    summary = window.data_panel.summary
    assert summary.train_size + summary.val_size == 5
    assert window.data_panel.model.rowCount() == 5
    assert window.train_panel.data_spec == spec
    assert window.train_panel.family_box.currentText() == "denoising_ae"  # the folder preset
    # Thumbnails decode in the pool and arrive through the event loop.
    window.data_panel.view.resize(600, 400)
    for row in range(5):
        window.data_panel.model.data(window.data_panel.model.index(row), 1)  # DecorationRole
    qtbot.waitUntil(lambda: window.data_panel.model.decoded_count() == 5, timeout=10000)


def test_unsupported_and_missing_files_give_messages_not_crashes(window, qtbot, tmp_path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    drop_paths(window, [text, tmp_path / "gone.png"])
    texts = message_texts(window)
    assert any("notes.txt" in t for t in texts)
    assert any("gone.png" in t and "does not exist" in t for t in texts)
    assert all(m.level is Level.WARNING for m in window.messages.history)
    assert window.messages.isVisibleTo(window)


def test_a_broken_bundle_gives_a_readable_error(window, qtbot, tmp_path) -> None:
    bundle = tmp_path / "fake-bundle"
    bundle.mkdir()
    (bundle / "model.json").write_text("{ not json")
    (bundle / "model.onnx").write_bytes(b"junk")
    drop_paths(window, [bundle])
    qtbot.waitUntil(lambda: any(m.level is Level.ERROR for m in window.messages.history), timeout=10000)
    error = next(m for m in window.messages.history if m.level is Level.ERROR)
    assert "fake-bundle" in error.text
    assert window.active_model is None and window.isVisible()


def test_settings_persist_between_launches(qtbot, settings_dir, tmp_path) -> None:
    application()
    first = MainWindow(make_settings())
    qtbot.addWidget(first)
    first.show()
    first.tabs.setCurrentIndex(TABS.index("Segment"))
    first.splitter.setSizes([250, first.splitter.width() - 250])
    saved_split = bytes(first.splitter.saveState())
    other = tmp_path / "elsewhere"
    first.set_workspace(other)
    first.close()

    second = MainWindow(make_settings())
    qtbot.addWidget(second)
    second.show()
    assert second.tabs.currentIndex() == TABS.index("Segment")
    assert bytes(second.splitter.saveState()) == saved_split
    # (The offscreen screen is 800x600, smaller than the window, so Qt clamps the
    # restored size; the geometry itself is saved, and restored on a real screen.)
    assert make_settings().value("window/geometry") is not None
    # AESTUDIO_HOME (set by the test suite) wins over the saved choice, as documented.
    assert second.workspace != other
    assert make_settings().value("workspace") == str(other)
    second.close()


def test_models_panel_lists_rename_and_delete(window, qtbot, tmp_path, monkeypatch) -> None:
    runs = window.workspace / "runs"
    run = runs / "conv_ae-digits-1"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{}")
    window.models_panel.refresh()
    from aestudio.gui.models_panel import Group

    assert window.models_panel.entries(Group.RUNS) == [run]
    renamed = window.models_panel.rename(run, "my-run")
    assert renamed == runs / "my-run" and renamed.is_dir() and not run.exists()
    assert window.models_panel.rename(renamed, "../escape") is None  # no path tricks
    window.models_panel.protected = {renamed}
    assert not window.models_panel.delete(renamed)  # in use
    window.models_panel.protected = set()
    assert window.models_panel.delete(renamed)
    assert not renamed.exists()
    assert window.models_panel.entries(Group.RUNS) == []
    outside = tmp_path / "outside"
    outside.mkdir()
    assert not window.models_panel.delete(outside) and outside.exists()


def test_closing_the_window_stops_every_panel_thread(qtbot, settings_dir) -> None:
    import threading

    from aestudio.gui.app import application
    from aestudio.gui.main_window import MainWindow
    from aestudio.gui.workspace import make_settings

    application()
    w = MainWindow(make_settings())
    qtbot.addWidget(w)
    assert len(w.explore) == 5  # builds every panel now (unshown, the window would build them after its first paint)
    mine = {t for t in threading.enumerate() if t.name.startswith("aestudio-") and "task" not in t.name}
    assert len(mine) >= 4  # each exploration panel runs its own latest-only thread
    w.train_panel.shutdown(timeout=10)
    w.close()
    qtbot.waitUntil(lambda: not any(t.is_alive() for t in mine), timeout=5000)


def test_the_window_fits_a_laptop_screen_on_every_tab(window, qtbot) -> None:
    window.resize(1366, 768)
    for i in range(window.tabs.count()):
        window.tabs.setCurrentIndex(i)
        qtbot.wait(20)
        hint = window.minimumSizeHint()
        assert hint.width() <= 1366 and hint.height() <= 768, (window.tabs.tabText(i), hint)
        assert window.width() <= 1366 and window.height() <= 768, window.tabs.tabText(i)


def test_bfloat16_setting_is_a_persisted_menu_choice_the_runtime_line_reports(window, qtbot, bundles) -> None:
    """File > "Whole images and folders in bfloat16 where faster": on by default; the runtime line says when the
    active model's batch work takes bfloat16; off keeps the ONNX graph and is remembered."""
    from aestudio.explore import sessions
    from aestudio.export.bf16_runtime import bf16_native

    action = window.actions["bf16"]
    assert action.isCheckable() and action.isChecked()
    window.load_model(bundles("denoising_ae"))
    qtbot.waitUntil(lambda: window.active_model is not None, timeout=30000)
    said = "whole images and folders in bfloat16" in window.runtime_label.text()
    assert said == bf16_native()  # a CPU without native bfloat16 keeps float32, and says nothing
    action.trigger()  # off
    assert make_settings().value("inference/precision", type=str) == "float32"
    assert sessions._batch_runtime is None
    assert "bfloat16" not in window.runtime_label.text()  # at once: the toggle reloads nothing
    action.trigger()  # on again
    assert make_settings().value("inference/precision", type=str) == "auto" and sessions._batch_runtime is not None
    assert ("whole images and folders in bfloat16" in window.runtime_label.text()) == bf16_native()
