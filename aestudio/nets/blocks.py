"""Building blocks shared by the families: conv blocks, the shared encoder, decoders, helpers.

The one encoder class, :class:`ConvEncoder`, is used by ``conv_ae``, ``sparse_ae``,
``contractive_ae``, ``vae`` and ``unet`` under the attribute name ``encoder_blocks``,
so its parameter names (``encoder_blocks.stages.<i>...``) are identical across
families and a U-Net can start from a trained autoencoder's encoder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

log = logging.getLogger(__name__)


def is_exporting() -> bool:
    """True while tracing / exporting, when Python-side shape checks must not run.

    Input checks that read shapes would be baked into a traced graph as
    constants (TorchScript) or turned into shape guards (torch.export) that
    break dynamic axes, so they are skipped during export; the exported model
    relies on the predictor's padding instead.
    """
    return bool(
        torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_compiling()
    )


def stage_channels(base_channels: int, depth: int) -> tuple[int, ...]:
    """Channels of the ``depth + 1`` encoder stages: doubling per stage, U-Net style."""
    return tuple(base_channels * 2**i for i in range(depth + 1))


def fit_depth(image_size: int, depth: int, *, min_side: int = 2) -> int:
    """The largest depth <= ``depth`` that leaves the bottom map at least ``min_side`` wide.

    Fixed-size nets pad the input up to a multiple of ``2**depth``; on tiny
    images (8x8 digits) the configured depth would shrink the map to 1x1 or
    below, so the depth is reduced instead (8x8 at depth 3 -> depth 2, 2x2 bottom).
    """
    fitted = depth
    while fitted > 0 and padded_size(image_size, 2**fitted) // 2**fitted < min_side:
        fitted -= 1
    if fitted != depth:
        log.info(
            "depth %d does not fit %dx%d images; using depth %d",
            depth,
            image_size,
            image_size,
            fitted,
        )
    return fitted


def padded_size(size: int, multiple: int) -> int:
    return -(-size // multiple) * multiple


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Zero-pad H and W up to a multiple of ``multiple`` (centred).

    Returns the padded tensor and the ``(left, right, top, bottom)`` pads, so
    :func:`crop_padding` can undo it. Meant for eager code (training, predictors):
    the amounts depend on the input's shape.
    """
    h, w = x.shape[-2:]
    dh, dw = padded_size(h, multiple) - h, padded_size(w, multiple) - w
    pads = (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2)
    if dh == 0 and dw == 0:
        return x, pads
    return F.pad(x, pads), pads


def crop_padding(x: Tensor, pads: tuple[int, int, int, int]) -> Tensor:
    left, right, top, bottom = pads
    h, w = x.shape[-2:]
    return x[..., top : h - bottom, left : w - right]


