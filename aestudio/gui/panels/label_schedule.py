"""When the Label tab's next prediction may start while a training run shares the CPU (plain Python, no Qt).

A refresh of the prediction on screen costs the training more than the CPU it takes (cache, memory
bandwidth, and on 2 cores a third busy thread), and how much more depends on the machine and its
load. So the schedule measures it instead of assuming it: the trainer's step rate while a prediction
runs (``busy``) and between predictions (``idle``), summed over the last few cycles. If the training
runs at ``rho`` = busy rate / idle rate of its speed while a prediction runs, and predictions run a
share ``duty`` of the wall time, the training keeps ``1 - duty * (1 - rho)`` of its speed; the
schedule picks the largest duty that keeps ``target`` (0.95: the issue's floor is 0.85, and the
estimate is noisy), between ``min_duty`` and ``max_duty``. The next refresh starts ``wall / duty``
after the last one started (``wall``: how long the last one took), and never sooner than
``min_interval``. Until a few cycles are measured it uses ``prior_duty``. The measurements outlive a
Stop and Train (the cost is the machine's and the image's, not the run's): ``interrupt`` only drops
the window open when the training stopped.

Measured (bench label_live, 1024^2): the fixed budget it replaces, 12% of the process's CPU time,
refreshed every 6.1 s on a quiet machine with the training at 1.07 of its speed, i.e. with room.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

# Bench label_live at load ~7 (2 blocks of 40 s per mode): the training kept about 1 - duty of its speed
# (duty 0.11-0.13: 0.90; 0.21: 0.79; 0.5 then 0.23: 0.63) while the rho measured here said 0.5-0.8 (and
# once 1.02): the cost lies partly outside the prediction's own window, and a few cycles' step counts are
# noisy. So the target is set above the 0.85 and the duty capped where the bench kept it.
TARGET = 0.95  # the training's speed to keep, as a share of its speed without predictions
PRIOR_DUTY = 0.12  # until measured
MIN_DUTY = 0.05
MAX_DUTY = 0.15  # even where predictions seem to cost nothing, at most this share of the wall time
MIN_INTERVAL_S = 2.0  # "every few seconds": no sooner than this
WINDOW = 8  # cycles the rates are summed over (a prediction spans only 2-3 training steps)
MIN_IDLE_STEPS = 8  # steps counted between predictions before the measurement replaces the prior
MIN_BUSY_S = 3.0


@dataclass
class _Span:
    seconds: float
    steps: int


class RefreshSchedule:
    """The refresh rule while training: ``started`` when a prediction is submitted, ``finished`` when
    its result arrives (both with the time and the trainer's step count); ``finished`` returns the
    time before which the next one waits. ``interrupt`` when the training stops or starts (the open
    window is not a measurement); ``reset`` forgets everything."""

    def __init__(self, *, target: float = TARGET, prior_duty: float = PRIOR_DUTY, min_duty: float = MIN_DUTY,
                 max_duty: float = MAX_DUTY, min_interval: float = MIN_INTERVAL_S, window: int = WINDOW) -> None:
        self.target = target
        self.prior_duty = prior_duty
        self.min_duty = min_duty
        self.max_duty = max_duty
        self.min_interval = min_interval
        self._busy: deque[_Span] = deque(maxlen=window)
        self._idle: deque[_Span] = deque(maxlen=window)
        self._start: tuple[float, int] | None = None  # the prediction running: (time, step) at its start
        self._end: tuple[float, int] | None = None  # the last one's end, while no other runs

    def reset(self) -> None:
        """Forget the measurements."""
        self._busy.clear()
        self._idle.clear()
        self._start = self._end = None

    def interrupt(self) -> None:
        """The training stopped or started: the window open now spans no steady training, drop it."""
        self._start = self._end = None

    def started(self, now: float, step: int) -> None:
        if self._end is not None and now > self._end[0]:
            self._idle.append(_Span(now - self._end[0], step - self._end[1]))
        self._start, self._end = (now, step), None

    def finished(self, now: float, step: int) -> float:
        """The prediction started last has reached the screen: when the next may start."""
        if self._start is None:  # not started under this run (an interrupt came between): no measurement
            self._end = (now, step)
            return now + self.min_interval
        t0, s0 = self._start
        wall = max(now - t0, 0.0)
        self._busy.append(_Span(wall, step - s0))
        self._start, self._end = None, (now, step)
        return t0 + max(self.min_interval, wall / self.duty)

    @property
    def slowdown(self) -> float | None:
        """rho: the training's speed while a prediction runs over its speed between them (None: not
        measured enough yet)."""
        idle_s = sum(s.seconds for s in self._idle)
        idle_steps = sum(s.steps for s in self._idle)
        busy_s = sum(s.seconds for s in self._busy)
        if idle_steps < MIN_IDLE_STEPS or idle_s <= 0 or busy_s < MIN_BUSY_S:
            return None
        busy_rate = sum(s.steps for s in self._busy) / busy_s
        return busy_rate / (idle_steps / idle_s)

    @property
    def duty(self) -> float:
        """The share of the wall time predictions may run."""
        rho = self.slowdown
        if rho is None:
            return self.prior_duty
        loss = 1.0 - rho
        duty = (1.0 - self.target) / loss if loss > 0 else self.max_duty
        return min(self.max_duty, max(self.min_duty, duty))
