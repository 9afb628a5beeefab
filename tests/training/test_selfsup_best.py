"""Best-checkpoint selection in self-supervised fine-tuning never loses to the starting weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from aestudio.config import SelfSupervised, TrainConfig
from aestudio.data.io import write_image
from aestudio.training import train
from aestudio.training.checkpoint import load_weights
from aestudio.training.runs import BEST_FILE, read_run

CFG = TrainConfig(epochs=1, batch_size=8, lr=1e-3, device="cpu", seed=0, preview_count=1,
                  self_supervised=SelfSupervised.NE2NE, max_steps=6)


def _noisy_folder(path, n=2, side=48):
    path.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side] / side
    for i in range(n):
        clean = 0.5 + 0.3 * np.sin(6 * xx + i) * np.cos(4 * yy)
        write_image(path / f"{i}.png", (clean + 0.1 * rng.standard_normal(clean.shape)).clip(0, 1)[..., None].astype(np.float32),
                    bit_depth=16)
    return path


def _weights(file):
    return load_weights(file)[0]


def test_fine_tuning_keeps_the_starting_weights_as_best_when_training_makes_them_worse(tmp_path) -> None:
    data = f"folder:{_noisy_folder(tmp_path / 'noisy')}"
    start = tmp_path / "start"
    list(train("denoising_ae", None, data, CFG, start, image_size=32))
    start_best = read_run(start).best
    assert start_best is not None
    # A rate far too high for fine-tuning: every step makes the net worse, so without scoring the
    # starting weights the first validation (after the steps) would become the "best".
    bad = dataclasses.replace(CFG, lr=0.3, max_steps=4)
    tuned = tmp_path / "tuned"
    events = list(train("denoising_ae", None, data, bad, tuned, image_size=32, init_weights=start))
    assert events[-1].reason.value == "done"
    info = read_run(tuned)
    assert info.step == 4
    assert info.best["step"] == 0  # the starting weights, scored before the first step
    assert info.metrics["ss_loss"] > info.best["value"]  # what training reached was worse, and not picked
    best = _weights(tuned / BEST_FILE)
    source = _weights(start / BEST_FILE)
    assert best.keys() == source.keys()
    assert all(torch.equal(best[k], source[k]) for k in best)  # the best checkpoint is the start, bit for bit


def test_a_run_from_scratch_is_not_scored_before_its_first_step(tmp_path) -> None:
    data = f"folder:{_noisy_folder(tmp_path / 'noisy')}"
    run = tmp_path / "run"
    list(train("denoising_ae", None, data, CFG, run, image_size=32))
    assert read_run(run).best["step"] > 0
