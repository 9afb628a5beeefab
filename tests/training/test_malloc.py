"""The live trainer keeps freed memory for its next step instead of faulting it in afresh (glibc)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc's malloc only")

# In a fresh process: is a 4 MB block mapped on its own (mallinfo2's hblks grows), and is a freed 64 MB top
# given back (the heap's arena shrinks), before and after keep_freed_memory?
_SCRIPT = r"""
import ctypes, json
from aestudio._malloc import keep_freed_memory

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def probe():
    before = libc.mallinfo2().hblks
    block = libc.malloc(4 * 2**20)
    mapped = libc.mallinfo2().hblks > before
    libc.free(block)
    small = [libc.malloc(64 * 2**10) for _ in range(1000)]  # ~64 MB on the heap, freed again
    for b in small:
        libc.free(b)
    return {"mapped": mapped, "kept_mb": libc.mallinfo2().fordblks / 2**20}  # free memory the heap holds

out = {"before": probe(), "set": keep_freed_memory()}
out["after"] = probe()
print(json.dumps(out))
"""


def test_keep_freed_memory_stops_mapping_and_trimming_each_large_block() -> None:
    res = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["before"]["mapped"] and out["before"]["kept_mb"] < 20  # glibc's defaults: mapped, then given back
    assert out["set"] is True
    assert not out["after"]["mapped"] and out["after"]["kept_mb"] > 60  # now from the heap, and kept for reuse


def test_ordinary_training_keeps_freed_memory_too() -> None:
    """`aestudio train` (the loop's generator) sets the thresholds as the live trainer does: measured 2-3 % a step
    on the photo-denoiser's recipe. In a fresh process, one tiny step."""
    script = r"""
from aestudio import _malloc
from aestudio.config import TrainConfig
from aestudio.training import train
import tempfile, pathlib
before = _malloc._done
with tempfile.TemporaryDirectory() as d:
    for _ in train("dense_ae", None, "digits", TrainConfig(epochs=1, max_steps=1, batch_size=8), pathlib.Path(d) / "run"):
        pass
print(before, _malloc._done)
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert res.stdout.strip().splitlines()[-1] == "None True"
