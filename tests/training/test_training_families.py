"""Every registered family learns on tiny real data (registry-parametrized: a new net is tested for free)."""

from __future__ import annotations

import dataclasses
import functools

import pytest
import torch
from torch.utils.data import Subset

from aestudio.config import FinishReason, NoiseConfig, Task, TrainConfig
from aestudio.nets import build_net, default_config, get_spec, list_nets
from aestudio.training.events import EpochEnded, StepEnded
from aestudio.training.loop import fit

SIZE = 16


@functools.cache
def _bundle(spec: str):
    from aestudio.data.specs import open_data

    b = open_data(spec, image_size=SIZE, seed=0)
    return dataclasses.replace(b, train=Subset(b.train, range(64)), val=Subset(b.val, range(16)))


@pytest.mark.parametrize("name", list_nets())
def test_loss_goes_down_for_every_family(name: str) -> None:
    spec = get_spec(name)
    segment = spec.task is Task.SEGMENT
    data = _bundle("shapes-seg" if segment else "digits")
    overrides = {"in_channels": data.channels, "image_size": SIZE}
    if segment:
        overrides["num_classes"] = data.num_classes
    torch.manual_seed(0)
    net = build_net(name, default_config(name, **overrides))
    noise = NoiseConfig("gaussian", 0.1) if spec.task is Task.DENOISE else NoiseConfig()
    cfg = TrainConfig(epochs=8, batch_size=16, lr=3e-3, device="cpu", noise=noise, preview_count=2, seed=0)
    events = list(fit(net, data, cfg))
    assert events[-1].reason is FinishReason.DONE, events[-1].message
    losses = [e.loss for e in events if isinstance(e, StepEnded)]
    assert len(losses) == 32
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.8 * first, (name, first, last)
    metrics = [e for e in events if isinstance(e, EpochEnded)][-1].metrics
    if segment:
        assert 0.0 <= metrics["miou"] <= 1.0
    else:
        assert metrics["psnr"] > 10 and 0 < metrics["ssim"] <= 1
        assert ("nelbo" in metrics) == (name == "vae")
