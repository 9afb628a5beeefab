"""``denoising_ae``: a small residual, fully convolutional denoiser for images of any size.

A DnCNN-lite with dilations (in the spirit of IRCNN): it predicts the noise and
subtracts it from the input, then clamps to [0, 1]. No downsampling, so any
H x W >= 1 works without padding (``size_multiple`` 1) and photos of any size
go straight through (or through tiles, for bounded memory).

``unshuffle=2`` makes it FFDNet-style (Zhang et al. 2018): the image is
pixel-unshuffled to 4 channels at half size, the convs run there (4x fewer
positions, so a wider, deeper body and a 2x wider view for the same time), and
the predicted noise is pixel-shuffled back. Odd sides are padded by one pixel
(the edge pixel repeated) and cropped back, so any H x W works, one pixel wide too.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from torch import Tensor, nn
from torch.nn import functional as F

from aestudio.config import NetConfig, Task, help_text
from aestudio.nets.base import AutoencoderBase
from aestudio.nets.blocks import ConvBlock
from aestudio.nets.registry import NetSpec, register_net


@dataclass(frozen=True)
class DenoisingAEConfig(NetConfig):
    channels: int = field(default=32, metadata=help_text('feature width; 32 keeps a 28x28 epoch at a few seconds on 2 CPU cores'))
    dilations: tuple[int, ...] = field(default=( 1, 2, 3, 2, 1, ), metadata=help_text('one 3x3 conv per entry; dilation gives the whole net a 23x23 view from 7 layers'))
    unshuffle: int = field(default=1, metadata=help_text('1: full resolution; 2: FFDNet-style, the convs run on 4 channels at half size (same time, 4x the work per pixel)'))


class DenoisingAE(AutoencoderBase):
    """conv+ReLU -> [conv(dilated)+BN+ReLU] x len(dilations) -> conv = noise; output = clamp(x - noise, 0, 1).

    Residual: a clean image is the identity plus a small correction, which a
    small net learns far faster than reproducing the whole image.
    """

    def __init__(self, *, in_channels: int, channels: int, dilations: tuple[int, ...],
                 unshuffle: int = 1) -> None:
        super().__init__()
        if channels < 1 or not dilations or min(dilations) < 1:
            raise ValueError("denoising_ae needs channels >= 1 and at least one dilation, all >= 1")
        if unshuffle not in (1, 2):
            raise ValueError(f"denoising_ae: unshuffle must be 1 or 2, got {unshuffle}")
        self.in_channels = in_channels
        self.unshuffle = unshuffle
        inner = in_channels * unshuffle * unshuffle  # channels the convs see
        self.head = nn.Sequential(
            nn.Conv2d(inner, channels, 3, padding=1), nn.ReLU(inplace=True)
        )
        self.body = nn.Sequential(*(ConvBlock(channels, channels, dilation=d) for d in dilations))
        self.noise = nn.Conv2d(channels, inner, 3, padding=1)
        if unshuffle > 1:
            # He init (as DnCNN and FFDNet): with torch's default (a third of He's variance) a
            # 13-layer body stayed at the noisy input's PSNR for 500 Adam steps at lr 1e-3 (and at
            # 3e-4 it crept up); with He init it learns from the first steps. The full-resolution
            # net keeps torch's default, so the old photo-denoiser's recipe rebuilds the same weights.
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        # Start as the identity: the first steps then only learn the correction.
        nn.init.zeros_(self.noise.weight)
        nn.init.zeros_(self.noise.bias)

    def predict_noise(self, x: Tensor) -> Tensor:
        if self.unshuffle == 1:
            return self.noise(self.body(self.head(x)))
        h, w = x.shape[-2], x.shape[-1]
        # Pad odd sides by one pixel (amounts from the shape, so they stay dynamic in an exported
        # graph), run at half size, shuffle back and crop to the input's size. Replicate, not
        # reflect: a reflect pad needs two pixels, and ONNX Runtime failed on a 1 x N image
        # (`aestudio denoise` on a folder with a one-pixel-wide image). Training crops are even.
        padded = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
        inner = F.pixel_unshuffle(padded, 2)
        noise = F.pixel_shuffle(self.noise(self.body(self.head(inner))), 2)
        return noise[..., :h, :w]

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x, "denoising_ae")
        clean = x - self.predict_noise(x)
        if self.training:
            # Straight-through clamp: values are clamped, but gradients pass as if
            # not, so a pixel pushed past 0 or 1 the wrong way can still recover
            # (a plain clamp gives it zero gradient for good).
            return clean + (clean.clamp(0.0, 1.0) - clean).detach()
        return clean.clamp(0.0, 1.0)


def _denoising_ae(cfg: DenoisingAEConfig) -> DenoisingAE:
    return DenoisingAE(
        in_channels=cfg.in_channels, channels=cfg.channels, dilations=tuple(cfg.dilations),
        unshuffle=cfg.unshuffle,
    )


@register_net(
    NetSpec(
        name="denoising_ae",
        task=Task.DENOISE,
        config_cls=DenoisingAEConfig,
        has_latent=False,
        fully_convolutional=True,
        size_multiple=1,
        description="Residual fully convolutional denoiser (DnCNN-lite), any image size",
    )
)
def denoising_ae(cfg: DenoisingAEConfig | None = None, /, **overrides: Any) -> DenoisingAE:
    """A denoiser from ``cfg`` (defaults when None), e.g. ``denoising_ae(channels=48)``."""
    return _denoising_ae(replace(cfg or DenoisingAEConfig(), **overrides))
