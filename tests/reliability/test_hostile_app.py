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
    window.notify = lambda level, text, details="": posted.append((level, text))  # type: ignore[method-assign]
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
