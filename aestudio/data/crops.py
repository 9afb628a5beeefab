"""Training fully convolutional segmentation nets at the images' own scale.

Resizing every image to one small square (the old default: 64 x 64 for
``pairs:``) teaches a net objects at a size it never meets when it is later
run on the full image. Here nothing is resized:

* training items are random crops of at most ``crop`` x ``crop`` pixels,
  flipped at random; an image smaller than the crop is taken whole;
* a crop is centred on a random *labelled* pixel, so sparse labels (a few
  brush strokes, the rest 255) are seen in almost every crop;
* an epoch visits each image about ``area / crop**2`` times (at least once),
  so large images are covered instead of yielding one crop per epoch;
* validation items are whole images (a fixed crop of at most ``val_max``
  a side when huge);
* with ``grow`` (sparse strokes), each training crop's labels are grown to
  the crop's regions of uniform colour (:mod:`aestudio.data.regions`), so
  the net also learns from the unpainted pixels near the strokes;
* :func:`pad_collate` pads the items of a batch to one size, a multiple of the
  net's ``multiple``; padded mask pixels are :data:`UNLABELLED`, so they count
  neither in the loss nor in the metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from aestudio.data.base import UNLABELLED, BadFile, adapt_channels
from aestudio.data.folders import LazyFiles, read_pair

DEFAULT_CROP = 128  # measured (issue 13): 128-pixel crops at batch 16 beat 64 x 64 resizes at batch 64 threefold
DEFAULT_VAL_MAX = 512  # whole validation images up to this side; larger ones give a fixed crop
MAX_REPEATS = 64  # an image of 64 crops' area or more is visited 64 times per epoch


@dataclass(frozen=True)
class NativeScale:
    """How a ``pairs:`` set is cut for a fully convolutional net (see the module docstring)."""

    crop: int = DEFAULT_CROP  # side of a training crop, before padding to `multiple`
    multiple: int = 8  # the net's size multiple (2**depth for a U-Net)
    flips: bool = True  # random horizontal and vertical flips of training crops
    val_max: int = DEFAULT_VAL_MAX  # validation images larger than this get a fixed crop of this side
    grow: bool = False  # training crops: strokes grown to the crop's regions (aestudio.data.regions)

    def to_dict(self) -> dict[str, Any]:
        return {"crop": self.crop, "multiple": self.multiple, "flips": self.flips, "val_max": self.val_max,
                "grow": self.grow}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NativeScale:
        return cls(int(d.get("crop", DEFAULT_CROP)), int(d.get("multiple", 8)), bool(d.get("flips", True)),
                   int(d.get("val_max", DEFAULT_VAL_MAX)), bool(d.get("grow", False)))


def repeats_for(height: int, width: int, crop: int) -> int:
    """How many crops per epoch cover an image about once."""
    return int(min(MAX_REPEATS, max(1, math.floor(height * width / float(crop * crop) + 0.5))))


def crop_window(mask: np.ndarray | torch.Tensor, crop: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a crop of at most ``crop`` a side, around a random labelled pixel."""
    height, width = int(mask.shape[-2]), int(mask.shape[-1])
    ch, cw = min(crop, height), min(crop, width)
    m = mask.numpy() if isinstance(mask, torch.Tensor) else mask
    labelled = np.flatnonzero(m.reshape(-1) != UNLABELLED) if m.size else np.empty(0, np.int64)
    if labelled.size and labelled.size < m.size:
        # Sparse labels: centre on a labelled pixel (jittered), clamped to the image.
        y, x = divmod(int(labelled[rng.integers(labelled.size)]), width)
        top = int(np.clip(y - rng.integers(ch), 0, height - ch))
        left = int(np.clip(x - rng.integers(cw), 0, width - cw))
    else:
        top = int(rng.integers(0, height - ch + 1))
        left = int(rng.integers(0, width - cw + 1))
    return top, left, ch, cw


