"""The shared panel pieces: LatestRunner (newest job only), ImagePane, the whole-image predictor choice."""

from __future__ import annotations

import threading

import numpy as np

from aestudio.explore.sessions import training_active, whole_image_predictor
from aestudio.gui.panels.common import ImagePane, LatestRunner
from aestudio.gui.workers import TrainWorker


def test_latest_runner_drops_stale_jobs_and_reports_results_in_order(qtbot) -> None:
    runner = LatestRunner()
    gate, started = threading.Event(), threading.Event()
    results: list[int] = []

    def job(i: int) -> int:
        if i == 0:
            started.set()
            gate.wait(5)  # hold the thread while newer jobs arrive
        return i

    runner.submit(job, 0, on_result=results.append)
    assert started.wait(2)
    for i in range(1, 20):  # a slider dragged while the first decode runs
        runner.submit(job, i, on_result=results.append)
    gate.set()
    qtbot.waitUntil(lambda: results[-1:] == [19], timeout=5000)
    assert results == [0, 19]  # the 18 stale moves were never computed
    assert runner.dropped == 18
    runner.shutdown()


def test_latest_runner_reports_errors_and_keeps_going(qtbot) -> None:
    runner = LatestRunner()
    errors: list[str] = []
    results: list[int] = []

    def boom() -> int:
        raise RuntimeError("decoder exploded")

    runner.submit(boom, on_result=results.append, on_error=lambda exc, details: errors.append(str(exc)))
    qtbot.waitUntil(lambda: errors == ["decoder exploded"], timeout=3000)
    runner.submit(lambda: 7, on_result=results.append)
    qtbot.waitUntil(lambda: results == [7], timeout=3000)
    runner.shutdown()
    runner.submit(lambda: 8, on_result=results.append)  # after shutdown: ignored, no thread left
    runner._thread.join(2)
    assert not runner._thread.is_alive() and results == [7]


def test_image_pane_shows_arrays_and_refuses_garbage(qtbot) -> None:
    import pytest

    pane = ImagePane("Test", "nothing yet")
    qtbot.addWidget(pane)
    pane.set_array(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8), "8x8")
    img = pane.qimage()
    assert img is not None and (img.width(), img.height()) == (8, 8) and pane.caption.text() == "8x8"
    with pytest.raises(ValueError):
        pane.set_array(np.zeros((2, 2, 2, 2), np.float32))
    pane.clear()
    assert pane.qimage() is None and pane.array is None


def test_large_images_use_every_core_only_while_nothing_trains(bundles, qtbot) -> None:
    from aestudio.inference.ort import OrtPredictor

    pred = OrtPredictor(bundles("denoising_ae"), profile="interactive")
    small, large = (64, 64, 1), (pred.tiling.tile + 1, 64, 1)
    assert whole_image_predictor(pred, small) is pred
    batch = whole_image_predictor(pred, large)
    assert batch is not pred and batch.profile.value == "batch"

    def source(stop, pause):  # a training run that lasts until it is stopped
        stop.wait(10)
        return
        yield

    worker = TrainWorker(source)
    worker.start()
    try:
        assert training_active()
        assert whole_image_predictor(pred, large) is pred  # a training run keeps its cores
    finally:
        worker.stop()
        assert worker.join(5)
    assert not training_active()
