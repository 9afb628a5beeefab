"""The Label tab's refresh schedule while training: the duty follows the measured cost to the training."""

from __future__ import annotations

import pytest

from aestudio.gui.panels.label_schedule import RefreshSchedule


def _cycles(schedule: RefreshSchedule, n: int, *, wall: float, idle: float, busy_rate: float, idle_rate: float,
            t: float = 0.0, step: float = 0.0) -> tuple[float, float, float]:
    """n predictions of ``wall`` s with ``idle`` s between them, the trainer stepping at the given rates."""
    for _ in range(n):
        schedule.started(t, int(step))
        t, step = t + wall, step + busy_rate * wall
        next_at = schedule.finished(t, int(step))
        t, step = t + idle, step + idle_rate * idle
    return t, next_at, step


def test_the_prior_holds_until_enough_is_measured() -> None:
    s = RefreshSchedule(prior_duty=0.2, min_interval=2.0)
    assert s.slowdown is None and s.duty == 0.2
    s.started(10.0, 0)
    assert s.finished(11.0, 2) == pytest.approx(10.0 + 1.0 / 0.2)  # the next starts wall / duty after this one
    s.started(15.0, 10)
    assert s.finished(15.1, 10) == pytest.approx(15.0 + 2.0)  # never sooner than min_interval


@pytest.mark.parametrize(("busy_rate", "duty"), [(2.0, 0.5), (1.0, 0.2), (0.0, 0.1)])
def test_duty_keeps_the_training_at_the_target_speed(busy_rate: float, duty: float) -> None:
    """Training at 2 steps/s between predictions: unslowed, halved, or stopped while they run."""
    s = RefreshSchedule(target=0.9, max_duty=0.5, min_duty=0.05)
    _cycles(s, 8, wall=1.0, idle=4.0, busy_rate=busy_rate, idle_rate=2.0)
    assert s.slowdown == pytest.approx(busy_rate / 2.0, abs=0.05)
    assert s.duty == pytest.approx(duty, abs=0.02)
    # With that duty the training keeps ~90% of its speed (or more where predictions cost nothing).
    assert 1 - s.duty * (1 - s.slowdown) >= 0.9 - 0.01


def test_it_adapts_when_the_cost_changes_and_keeps_it_over_a_restart() -> None:
    s = RefreshSchedule(target=0.9, max_duty=0.5, window=4)
    t, _, step = _cycles(s, 6, wall=1.0, idle=3.0, busy_rate=2.0, idle_rate=2.0)
    cheap = s.duty
    t, next_at, step = _cycles(s, 6, wall=1.0, idle=3.0, busy_rate=0.4, idle_rate=2.0, t=t, step=step)
    assert s.duty < cheap / 3  # the load came: refreshes spread out
    assert next_at - (t - 3.0 - 1.0) == pytest.approx(1.0 / s.duty, rel=0.05)
    s.started(t, int(step))
    s.interrupt()  # the training stopped (and started again): the open window is dropped, the rest kept
    assert s.finished(t + 50.0, 5001) == pytest.approx(t + 50.0 + s.min_interval)
    assert s.slowdown == pytest.approx(0.2, abs=0.05)
    s.reset()
    assert s.slowdown is None and s.duty == s.prior_duty


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
