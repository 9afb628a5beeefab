"""The benchmark contract: result rows, the run context, and timing helpers.

A benchmark module returns :class:`Row` objects; the runner renders them. Timing
goes through :func:`measure_side_by_side`, which interleaves the contenders in
short blocks so that background load (other processes on a 2-core machine)
hits both sides of a ratio alike instead of biasing whichever ran second.
"""

from __future__ import annotations

import enum
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Figure = float | int | str | None


class Status(str, enum.Enum):
    PASS = "pass"  # met its target
    FAIL = "FAIL"  # missed its target (upper case so it stands out in the table)
    INFO = "info"  # a figure without a target
    SKIP = "skip"  # could not run here (a dependency has not landed, no GPU, ...)
    ERROR = "ERROR"  # the benchmark itself raised


@dataclass(frozen=True)
class Row:
    """One measured case: named figures, the target it is held to, and the verdict."""

    case: str  # what was measured, e.g. "conv_ae, batch 1"
    figures: dict[str, Figure] = field(default_factory=dict)  # ordered columns of the table
    target: str = ""  # the target in words, e.g. "ratio >= 3"
    status: Status = Status.INFO
    note: str = ""  # one short line: why it failed, what was skipped

    @staticmethod
    def verdict(ok: bool) -> Status:
        return Status.PASS if ok else Status.FAIL


class SkipBenchmark(Exception):
    """Raised by a benchmark that cannot run here; the message says why."""


@dataclass
class Context:
    """What every benchmark gets: sizes, folders, a shared cache, and a notebook."""

    quick: bool  # tiny sizes: a smoke test of the harness, not a measurement
    repo: Path  # repository root
    work_dir: Path  # scratch space for runs and bundles (deleted at the end unless kept)
    figures_dir: Path  # docs/figures: images a benchmark wants in the report
    write_figures: bool = True  # False with --no-write: leave docs/ untouched
    cache: dict[str, Any] = field(default_factory=dict)  # artifacts shared across benchmarks
    notes: list[str] = field(default_factory=list)  # markdown paragraphs for the current section

    def note(self, text: str) -> None:
        """Add a paragraph (markdown) under the current benchmark's table."""
        self.notes.append(text.strip())

    def pick(self, full: Any, quick: Any) -> Any:
        """``quick`` under --quick, else ``full``: keeps size choices in one line."""
        return quick if self.quick else full


# ---------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    median_s: float
    p10_s: float
    p90_s: float
    runs: int

    @property
    def median_ms(self) -> float:
        return self.median_s * 1e3


def _summarise(samples: list[float]) -> Timing:
    ordered = sorted(samples)
    n = len(ordered)
    return Timing(
        median_s=statistics.median(ordered),
        p10_s=ordered[int(0.1 * (n - 1))],
        p90_s=ordered[int(0.9 * (n - 1))],
        runs=n,
    )


def measure_side_by_side(
    contenders: dict[str, Callable[[], object]],
    *,
    warmup: int = 3,
    rounds: int = 7,
    block_s: float = 0.15,
    max_block: int = 200,
) -> dict[str, Timing]:
    """Median time per call of each contender, interleaved in blocks.

    Each contender is warmed up, then the contenders take turns running a block
    of calls (sized from the warm-up so a block lasts about ``block_s``) for
    ``rounds`` rounds. Every call is timed on its own; the median of all calls is
    reported. The garbage collector is paused inside a block so a collection
    triggered by one side is not billed to the other.
    """
    block_sizes: dict[str, int] = {}
    for name, fn in contenders.items():
        t0 = time.perf_counter()
        for _ in range(max(1, warmup)):
            fn()
        per_call = (time.perf_counter() - t0) / max(1, warmup)
        block_sizes[name] = max(1, min(max_block, int(block_s / max(per_call, 1e-6))))
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            gc.collect()
            gc.disable()
            try:
                for _ in range(block_sizes[name]):
                    t0 = time.perf_counter()
                    fn()
                    samples[name].append(time.perf_counter() - t0)
            finally:
                gc.enable()
    return {name: _summarise(s) for name, s in samples.items()}


def fmt_ms(seconds: float) -> float:
    """Seconds as milliseconds with a precision that suits the table."""
    ms = seconds * 1e3
    return round(ms, 3 if ms < 1 else 2 if ms < 100 else 1)


# ---------------------------------------------------------------- subprocess probes


def run_probe(module: str, args: list[str], *, env: dict[str, str] | None = None, timeout: float = 600) -> dict[str, Any]:
    """Run ``python -m module args`` and parse the JSON object on its last stdout line.

    Probes run in their own process when the measurement needs a clean one
    (peak memory) or a crash must not take the runner down (the GUI).
    """
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=Path(__file__).resolve().parent.parent,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"probe {module} exited with code {proc.returncode}:\n{tail}")
    return json.loads(lines[-1])
