"""Hostile input, class 2: careless commands must never lose a file (issue 18).

Exports never delete what they did not write, image outputs are not replaced
without ``--overwrite``, SIGTERM stops a training like Ctrl-C, a run folder is
trained by one process at a time, and diverged weights are never exported.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rel_helpers import REPO, tiny_run

from aestudio import cli
from tests.conftest import wait_until_running


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("run") / "run")


def _copy_run(run: Path, tmp: Path) -> Path:
    return Path(shutil.copytree(run, tmp / "run"))


# ----------------------------------------------------------------- export -o


def test_export_into_a_folder_of_someone_elses_files_is_refused(trained_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "holiday"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    (out / "photo.jpg").write_bytes(b"\xff\xd8\xff photo")
    assert cli.main(["export", str(trained_run), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is not a bundle" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "photo.jpg"]
    assert (out / "notes.txt").read_text() == "my notes"


def test_export_over_a_bundle_holding_other_files_is_refused(trained_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bundle"
    assert cli.main(["export", str(trained_run), "-o", str(out)]) == 0
    (out / "notes.txt").write_text("my notes")  # a user kept notes in the bundle folder
    capsys.readouterr()
    assert cli.main(["export", str(trained_run), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'notes.txt', which an export did not write" in err, err
    assert (out / "notes.txt").read_text() == "my notes" and (out / "model.json").is_file()
    (out / "notes.txt").unlink()
    assert cli.main(["export", str(trained_run), "-o", str(out)]) == 0  # a clean bundle is replaced


def test_a_killed_exports_temp_folder_is_cleaned_by_the_next_export(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # a process that has exited: its temp folder is stale
    stale = tmp_path / f".bundle.export-{dead_pid}-abcd1234"
    stale.mkdir()
    (stale / "model.onnx").write_bytes(b"half")
    live = tmp_path / f".bundle.export-{os.getppid()}-abcd1234"  # a live process: maybe exporting right now
    live.mkdir()
    other = tmp_path / f".other.export-{dead_pid}-abcd1234"  # another target's: not ours to touch
    other.mkdir()
    assert cli.main(["export", str(trained_run), "-o", str(out)]) == 0
    assert not stale.exists() and live.exists() and other.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle.") and p != live]


def test_weights_with_nan_are_never_exported(trained_run: Path, tmp_path: Path, capsys) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    run = _copy_run(trained_run, tmp_path)
    for name in ("model.safetensors", "best.safetensors"):
        f = run / name
        from aestudio.training.checkpoint import read_meta

        meta = read_meta(f)
        state = load_file(str(f))
        first = next(iter(state))
        state[first] = torch.full_like(state[first], float("nan"))
        save_file(state, str(f), metadata={"aestudio": json.dumps(meta)})
    assert cli.main(["export", str(run), "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "holds NaN or infinite values" in err and first in err, err
    assert not (tmp_path / "b").exists()


# ----------------------------------------------------------------- sample / interpolate -o


def test_sample_and_interpolate_never_overwrite_without_the_flag(bundles, tmp_path: Path, capsys) -> None:
    import numpy as np
    from PIL import Image

    vae = bundles("vae")
    grid = tmp_path / "grid.png"
    grid.write_bytes(b"my picture")
    assert cli.main(["sample", "--model", str(vae), "-n", "4", "-o", str(grid)]) == 2
    assert "exists; add --overwrite" in capsys.readouterr().err
    assert grid.read_bytes() == b"my picture"
    assert cli.main(["sample", "--model", str(vae), "-n", "4", "-o", str(grid), "--overwrite"]) == 0
    assert grid.read_bytes() != b"my picture"

    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((16, 16), 128, np.uint8)).save(tmp_path / name)
    strip = tmp_path / "strip.png"
    strip.write_bytes(b"mine")
    argv = ["interpolate", "--model", str(vae), str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-n", "3", "-o", str(strip)]
    assert cli.main(argv) == 2 and strip.read_bytes() == b"mine"
    assert cli.main([*argv, "--overwrite"]) == 0 and strip.read_bytes() != b"mine"


# ----------------------------------------------------------------- SIGTERM, locks, history


def test_sigterm_stops_training_with_a_checkpoint_like_ctrl_c(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "aestudio", "train", "--model", "dense_ae", "--data", "digits",
                             "--epochs", "500", "--batch-size", "8", "--out", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    wait_until_running(out, proc)  # until training is under way (run.json says running)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)  # what a scheduler, systemctl or `kill` sends
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "stopped", record.get("status")
    assert record["step"] > 0 and (out / "model.safetensors").is_file()
    assert "stopping after this step and saving a checkpoint" in err


def test_a_run_being_trained_cannot_be_resumed_by_a_second_process(trained_run: Path, tmp_path: Path, capsys) -> None:
    from aestudio.training.runs import RunFolder

    run = _copy_run(trained_run, tmp_path)
    holder = RunFolder.open(run)  # this "process" is training it
    try:
        assert cli.main(["train", "--resume", "--out", str(run), "--epochs", "2", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "is being trained by another process right now" in err, err
    finally:
        holder.release()
    assert cli.main(["train", "--resume", "--out", str(run), "--epochs", "1", "--max-steps", "4", "--no-progress"]) == 0


def test_a_resume_after_a_kill_does_not_duplicate_history_rows(trained_run: Path, tmp_path: Path) -> None:
    from aestudio.training import resume

    run = tiny_run(tmp_path / "r2", steps=1000)  # one full epoch (digits: 45 steps of 32)
    record = json.loads((run / "run.json").read_text())
    assert record["epoch"] == 1
    # A kill between appending epoch 2's row and committing its checkpoint:
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"epoch": 2, "step": 90, "train_loss": 12345.0}) + "\n")
    events = list(resume(run, epochs=2))
    assert events[-1].reason.value == "done"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]  # epoch 2 once, from the resumed run
    assert rows[1]["train_loss"] != 12345.0  # the uncommitted row was dropped


# ----------------------------------------------------------------- setups that fail, runs that diverge


def test_a_run_that_never_trained_can_be_started_again(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "dense_ae", "--data", "digits", "--epochs", "0", "--out", str(out)]) == 2
    assert not out.exists()  # refused before the folder is made
    out.mkdir()  # a folder left by a setup that failed before its first checkpoint
    (out / "run.json").write_text(json.dumps({"format": "aestudio-run", "version": 1, "net": {"name": "dense_ae"},
                                              "data": {"spec": "digits"}, "train": {}, "epoch": 0, "step": 0,
                                              "status": "created"}))
    capsys.readouterr()
    assert cli.main(["train", "--resume", "--out", str(out), "--no-progress"]) == 2
    assert "never trained" in capsys.readouterr().err
    argv = ["train", "--model", "dense_ae", "--data", "digits", "--epochs", "1", "--max-steps", "2", "--out", str(out),
            "--no-progress"]
    assert cli.main(argv) == 0
    assert (out / "model.safetensors").is_file()


def test_divergence_says_what_is_true(tmp_path: Path) -> None:
    from aestudio.config import TrainConfig
    from aestudio.nets import default_config
    from aestudio.training import train

    cfg = TrainConfig(epochs=1, batch_size=32, lr=1e30, device="cpu")
    events = list(train("dense_ae", default_config("dense_ae", latent_dim=4, hidden=16), "digits", cfg, tmp_path / "r"))
    fin = events[-1]
    assert fin.reason.value == "diverged", fin
    assert not (tmp_path / "r" / "model.safetensors").exists()
    assert "no checkpoint was saved" in fin.message and "last good checkpoint" not in fin.message, fin.message
