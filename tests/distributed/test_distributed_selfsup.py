"""Self-supervised denoising (``--self-supervised``) under torchrun: 2 CPU processes, Gloo, 127.0.0.1.

One launch of 2 steps on four 48x48 noisy PNGs (seconds). The self-supervised objectives call
the net on masked or sub-sampled copies of the batch, not through the loop's usual
``forward_train``; if that call bypassed the DDP wrapper, each rank would keep its own
gradients, the weights would drift apart, and rank 0 would save a model trained on half the
data. Every rank checks that the weights agree before rank 0 saves
(``Dist.check_weights_agree``), so such a run fails instead of finishing: the exit code here
is that check.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image
from torchrun_helpers import torchrun

from aestudio.training.runs import LOCK_FILE, read_run

STEPS = 2


def _noisy_folder(root: Path) -> Path:
    folder = root / "noisy"
    folder.mkdir()
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:48]
    for i in range(4):
        clean = 0.5 + 0.3 * np.sin(x / 5 + i) * np.cos(y / 7)
        noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
        Image.fromarray((noisy * 255).astype(np.uint8)).save(folder / f"n{i}.png")
    return folder


def test_self_supervised_training_runs_under_torchrun_with_one_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    launch = torchrun(["--model", "denoising_ae", "--data", f"folder:{_noisy_folder(tmp_path)}", "--self-supervised",
                       "--image-size", "32", "--batch-size", "4", "--max-steps", str(STEPS), "--time-limit", "2",
                       "--device", "cpu", "--no-progress", "--out", str(out)])
    assert launch.returncode == 0, launch.text[-4000:]  # fails when the ranks' weights drift apart
    info = read_run(out)
    assert info.status.value == "done" and info.step == STEPS
    assert info.train_cfg.self_supervised.value == "ne2ne"
    # Rank 0 validated the whole validation set and picked the best checkpoint by SURE.
    assert set(info.metrics) == {"sure_mse", "ss_loss"} and all(math.isfinite(v) for v in info.metrics.values())
    record = json.loads((out / "run.json").read_text())
    assert record["best"]["metric"] == "sure_mse" and record["best"]["step"] == STEPS
    assert record["distributed"] == [{"world_size": 2, "backend": "gloo", "start_step": 0, "global_batch": 4}]
    assert (out / "best.safetensors").is_file() and (out / "model.safetensors").is_file()
    # One writer: one start line, one summary, no temp files left.
    assert launch.text.count("training denoising_ae") == 1 and launch.text.count("next      aestudio export") == 1
    assert "global batch 4 = 2 per process" in launch.text
    assert not any((p.name.startswith(".") and p.name != LOCK_FILE) or p.suffix == ".tmp" for p in out.iterdir())
