"""Measure event-loop stalls: how late a fast QTimer fires while the app works.

A timer asks to fire every ``interval_ms``; any extra delay is time the GUI
thread spent elsewhere (painting, handling a batch, waiting on the GIL). Used by
``scripts/screenshots.py`` and the benchmarks to check that training never
freezes the window (target on 2 cores: 99th percentile under 50 ms, none over 100 ms).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer


@dataclass(frozen=True)
class StallStats:
    ticks: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    over_100ms: int

    def __str__(self) -> str:
        return (f"{self.ticks} ticks: lateness p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
                f"max {self.max_ms:.1f} ms, {self.over_100ms} over 100 ms")


class StallMeter(QObject):
    def __init__(self, interval_ms: int = 10, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self.late_ms: list[float] = []

    def start(self) -> None:
        self.late_ms.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> StallStats:
        self._timer.stop()
        return self.stats()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.late_ms.append(max(0.0, (now - self._last) * 1000.0 - self.interval_ms))
        self._last = now

    def stats(self) -> StallStats:
        a = np.asarray(self.late_ms or [0.0])
        return StallStats(len(self.late_ms), float(np.percentile(a, 50)), float(np.percentile(a, 99)),
                          float(a.max()), int((a > 100).sum()))
