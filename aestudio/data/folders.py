"""Lazy datasets over the user's files: ``folder:DIR`` (images) and ``pairs:IMAGES,MASKS``.

Only paths are kept in memory; every item is decoded in ``__getitem__``, so a
folder larger than memory still trains. A file that fails to decode is
skipped: the item is replaced by the next good one, and the file is recorded
once in the shared ``bad_files`` list (the same list object as
``DataBundle.bad_files``). With DataLoader workers (``num_workers > 0``) each
worker process records into its own copy; the default of 0 workers reports
everything.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from aestudio.data.base import NO_LABEL, BadFile, DataError, adapt_channels, resize_short_side
from aestudio.data.io import ImageLoadError, probe_image, read_mask
from aestudio.data.levels import read_stretched, sample_bits

log = logging.getLogger(__name__)


class Geometry(enum.Enum):
    """How an image of any size becomes a square item of side S."""

    RESIZE = "resize"  # shorter side to S, then the centre S x S (aspect ratio kept)
    RANDOM_CROP = "random-crop"  # a random S x S patch per access (train patches)
    FIXED_CROP = "fixed-crop"  # one S x S patch per item, the same every epoch (val patches)


def _crop_origin(
    height: int, width: int, size: int, geometry: Geometry, key: int
) -> tuple[int, int]:
    if geometry is Geometry.RANDOM_CROP:
        # torch's RNG: seeded by the training loop and per DataLoader worker, like torchvision's RandomCrop.
        top = int(torch.randint(0, height - size + 1, ()).item())
        left = int(torch.randint(0, width - size + 1, ()).item())
        return top, left
    if geometry is Geometry.FIXED_CROP:
        rng = np.random.default_rng(key)
        return int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
    return (height - size) // 2, (width - size) // 2


def shape_item(
    image: torch.Tensor, size: int, geometry: Geometry, key: int, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Apply ``geometry`` to image [C, H, W] and (optionally) its mask [H, W] identically.

    Images smaller than S are first upscaled so the shorter side is S.
    """
    height, width = image.shape[-2:]
    if geometry is Geometry.RESIZE or min(height, width) < size:
        image = resize_short_side(image, size)
        if mask is not None:
            mask = resize_short_side(mask[None], size, mask=True)[0]
    height, width = image.shape[-2:]
    top, left = _crop_origin(height, width, size, geometry, key)
    image = image[:, top : top + size, left : left + size]
    if mask is not None:
        mask = mask[top : top + size, left : left + size]
    return image.contiguous(), None if mask is None else mask.contiguous()


_CHANNEL_PROBE_FILES = 8  # folder colour detection looks at this many files


def guess_channels(paths: Sequence[Path]) -> int:
    """3 if any of the first few readable files is colour, else 1 (header only, no decoding)."""
    for path in paths[:_CHANNEL_PROBE_FILES]:
        try:
            if probe_image(path).channels == 3:
                return 3
        except ValueError:
            continue  # a bad file; the dataset will skip and report it
    return 1


STRETCH_NOTE = "16-bit images stretched by their own min/max to the full range"


def levels_note(paths: Sequence[Path]) -> str:
    """:data:`STRETCH_NOTE` when one of the first few readable files is 16-bit (header only), else ""
    (said when a run starts: such images are read at their own range, :mod:`aestudio.data.levels`)."""
    for path in paths[:_CHANNEL_PROBE_FILES]:
        try:
            if sample_bits(path) == 16:
                return STRETCH_NOTE
        except ValueError:
            continue  # a bad file; the dataset will skip and report it
    return ""


class LazyFiles(Dataset):
    """Shared skip-and-record logic: subclasses implement ``_load(i)``."""

    def __init__(self, paths: Sequence[Path], bad_files: list[BadFile], spec: str) -> None:
        self.paths = list(paths)
        self.bad_files = bad_files
        self.spec = spec
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def _load(self, index: int) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        n = len(self.paths)
        index = int(index) % n
        for step in range(n):
            i = (index + step) % n
            if i in self._bad:
                continue
            try:
                return self._load(i)
            except (ImageLoadError, OSError, ValueError) as exc:
                self._record(i, exc)
        raise DataError(
            f"{self.spec}: none of the {n} files could be read (first: {self.bad_files[0].reason if self.bad_files else '?'}); "
            "check the folder holds PNG, JPEG, TIFF or BMP images"
        )

    def _record(self, i: int, exc: Exception) -> None:
        self._bad.add(i)
        reason = str(exc)
        self.bad_files.append(BadFile(str(self.paths[i]), reason))
        log.warning("skipping bad file %s", reason)


