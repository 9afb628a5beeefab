"""Hostile input, class 6: the app shows the one-line message and never waits forever (issue 18)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("PySide6")


@pytest.mark.parametrize("payload", ["[" * 100_000 + "]" * 100_000, "9" * 5000], ids=["deep", "5000-digits"])
def test_a_hostile_drop_shows_the_one_line_message(window, qtbot, bundles, tmp_path: Path, payload: str) -> None:
    b = Path(shutil.copytree(bundles("conv_ae"), tmp_path / "hostile"))
    card = json.loads((b / "model.json").read_text())
    card["metrics"] = "__X__"
    (b / "model.json").write_text(json.dumps(card).replace('"__X__"', payload))
    posted: list[tuple[str, str]] = []
    window.notify = lambda level, text, details="", **_: posted.append((level, text))  # type: ignore[method-assign]
    window.load_model(b)
    qtbot.waitUntil(lambda: bool(posted), timeout=30_000)
    level, text = posted[-1]
    assert "model.json" in text and ("nested more than 64" in text or "5,000-digit" in text), text
    assert "\n" not in text and "Traceback" not in text and "RecursionError" not in text


def test_the_apps_model_calls_have_a_time_limit(bundles) -> None:
    from aestudio.gui import engine

    model = engine.load_model(bundles("conv_ae"))
    assert model.predictor.time_limit_s == engine.MODEL_CALL_LIMIT_S
    assert 0 < engine.MODEL_CALL_LIMIT_S <= 600  # a runaway call ends (tests/reliability/test_hostile_limits.py)


def test_replacing_the_model_cancels_its_calls_in_flight(window, qtbot, bundles, tmp_path: Path) -> None:
    """A model call that never returns (a Loop of 1e15 iterations) ends when another model is chosen."""
    import threading

    from test_hostile_limits import _endless_loop

    from aestudio.gui import engine
    from aestudio.inference.ort import ForeignModelDescription, ModelCallCancelled, OrtPredictor

    pred = OrtPredictor(_endless_loop(tmp_path / "endless.onnx"),
                        description=ForeignModelDescription(task="reconstruct", value_range=(0, 1)))
    window.active_model = engine.LoadedModel(path=tmp_path / "endless.onnx", info=pred.info, predictor=pred,
                                             runtime="ONNX Runtime")
    errors: list[BaseException] = []

    def call() -> None:
        import numpy as np

        try:
            pred.predict(np.zeros((1, 1, 8, 8), np.float32))
        except BaseException as exc:  # noqa: BLE001 - inspected below
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    qtbot.wait(500)
    window.set_active_model(engine.load_model(bundles("conv_ae")))
    worker.join(10)
    assert not worker.is_alive() and errors and isinstance(errors[0], ModelCallCancelled), errors
