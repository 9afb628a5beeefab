"""DataLoader worker processes that die with the process that started them.

When the kernel's out-of-memory killer (or a ``kill -9``) takes a training
process, its DataLoader workers are orphaned: each a full interpreter with torch
(~400 MB) that kept running for minutes. On Linux each worker asks the kernel
for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``), and exits at
once if the parent is already gone. Elsewhere this is a no-op (torch's own
watchdog still ends them, later).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from aestudio.limits import max_workers

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int, chained: Callable[[int], Any] | None, worker_id: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: torch's watchdog remains
            pass
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)
    if chained is not None:
        chained(worker_id)


def worker_init(chained: Callable[[int], Any] | None = None) -> Callable[[int], None]:
    """A picklable ``worker_init_fn`` that ties each worker's life to this process."""
    return functools.partial(_die_with_parent, os.getpid(), chained)


def bounded_workers(requested: int) -> int:
    """``requested`` DataLoader workers, at most one per core this process may use
    (a run.json from a bigger machine may ask for more than this one has)."""
    cap = max_workers()
    if requested > cap:
        log.warning("num_workers %d is more than the %d cores here; using %d", requested, cap, cap)
        return cap
    return requested
