"""Each training step's wall time, and whether another thread's prediction ran beside it (plain Python).

The Label tab's refresh schedule needs to know how much the predictions it runs beside the live
trainer cost the training. Counting the steps that ended inside each prediction's window (a window
spans only 2-3 steps) read 0.5-1.0 where bench ``label_live`` measured ~0.8, so the trainer now logs
every step: its period (from the previous step's end to its own: data, step and event, the loop's
whole cycle) and whether a prediction overlapped any of it (:class:`Sharing` counts its ``set``
calls, so a prediction that began and ended inside one long step is seen too).
:func:`training_kept` compares the rate over all recent steps with the rate of the steps no prediction
touched: the share of its speed the training kept, which is what the bench measures (refresh on /
off), from inside the process.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

MIN_STEPS = 12  # steps in the window before training_kept answers
MIN_CLEAN = 4  # of which this many no prediction touched


@dataclass(frozen=True)
class StepTime:
    end: float  # time.monotonic() at the step's end
    seconds: float  # since the previous step's end in the same run
    shared: bool  # a prediction ran during some of it
    threads: int = 0  # the torch threads it ran on (0: not told)


class Sharing(threading.Event):
    """Set while another thread predicts beside the training (the steps then take one thread); counts
    its ``set`` calls so a step can tell one began and ended inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.sets = 0

    def set(self) -> None:
        self.sets += 1
        super().set()


class StepLog:
    """The last ``maxlen`` steps' :class:`StepTime`; ``record`` from the training thread, ``steps`` from any."""

    def __init__(self, maxlen: int = 512) -> None:
        self._lock = threading.Lock()
        self._steps: deque[StepTime] = deque(maxlen=maxlen)
        self._prev: tuple[float, int, bool] | None = None  # the last step's (end, sharing.sets, sharing set)

    def restart(self) -> None:
        """A run starts or resumes from a pause: the next step's period would span the start-up, not timed."""
        self._prev = None

    def record(self, sharing: Sharing, now: float | None = None, threads: int = 0) -> None:
        """A step just ended (on ``threads`` torch threads)."""
        now = time.monotonic() if now is None else now
        state = (now, sharing.sets, sharing.is_set())
        prev, self._prev = self._prev, state
        if prev is None:
            return
        shared = prev[2] or state[2] or state[1] != prev[1]
        with self._lock:
            self._steps.append(StepTime(now, now - prev[0], shared, threads))

    def steps(self, since: float = float("-inf")) -> list[StepTime]:
        """The steps that began at or after ``since`` (monotonic time)."""
        with self._lock:
            return [s for s in self._steps if s.end - s.seconds >= since]


def training_kept(steps: list[StepTime]) -> float | None:
    """The training's rate over ``steps`` (in order) over its rate in those no prediction touched, nor the
    step before them (None: too few). The step right after a prediction may still pay for it (caches, the
    thread count switched back), so it is not taken as the training's speed alone."""
    clean = [b.seconds for a, b in zip([None, *steps], steps, strict=False) if not b.shared and (a is None or not a.shared)]
    if len(steps) < MIN_STEPS or len(clean) < MIN_CLEAN:
        return None
    total = sum(s.seconds for s in steps)
    if total <= 0 or sum(clean) <= 0:
        return None
    return (len(steps) / total) / (len(clean) / sum(clean))
