"""The newest model load request wins, whatever order the loads finish in."""

from __future__ import annotations

import threading
from pathlib import Path

from guitools import message_texts


def test_an_older_load_finishing_after_a_newer_one_does_not_replace_it(window, qtbot, bundles, monkeypatch) -> None:
    """Seen under Xvfb on a first start: the default model (asked for at start-up) finished loading after
    the photo-denoiser the Noise lab asked for, and the lab was left with the digits VAE."""
    from aestudio.gui import engine

    older, newer = bundles("conv_ae"), bundles("denoising_ae")
    gate, finished = threading.Event(), threading.Event()
    real = engine.load_model

    def load(path, **kw):
        if Path(path) == older:
            gate.wait(30)  # the older load is the slow one
            try:
                return real(path, **kw)
            finally:
                finished.set()
        return real(path, **kw)

    monkeypatch.setattr(engine, "load_model", load)
    window.load_model(older)
    window.load_model(newer)
    qtbot.waitUntil(lambda: window.active_model is not None and window.active_model.path == newer, timeout=30_000)
    gate.set()
    qtbot.waitUntil(finished.is_set, timeout=30_000)
    qtbot.wait(300)  # the older result's delivery to the GUI thread
    assert window.active_model.path == newer
    assert sum("Active model" in t for t in message_texts(window)) == 1
