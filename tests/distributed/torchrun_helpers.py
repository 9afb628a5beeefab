"""Launching `aestudio train` under torchrun (2 CPU processes, Gloo, 127.0.0.1 only) from tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Tiny and fast: 8x8 digits; the same flags for the 1-process baseline (in-process) and torchrun.
DIGITS = ["--data", "digits", "--image-size", "8", "--device", "cpu", "--no-progress"]
LAUNCH_TIMEOUT_S = 240  # a hang fails the test instead of the whole session


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Launch:
    returncode: int
    lines: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, line) of stdout+stderr

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def first(self, needle: str) -> float | None:
        return next((t for t, line in self.lines if needle in line), None)


def torchrun(args: list[str], *, nproc: int = 2, env: dict[str, str] | None = None,
             while_running: Callable[[subprocess.Popen], None] | None = None) -> Launch:
    """``python -m torch.distributed.run --nproc_per_node=N -m aestudio train ARGS`` on 127.0.0.1.

    ``while_running(proc)`` is called once the launcher has started (e.g. to signal it)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}", "-m", "aestudio", "train", *args]
    full = dict(os.environ)
    full.update({"OMP_NUM_THREADS": "1", "AESTUDIO_DIST_TIMEOUT": "120", "PYTHONUNBUFFERED": "1"})
    if Path("/sys/class/net/lo").exists():
        full["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only
    full.update(env or {})
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = Launch(returncode=-1)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.lines.append((time.monotonic() - t0, line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if while_running is not None:
            while_running(proc)
        out.returncode = proc.wait(timeout=LAUNCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        reader.join(5)
        pytest.fail(f"torchrun did not end within {LAUNCH_TIMEOUT_S} s:\n{out.text[-4000:]}")
    reader.join(10)
    return out


def max_weight_difference(a: Path, b: Path) -> float:
    """Largest absolute difference between two safetensors weight files (same keys required)."""
    from safetensors.torch import load_file

    wa, wb = load_file(str(a)), load_file(str(b))
    assert sorted(wa) == sorted(wb), f"different tensors: {sorted(set(wa) ^ set(wb))}"
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)


def drain(events) -> list:
    """Run an event generator to its end; returns the events."""
    return list(events)
