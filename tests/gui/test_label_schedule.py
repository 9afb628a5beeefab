"""The Label tab's refresh schedule while training: the duty follows the measured cost to the training."""

from __future__ import annotations

import pytest

from aestudio.gui.panels.label_schedule import RefreshSchedule
from aestudio.training.steptimes import StepTime, training_kept


def _cycles(schedule: RefreshSchedule, n: int, *, wall: float, rate_alone: float, rate_beside: float,
            t: float = 0.0, log: list[StepTime] | None = None, next_at: float | None = None,
            ) -> tuple[float, float, list[StepTime]]:
    """n predictions of ``wall`` s, each started when the schedule allows, the trainer stepping at
    ``rate_alone`` steps/s between them and ``rate_beside`` while they run (its log as the trainer keeps it)."""
    log = [] if log is None else log
    next_at = t if next_at is None else next_at
    for _ in range(n):
        t = _steps(log, t, next_at, rate_alone, shared=False)
        schedule.started(t)
        t = _steps(log, t, t + wall, rate_beside, shared=True)
        next_at = schedule.finished(min(t, log[-1].end - 0.5) if rate_beside <= 0 else t, log)
    return t, next_at, log


def _steps(log: list[StepTime], t: float, until: float, rate: float, *, shared: bool) -> float:
    """Steps of 1 / rate s from t until ``until`` (the last one may run past it); at rate 0 the step in
    progress waits the time out (it then ends 1 / 2 s after, its period spanning the wait, marked shared)."""
    if rate <= 0:
        end = until + 0.5
        log.append(StepTime(end, end - (log[-1].end if log else t), True))
        return end
    while t < until:
        t += 1.0 / rate
        log.append(StepTime(t, 1.0 / rate, shared))
    return t


def test_the_prior_holds_until_enough_is_measured() -> None:
    s = RefreshSchedule(prior_duty=0.2, min_interval=2.0)
    assert s.kept is None and s.duty == 0.2
    s.started(10.0)
    assert s.finished(11.0, []) == pytest.approx(10.0 + 1.0 / 0.2)  # the next starts wall / duty after this one
    s.started(15.0)
    assert s.finished(15.1, []) == pytest.approx(15.0 + 2.0)  # never sooner than min_interval


def test_training_kept_compares_all_steps_with_the_untouched_ones() -> None:
    log = [StepTime(i * 0.5, 0.5, False) for i in range(1, 21)] + [StepTime(10 + i, 1.0, True) for i in range(1, 11)]
    assert training_kept(log) == pytest.approx((30 / 20) / 2.0)  # 30 steps in 20 s; 2 steps/s untouched
    assert training_kept(log[:8]) is None  # too few steps to say
    # The step right after a prediction (slowed by it: caches, threads switched back) is not the speed alone.
    cycle = [StepTime(0, 1.0, True), StepTime(0, 0.9, False), StepTime(0, 0.5, False), StepTime(0, 0.5, False)]
    assert training_kept(cycle * 5) == pytest.approx((20 / 14.5) / 2.0)


@pytest.mark.parametrize(("rate_beside", "duty"), [(2.0, 0.35), (1.0, 0.2), (0.0, 0.1)])
def test_duty_keeps_the_training_at_the_target_speed(rate_beside: float, duty: float) -> None:
    """Training at 2 steps/s alone: unslowed, halved, or stopped while predictions run."""
    s = RefreshSchedule(target=0.9, max_duty=0.35, min_duty=0.05, prior_duty=0.15)
    _, _, log = _cycles(s, 40, wall=1.0, rate_alone=2.0, rate_beside=rate_beside)
    assert s.duty == pytest.approx(duty, abs=0.03)
    # With that duty the training keeps ~90% of its speed (or more where predictions cost nothing).
    assert s.kept is not None and s.kept >= 0.9 - 0.03
    recent = [x for x in log if x.end > log[-1].end - 60]
    assert training_kept(recent) >= 0.87


