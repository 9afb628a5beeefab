"""Noisy-only image folders for self-supervised denoising: crops at full resolution.

A blind-spot or neighbour objective needs the noise exactly as the camera or
microscope left it: resizing would average neighbouring pixels and correlate
their noise, which a blind-spot net then learns to copy. So nothing is resized:

* training items are random ``crop`` x ``crop`` windows of the images, flipped
  and rotated by multiples of 90 degrees at random (the noise model does not
  care, and a few images go further); each image is visited about
  ``area / crop**2`` times per epoch (``aestudio.data.crops.repeats_for``), and
  an epoch has at least :data:`MIN_EPOCH_CROPS` crops;
* every image is used for training: with no clean copy there is nothing to
  hold out, and the images to denoise are the data. Validation items are a few
  fixed crops of each image (the self-supervised loss with fixed masks picks
  the best checkpoint);
* images of any size, grey or colour, 8- or 16-bit PNG/TIFF (read at full
  precision as float32); a folder mixing grey and colour is read as colour;
  a 16-bit image is stretched by its own minimum and maximum to [0, 1]
  (:mod:`aestudio.data.levels`: a 12-bit camera's 0-4095 is not nearly black),
  as ``aestudio denoise`` and the Noise lab read it, so the net learns the noise
  it will meet;
* the crop shrinks to the shortest image side when an image is smaller than
  it (the data's ``notes`` say so, printed when training starts); below :data:`MIN_CROP` the folder is
  refused with the file named. Non-finite values in float TIFFs read as 0
  (``aestudio.data.io.read_image``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aestudio.data.base import NO_LABEL, BadFile, DataBundle, DataError, DataKind, adapt_channels
from aestudio.data.crops import repeats_for
from aestudio.data.folders import LazyFiles, guess_channels
from aestudio.data.io import iter_image_files, probe_image
from aestudio.data.levels import read_levelled, sample_bits

log = logging.getLogger(__name__)

DEFAULT_CROP = 64  # N2V's patch side; large enough for the denoiser's 23-pixel view, small enough for CPU batches
MIN_CROP = 16  # smaller windows hold too few neighbours per blind spot to learn from
VAL_CROPS = 4  # fixed validation crops per image
MIN_EPOCH_CROPS = 128  # a few small images still make an epoch of some steps (each epoch validates and checkpoints)


def random_crop(image: torch.Tensor, crop: int, generator: torch.Generator | None = None,
                augment: bool = True) -> torch.Tensor:
    """A random ``crop`` x ``crop`` window of image [C, H, W] (no resizing), randomly flipped and rotated.

    Draws from torch's RNG (seeded by the training loop) unless ``generator`` is given."""
    h, w = int(image.shape[-2]), int(image.shape[-1])
    if h < crop or w < crop:
        raise ValueError(f"a {w}x{h} image is smaller than the {crop}-pixel crop")
    top = int(torch.randint(0, h - crop + 1, (), generator=generator))
    left = int(torch.randint(0, w - crop + 1, (), generator=generator))
    out = image[:, top:top + crop, left:left + crop]
    if augment:
        k = int(torch.randint(0, 4, (), generator=generator))
        flip = bool(torch.randint(0, 2, (), generator=generator))
        out = torch.rot90(out, k, dims=(-2, -1))
        if flip:
            out = out.flip(-1)
    return out.contiguous()


class NoisyCrops(LazyFiles):
    """(crop [C, S, S] of a noisy image, -1): random crops (train) or fixed ones (validation)."""

    def __init__(self, paths: Sequence[Path], sizes: Sequence[tuple[int, int]], *, crop: int, channels: int,
                 train: bool, seed: int, bad_files: list[BadFile], spec: str) -> None:
        super().__init__(paths, bad_files, spec)
        self.crop = crop
        self.channels = channels
        self.train = train
        self.seed = seed
        counts = [repeats_for(h, w, crop) if train else min(VAL_CROPS, repeats_for(h, w, crop)) for h, w in sizes]
        if train and 0 < sum(counts) < MIN_EPOCH_CROPS:
            scale = -(-MIN_EPOCH_CROPS // sum(counts))  # visit every image proportionally more often
            counts = [c * scale for c in counts]
        self.index = np.repeat(np.arange(len(self.paths)), counts)
        self.slot = np.concatenate([np.arange(c) for c in counts]) if counts else np.zeros(0, np.int64)
        self._current = 0

    def __len__(self) -> int:
        return int(len(self.index))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        self._current = int(index) % len(self.index)
        return super().__getitem__(int(self.index[self._current]))

    def _load(self, index: int) -> tuple[torch.Tensor, Any]:
        array, _ = read_levelled(self.paths[index], channels=self.channels)  # 16-bit: its own range (see above)
        image = adapt_channels(torch.from_numpy(array).permute(2, 0, 1), self.channels)
        if self.train:
            return random_crop(image, self.crop), NO_LABEL
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index * 101 + int(self.slot[self._current]))
        return random_crop(image, self.crop, generator=g, augment=False), NO_LABEL


def open_noisy_folder(spec: str, root: Path, *, crop: int | None, channels: int | None, seed: int) -> DataBundle:
    """``folder:DIR`` as noisy-only crops (see the module docstring); raises :class:`DataError` naming the fix."""
    paths = list(iter_image_files(root))
    if not paths:
        raise DataError(f"{spec}: found no PNG, JPEG, TIFF or BMP images under {root}; add noisy images or pick another folder")
    want = int(crop or DEFAULT_CROP)
    if want < MIN_CROP:
        raise DataError(f"{spec}: a crop of {want} pixels is too small for self-supervised training; use --image-size {MIN_CROP} or more")
    bad: list[BadFile] = []
    good: list[Path] = []
    sizes: list[tuple[int, int]] = []
    deep = 0
    for path in paths:
        try:
            info = probe_image(path)
            deep += sample_bits(path) == 16
        except ValueError as exc:
            bad.append(BadFile(str(path), str(exc)))
            log.warning("skipping bad file %s", exc)
            continue
        good.append(path)
        sizes.append((info.height, info.width))
    if not good:
        raise DataError(f"{spec}: none of the {len(paths)} files could be read ({bad[0].reason})")
    smallest = int(np.argmin([min(s) for s in sizes]))
    side = min(sizes[smallest])
    notes = ""
    if side < want:
        h, w = sizes[smallest]
        if side < MIN_CROP:
            raise DataError(f"{good[smallest]}: {w}x{h} is too small for self-supervised training (crops need "
                            f"{MIN_CROP} pixels a side, and images are never resized); remove it from {root}")
        notes = f"crops of {side} px, not {want}: {good[smallest].name} is {w}x{h} (images are never resized)"
        log.info("%s: %s", spec, notes)
        want = side
    crop_side = want - want % 2  # even: Neighbor2Neighbor halves it
    out_channels = channels or guess_channels(good)
    common: dict[str, Any] = {"crop": crop_side, "channels": out_channels, "seed": seed, "bad_files": bad, "spec": spec}
    train = NoisyCrops(good, sizes, train=True, **common)
    val = NoisyCrops(good, sizes, train=False, **common)
    notes = notes or f"noisy-only, {crop_side} px crops at full resolution"
    if deep:
        notes += f"; {deep} 16-bit image(s) stretched by their own min/max to the full range"
    return DataBundle(spec=spec, train=train, val=val, channels=out_channels, image_size=crop_side,
                      kind=DataKind.IMAGES, bad_files=bad, notes=notes)
