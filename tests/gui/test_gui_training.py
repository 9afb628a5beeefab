"""Training from the window: a tiny real run with live feedback, stop, export, load; a crash."""

from __future__ import annotations

import re
import threading

import numpy as np
from guitools import drop_paths, message_texts, requires

from aestudio.config import FinishReason
from aestudio.gui import engine
from aestudio.gui.messages import Level
from aestudio.gui.models_panel import Group


def _wait_for_data(window, qtbot) -> None:
    qtbot.waitUntil(lambda: window.data_panel.summary is not None, timeout=30000)
    assert window.train_panel.data_spec == "digits"


def _tiny_settings(panel) -> None:
    # 16x16 digits, a small code and few channels: an epoch takes about a second on 2 cores.
    panel.net_form.set_values({"image_size": 16, "latent_dim": 8, "base_channels": 8})
    panel.train_form.set_values({"epochs": 3, "batch_size": 32})
    panel.advanced_form.set_values({"preview_count": 4})
    panel.set_device("cpu")


@requires("aestudio.export.exporter")
def test_a_tiny_run_shows_progress_stops_within_a_step_and_loads_as_the_model(window, qtbot, monkeypatch, tmp_path) -> None:
    _wait_for_data(window, qtbot)
    panel = window.train_panel
    _tiny_settings(panel)

    # Count steps as the worker thread sees them, to check that stop ends within one step.
    worker_steps = [0]
    real_train = engine.train

    def counting_train(*args, **kwargs):
        for event in real_train(*args, **kwargs):
            if type(event).__name__ == "StepEnded":
                worker_steps[0] = event.step
            yield event

    monkeypatch.setattr(engine, "train", counting_train)
    finished = []
    panel.run_finished.connect(finished.append)
    panel.start()
    assert panel.worker is not None and panel.worker.running
    assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()

    # Live feedback: the progress bar moves, curves get points, the first epoch brings
    # a preview grid (input / output rows) and validation metrics.
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=30000)
    qtbot.waitUntil(lambda: panel.preview.rows >= 2, timeout=60000)
    assert panel.curves.point_counts()["steps"] > 0
    assert panel.curves.point_counts()["val"] >= 1
    assert "psnr" in panel.metrics.latest()
    assert "images/s" in panel.stats_label.text() and "ETA" in panel.stats_label.text()
    assert "training on cpu" in panel.run_label.text()
    assert window.device_label.text().startswith("Device: cpu")

    # The Runs list follows the run as it checkpoints (it said "0 ep · running" at epoch 5).
    def run_details() -> str:
        tree = window.models_panel.tree
        top = next(tree.topLevelItem(i) for i in range(tree.topLevelItemCount()) if tree.topLevelItem(i).text(0) == "Runs")
        return top.child(0).text(1) if top.childCount() else ""

    qtbot.waitUntil(lambda: run_details().startswith(("1 ep", "2 ep", "3 ep")), timeout=60000)
    assert "running" in run_details()

    stopped_at = worker_steps[0]
    panel.stop()
    qtbot.waitUntil(lambda: bool(finished), timeout=30000)
    ev = finished[0]
    assert ev.reason is FinishReason.STOPPED
    assert ev.step <= stopped_at + 1, f"stop requested at step {stopped_at}, run ended at {ev.step}"
    assert ev.step < panel.progress.maximum()  # it really stopped early
    # The header says how the run ended, not "training on cpu" any more.
    assert "stopped on cpu" in panel.run_label.text() and "training on" not in panel.run_label.text()
    assert f"{ev.step:,} steps" in panel.run_label.text()
    run_dir = ev.run_dir
    assert run_dir.parent == window.workspace / "runs"
    assert re.fullmatch(r"conv_ae-digits-\d{8}-\d{6}(-\d+)?", run_dir.name)
    assert panel.start_button.isEnabled() and panel.resume_button.isEnabled()
    # The finished run can be overlaid on the curves from the "Compare with" list.
    assert panel.compare.set_checked(run_dir.name)
    assert panel.curves.overlay_names() == [run_dir.name]

    # The run is exported in a worker and becomes the active model of every panel.
    qtbot.waitUntil(lambda: window.active_model is not None, timeout=120000)
    model = window.active_model
    assert model.source == run_dir and model.path == run_dir / "bundle"
    assert engine.is_bundle(model.path)
    # A name that tells runs apart (every run was "conv_ae on digits").
    assert model.name.startswith("conv_ae on digits (code 8, ") and "epoch" in model.name
    assert "ONNX Runtime" in window.runtime_label.text()
    assert all(p.model is model for p in window.explore)
    out = model.predictor.predict(np.zeros((1, 1, 16, 16), "float32"))
    assert out.shape == (1, 1, 16, 16)

    # Dropping the bundle folder (and then the run folder, already exported) loads it again.
    for dropped in (model.path, run_dir):
        window.active_model = None
        drop_paths(window, [dropped])
        qtbot.waitUntil(lambda: window.active_model is not None, timeout=60000)
        assert window.active_model.path == run_dir / "bundle"
    assert window.models_panel.entries(Group.RUNS) == [run_dir]

    # Export copies the bundle to a folder of the user's choice.
    copy = tmp_path / "exported"
    window.export_to(model.path, copy)
    qtbot.waitUntil(lambda: any(t.startswith("Exported to") for t in message_texts(window)), timeout=30000)
    assert engine.is_bundle(copy)

    # Resume continues the same run from its checkpoint, then re-exports the newer weights.
    started = []
    real_resume = engine.resume

    def spying_resume(*args, **kwargs):
        for event in real_resume(*args, **kwargs):
            if type(event).__name__ == "RunStarted":
                started.append(event)
            yield event

    monkeypatch.setattr(engine, "resume", spying_resume)
    window.active_model = None
    panel.resume_run(run_dir)
    qtbot.waitUntil(lambda: bool(started), timeout=30000)
    assert started[0].start_step == ev.step and started[0].run_dir == run_dir
    panel.stop()
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=30000)
    assert finished[1].reason is FinishReason.STOPPED and finished[1].step >= ev.step
    qtbot.waitUntil(lambda: window.active_model is not None, timeout=120000)
    assert window.active_model.source == run_dir


