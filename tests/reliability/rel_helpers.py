"""Shared helpers of the reliability suite: payload pickles, tiny runs, subprocess probes."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class Payload:
    """Unpickling this object opens (creates) ``marker``: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_payload_pickle(path: Path, marker: Path, *, zip_format: bool = False) -> Path:
    """A checkpoint-looking pickle whose loading would create ``marker``.

    ``zip_format`` writes it with ``torch.save`` (the zip container of torch >= 1.6),
    else with plain ``pickle.dump`` (the legacy stream format)."""
    obj = {"state_dict": {"weight": Payload(str(marker))}}
    if zip_format:
        import torch

        torch.save(obj, path)
    else:
        with open(path, "wb") as fh:
            pickle.dump(obj, fh, protocol=2)
    assert not marker.exists()  # writing the pickle must not trigger it
    return path


def tiny_run(run_dir: Path, *, net: str = "dense_ae", data: str = "digits", steps: int = 3, **train_kw) -> Path:
    """A real run folder (digits, a few steps) through aestudio.training.train."""
    from aestudio.config import TrainConfig
    from aestudio.nets import default_config
    from aestudio.training import train

    params = {"dense_ae": {"latent_dim": 4, "hidden": 16}}.get(net, {})
    cfg = TrainConfig(**({"epochs": 1, "batch_size": 32, "max_steps": steps, "device": "cpu"} | train_kw))
    events = list(train(net, default_config(net, **params), data, cfg, run_dir))
    assert events[-1].reason.value == "done", events[-1]
    return run_dir


def run_python(code: str, *args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (an abort or a hang is a failed test, not a lost session)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=str(REPO))


def last_json(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, f"child exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])
