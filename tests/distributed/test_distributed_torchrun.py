"""`aestudio train` under torchrun: 2 CPU processes (Gloo, 127.0.0.1) against 1, on 8x8 digits.

Three launches in all (each costs ~5-10 s of interpreter and torch start-up on 2 cores):

* dense_ae from scratch on 2 processes == the same run on 1 process; its folder opens with
  ``aestudio info``, exports, and loads through the app's (Qt-free) engine; it resumes on
  1 process and ends equal to an uninterrupted 1-process run.
* conv_ae (BatchNorm) resumed from a 1-process checkpoint on 2 processes, with a global
  batch that does not split evenly (359 = 180 + 179) and epochs whose last batch holds a
  single sample (1437 = 4 x 359 + 1: one rank gets a weightless stand-in), across an epoch
  boundary == the uninterrupted 1-process run. Exact because BatchNorm is synchronised
  (CpuSyncBatchNorm) and rank losses are weighted by their share of the global batch.
* rank 1 raises at step 2 (test-only hook): the job ends within seconds, naming rank 1.

"Equal" is within 1e-5 (observed: ~1e-7): the only differences are float summation order.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from torchrun_helpers import DIGITS, drain, max_weight_difference, torchrun

from aestudio.cli import main
from aestudio.config import TrainConfig
from aestudio.nets import default_config
from aestudio.training import resume, train
from aestudio.training.events import RunStarted, TrainFinished
from aestudio.training.runs import LOCK_FILE, read_run
from tests.conftest import wait_until_running

TOL = 1e-5
DENSE_BATCH = 32
DENSE_STEPS = 4


def _train_1proc(model: str, out: Path, *, batch: int, **cfg) -> TrainFinished:
    events = drain(train(model, default_config(model, image_size=8), "digits",
                         TrainConfig(batch_size=batch, device="cpu", **cfg), out, image_size=8))
    fin = events[-1]
    assert isinstance(fin, TrainFinished) and fin.reason.value == "done", fin.message
    return fin


@pytest.fixture(scope="module")
def dense_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The 2-process run to step 4, and the 1-process baselines at steps 4 and 8."""
    root = tmp_path_factory.mktemp("dense")
    launch = torchrun(["--model", "dense_ae", *DIGITS, "--batch-size", str(DENSE_BATCH),
                       "--max-steps", str(DENSE_STEPS), "--out", str(root / "two")])
    assert launch.returncode == 0, launch.text[-4000:]
    one = root / "one"
    _train_1proc("dense_ae", one, batch=DENSE_BATCH, max_steps=DENSE_STEPS)
    shutil.copytree(one, root / "one_at_4")  # keep the step-4 weights; "one" goes on to step 8
    drain(resume(one, max_steps=2 * DENSE_STEPS))
    return {"two": root / "two", "one_at_4": root / "one_at_4", "one_at_8": one, "log": launch.text}


def test_two_processes_end_with_the_weights_of_one(dense_runs: dict) -> None:
    two = dense_runs["two"]
    assert max_weight_difference(two / "model.safetensors", dense_runs["one_at_4"] / "model.safetensors") < TOL
    info, base = read_run(two), read_run(dense_runs["one_at_4"])
    assert info.step == DENSE_STEPS and info.status.value == "done"
    assert info.metrics["mse"] == pytest.approx(base.metrics["mse"], rel=1e-4)  # rank 0 validated the whole set
    record = json.loads((two / "run.json").read_text())
    assert record["distributed"] == [{"world_size": 2, "backend": "gloo", "start_step": 0, "global_batch": DENSE_BATCH}]
    # Only rank 0 talks: one start line, one summary, and the split is stated.
    log = dense_runs["log"]
    assert log.count("training dense_ae") == 1 and log.count("next      aestudio export") == 1
    assert "global batch 32 = 16 per process" in log
    # No temp files left; the run folder's lock file (runs.LOCK_FILE, flock'd while a process trains) stays.
    assert not any((p.name.startswith(".") and p.name != LOCK_FILE) or p.suffix == ".tmp" for p in two.iterdir())


