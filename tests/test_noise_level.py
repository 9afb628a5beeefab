"""Noise-level estimate and the trained-range check (aestudio.explore.noise_level)."""

from __future__ import annotations

import numpy as np

from aestudio.explore.noise_level import TrainedNoise, estimate_sigma, range_warning, trained_noise


def test_estimate_sigma_of_grey_and_colour_images() -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128] / 128
    clean = 0.5 + 0.3 * np.sin(6 * xx) * np.cos(5 * yy)
    for sigma in (0.02, 0.1):
        grey = clean + rng.normal(0, sigma, clean.shape)
        assert abs(estimate_sigma(grey[..., None]) - sigma) < 0.2 * sigma + 0.003
        colour = np.stack([clean, clean[::-1], 1 - clean], -1) + rng.normal(0, sigma, (128, 128, 3))
        assert abs(estimate_sigma(colour) - sigma) < 0.2 * sigma + 0.003


def test_trained_noise_from_the_summary_the_zoo_command_or_self_supervision() -> None:
    assert trained_noise({"noise": {"kind": "gaussian", "strength": 0.0, "strength_max": 0.2}}) == TrainedNoise("gaussian", 0.0, 0.2)
    zoo = {"zoo": {"train_command": "aestudio train --model denoising_ae --noise gaussian:0-0.196 --epochs 60"}}
    assert trained_noise(zoo) == TrainedNoise("gaussian", 0.0, 0.196)
    assert trained_noise({"self_supervised": "ne2ne", "noise": {"kind": "none"}}).kind == "self-supervised"
    assert trained_noise({}) is None and trained_noise({"noise": {"kind": "none"}}) is None


def test_range_warning_only_outside_the_range() -> None:
    t = TrainedNoise("gaussian", 0.0, 0.2)
    assert range_warning("m", t, 0.1) is None and range_warning("m", t, 0.205) is None
    assert "beyond it" in range_warning("m", t, 0.3)
    assert "below it" in range_warning("m", TrainedNoise("gaussian", 0.1, 0.2), 0.02)
    assert range_warning("m", TrainedNoise("self-supervised"), 0.5) is None


def test_denoise_job_reuses_a_known_noise_estimate(monkeypatch) -> None:
    """'Learn this noise' re-runs the job every few seconds on the same image: a known sigma is
    passed in, not estimated again (a wavelet pass over the whole photo each time)."""
    import aestudio.gui.panels.noise_lab as lab

    calls = []
    monkeypatch.setattr(lab, "estimate_sigma", lambda img: calls.append(1) or 0.05)
    img = np.full((16, 16, 1), 0.5, np.float32)
    assert lab.denoise_job(None, img, None)["sigma"] == 0.05 and len(calls) == 1
    assert lab.denoise_job(None, img, None, sigma=0.07)["sigma"] == 0.07 and len(calls) == 1


def test_add_noise_is_reproducible_and_leaves_the_image_alone() -> None:
    from aestudio.explore.noise_level import add_noise

    clean = np.full((12, 10, 3), 0.5, np.float32)
    a, b = add_noise(clean, "gaussian", 0.1, seed=3), add_noise(clean, "gaussian", 0.1, seed=3)
    assert a.shape == clean.shape and a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.array_equal(a, add_noise(clean, "gaussian", 0.1, seed=4))
    assert 0.05 < float(np.std(a - clean)) < 0.15 and np.all(clean == 0.5)


def test_images_too_small_to_estimate_give_no_estimate_and_no_warning() -> None:
    import warnings

    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # skimage warned "size 3 on the last axis" for a 3 x 3 grey image
        for shape in ((1, 1, 1), (3, 3, 1), (2, 5, 3), (7, 40, 1)):
            assert estimate_sigma(rng.random(shape)) is None
        assert estimate_sigma(rng.random((8, 8, 1))) is not None