def test_the_duty_rises_step_by_step_and_falls_at_once_when_the_load_comes() -> None:
    s = RefreshSchedule(target=0.9, max_duty=0.35, prior_duty=0.1, window_s=20)
    duties = []
    t, next_at, log = 0.0, 0.0, []
    for _ in range(12):
        t, next_at, log = _cycles(s, 1, wall=1.0, rate_alone=2.0, rate_beside=2.0, t=t, log=log, next_at=next_at)
        duties.append(s.duty)
    assert duties[-1] == pytest.approx(0.35) and all(b <= a * s.max_rise + 1e-9 for a, b in zip(duties, duties[1:], strict=False))
    t, next_at, log = _cycles(s, 25, wall=1.0, rate_alone=2.0, rate_beside=0.2, t=t, log=log, next_at=next_at)
    assert s.duty < 0.15  # the load came: refreshes spread out
    assert next_at - t > 1.0 / 0.15 - 5.0  # the next waits wall / duty from the last one's start (5 s ago)
    s.started(t)
    s.interrupt()  # the training stopped (and started again): the open window is dropped, the duty kept
    kept = s.duty
    assert s.finished(t + 50.0, log) == pytest.approx(t + 50.0 + s.min_interval) and s.duty == kept
    s.reset()
    assert s.kept is None and s.duty == s.prior_duty


def test_the_trainer_logs_which_steps_a_prediction_overlapped() -> None:
    from aestudio.training.steptimes import Sharing, StepLog

    sharing, log = Sharing(), StepLog()
    log.record(sharing, now=0.0)  # the run's first step: its period spans the start-up, not logged
    log.record(sharing, now=1.0)
    sharing.set()
    sharing.clear()  # a prediction that began and ended inside the next step
    log.record(sharing, now=2.0)
    sharing.set()
    log.record(sharing, now=3.0)  # ended while one runs
    log.record(sharing, now=4.5)
    sharing.clear()
    log.record(sharing, now=5.0)  # began while one ran
    log.record(sharing, now=6.0, threads=2)  # the torch threads it ran on, as the trainer tells it
    log.restart()  # paused or restarted: the gap is not a step
    log.record(sharing, now=60.0)
    assert [(x.end, x.seconds, x.shared) for x in log.steps()] == [
        (1.0, 1.0, False), (2.0, 1.0, True), (3.0, 1.0, True), (4.5, 1.5, True), (5.0, 0.5, True), (6.0, 1.0, False)]
    assert [x.threads for x in log.steps()] == [0, 0, 0, 0, 0, 2]
    assert [x.end for x in log.steps(since=4.0)] == [5.0, 6.0]


def test_a_prediction_marks_the_cores_shared_while_it_runs() -> None:
    import threading

    import numpy as np

    from aestudio.gui.panels.label_jobs import predict_image

    sharing = threading.Event()
    seen: list[bool] = []

    class Nets:  # the net's part of a prediction, recording whether the trainer was told
        def use_threads(self, one: bool) -> None:
            pass

        def probs(self, snapshot, channels, num_classes, cfg, image):
            seen.append(sharing.is_set())
            return np.full((2, *image.shape[:2]), 0.5, np.float32)

    p = predict_image(Nets(), "a", np.zeros((8, 8, 3), np.float32), (1, {}), 3, 2, None,
                      [(0, 0, 0), (255, 0, 0)], True, None, None, sharing)
    assert seen == [True] and not sharing.is_set() and p.mask.shape == (8, 8)


def test_a_stop_and_train_between_the_steps_does_not_read_as_cost() -> None:
    """The time between two runs holds no steps and no predictions: the busy share is of the steps' own time."""
    s = RefreshSchedule(target=0.9, max_duty=0.35, prior_duty=0.15, window_s=30)
    t, next_at, log = _cycles(s, 30, wall=1.0, rate_alone=2.0, rate_beside=1.0)
    steady = s.duty
    assert steady == pytest.approx(0.2, abs=0.03)
    t += 20.0  # stopped, started again 20 s later (the trainer logs no step across it)
    s.interrupt()
    _cycles(s, 1, wall=1.0, rate_alone=2.0, rate_beside=1.0, t=t, log=log, next_at=t + 1.0)
    assert s.duty == pytest.approx(steady, abs=0.03)
