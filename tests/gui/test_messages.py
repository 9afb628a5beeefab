"""The message bar: one banner per topic (a model being loaded, then loaded, is one message, not two)."""

from __future__ import annotations

from aestudio.gui.messages import TOPIC_MODEL, Level, MessageBar


def test_a_topic_message_replaces_the_infos_of_its_topic_only(qtbot) -> None:
    bar = MessageBar()
    qtbot.addWidget(bar)
    bar.post(Level.INFO, "Noise lab works best with a denoise model: loading the shipped photo-denoiser.",
             topic=TOPIC_MODEL)
    bar.post(Level.INFO, "Active model: photo-denoiser (ONNX Runtime).", topic=TOPIC_MODEL)
    assert [m.text for m in bar.visible_messages()] == ["Active model: photo-denoiser (ONNX Runtime)."]
    assert len(bar.history) == 2  # the replaced one is still in the history

    bar.post(Level.ERROR, "Cannot load x: broken", topic=TOPIC_MODEL)
    bar.post(Level.INFO, "Active model: y.", topic=TOPIC_MODEL)
    # An error stays until dismissed; the info it follows went.
    assert [m.text for m in bar.visible_messages()] == ["Cannot load x: broken", "Active model: y."]
    bar.clear()
    bar.post(Level.INFO, "Active model: z.", topic=TOPIC_MODEL)
    bar.post(Level.INFO, "3 image(s) sent to Reconstruct.")  # no topic: replaces nothing
    assert [m.text for m in bar.visible_messages()] == ["Active model: z.", "3 image(s) sent to Reconstruct."]


def test_a_first_visit_to_the_noise_lab_shows_one_model_banner(window, qtbot, monkeypatch) -> None:
    monkeypatch.setenv("AESTUDIO_FIRST_RUN", "1")  # tab offers on, as for a real user
    noise = next(i for i in range(window.tabs.count()) if window.tabs.tabText(i) == "Noise lab")
    window.tabs.setCurrentIndex(noise)
    qtbot.waitUntil(lambda: window.active_model is not None, timeout=60_000)
    shown = [m.text for m in window.messages.visible_messages()]
    assert any(t.startswith("Active model:") for t in shown), shown
    assert not any("loading the shipped" in t for t in shown), shown
    assert any("loading the shipped" in m.text for m in window.messages.history)  # it was said, then replaced
