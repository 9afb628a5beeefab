"""``dense_ae``: the classic fully connected autoencoder (784-64-784), any fixed input size."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from aestudio.config import NetConfig, Task, help_text
from aestudio.nets.base import AutoencoderBase
from aestudio.nets.registry import NetSpec, register_net


@dataclass(frozen=True)
class DenseAEConfig(NetConfig):
    latent_dim: int = field(default=64, metadata=help_text("the classic baseline's 64 values: 12x compression of a 28x28 digit"))
    hidden: int = field(default=256, metadata=help_text('one hidden layer each side captures strokes a linear map cannot; 0 = classic 784-64-784'))


class DenseAE(AutoencoderBase):
    """flatten -> [hidden -> ReLU] -> code -> [hidden -> ReLU] -> pixels -> sigmoid."""

    has_code = True

    def __init__(self, *, in_channels: int, image_size: int, latent_dim: int, hidden: int) -> None:
        super().__init__()
        if latent_dim < 1 or hidden < 0 or image_size < 1:
            raise ValueError("dense_ae needs latent_dim >= 1, hidden >= 0 and image_size >= 1")
        self.in_channels = in_channels
        self.image_size = image_size
        self.latent_dim = latent_dim
        values = in_channels * image_size * image_size
        if hidden:
            self.encoder = nn.Sequential(
                nn.Linear(values, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, latent_dim)
            )
            self.decoder = nn.Sequential(
                nn.Linear(latent_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, values)
            )
        else:
            self.encoder = nn.Sequential(nn.Linear(values, latent_dim))
            self.decoder = nn.Sequential(nn.Linear(latent_dim, values))

    def encode(self, x: Tensor) -> Tensor:
        self.check_input(x, "dense_ae")
        return self.encoder(torch.flatten(x, 1))

    def decode(self, z: Tensor) -> Tensor:
        pixels = torch.sigmoid(self.decoder(z))
        return pixels.unflatten(1, (self.in_channels, self.image_size, self.image_size))

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))


def _dense_ae(cfg: DenseAEConfig) -> DenseAE:
    return DenseAE(
        in_channels=cfg.in_channels,
        image_size=cfg.image_size,
        latent_dim=cfg.latent_dim,
        hidden=cfg.hidden,
    )


@register_net(
    NetSpec(
        name="dense_ae",
        task=Task.RECONSTRUCT,
        config_cls=DenseAEConfig,
        has_latent=True,
        description="Fully connected autoencoder, the classic 784-64-784 baseline",
    )
)
def dense_ae(cfg: DenseAEConfig | None = None, /, **overrides: Any) -> DenseAE:
    """A dense autoencoder from ``cfg`` (defaults when None), e.g. ``dense_ae(latent_dim=32)``."""
    return _dense_ae(replace(cfg or DenseAEConfig(), **overrides))
