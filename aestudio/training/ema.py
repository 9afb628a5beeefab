"""The moving average of a net's weights that the Label tab's live trainer and ``--ema`` runs publish."""

from __future__ import annotations

import torch
from torch import nn


def update_average(average: nn.Module, net: nn.Module, updates: int, decay: float) -> None:
    """Move ``average`` towards ``net`` after its ``updates``-th step since the copy (1, 2, ...).

    The decay ramps up as ``(1 + n) / (10 + n)`` towards ``decay``, so the first averages follow training
    instead of the start. BatchNorm's running statistics are averaged too; integer buffers are copied."""
    rate = min(decay, (1 + updates) / (10 + updates))
    with torch.no_grad():
        ema, own = average.state_dict(), net.state_dict()
        for k, v in own.items():
            if v.is_floating_point():
                ema[k].lerp_(v, 1.0 - rate)
            else:
                ema[k].copy_(v)
