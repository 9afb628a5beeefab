"""Best-checkpoint selection in self-supervised fine-tuning never loses to the starting weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
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
    assert info.best["metric"] == "sure_mse"
    assert info.metrics["sure_mse"] > info.best["value"]  # what training reached was worse, and not picked
    best = _weights(tuned / BEST_FILE)
    source = _weights(start / BEST_FILE)
    assert best.keys() == source.keys()
    assert all(torch.equal(best[k], source[k]) for k in best)  # the best checkpoint is the start, bit for bit


def test_a_run_from_scratch_is_not_scored_before_its_first_step(tmp_path) -> None:
    data = f"folder:{_noisy_folder(tmp_path / 'noisy')}"
    run = tmp_path / "run"
    list(train("denoising_ae", None, data, CFG, run, image_size=32))
    assert read_run(run).best["step"] > 0


def test_a_stop_between_validations_scores_the_weights_it_stops_on(tmp_path) -> None:
    """"Learn this noise": Stop at any moment and the best model so far is the active one. A stop
    mid-epoch (no validation yet) scores the current weights: they become the best checkpoint when
    they beat it, and a later, worse stop keeps the earlier best."""
    import threading

    from aestudio.training.events import StepEnded
    from aestudio.training.runner import resume

    data = f"folder:{_noisy_folder(tmp_path / 'noisy', n=2, side=64)}"
    cfg = dataclasses.replace(CFG, epochs=100, max_steps=None)  # epochs of 16 steps: the stops come first
    run = tmp_path / "run"

    def stop_after(events, n):
        stop_at = None
        for event in events:
            if isinstance(event, StepEnded) and event.step >= n and stop_at is None:
                stop_at = event.step
                stop.set()
        return stop_at

    stop = threading.Event()
    assert stop_after(train("denoising_ae", None, data, cfg, run, stop=stop, image_size=32), 3) == 3
    info = read_run(run)
    assert info.status == "stopped" and info.step == 3 and info.epoch == 0  # before any epoch end
    assert info.best is not None and info.best["step"] == 3 and info.best["metric"] == "sure_mse"
    best, last = _weights(run / BEST_FILE), _weights(run / "model.safetensors")
    assert all(torch.equal(best[k], last[k]) for k in best)  # the weights stopped on
    # A rate far too high: the next stop's weights are worse, and the best stays the first stop's.
    stop = threading.Event()
    stop_after(resume(run, stop=stop, lr=0.3), 5)
    again = read_run(run)
    assert again.step == 5 and again.metrics["sure_mse"] > again.best["value"] and again.best["step"] == 3
    assert all(torch.equal(_weights(run / BEST_FILE)[k], best[k]) for k in best)


class _Box(torch.nn.Module):
    """A fixed k x k mean filter: denoisers whose error against the clean images is known exactly."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, x):
        r = self.k // 2
        return torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (r,) * 4, mode="replicate"), self.k, stride=1)


def test_the_selection_metric_ranks_denoisers_by_their_error_against_the_clean_images() -> None:
    from aestudio.training.selfsup import SELECTION_METRIC, validation_loss

    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    clean = torch.stack([0.5 + 0.25 * torch.sin(0.2 * xx + i) * torch.cos(0.14 * yy + 2 * i) for i in range(8)])[:, None]
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=g)
    crops = [(noisy[i], -1) for i in range(8)]
    sizes = (1, 3, 5, 7)
    true = [float(((_Box(k)(noisy) - clean) ** 2).mean()) for k in sizes]
    scores = [validation_loss(_Box(k), crops, SelfSupervised.NE2NE) for k in sizes]
    best_true = sizes[int(np.argmin(true))]
    assert best_true == 5  # an interior optimum: sharper and blurrier filters are both worse
    assert sizes[int(np.argmin([s[SELECTION_METRIC] for s in scores]))] == best_true
    # SURE estimates the error itself, not just its order.
    assert np.allclose([s[SELECTION_METRIC] for s in scores], true, rtol=0.25, atol=2e-5)
    # The neighbour loss scores each filter on half-size images, where it blurs twice as far, so it prefers
    # a sharper one: why it no longer picks the best checkpoint.
    assert sizes[int(np.argmin([s["ss_loss"] for s in scores]))] == 3


def test_the_noise_model_recovers_poisson_gaussian_noise_from_the_noisy_images() -> None:
    from aestudio.training.selfsup import noise_model

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128] / 128
    clean = np.stack([0.1 + 0.8 * (0.5 + 0.5 * np.sin(3 * xx + i) * np.cos(2 * yy)) for i in range(4)])[:, None]
    photons, read = 40.0, 0.02
    noisy = rng.poisson(clean * photons) / photons + read * rng.standard_normal(clean.shape)
    a, b = noise_model(torch.from_numpy(noisy).float())
    for level in (0.2, 0.5, 0.8):  # the variance it predicts where the images have data
        assert a * level + b == pytest.approx(level / photons + read**2, rel=0.15)
    gaussian = clean + 0.1 * rng.standard_normal(clean.shape)
    a, b = noise_model(torch.from_numpy(gaussian).float())
    assert a * 0.5 + b == pytest.approx(0.01, rel=0.1) and a < 0.002  # flat: no rise with intensity
