"""Losses and metrics against independent references (skimage, hand-computed counts)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity
from torch.utils.data import TensorDataset
from training_fakes import TinySeg, blob_images

from aestudio.config import ReconLoss, Task
from aestudio.training.losses import (
    kl_scale,
    reconstruction_loss,
    segmentation_losses,
    soft_dice_loss,
)
from aestudio.training.metrics import _SegCounts, evaluate, psnr, ssim


@pytest.mark.parametrize("size", [16, 32])
def test_ssim_matches_skimage(size: int) -> None:
    g = torch.Generator().manual_seed(1)
    x = blob_images(3, size, 2, seed=1)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    ours = ssim(x, y)
    for i in range(3):
        ref = structural_similarity(x[i].numpy(), y[i].numpy(), channel_axis=0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0)
        assert ours[i].item() == pytest.approx(ref, abs=1e-4)
    assert ssim(x, x).min().item() == pytest.approx(1.0, abs=1e-5)


def test_ssim_small_images_use_a_smaller_window() -> None:
    x = blob_images(2, 8)
    assert ssim(x, x).shape == (2,) and torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)


def test_psnr() -> None:
    assert psnr(torch.tensor([0.01])).item() == pytest.approx(20.0)
    assert psnr(torch.tensor([0.0])).item() == pytest.approx(100.0)  # capped, not inf


def test_kl_warmup_ramp() -> None:
    assert kl_scale(0.0, 0) == 1.0
    assert kl_scale(0.0, 4) == 0.0 and kl_scale(1.0, 4) == 0.25 and kl_scale(2.5, 4) == 0.625
    assert kl_scale(9.0, 4) == 1.0


def test_reconstruction_losses() -> None:
    x = torch.tensor([[0.0, 1.0]])
    assert reconstruction_loss(torch.tensor([[0.5, 0.5]]), x, ReconLoss.MSE).item() == pytest.approx(0.25)
    assert reconstruction_loss(torch.tensor([[0.5, 0.5]]), x, ReconLoss.BCE).item() == pytest.approx(math.log(2), rel=1e-5)
    assert reconstruction_loss(x, x, ReconLoss.BCE).item() < 1e-4  # clamped, finite


def test_dice_and_ce() -> None:
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :2] = 1
    perfect = torch.nn.functional.one_hot(target, 2).permute(0, 3, 1, 2).float() * 50
    assert soft_dice_loss(perfect, target).item() < 1e-4
    wrong = torch.nn.functional.one_hot(1 - target, 2).permute(0, 3, 1, 2).float() * 50
    assert soft_dice_loss(wrong, target).item() > 0.99
    terms = segmentation_losses(wrong, target)
    assert set(terms) == {"ce", "dice"} and terms["ce"].item() > 10


def test_iou_and_dice_counts() -> None:
    target = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 2]])
    c = _SegCounts(3)
    c.add(pred, target)
    r = c.result(["bg", "a", "b"])
    # class 0: tp 3, fp 0, fn 1; class 1: tp 3, fp 1, fn 1; class 2: tp 0, fp 1, fn 0
    assert r["iou_bg"] == pytest.approx(3 / 4) and r["dice_bg"] == pytest.approx(6 / 7)
    assert r["iou_a"] == pytest.approx(3 / 5) and r["dice_a"] == pytest.approx(6 / 8)
    assert r["iou_b"] == 0.0
    assert r["miou"] == pytest.approx((3 / 4 + 3 / 5 + 0) / 3)
    assert r["pixel_acc"] == pytest.approx(6 / 8)


def test_evaluate_image_metrics_of_identity_and_noise() -> None:
    x = blob_images(10, 16)
    ds = TensorDataset(x, torch.zeros(10))
    ident = torch.nn.Identity()
    m = evaluate(ident, ds, task=Task.RECONSTRUCT, batch_size=4)
    assert m["mse"] == 0.0 and m["psnr"] == pytest.approx(100.0) and m["ssim"] == pytest.approx(1.0, abs=1e-5)
    from aestudio.config import NoiseConfig

    noisy = evaluate(ident, ds, task=Task.DENOISE, batch_size=4, noise=NoiseConfig("gaussian", 0.1), seed=3)
    again = evaluate(ident, ds, task=Task.DENOISE, batch_size=3, noise=NoiseConfig("gaussian", 0.1), seed=3)
    assert 0.003 < noisy["mse"] < 0.012 and noisy["ssim"] < 0.95
    assert noisy["mse"] == pytest.approx(np.mean(again["mse"]), rel=1e-2)


def test_evaluate_vae_nelbo_is_reproducible_and_in_nats() -> None:
    from aestudio.nets import build_net, default_config

    torch.manual_seed(0)
    vae = build_net("vae", default_config("vae", image_size=16, latent_dim=4, base_channels=4, depth=2))
    ds = TensorDataset(blob_images(6, 16), torch.zeros(6))
    a = evaluate(vae, ds, task=Task.GENERATE, batch_size=4, seed=1)
    b = evaluate(vae, ds, task=Task.GENERATE, batch_size=4, seed=1)
    assert a["nelbo"] == b["nelbo"]
    # An untrained decoder outputs ~0.5: about ln 2 nats per value for 256 values, plus a small KL.
    assert 0.5 * 256 * math.log(2) < a["nelbo"] < 3 * 256 * math.log(2)


def test_evaluate_segmentation_names_classes() -> None:
    x = blob_images(6, 16)
    ds = TensorDataset(x, (x[:, 0] > 0.5).long())
    m = evaluate(TinySeg(), ds, task=Task.SEGMENT, batch_size=4, class_names=["bg", "blob"])
    assert {"miou", "iou_bg", "iou_blob", "dice_bg", "dice_blob", "pixel_acc"} <= set(m)