class ConvBlock(nn.Sequential):
    """conv3x3 -> BatchNorm -> ReLU; size-preserving.

    BatchNorm rather than GroupNorm: it folds into the convolution at export,
    which keeps the ONNX graphs small and fast, and every built-in batch is >= 2.
    """

    def __init__(self, in_channels: int, out_channels: int, *, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class DoubleConv(nn.Sequential):
    """Two :class:`ConvBlock`s, the U-Net unit."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            ConvBlock(in_channels, out_channels), ConvBlock(out_channels, out_channels)
        )


class EncoderStage(nn.Module):
    """Optional 2x max-pool, then a :class:`DoubleConv`."""

    def __init__(self, in_channels: int, out_channels: int, *, downsample: bool) -> None:
        super().__init__()
        # Max-pool has no parameters, so stage names and shapes depend only on
        # channels: what lets weights move between families.
        self.pool = nn.MaxPool2d(2) if downsample else nn.Identity()
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.pool(x))


class ConvEncoder(nn.Module):
    """The shared convolutional encoder: stage 0 at full resolution, then one 2x
    downsampling stage per entry of ``channels[1:]``.

    ``forward`` returns every stage's features (fine to coarse), which the
    U-Net uses as skips and the autoencoders reduce to the last one.
    """

    def __init__(self, in_channels: int, channels: Sequence[int]) -> None:
        super().__init__()
        if not channels:
            raise ValueError("ConvEncoder needs at least one stage")
        self.channels = tuple(channels)
        stages = []
        previous = in_channels
        for i, c in enumerate(self.channels):
            stages.append(EncoderStage(previous, c, downsample=i > 0))
            previous = c
        self.stages = nn.ModuleList(stages)

    @property
    def reduction(self) -> int:
        """How much the last stage is smaller than the input, per side."""
        return 2 ** (len(self.channels) - 1)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class UpStage(nn.Module):
    """2x ConvTranspose upsampling followed by a :class:`ConvBlock` (no skip).

    ConvTranspose rather than Upsample+Conv: it runs ~2x faster in ONNX Runtime
    (DESIGN.md), which matters for slider-driven decoding. Kernel 2 with stride 2
    gives every output pixel exactly one tap (even overlap), so it cannot
    produce the uneven-overlap checkerboard of kernel-3 stride-2 layers; the
    3x3 conv after it smooths the 2x2 blocks.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.conv = ConvBlock(out_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.up(x))


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder` without skips: ``channels`` fine to coarse,
    input at the coarsest, output ``out_channels`` logits at full resolution."""

    def __init__(self, channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        coarse_to_fine = list(reversed(tuple(channels)))
        self.stages = nn.Sequential(
            *(
                UpStage(cin, cout)
                for cin, cout in zip(coarse_to_fine[:-1], coarse_to_fine[1:], strict=True)
            )
        )
        self.head = nn.Conv2d(coarse_to_fine[-1], out_channels, 3, padding=1)

    def forward(self, x: Tensor, crop: tuple[int, int, int, int] = (0, 0, 0, 0)) -> Tensor:
        """Logits, with ``crop = (left, right, top, bottom)`` pixels removed from the borders.

        The crop is paid for by not computing it: the full-resolution 3x3 convs
        (the last stage's and the head) each drop one pixel of zero padding per
        cropped side, which yields exactly the interior the padded convs would
        have produced there, with no ``Slice`` and less work (28x28 from a 32x32
        decoder: the head computes 784 pixels, not 1,024). What is left of a
        crop wider than 2 pixels is sliced off.
        """
        if not any(crop) or not len(self.stages):
            return _crop(self.head(self.stages(x)), crop)
        *early, last = self.stages
        for stage in early:
            x = stage(x)
        x = last.up(x)
        conv, norm, act = last.conv
        second = tuple(min(c, 1) for c in crop)  # eaten by the head
        first = tuple(min(c - b, 1) for c, b in zip(crop, second, strict=True))  # by the last stage's conv
        x = act(norm(_conv_eating(conv, x, first)))
        x = _conv_eating(self.head, x, second)
        rest = tuple(c - a - b for c, a, b in zip(crop, first, second, strict=True))
        return _crop(x, rest)


def _conv_eating(conv: nn.Conv2d, x: Tensor, eat: tuple[int, int, int, int]) -> Tensor:
    """``conv`` (3x3, padding 1) with ``eat[i]`` in {0, 1} fewer output pixels per side (left, right, top, bottom)."""
    pads = tuple(1 - e for e in eat)
    if len(set(pads)) == 1:
        return F.conv2d(x, conv.weight, conv.bias, padding=pads[0])
    return F.conv2d(F.pad(x, pads), conv.weight, conv.bias)


def _crop(x: Tensor, crop: tuple[int, int, int, int]) -> Tensor:
    left, right, top, bottom = crop
    if not any(crop):
        return x
    h, w = x.shape[-2:]
    return x[..., top : h - bottom, left : w - right]


class CodeBottleneck(nn.Module):
    """Fixed-size glue between a conv encoder and a vector code: flatten -> linear,
    and linear -> ReLU -> reshape on the way back."""

    def __init__(self, channels: int, side: int, code_values: int, latent_dim: int) -> None:
        super().__init__()
        self.shape = (channels, side, side)
        flat = channels * side * side
        self.to_code = nn.Linear(flat, code_values)
        self.from_code = nn.Sequential(nn.Linear(latent_dim, flat), nn.ReLU(inplace=True))

    def encode(self, features: Tensor) -> Tensor:
        return self.to_code(torch.flatten(features, 1))

    def decode(self, z: Tensor) -> Tensor:
        # unflatten (not view with batch read from z.shape) keeps the batch axis dynamic at export.
        return self.from_code(z).unflatten(1, self.shape)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
