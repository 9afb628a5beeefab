"""``conv_ae``: the convolutional autoencoder, and the class the sparse and contractive families extend.

Input sizes: the net is built for one square size. It pads the input (zeros,
centred) up to a multiple of ``2**depth`` and crops the output back, so 28x28
MNIST runs through the same 32x32 stages a 32x32 image would; and on tiny
images it lowers the depth until the bottom map is at least 2x2 (8x8 digits
use depth 2). Padding is chosen at build time from ``image_size``, so the
exported graph holds constants, not shape arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from aestudio.config import NetConfig, Task, help_text
from aestudio.nets.base import AutoencoderBase
from aestudio.nets.blocks import (
    CodeBottleneck,
    ConvDecoder,
    ConvEncoder,
    fit_depth,
    padded_size,
    stage_channels,
)
from aestudio.nets.registry import NetSpec, register_net


@dataclass(frozen=True)
class ConvAEConfig(NetConfig):
    latent_dim: int = field(default=16, metadata=help_text('16 values beat 16-component PCA on digits (the benchmark); sliders stay manageable'))
    base_channels: int = field(default=16, metadata=help_text('first-stage width, doubled per stage; small enough for CPU training'))
    depth: int = field(default=3, metadata=help_text('2x downsamplings; same default as unet so its encoder can start from this one'))


class ConvAutoencoder(AutoencoderBase):
    """pad -> ``encoder_blocks`` (ConvEncoder) -> linear code -> linear -> ConvTranspose decoder -> sigmoid -> crop."""

    has_code = True
    net_name = "conv_ae"  # used in error messages; subclasses override

    def __init__(
        self, *, in_channels: int, image_size: int, latent_dim: int, base_channels: int, depth: int
    ) -> None:
        super().__init__()
        if latent_dim < 1 or base_channels < 1 or depth < 0 or image_size < 1:
            raise ValueError(
                f"{self.net_name} needs latent_dim >= 1, base_channels >= 1, depth >= 0, image_size >= 1"
            )
        self.in_channels = in_channels
        self.image_size = image_size
        self.latent_dim = latent_dim
        self.depth = fit_depth(image_size, depth)
        channels = stage_channels(base_channels, self.depth)
        side = padded_size(image_size, 2**self.depth)
        total = side - image_size
        self._pads = (
            total // 2,
            total - total // 2,
            total // 2,
            total - total // 2,
        )  # left, right, top, bottom
        self.encoder_blocks = ConvEncoder(in_channels, channels)
        self.bottleneck = CodeBottleneck(
            channels[-1], side // 2**self.depth, self._code_outputs(), latent_dim
        )
        self.decoder = ConvDecoder(channels, in_channels)

    def _code_outputs(self) -> int:
        """Values the encoder's linear layer produces (the VAE doubles it for mu and logvar)."""
        return self.latent_dim

    def features(self, x: Tensor) -> Tensor:
        """The padded input through the shared encoder: the bottom feature map."""
        self.check_input(x, self.net_name)
        if any(self._pads):
            x = F.pad(x, self._pads)
        return self.encoder_blocks(x)[-1]

    def encode(self, x: Tensor) -> Tensor:
        return self.bottleneck.encode(self.features(x))

    def decode(self, z: Tensor) -> Tensor:
        # The decoder works at the padded size and leaves the padding out of its
        # last two convs (static sizes: the padding is a build-time constant).
        return torch.sigmoid(self.decoder(self.bottleneck.decode(z), crop=self._pads))

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))


def _conv_ae(cfg: ConvAEConfig) -> ConvAutoencoder:
    return ConvAutoencoder(
        in_channels=cfg.in_channels,
        image_size=cfg.image_size,
        latent_dim=cfg.latent_dim,
        base_channels=cfg.base_channels,
        depth=cfg.depth,
    )


@register_net(
    NetSpec(
        name="conv_ae",
        task=Task.RECONSTRUCT,
        config_cls=ConvAEConfig,
        has_latent=True,
        description="Convolutional autoencoder with a vector code",
    )
)
def conv_ae(cfg: ConvAEConfig | None = None, /, **overrides: Any) -> ConvAutoencoder:
    """A convolutional autoencoder from ``cfg`` (defaults when None), e.g. ``conv_ae(latent_dim=8)``."""
    return _conv_ae(replace(cfg or ConvAEConfig(), **overrides))