class FolderDataset(LazyFiles):
    """Images from files, unlabelled: (image [C, S, S], -1)."""

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        size: int,
        channels: int,
        geometry: Geometry,
        seed: int,
        bad_files: list[BadFile],
        spec: str,
    ) -> None:
        super().__init__(paths, bad_files, spec)
        self.size = size
        self.channels = channels
        self.geometry = geometry
        self.seed = seed

    def _load(self, index: int) -> tuple[torch.Tensor, Any]:
        array = read_stretched(self.paths[index], channels=self.channels)  # 16-bit: its own range
        image = torch.from_numpy(array).permute(2, 0, 1)
        image, _ = shape_item(image, self.size, self.geometry, key=self.seed * 1_000_003 + index)
        return adapt_channels(image, self.channels), NO_LABEL



def read_pair(image_path: Path, mask_path: Path, channels: int | None) -> tuple[np.ndarray, np.ndarray]:
    """An image (H, W, C), a 16-bit one stretched by its own range (:mod:`aestudio.data.levels`), and
    its index mask (H, W), refused by name when their sizes differ."""
    array = read_stretched(image_path, channels=channels)
    mask = read_mask(mask_path)
    if mask.shape != array.shape[:2]:
        raise ImageLoadError(
            f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {image_path.name} "
            f"is {array.shape[1]}x{array.shape[0]}; masks must match their images pixel for pixel"
        )
    return array, mask


class PairsDataset(LazyFiles):
    """Images with index masks: (image [C, S, S], int64 mask [S, S])."""

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        *,
        size: int,
        channels: int,
        geometry: Geometry,
        seed: int,
        bad_files: list[BadFile],
        spec: str,
    ) -> None:
        super().__init__([image for image, _ in pairs], bad_files, spec)
        self.masks = [mask for _, mask in pairs]
        self.size = size
        self.channels = channels
        self.geometry = geometry
        self.seed = seed

    def _load(self, index: int) -> tuple[torch.Tensor, Any]:
        array, mask = read_pair(self.paths[index], self.masks[index], self.channels)
        image = torch.from_numpy(array).permute(2, 0, 1)
        image, mask_t = shape_item(
            image,
            self.size,
            self.geometry,
            key=self.seed * 1_000_003 + index,
            mask=torch.from_numpy(mask),
        )
        assert mask_t is not None
        return adapt_channels(image, self.channels), mask_t.to(torch.int64)


# ------------------------------------------------------------------ pairing

_MASK_SUFFIXES = (
    "_mask",
    "-mask",
    "_masks",
    "_label",
    "-label",
    "_labels",
    "_gt",
    "-gt",
    "_seg",
    "_annotation",
)


def mask_key(stem: str) -> str:
    """The image stem a mask file belongs to: 'cat_01_mask' -> 'cat_01' (common naming schemes)."""
    lower = stem.lower()
    for suffix in _MASK_SUFFIXES:
        if lower.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def match_pairs(
    images: Sequence[Path], masks: Sequence[Path], spec: str
) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """Match masks to images by file stem; return (pairs, unmatched images)."""
    by_stem: dict[str, Path] = {}
    for mask in masks:
        key = mask_key(mask.stem)
        if key in by_stem:
            log.warning(
                "%s: masks %s and %s share the stem %r; using the first",
                spec,
                by_stem[key],
                mask,
                key,
            )
            continue
        by_stem[key] = mask
    pairs: list[tuple[Path, Path]] = []
    unmatched: list[Path] = []
    for image in images:
        mask = by_stem.get(image.stem)
        if mask is None:
            unmatched.append(image)
        else:
            pairs.append((image, mask))
    return pairs, unmatched
