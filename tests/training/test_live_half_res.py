"""The live trainer's faster learning options: a U-Net at half resolution, class-balanced
cross-entropy, predictions averaged over mirror images (issue 13)."""

from __future__ import annotations

import threading

import numpy as np
import torch

from aestudio.data.base import UNLABELLED
from aestudio.nets.registry import build_net, default_config, net_config_from_dict, size_multiple
from aestudio.training.live import (
    LiveConfig,
    LiveTrainer,
    live_net_config,
    net_from_snapshot,
    predict_probs,
    sparse_loss,
)


def test_half_resolution_unet_has_the_same_weights_and_full_size_logits() -> None:
    full = build_net("unet", default_config("unet", in_channels=3, num_classes=3, depth=2, base_channels=4))
    cfg = default_config("unet", in_channels=3, num_classes=3, depth=2, base_channels=4, input_stride=2)
    half = build_net("unet", cfg)
    assert size_multiple("unet", cfg) == 8  # 2**depth at half resolution = 8 at full
    assert {k: v.shape for k, v in full.state_dict().items()} == {k: v.shape for k, v in half.state_dict().items()}
    half.load_state_dict(full.state_dict())  # checkpoints move between the two
    x = torch.rand(2, 3, 24, 40)
    assert half.eval()(x).shape == (2, 3, 24, 40)
    # What it computes: the full-resolution net on the 2x2-averaged image, logits upsampled.
    small = full.eval()(torch.nn.functional.avg_pool2d(x, 2))
    up = torch.nn.functional.interpolate(small, scale_factor=2.0, mode="bilinear", align_corners=False)
    assert torch.allclose(half(x), up, atol=1e-5)
    # A config written before the option (an old bundle, project or run) still reads, as full resolution.
    _, old = net_config_from_dict({"name": "unet", "params": {"in_channels": 3, "num_classes": 3, "depth": 2,
                                                              "base_channels": 4}})
    assert old.input_stride == 1 and old.size_multiple == 4


def test_half_resolution_unet_exports_and_runs_in_onnx_runtime(tmp_path) -> None:
    from aestudio.export.exporter import export_net
    from aestudio.inference.ort import OrtPredictor

    cfg = live_net_config(1, 2, LiveConfig(depth=2, base_channels=4, input_stride=2))
    net = build_net("unet", cfg).eval()
    out = tmp_path / "b"
    export_net(net, "unet", cfg, out, measure_timings=False)
    x = np.random.default_rng(0).random((1, 1, 16, 24), dtype=np.float32)
    logits = OrtPredictor(out).predict(x)
    assert logits.shape == (1, 2, 16, 24)
    assert np.allclose(logits, net(torch.from_numpy(x)).detach().numpy(), atol=1e-4)


def test_balanced_loss_still_ignores_unlabelled_pixels_and_lifts_rare_classes() -> None:
    painted = torch.full((1, 6, 6), UNLABELLED, dtype=torch.int64)
    painted[0, 0, :5] = 0  # five background pixels
    painted[0, 5, 0] = 1  # one object pixel
    logits = torch.zeros(1, 2, 6, 6, requires_grad=True)
    loss = sparse_loss(logits, painted, painted, 0.5, balance=1.0)
    loss.backward()
    grad = logits.grad.abs().sum(1)[0]
    assert float(grad[painted[0] == UNLABELLED].abs().max()) == 0.0  # 255 pixels count for nothing
    # Balanced, the lone object pixel pulls harder against the five background ones than unbalanced
    # (the Dice term is the same in both).
    logits2 = torch.zeros(1, 2, 6, 6, requires_grad=True)
    sparse_loss(logits2, painted, painted, 0.5, balance=0.0).backward()
    plain = logits2.grad.abs().sum(1)[0]
    assert float(grad[5, 0] / grad[0, 0]) > 2 * float(plain[5, 0] / plain[0, 0])


def _scene(size: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    truth = np.zeros((size, size), np.uint8)
    truth[(yy - 24) ** 2 + (xx - 24) ** 2 <= 12**2] = 1
    image = np.where(truth[..., None] == 1, 0.8, 0.2).astype(np.float32).repeat(3, -1)
    image += rng.normal(0, 0.03, image.shape).astype(np.float32)
    sparse = np.full((size, size), UNLABELLED, np.uint8)
    sparse[22:26, 18:30] = 1
    sparse[4:8, 4:20] = 0
    sparse[40:44, 28:44] = 0
    return np.clip(image, 0, 1), truth, sparse


def test_half_resolution_trainer_learns_from_strokes_only_where_painted() -> None:
    torch.set_num_threads(1)
    image, truth, sparse = _scene()
    cfg = LiveConfig(crop=48, batch_size=4, base_channels=8, depth=2, lr=5e-3, regions=0.0, input_stride=2,
                     balance=0.5, max_steps=30)
    trainer = LiveTrainer(3, 2, cfg)
    assert trainer.net.input_stride == 2
    trainer.set_example("a", image, sparse)
    for _ in trainer.events(threading.Event()):
        pass
    net = net_from_snapshot(3, 2, trainer.snapshot()[1], trainer.cfg)
    pred = predict_probs(net, image).argmax(0)
    unpainted = sparse == UNLABELLED
    assert float((pred[unpainted] == truth[unpainted]).mean()) > 0.85  # learnt the disc, not just the strokes
    flips = predict_probs(net, image, flips=True)
    assert flips.shape == (2, 48, 48) and np.allclose(flips.sum(0), 1.0, atol=1e-5)
