"""Relaunching restores the last session: its data and its model, with no zoo model pushed in between."""

from __future__ import annotations

from guitools import message_texts


def _new_window(qtbot):
    from aestudio.gui.app import application
    from aestudio.gui.main_window import MainWindow
    from aestudio.gui.workspace import make_settings

    application()
    w = MainWindow(make_settings())
    qtbot.addWidget(w)
    w.show()
    return w


def test_relaunch_restores_the_last_model_data_and_tab(qtbot, settings_dir, bundles, monkeypatch) -> None:
    # Zoo helpers on, as for a real user: issue 16 saw the Latent tab's offer load shapes-vae
    # on the second launch, and another launch open with no model at all.
    monkeypatch.setenv("AESTUDIO_FIRST_RUN", "1")
    bundle = bundles("conv_ae")
    first = _new_window(qtbot)
    qtbot.waitUntil(lambda: first.active_model is not None, timeout=60000)  # the first run's default model
    first.data_panel.open_spec("shapes")
    qtbot.waitUntil(lambda: first.data_panel.summary is not None and first.data_panel.summary.spec == "shapes",
                    timeout=60000)
    first.load_model(bundle)
    qtbot.waitUntil(lambda: first.active_model is not None and first.active_model.path == bundle, timeout=60000)
    segment = next(i for i in range(first.tabs.count()) if first.tabs.tabText(i) == "Segment")
    first.tabs.setCurrentIndex(segment)  # a tab conv_ae does not serve; its offer only names the zoo model
    first.train_panel.shutdown(timeout=10)
    first.close()

    second = _new_window(qtbot)
    loaded = []
    for panel in second.explore:
        panel_model = panel.set_model

        def spy(model, _orig=panel_model):
            loaded.append(model.path)
            _orig(model)
        panel.set_model = spy
    qtbot.waitUntil(lambda: second.active_model is not None, timeout=60000)
    qtbot.wait(300)
    assert second.active_model.path == bundle
    assert set(loaded) == {bundle}, f"another model was loaded on relaunch: {loaded}"
    assert second.tabs.currentIndex() == segment
    qtbot.waitUntil(lambda: second.data_panel.summary is not None, timeout=60000)
    assert second.data_panel.spec == "shapes"
    assert not any("loading the shipped" in t for t in message_texts(second))
    second.train_panel.shutdown(timeout=10)
    second.close()


def test_a_vanished_model_is_not_reopened(qtbot, settings_dir, tmp_path) -> None:
    from aestudio.gui.workspace import Key, make_settings

    s = make_settings()
    s.setValue(Key.MODEL, str(tmp_path / "gone"))
    s.setValue(Key.DATA_SPEC, "digits")
    s.sync()
    w = _new_window(qtbot)
    qtbot.wait(500)
    assert w.active_model is None and w._restoring is None
    assert not any(m.level.value == "error" for m in w.messages.history)
    w.close()
