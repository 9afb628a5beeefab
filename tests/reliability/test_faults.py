"""Faults while training: kill -9, torn checkpoints, non-finite loss, out of memory, disk full, read-only folders.

The kill tests run in a driver process (tests/reliability/kill_driver.py) that
forks a training child per cycle and SIGKILLs it at a random moment; the
other faults are injected by monkeypatching the module-level seams the code
exposes for that (``loop.train_step``, the shared atomic writer's ``os`` and ``_create_temp`` in ``aestudio._fs``).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rel_helpers import REPO, tiny_run

from aestudio import _fs
from aestudio.config import FinishReason
from aestudio.training import load_net, loop, read_run, resume
from aestudio.training.checkpoint import load_weights, read_meta, save_weights
from aestudio.training.events import BatchSizeReduced, CheckpointSaved, StepEnded, TrainFinished
from aestudio.training.runs import RunError, recover_run

DRIVER = Path(__file__).with_name("kill_driver.py")
KILLS = int(os.environ.get("AESTUDIO_KILLS", "22"))


def _driver(*args: str, timeout: float = 600) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(DRIVER), *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_kill_9_during_checkpoint_writes_never_loses_the_last_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    report = _driver("kills", str(run), str(KILLS), "20261122")
    print(f"kill -9: {report['kills']} kills, {report['torn_checkpoints']} torn checkpoints rolled back, "
          f"{report['interrupted_writes']} with a temp file left, resumed at steps {report['resumed_from']}")
    assert report["failures"] == []
    assert report["kills"] >= 20
    assert report["leftover_temps_cleaned"]
    assert report["resumed_from"] == sorted(report["resumed_from"])  # never went backwards past a commit
    # The folder is consistent for readers and writers alike after the last cycle.
    net, info = load_net(run, which="last")
    assert info.status.value in ("running", "stopped")
    recover_run(run)  # what the next resume does first: the files then name run.json's step
    assert read_meta(run / "model.safetensors")["step"] == read_run(run).step
    assert read_meta(run / "optimizer.safetensors")["step"] == read_run(run).step
    assert not [p for p in run.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    res = _driver("equiv", str(tmp_path), "7")
    print(f"resume after SIGKILL at step {res['killed_at_step']} (epoch {res['killed_at_epoch'] + 1}, "
          f"sample {res['killed_epoch_pos']}): max weight difference {res['max_weight_diff']}")
    assert res["killed_at_epoch"] == 0 and res["killed_epoch_pos"] > 0  # killed mid-epoch, after a checkpoint
    assert res["epochs"] == [2, 2] and res["steps"][0] == res["steps"][1]
    assert res["max_weight_diff"] <= 1e-6
    assert res["history_epochs"] == [[1, 2], [1, 2]]
    assert res["history_mse"][0] == pytest.approx(res["history_mse"][1], rel=1e-5)


# ----------------------------------------------------------------- torn checkpoints, deterministically


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("base") / "run", steps=4)


@pytest.fixture
def run_copy(base_run: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(base_run, tmp_path / "run"))


def test_a_torn_checkpoint_is_rolled_back_and_resumes(run_copy: Path) -> None:
    step = read_run(run_copy).step
    good = (run_copy / "model.safetensors").read_bytes()
    state, _ = load_weights(run_copy / "model.safetensors")
    # A crash after the weights of the next checkpoint were written, before run.json.
    save_weights(run_copy / "model.safetensors", {k: v + 1 for k, v in state.items()}, step=step + 1, epoch=0)
    (run_copy / ".tmp-optimizer.safetensors.abc123").write_bytes(b"half a file")
    events = list(resume(run_copy, max_steps=step + 2))
    assert events[-1].reason is FinishReason.DONE, events[-1]
    assert events[0].start_step == step
    assert not (run_copy / ".tmp-optimizer.safetensors.abc123").exists()
    assert read_run(run_copy).step == step + 2
    assert good != (run_copy / "model.safetensors").read_bytes()


def test_a_torn_checkpoint_without_its_previous_version_is_a_clear_error(run_copy: Path) -> None:
    step = read_run(run_copy).step
    state, _ = load_weights(run_copy / "model.safetensors")
    save_weights(run_copy / "model.safetensors", state, step=step + 1, epoch=0)
    (run_copy / "model.safetensors.prev").unlink()
    with pytest.raises(RunError, match="come from different checkpoints"):
        resume(run_copy)


# ----------------------------------------------------------------- non-finite loss, out of memory


def _train(run_dir: Path, **kw):
    from aestudio.config import TrainConfig
    from aestudio.nets import default_config
    from aestudio.training import train

    cfg = TrainConfig(**({"epochs": 1, "batch_size": 32, "device": "cpu", "checkpoint_every_steps": 1} | kw))
    return train("dense_ae", default_config("dense_ae", latent_dim=4, hidden=16), "digits", cfg, run_dir)


def test_injected_nan_stops_within_one_step_as_diverged_keeping_the_last_finite_checkpoint(tmp_path, monkeypatch) -> None:
    real = loop.train_step

    def nan_at_step_5(trainer, x_in, target, w):
        loss, terms = real(trainer, x_in, target, w)
        return (float("nan"), {}) if trainer.step == 4 else (loss, terms)

    monkeypatch.setattr(loop, "train_step", nan_at_step_5)
    events = list(_train(tmp_path / "run"))
    steps = [e.step for e in events if isinstance(e, StepEnded)]
    assert steps == [1, 2, 3, 4]  # the NaN step (5) was neither counted nor applied
    fin = events[-1]
    assert fin.reason is FinishReason.DIVERGED and "loss became nan at step 5" in fin.message
    assert "last good checkpoint" in fin.message
    net, info = load_net(tmp_path / "run", which="last")
    assert info.step == 4 and info.status.value == "diverged" and "nan" in info.message
    assert all(torch.isfinite(p).all() for p in net.state_dict().values())


def test_huge_learning_rate_diverges_with_finite_files(tmp_path) -> None:
    events = list(_train(tmp_path / "run", lr=1e12, epochs=3))
    fin = events[-1]
    assert fin.reason is FinishReason.DIVERGED, fin
    net, info = load_net(tmp_path / "run", which="last")
    assert all(torch.isfinite(p).all() for p in net.state_dict().values())
    assert info.status.value == "diverged"


def test_out_of_memory_halves_the_batch_three_times_then_fails_clearly(tmp_path, monkeypatch) -> None:
    seen: list[int] = []

    def oom(trainer, x_in, target, w):
        seen.append(x_in.shape[0])
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")

    monkeypatch.setattr(loop, "train_step", oom)
    events = list(_train(tmp_path / "run", batch_size=32))
    halvings = [(e.old, e.new) for e in events if isinstance(e, BatchSizeReduced)]
    assert halvings == [(32, 16), (16, 8), (8, 4)]
    assert seen == [32, 16, 8, 4]
    fin = events[-1]
    assert fin.reason is FinishReason.FAILED
    assert "out of memory at batch size 4 after 3 halvings" in fin.message and "--batch-size" in fin.message
    assert read_run(tmp_path / "run").status.value == "failed"


# ----------------------------------------------------------------- disk full, read-only folder


def _fail_writes_after(monkeypatch, n_ok: int, exc: OSError, where: str) -> None:
    """Let ``n_ok`` atomic writes succeed, then fail every write at ``where`` (fsync, or
    ``mkstemp``: the creation of the temp file, ``_fs._create_temp``)."""
    count = {"n": 0}
    real_fsync, real_mkstemp = _fs.os.fsync, _fs._create_temp

    def fsync(fd):
        if where == "fsync" and count["n"] >= n_ok:
            raise exc
        return real_fsync(fd)

    def mkstemp(*a, **k):
        count["n"] += 1
        if where == "mkstemp" and count["n"] > n_ok:
            raise exc
        return real_mkstemp(*a, **k)

    monkeypatch.setattr(_fs.os, "fsync", fsync)
    monkeypatch.setattr(_fs, "_create_temp", mkstemp)


@pytest.mark.parametrize(("err", "where", "words"), [
    (OSError(errno.ENOSPC, "No space left on device"), "fsync", "the disk is full"),
    (PermissionError(errno.EACCES, "Permission denied"), "mkstemp", "no permission to write"),
    (OSError(errno.EROFS, "Read-only file system"), "mkstemp", "read-only file system"),
], ids=["disk-full", "read-only-permission", "read-only-filesystem"])
def test_disk_full_or_read_only_fails_clearly_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch, err, where, words) -> None:
    """Simulated: the tests run as root, for whom chmod does not block writes."""
    run = tmp_path / "run"
    gen = _train(run, epochs=2)
    events = []
    for ev in gen:
        events.append(ev)
        if isinstance(ev, CheckpointSaved) and ev.step == 3:
            good = {f: (run / f).read_bytes() for f in ("model.safetensors", "optimizer.safetensors", "run.json")}
            _fail_writes_after(monkeypatch, 0, err, where)
    monkeypatch.undo()
    fin = events[-1]
    assert isinstance(fin, TrainFinished) and fin.reason is FinishReason.FAILED
    assert words in fin.message and "previous version of the file is intact" in fin.message
    assert "model.safetensors" in fin.message
    after = {f: (run / f).read_bytes() for f in good}
    assert after["optimizer.safetensors"] == good["optimizer.safetensors"] and after["run.json"] == good["run.json"]
    assert not [p for p in run.iterdir() if p.name.startswith(".tmp-")]  # the failed write cleaned up
    # The folder still holds the step-3 checkpoint, and the run resumes from it once space is back.
    resumed = list(resume(run, max_steps=5))
    assert resumed[0].start_step == 3 and resumed[-1].reason is FinishReason.DONE


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root ignores chmod; covered by the simulation above")
def test_a_really_read_only_run_folder(tmp_path) -> None:
    run = tmp_path / "run"
    list(_train(run, max_steps=2))
    os.chmod(run, 0o555)
    try:
        events = list(resume(run, max_steps=4))
        assert events[-1].reason is FinishReason.FAILED and "no permission" in events[-1].message
    finally:
        os.chmod(run, 0o755)
