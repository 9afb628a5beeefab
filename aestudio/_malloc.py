"""Keep glibc's malloc from returning a training step's freed memory to the system only to fault it in again.

glibc serves blocks above ``M_MMAP_THRESHOLD`` (128 KB at start, raised by itself up to the largest
block freed so far, at most 32 MB) with a fresh ``mmap`` each time, and gives the top of its heap back
above ``M_TRIM_THRESHOLD``. Each new mapping is zeroed page by page by the kernel on first touch. The
Label tab's live U-Net (batch 8 of 128^2 crops) took 11-16 thousand minor page faults a step (~50 MB
zeroed) that way, and trained at 1.60-1.87 steps/s; with both thresholds fixed high, 16 faults a step
and 1.93-2.00 steps/s (the same script, one process each, load ~3.5). It also made bench
``label_live`` read the predictions as free: a prediction's own large arrays, freed, raised the dynamic
threshold, so the training beside the refreshes faulted half as often and ran faster than alone.

Fixing the thresholds turns the adjustment off; the heap then keeps up to ``TRIM_BYTES`` of freed memory
per malloc arena for reuse. glibc on Linux only; elsewhere nothing is done. Standard library only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform
import threading

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
MMAP_BYTES = 32 * 2**20  # blocks below this come from the heap (glibc's largest allowed on 64-bit)
TRIM_BYTES = 128 * 2**20  # freed memory kept for reuse before the heap's top is given back
# Kept at the top of every heap when it grows or shrinks: a thread's own malloc arena (the training's) is made
# of 64 MB heaps that it otherwise unmapped and mapped again each step, thresholds or not (still 6-9 thousand
# faults a step with the two above alone, set while running; none with this too).
TOP_PAD_BYTES = 64 * 2**20

_lock = threading.Lock()
_done: bool | None = None  # None: not tried


def keep_freed_memory() -> bool:
    """Set the thresholds once for this process (True where they are set: glibc)."""
    global _done
    with _lock:
        if _done is None:
            _done = _set()
        return _done


def _set() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = all(libc.mallopt(param, value) for param, value in
                 ((M_MMAP_THRESHOLD, MMAP_BYTES), (M_TRIM_THRESHOLD, TRIM_BYTES), (M_TOP_PAD, TOP_PAD_BYTES)))
    except (OSError, AttributeError):
        ok = False
    if not ok:
        log.info("could not set malloc's thresholds: training steps may fault their memory in afresh")
    return ok
