"""When the Label tab's next prediction may start while a training run shares the CPU (plain Python, no Qt).

A refresh of the prediction on screen costs the training more than the CPU it takes (cache, memory
bandwidth, and on 2 cores a third busy thread), and how much more depends on the machine and its
load. So the schedule measures it: the trainer logs every step's period and whether a prediction
overlapped it (``training/steptimes.py``), and ``training_kept`` over the last ``window_s`` seconds says
which share of its speed the training kept (its rate over all steps over its rate in the steps no
prediction touched, nor the step before). With predictions running a share ``busy`` of the steps' own time
(not of the wall time: a Stop and Train between them holds no steps), each unit of duty cost
``(1 - kept) / busy`` of the training's speed, and the schedule picks the duty that keeps ``target``,
between ``min_duty`` and ``max_duty``, rising at most ``max_rise`` times per refresh (falling at once).
The next refresh starts ``wall / duty`` after the last one started (``wall``: how long the last one
took), and never sooner than ``min_interval``. Until enough steps are logged it keeps the duty it has
(``prior_duty`` at first). The duty outlives a Stop and Train (the cost is the machine's and the image's).

Measured (bench label_live, 1024^2): counting the steps that ended inside each prediction's window (a
window spans 2-3 steps) read the slowdown as 0.5-1.0 where the bench saw ~0.8, so the duty had to be
capped at 0.15 (a refresh every 7.6 s on a quiet machine where the training kept 0.94). See
docs/BENCHMARKS.md for what this per-step measure gave.
"""

from __future__ import annotations

from collections import deque

from aestudio.training.steptimes import StepTime, training_kept

TARGET = 0.9  # the training's speed to keep, as a share of its speed without predictions (the floor: 0.85)
PRIOR_DUTY = 0.12  # until measured: kept 0.89 of the training's speed at load ~7 (bench label_live)
MIN_DUTY = 0.05
MAX_DUTY = 0.45  # bench label_live at load 4-5: the training kept ~1.0 at the 0.35 this was, refreshing every
#                  4.5 s (median); the measure, not this cap, holds the training's speed
MAX_RISE = 1.5  # per refresh: the measure lags the duty by its window. At 1.25 the first refreshing block of
#                bench label_live spent its first ~20 s (5 refreshes) climbing from the prior to ~0.3; it falls at once
MIN_INTERVAL_S = 2.0  # "every few seconds": no sooner than this
WINDOW_S = 30.0  # the steps the measure looks at (at least MIN_WINDOW_STEPS of them)
MIN_WINDOW_STEPS = 24


class RefreshSchedule:
    """The refresh rule while training: ``started`` when a prediction is submitted, ``finished`` when
    its result arrives (with the trainer's logged steps); ``finished`` returns the time before which the
    next one waits. ``interrupt`` when the training stops or starts (the open window is not measured);
    ``reset`` forgets everything."""

    def __init__(self, *, target: float = TARGET, prior_duty: float = PRIOR_DUTY, min_duty: float = MIN_DUTY,
                 max_duty: float = MAX_DUTY, max_rise: float = MAX_RISE, min_interval: float = MIN_INTERVAL_S,
                 window_s: float = WINDOW_S) -> None:
        self.target = target
        self.prior_duty = prior_duty
        self.min_duty = min_duty
        self.max_duty = max_duty
        self.max_rise = max_rise
        self.min_interval = min_interval
        self.window_s = window_s
        self.duty = prior_duty  # the share of the wall time predictions may run
        self.kept: float | None = None  # the last measure of the training's speed kept (None: not yet)
        self.cost: float | None = None  # the training's speed lost per unit of duty, as last measured
        self._spans: deque[tuple[float, float]] = deque(maxlen=256)  # predictions' (start, end)
        self._start: float | None = None  # when the prediction running now started

    def reset(self) -> None:
        """Forget the measurements."""
        self._spans.clear()
        self._start = None
        self.duty, self.kept, self.cost = self.prior_duty, None, None

    def interrupt(self) -> None:
        """The training stopped or started: the prediction running now is not measured."""
        self._start = None

    def started(self, now: float) -> None:
        self._start = now

    def finished(self, now: float, steps: list[StepTime]) -> float:
        """The prediction started last has reached the screen (``steps``: the trainer's step log, e.g.
        ``LiveTrainer.step_log.steps()``): when the next may start."""
        if self._start is None:  # not started under this run (an interrupt came between): no measurement
            return now + self.min_interval
        t0, self._start = self._start, None
        wall = max(now - t0, 0.0)
        self._spans.append((t0, now))
        self._measure(now, steps)
        return t0 + max(self.min_interval, wall / self.duty)

    def _measure(self, now: float, steps: list[StepTime]) -> None:
        recent = [s for s in steps if s.end - s.seconds >= now - self.window_s]
        if len(recent) < MIN_WINDOW_STEPS:
            recent = list(steps[-MIN_WINDOW_STEPS:])
        kept = training_kept(recent)
        if kept is None:
            return
        # The share of the steps' own time predictions ran: a Stop and Train between them (no steps) is not
        # time the training ran beside no prediction (counting it read the cost too high after each restart).
        runs: list[list[float]] = []
        for st in recent:
            begin = st.end - st.seconds
            if runs and abs(begin - runs[-1][1]) < 1e-6:
                runs[-1][1] = st.end
            else:
                runs.append([begin, st.end])
        total = sum(b - a for a, b in runs)
        overlap = sum(max(0.0, min(b, e) - max(a, s)) for s, e in self._spans for a, b in runs)
        busy = overlap / total if total > 0 else 0.0
        if busy <= 0:
            return
        self.kept = kept
        self.cost = max(0.0, 1.0 - kept) / busy
        want = (1.0 - self.target) / self.cost if self.cost > 0 else self.max_duty
        self.duty = min(self.max_duty, max(self.min_duty, min(want, self.duty * self.max_rise)))