def test_a_failing_worker_shows_an_error_and_the_window_stays_usable(window, qtbot, monkeypatch) -> None:
    _wait_for_data(window, qtbot)

    def broken_train(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(engine, "train", broken_train)
    panel = window.train_panel
    finished = []
    panel.run_finished.connect(finished.append)
    panel.start()
    qtbot.waitUntil(lambda: bool(finished), timeout=10000)
    assert finished[0].reason is FinishReason.FAILED
    errors = [m for m in window.messages.history if m.level is Level.ERROR]
    assert errors and "disk on fire" in errors[0].text
    assert "Traceback" in errors[0].details  # the details are there on demand
    assert window.isVisible() and panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    assert window.active_model is None

    # Still usable: the next start goes through the (now working) engine again.
    calls = threading.Event()

    def quick_train(*args, **kwargs):
        calls.set()
        return iter(())

    monkeypatch.setattr(engine, "train", quick_train)
    panel.start()
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=10000)
    assert calls.is_set()


def test_start_without_data_says_what_to_do(window, qtbot) -> None:
    panel = window.train_panel
    panel.data_spec = ""
    panel.start()
    assert panel.worker is None
    assert any("Choose data first" in t for t in message_texts(window))


def test_bad_form_values_name_the_field(window, qtbot) -> None:
    _wait_for_data(window, qtbot)
    panel = window.train_panel
    panel.train_form.editor("lr").setText("fast")
    panel.start()
    assert panel.worker is None
    assert any("Learning rate" in t and "fast" in t for t in message_texts(window))


def _run_with_time_limit(window, qtbot, minutes: str, **values):
    """Start a tiny run from the Train tab with the Time limit field at ``minutes``; its finish event."""
    _wait_for_data(window, qtbot)
    panel = window.train_panel
    _tiny_settings(panel)
    if values:
        panel.train_form.set_values(values)
    panel.train_form.editor("time_limit_minutes").setText(minutes)
    finished = []
    panel.run_finished.connect(finished.append)
    panel.start()
    qtbot.waitUntil(lambda: bool(finished), timeout=60000)
    return finished[0]


def test_the_time_limit_field_stops_the_run_and_says_why(window, qtbot) -> None:
    panel = window.train_panel
    ev = _run_with_time_limit(window, qtbot, "0.001", epochs=50)  # 60 ms: stops after the first step or two
    editor = panel.train_form.editor("time_limit_minutes")
    assert panel.train_form._layout.labelForField(editor).text() == "Time limit (minutes)"
    assert ev.reason is FinishReason.STOPPED and "time limit of 0.001 min" in ev.message
    assert "time limit" in panel.stats_label.text() and panel.resume_button.isEnabled()
    assert engine.read_run(ev.run_dir).train_cfg.time_limit_minutes == 0.001
    assert any("time limit" in t for t in message_texts(window))


def test_the_time_limit_field_counts_opening_the_data(window, qtbot, data_opens_in_10s) -> None:
    # The budget counted from the first step: a slow data set came on top of it. A fake clock:
    # opening the data takes 10 "seconds", a step 1; a 0.1-minute (6 s) budget is gone before step 1.
    panel = window.train_panel
    ev = _run_with_time_limit(window, qtbot, "0.1")
    assert ev.reason is FinishReason.STOPPED and "time limit of 0.1 min" in ev.message
    assert ev.step == 0, f"{ev.step} steps: the limit was counted from the first step, not from Start"
    assert "opening the data took all of this one" in ev.message and "opening the data" in panel.stats_label.text()
    assert panel.resume_button.isEnabled()
