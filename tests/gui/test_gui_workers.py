"""The worker plumbing: batched events, stop within a step, pause, crashes as events, tasks."""

from __future__ import annotations

import threading
import time

import pytest

from aestudio.config import FinishReason
from aestudio.gui.workers import TaskRunner, TrainWorker
from aestudio.training.events import Paused, RunStarted, StepEnded, TrainFinished


def _started() -> RunStarted:
    return RunStarted(run_dir=None, device="cpu", device_name="CPU", net_name="fake", num_params=1,
                      train_size=10, val_size=2, batch_size=2, epochs=1, steps_per_epoch=1000,
                      start_epoch=0, start_step=0)


def endless(polled: list[int], seen_stop_at: list[int]):
    """A fake fit(): one step per ~1 ms, polling stop and pause like the core does."""

    def source(stop: threading.Event, pause: threading.Event):
        yield _started()
        step = 0
        while True:
            if stop.is_set():
                seen_stop_at.append(step)
                yield TrainFinished(FinishReason.STOPPED, "stopped", None, 0, step)
                return
            if pause.is_set():
                yield Paused(True)
                while pause.is_set() and not stop.is_set():
                    time.sleep(0.002)
                yield Paused(False)
            step += 1
            polled.append(step)
            time.sleep(0.001)
            yield StepEnded(0, step, 1000, 1.0 / step, {}, 100.0, 1.0, 1e-3)

    return source


def test_events_arrive_batched_and_stop_ends_within_one_step(qtbot) -> None:
    polled: list[int] = []
    stop_at: list[int] = []
    worker = TrainWorker(endless(polled, stop_at))
    batches: list[list] = []
    worker.events.connect(batches.append)
    worker.start()
    qtbot.waitUntil(lambda: sum(len(b) for b in batches) > 30, timeout=5000)
    steps_when_stopped = len(polled)
    with qtbot.waitSignal(worker.finished, timeout=5000) as finished:
        worker.stop()
    assert finished.args[0].reason is FinishReason.STOPPED
    # The fake polls once per step: at most the step in flight runs after stop().
    assert stop_at[0] - steps_when_stopped <= 1
    events = [e for b in batches for e in b]
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], TrainFinished)
    steps = [e.step for e in events if isinstance(e, StepEnded)]
    assert steps == sorted(steps) and steps == list(range(1, len(steps) + 1))  # none lost, in order
    assert len(batches) < len(events)  # coalesced: fewer emits than events
    assert not worker.running


def test_pause_and_continue(qtbot) -> None:
    polled: list[int] = []
    worker = TrainWorker(endless(polled, []))
    seen: list = []
    worker.events.connect(seen.extend)
    worker.start()
    qtbot.waitUntil(lambda: len(polled) > 5, timeout=5000)
    worker.set_paused(True)
    qtbot.waitUntil(lambda: any(isinstance(e, Paused) and e.paused for e in seen), timeout=5000)
    frozen = len(polled)
    qtbot.wait(150)
    assert len(polled) == frozen  # no steps while paused
    worker.set_paused(False)
    qtbot.waitUntil(lambda: len(polled) > frozen + 5, timeout=5000)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.stop()


def test_a_crash_becomes_a_failed_event_with_the_traceback(qtbot) -> None:
    def source(stop, pause):
        yield _started()
        yield StepEnded(0, 1, 10, 0.5, {}, 10.0, 1.0, 1e-3)
        raise RuntimeError("CUDA exploded")

    worker = TrainWorker(source)
    with qtbot.waitSignal(worker.finished, timeout=5000) as finished:
        worker.start()
    ev = finished.args[0]
    assert ev.reason is FinishReason.FAILED
    assert "CUDA exploded" in ev.message and "RuntimeError" in ev.message
    assert "Traceback" in ev.details and "CUDA exploded" in ev.details
    assert ev.step == 1


def test_a_generator_that_ends_without_finished_still_finishes(qtbot) -> None:
    def source(stop, pause):
        yield _started()

    worker = TrainWorker(source)
    with qtbot.waitSignal(worker.finished, timeout=5000) as finished:
        worker.start()
    assert finished.args[0].reason is FinishReason.DONE


def test_worker_runs_once(qtbot) -> None:
    worker = TrainWorker(lambda s, p: iter(()))
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    with pytest.raises(RuntimeError):
        worker.start()


def test_task_runner_delivers_results_and_errors_in_the_gui_thread(qtbot) -> None:
    runner = TaskRunner()
    main = threading.get_ident()
    results: list = []
    errors: list = []
    runner.submit(lambda x: (x * 2, threading.get_ident()), 21,
                  on_result=lambda r: results.append((r, threading.get_ident())))
    runner.submit(lambda: 1 / 0, on_result=results.append,
                  on_error=lambda exc, details: errors.append((exc, details, threading.get_ident())))
    qtbot.waitUntil(lambda: len(results) == 1 and len(errors) == 1, timeout=5000)
    (value, worker_thread), delivered_in = results[0]
    assert value == 42 and worker_thread != main and delivered_in == main
    exc, details, delivered_in = errors[0]
    assert isinstance(exc, ZeroDivisionError) and "ZeroDivisionError" in details and delivered_in == main
    assert runner.pending == 0
    runner.shutdown()


def test_a_reads_only_runner_uses_daemon_threads_and_drops_queued_jobs_on_shutdown(qtbot) -> None:
    runner = TaskRunner(max_workers=1, reads_only=True)
    release, started = threading.Event(), threading.Event()
    seen: list = []
    errors: list = []

    def blocking() -> bool:
        started.set()
        release.wait(5)
        return threading.current_thread().daemon  # quitting never waits for a read

    runner.submit(blocking, on_result=seen.append)
    runner.submit(lambda: 1 / 0, on_result=seen.append, on_error=lambda exc, _d: errors.append(exc))
    third = runner.submit(lambda: "third", on_result=seen.append)
    assert runner.pending == 3
    release.set()
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=5000)
    assert seen == [True, "third"] and isinstance(errors[0], ZeroDivisionError) and len(errors) == 1
    assert third is not None and third.result(timeout=5) == "third"
    # Shut down with a job in flight and one queued: neither reaches its callback; the queued one is cancelled.
    release.clear()
    started.clear()
    runner.submit(blocking, on_result=seen.append)
    assert started.wait(5)  # the one thread is busy: the next job stays queued
    late = runner.submit(lambda: "late", on_result=seen.append)
    runner.shutdown()
    assert runner.submit(lambda: 1, on_result=seen.append) is None and runner.pending == 0
    release.set()
    assert late is not None and late.cancelled()
    qtbot.wait(200)
    assert seen == [True, "third"]
