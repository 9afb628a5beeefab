"""How many torch threads a training loop's steps should use, chosen by timing them (plain Python).

On a 2-core machine that other programs load, torch's two OpenMP threads wait for each other's time
slices at every barrier: the live U-Net's steps ran at 0.25 steps/s on 2 threads and 0.83 on one, in
one process at load ~12 (alternating 8 s blocks, 3 rounds); on an idle machine 2 threads are the
faster. So :class:`ThreadChooser` tries the other count for a few steps every ``every_s`` seconds
and keeps whichever made the faster steps (median step time); while another thread predicts beside
the training (``sharing``) the steps take one thread and nothing is measured.
"""

from __future__ import annotations

import statistics
from collections import deque

PROBE_EVERY_S = 30.0  # how often the other thread count is tried
FIRST_PROBE_S = 5.0  # the first time, this soon after the start
PROBE_STEPS = 3  # steps timed per count in a comparison
MARGIN = 0.75  # the other count must be at least 25% faster: a prediction beside the steps misled a 10% margin


class ThreadChooser:
    """``want(now, sharing)`` before each step says how many threads it should use; ``record(threads,
    seconds)`` after it. ``most`` is the largest count (the thread's own torch setting)."""

    def __init__(self, most: int, *, every_s: float = PROBE_EVERY_S, steps: int = PROBE_STEPS,
                 start: float = 0.0) -> None:
        self.most = max(1, most)
        self.current = self.most
        self.every_s = every_s
        self.steps = steps
        self._times: dict[int, deque[float]] = {1: deque(maxlen=steps), self.most: deque(maxlen=steps)}
        self._probing = 0  # steps left with the other count
        self._next_probe = start + min(every_s, FIRST_PROBE_S)

    @property
    def other(self) -> int:
        return 1 if self.current == self.most else self.most

    def want(self, now: float, sharing: bool = False) -> int:
        if sharing:
            return 1
        if self.most == 1:
            return 1
        if self._probing == 0 and now >= self._next_probe and len(self._times[self.current]) >= self.steps:
            self._times[self.other].clear()
            self._probing = self.steps
        return self.other if self._probing else self.current

    def record(self, threads: int, seconds: float, now: float, sharing: bool = False) -> None:
        if sharing or self.most == 1 or threads not in self._times:
            return
        self._times[threads].append(seconds)
        if self._probing and threads == self.other:
            self._probing -= 1
            if self._probing == 0:
                mine, theirs = statistics.median(self._times[self.current]), statistics.median(self._times[threads])
                if theirs < MARGIN * mine:
                    self.current = threads  # its probe's times stand as its measurement
                self._next_probe = now + self.every_s
