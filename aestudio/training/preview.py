"""The per-epoch preview: the same few validation images, run through the net.

The images (and their noisy versions, for denoising) are fixed when training
starts, so successive previews show the same inputs and a person can watch
them improve. Everything handed out is a CPU numpy array.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from aestudio.config import NoiseConfig
from aestudio.training.events import Preview
from aestudio.training.losses import noisy_copy

_PREVIEW_SEED_OFFSET = 7919  # keeps preview noise distinct from the validation-metric noise stream


class PreviewMaker:
    def __init__(self, val: Dataset, count: int, noise: NoiseConfig | None, seed: int, segment: bool) -> None:
        n = min(count, len(val))  # type: ignore[arg-type]
        self.segment = segment
        self.clean: torch.Tensor | None = None
        self.inputs: torch.Tensor | None = None
        self.targets: torch.Tensor | None = None
        if n <= 0:
            return
        collate = getattr(val, "collate_fn", None) or default_collate  # varying sizes pad to one
        x, target = collate([val[i] for i in range(n)])
        self.clean = x
        self.targets = target if segment else None
        if noise is not None:
            self.inputs = noisy_copy(x, noise, np.random.default_rng(seed + _PREVIEW_SEED_OFFSET))
        else:
            self.inputs = x

    @torch.no_grad()
    def make(self, net: nn.Module, device: torch.device) -> Preview | None:
        if self.inputs is None or self.clean is None:
            return None
        was_training = net.training
        net.eval()
        try:
            with torch.random.fork_rng(devices=[]):
                out = net(self.inputs.to(device)).float().cpu()
        finally:
            net.train(was_training)
        inputs = self.inputs.numpy().astype(np.float32)
        if self.segment:
            return Preview(inputs=inputs, masks=out.argmax(dim=1).numpy().astype(np.int64),
                           targets=None if self.targets is None else self.targets.numpy().astype(np.int64))
        noisy = self.inputs is not self.clean
        return Preview(inputs=inputs, outputs=out.clamp(0, 1).numpy(),
                       clean=self.clean.numpy().astype(np.float32) if noisy else None)