def test_the_run_opens_exports_and_loads_in_the_app(dense_runs: dict, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(dense_runs["two"], run)
    assert main(["info", str(run)]) == 0
    text = capsys.readouterr().out
    assert "epochs 0/10, step 4" in text and "distributed 2 processes (gloo) from step 0" in text
    assert main(["export", str(run)]) == 0
    capsys.readouterr()
    from aestudio.gui.engine import load_model  # Qt-free by design

    loaded = load_model(run)
    assert loaded.source == run and loaded.info.net == "dense_ae" and loaded.info.image_size == 8
    image = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
    assert loaded.predictor.predict(image).shape == (2, 1, 8, 8)


def test_resume_on_one_process_continues_the_two_process_run(dense_runs: dict, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(dense_runs["two"], run)
    events = drain(resume(run, max_steps=2 * DENSE_STEPS))
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.start_step == DENSE_STEPS and events[-1].step == 2 * DENSE_STEPS
    assert events[-1].reason.value == "done"
    assert max_weight_difference(run / "model.safetensors", dense_runs["one_at_8"] / "model.safetensors") < TOL


@pytest.mark.slow
def test_batchnorm_uneven_split_and_resume_on_two_processes_match_one(tmp_path: Path) -> None:
    batch, epochs = 359, 2  # 1437 train images: 4 full batches + 1 single-sample batch per epoch
    base = tmp_path / "one"
    _train_1proc("conv_ae", base, batch=batch, epochs=epochs)
    run = tmp_path / "run"
    _train_1proc("conv_ae", run, batch=batch, epochs=epochs, max_steps=3)
    launch = torchrun(["--resume", "--out", str(run), "--no-progress"])
    assert launch.returncode == 0, launch.text[-4000:]
    assert "359 = 180 on rank 0 and 179 on the others" in launch.text
    info = read_run(run)
    assert info.step == read_run(base).step == 10 and info.epoch == epochs and info.status.value == "done"
    assert max_weight_difference(run / "model.safetensors", base / "model.safetensors") < TOL
    # The running BatchNorm statistics are in the weights file too: synchronised, they match as well.
    assert len(info.history) == epochs
    assert info.history[-1]["mse"] == pytest.approx(read_run(base).history[-1]["mse"], rel=1e-4)


def test_a_failing_rank_ends_the_job_promptly_and_is_named(tmp_path: Path) -> None:
    out = tmp_path / "run"
    launch = torchrun(["--model", "dense_ae", *DIGITS, "--batch-size", "32", "--max-steps", "50", "--out", str(out)],
                      env={"AESTUDIO_TEST_FAIL_RANK_AT_STEP": "1:2"})
    assert launch.returncode != 0
    failed_at = launch.first("rank 1 failed: RuntimeError: injected test failure at step 2")
    assert failed_at is not None, launch.text[-4000:]
    ended_at = launch.lines[-1][0]
    assert ended_at - failed_at < 30, f"the job took {ended_at - failed_at:.1f} s to end after the failure"
    assert "rank 0 lost contact with the other processes" in launch.text  # the survivor says why it stops
    info = read_run(out)  # rank 0 recorded it; the folder still opens
    assert info.status.value == "failed" and info.step < 50


@pytest.mark.slow
def test_sigterm_stops_every_rank_at_the_same_step_with_a_checkpoint(tmp_path: Path) -> None:
    """What SLURM's --signal / scancel and Ctrl-C do: torchrun passes SIGTERM to the workers,
    they agree on the step in their next reduction, rank 0 saves, the run resumes."""
    out = tmp_path / "run"

    def stop_once_training(proc: subprocess.Popen) -> None:
        wait_until_running(out, proc)
        time.sleep(1.5)  # some steps in
        proc.send_signal(signal.SIGTERM)

    launch = torchrun(["--model", "dense_ae", *DIGITS, "--batch-size", "32", "--epochs", "1000", "--out", str(out)],
                      while_running=stop_once_training)
    assert "stop requested: every process stops after this step" in launch.text, launch.text[-4000:]
    info = read_run(out)
    assert info.status.value == "stopped" and info.step > 0, launch.text[-4000:]
    events = drain(resume(out, max_steps=info.step + 2))  # the checkpoint is whole and consistent
    assert events[-1].reason.value == "done" and events[-1].step == info.step + 2
