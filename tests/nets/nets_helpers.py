"""Tiny configs so registry-parametrized tests stay fast on 2 cores."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import torch

from aestudio.config import NetConfig
from aestudio.nets import default_config, get_spec, size_multiple

# Smallest widths that still exercise every layer of each family.
TINY = {"base_channels": 4, "channels": 6, "hidden": 16, "dilations": (1, 2), "depth": 2}


def tiny_config(name: str, **overrides: Any) -> NetConfig:
    """``name``'s default config with small widths, then ``overrides``."""
    known = {f.name for f in fields(get_spec(name).config_cls)}
    params = {k: v for k, v in TINY.items() if k in known}
    params.update(overrides)
    return default_config(name, **params)


def input_size(name: str, cfg: NetConfig, size: int) -> int:
    """``size`` rounded up to what the net accepts (U-Net: multiples of 2**depth)."""
    multiple = size_multiple(name, cfg)
    return -(-size // multiple) * multiple


def perturb(net: torch.nn.Module, seed: int = 0) -> None:
    """Move every parameter and BatchNorm statistic off its initial value, so
    zero-initialised layers and fresh running stats cannot hide a bug."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(1 + 0.2 * torch.rand(m.running_var.shape, generator=gen))