def random_crop_flip(image: torch.Tensor, mask: torch.Tensor, crop: int, rng: np.random.Generator,
                     flips: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A training crop of image [C, H, W] and mask [H, W] (same window, same flips)."""
    top, left, ch, cw = crop_window(mask, crop, rng)
    image = image[:, top:top + ch, left:left + cw]
    mask = mask[top:top + ch, left:left + cw]
    if flips:
        if rng.random() < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
        if rng.random() < 0.5:
            image, mask = image.flip(-2), mask.flip(-2)
    return image.contiguous(), mask.contiguous()


def pad_collate(multiple: int) -> Callable[[Sequence[tuple[torch.Tensor, torch.Tensor]]], tuple[torch.Tensor, torch.Tensor]]:
    """A DataLoader ``collate_fn``: pad items to the batch's largest size, rounded up to ``multiple``.

    Images are padded with edge values (no false dark border for the net to learn),
    masks with :data:`UNLABELLED` so the padding is ignored.
    """
    multiple = max(1, int(multiple))

    def collate(items: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        height = max(int(x.shape[-2]) for x, _ in items)
        width = max(int(x.shape[-1]) for x, _ in items)
        height = -(-height // multiple) * multiple
        width = -(-width // multiple) * multiple
        images, masks = [], []
        for x, m in items:
            dh, dw = height - x.shape[-2], width - x.shape[-1]
            if dh or dw:
                mode = "replicate" if x.shape[-2] > 1 and x.shape[-1] > 1 else "constant"
                x = F.pad(x[None], (0, dw, 0, dh), mode=mode)[0]
                m = F.pad(m, (0, dw, 0, dh), value=UNLABELLED)
            images.append(x)
            masks.append(m)
        return torch.stack(images), torch.stack(masks).to(torch.int64)

    return collate


class NativePairsDataset(LazyFiles):
    """Images with index masks at their own scale: (image [C, h, w], int64 mask [h, w]), sizes vary.

    ``train=True``: random labelled-centred crops with flips, each image repeated
    :func:`repeats_for` times per epoch. ``train=False``: the whole image, or a
    fixed crop of ``val_max`` when larger. Use with ``collate_fn`` (set here).
    """

    def __init__(self, pairs: Sequence[tuple[Path, Path]], sizes: Sequence[tuple[int, int]], *, plan: NativeScale,
                 channels: int, train: bool, seed: int, bad_files: list[BadFile], spec: str) -> None:
        super().__init__([image for image, _ in pairs], bad_files, spec)
        self.masks = [mask for _, mask in pairs]
        self.plan = plan
        self.channels = channels
        self.train = train
        self.seed = seed
        counts = [repeats_for(h, w, plan.crop) if train else 1 for h, w in sizes]
        self.index = np.repeat(np.arange(len(self.paths)), counts)
        self.collate_fn = pad_collate(plan.multiple)
        # Metrics run image by image (batch 1): padding a batch to its largest image would
        # change what the net sees at the borders of the smaller ones.
        self.varying_sizes = True
        self._pairs = list(pairs)
        self._sizes = list(sizes)

    def whole_images(self) -> NativePairsDataset:
        """The same pairs as whole images (no crops, no repeats): for evaluation."""
        return NativePairsDataset(self._pairs, self._sizes, plan=self.plan, channels=self.channels, train=False,
                                  seed=self.seed, bad_files=self.bad_files, spec=self.spec)

    def __len__(self) -> int:
        return int(len(self.index))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        return super().__getitem__(int(self.index[int(index) % len(self.index)]))

    def _load(self, index: int) -> tuple[torch.Tensor, Any]:
        array, mask = read_pair(self.paths[index], self.masks[index], self.channels)
        image = adapt_channels(torch.from_numpy(array).permute(2, 0, 1), self.channels)
        mask_t = torch.from_numpy(mask)
        if self.train:
            # torch's RNG (seeded by the training loop, per DataLoader worker) drives numpy's here.
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
            image, mask_t = random_crop_flip(image, mask_t, self.plan.crop, rng, self.plan.flips)
            if self.plan.grow and bool((mask_t == UNLABELLED).any()):
                from aestudio.data.regions import grow, segments

                mask_t = torch.from_numpy(grow(mask_t.numpy(), segments(image.permute(1, 2, 0).numpy())))
        else:
            h, w = mask.shape
            side = self.plan.val_max
            if h > side or w > side:
                rng = np.random.default_rng(self.seed * 1_000_003 + index)
                top = int(rng.integers(0, max(1, h - side + 1)))
                left = int(rng.integers(0, max(1, w - side + 1)))
                image = image[:, top:top + side, left:left + side]
                mask_t = mask_t[top:top + side, left:left + side]
        return image.contiguous(), mask_t.to(torch.int64).contiguous()
