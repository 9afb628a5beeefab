"""``unet``: the U-Net segmenter (skip connections, K-class logits), any size that is a multiple of 2**depth.

Its encoder is the shared :class:`~aestudio.nets.blocks.ConvEncoder` under
``encoder_blocks``, so :meth:`UNet.load_encoder_state` can start it from a
conv autoencoder trained on unlabelled images before fine-tuning on few masks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from aestudio.config import NetConfig, Task, help_text
from aestudio.nets.base import AutoencoderBase
from aestudio.nets.blocks import ConvEncoder, DoubleConv, is_exporting, stage_channels
from aestudio.nets.registry import NetSpec, register_net

log = logging.getLogger(__name__)

ENCODER_PREFIX = "encoder_blocks."


@dataclass(frozen=True)
class UNetConfig(NetConfig):
    num_classes: int = field(default=2, metadata=help_text('K output channels; 2 = background / foreground, the common case'))
    depth: int = field(default=3, metadata=help_text('2x downsamplings; inputs must be multiples of 2**depth (8), which predictors pad to'))
    base_channels: int = field(default=16, metadata=help_text('first-stage width, doubled per stage; as conv_ae so encoders transfer'))
    input_stride: int = field(default=1, metadata=help_text(
        '1 = full resolution; 2 = the U-Net works on the image averaged 2x2 and its logits are upsampled '
        'bilinearly (about 4x cheaper; no weights of its own, so checkpoints move between the two)'))

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this (NetSpec.size_multiple holds the default's)."""
        return 2**self.depth * self.input_stride


class UpSkipStage(nn.Module):
    """ConvTranspose 2x up, concatenate the skip, :class:`DoubleConv`.

    ConvTranspose (kernel 2, stride 2) rather than Upsample+Conv: ~2x faster in
    ONNX Runtime, and the even overlap plus the following 3x3 convs and skips
    leave no checkerboard in the masks.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.conv = DoubleConv(out_channels + skip_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNetDecoder(nn.Module):
    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__()
        fine_to_coarse = tuple(channels)
        self.stages = nn.ModuleList(
            UpSkipStage(fine_to_coarse[i + 1], fine_to_coarse[i], fine_to_coarse[i])
            for i in reversed(range(len(fine_to_coarse) - 1))
        )

    def forward(self, features: list[Tensor]) -> Tensor:
        x = features[-1]
        for stage, skip in zip(self.stages, reversed(features[:-1]), strict=True):
            x = stage(x, skip)
        return x


class UNet(AutoencoderBase):
    """``features = encoder_blocks(x); out = decoder(features); logits = head(out)``."""

    def __init__(
        self, *, in_channels: int, num_classes: int, depth: int, base_channels: int, input_stride: int = 1
    ) -> None:
        super().__init__()
        if num_classes < 1 or depth < 0 or base_channels < 1 or input_stride not in (1, 2):
            raise ValueError("unet needs num_classes >= 1, depth >= 0, base_channels >= 1 and input_stride 1 or 2")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.depth = depth
        self.input_stride = input_stride
        self.size_multiple = 2**depth * input_stride
        channels = stage_channels(base_channels, depth)
        self.encoder_blocks = ConvEncoder(in_channels, channels)
        self.decoder = UNetDecoder(channels)
        self.head = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x, "unet")
        if not is_exporting():
            h, w = x.shape[-2:]
            m = self.size_multiple
            if h % m or w % m:
                raise ValueError(
                    f"unet (depth {self.depth}) needs H and W that are multiples of {m}, got {h}x{w}; "
                    f"pad your image to a multiple of {m} (e.g. {-(-h // m) * m}x{-(-w // m) * m})"
                )
        if self.input_stride == 1:
            return self.head(self.decoder(self.encoder_blocks(x)))
        # Half resolution: objects of tens of pixels fill the receptive field, and a step costs a quarter.
        small = F.avg_pool2d(x, self.input_stride)
        logits = self.head(self.decoder(self.encoder_blocks(small)))
        return F.interpolate(logits, scale_factor=float(self.input_stride), mode="bilinear", align_corners=False)

    def load_encoder_state(self, state_dict: Mapping[str, Tensor]) -> int:
        """Copy the ``encoder_blocks.*`` tensors of another net's state dict whose shapes match.

        Tensors are matched per layer: a layer's tensors are copied together
        or not at all, so a BatchNorm's shape-free step counter never counts
        as a match on its own. Returns how many tensors were copied; raises
        ValueError naming the first mismatch when no layer matches.
        """
        own = self.state_dict()
        layers: dict[str, dict[str, Tensor]] = {}
        for name, tensor in state_dict.items():
            if name.startswith(ENCODER_PREFIX):
                layers.setdefault(name.rsplit(".", 1)[0], {})[name] = tensor
        copied: dict[str, Tensor] = {}
        mismatched: list[str] = []
        for tensors in layers.values():
            bad = [
                f"{name} {list(t.shape)} vs ours {list(own[name].shape) if name in own else 'absent'}"
                for name, t in tensors.items()
                if name not in own or own[name].shape != t.shape
            ]
            if bad:
                mismatched.extend(bad)
            else:
                copied.update(tensors)
        if not copied:
            detail = mismatched[0] if mismatched else f"the source has no {ENCODER_PREFIX}* tensors"
            raise ValueError(
                f"no encoder layer matches this unet (in_channels={self.in_channels}, "
                f"base_channels={self.encoder_blocks.channels[0]}, depth={self.depth}): {detail}; "
                "pre-train a conv_ae/sparse_ae/contractive_ae/vae with the same in_channels and base_channels"
            )
        with torch.no_grad():
            for name, tensor in copied.items():
                own[name].copy_(tensor)
        if mismatched:
            log.warning(
                "unet: copied %d encoder tensors, skipped %d whose shapes differ (first: %s)",
                len(copied),
                len(mismatched),
                mismatched[0],
            )
        return len(copied)


def _unet(cfg: UNetConfig) -> UNet:
    return UNet(
        in_channels=cfg.in_channels,
        num_classes=cfg.num_classes,
        depth=cfg.depth,
        base_channels=cfg.base_channels,
        input_stride=cfg.input_stride,
    )


def _unet_spec() -> NetSpec:
    depth = UNetConfig().depth
    return NetSpec(
        name="unet",
        task=Task.SEGMENT,
        config_cls=UNetConfig,
        has_latent=False,
        fully_convolutional=True,
        size_multiple=2**depth,
        description="U-Net segmenter with skip connections; K-class pixel logits",
    )


@register_net(_unet_spec())
def unet(cfg: UNetConfig | None = None, /, **overrides: Any) -> UNet:
    """A U-Net from ``cfg`` (defaults when None), e.g. ``unet(num_classes=4)``."""
    return _unet(replace(cfg or UNetConfig(), **overrides))
