"""Types and helpers shared by every dataset spec: the bundle, the errors, splits, tensor geometry.

`DataBundle` is what :func:`aestudio.data.specs.open_data` returns and what
training and the GUI consume. Helpers here keep every spec's items the same:
``(image float32 tensor [C, H, W] in [0, 1], target)``.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from aestudio.data.classes import UNLABELLED  # noqa: F401 - re-exported: 255 = unlabelled, one home
from aestudio.errors import AestudioError

# BT.601 luminance, the same weights as aestudio.data.io and Pillow.
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)

NO_LABEL = -1  # target of unlabelled images


class DataError(AestudioError, ValueError):
    """A data spec cannot be opened; the message names the spec or path and the fix."""


class DataKind(str, enum.Enum):
    """What the targets of a bundle are."""

    IMAGES = "images"  # target is NO_LABEL (-1)
    LABELS = "labels"  # target is an int class label
    SEGMENTATION = "segmentation"  # target is an int64 [H, W] mask tensor


class BadFile(NamedTuple):
    """A file skipped by a lazy dataset, and why (shown to the user at the end of training)."""

    path: str
    reason: str


@dataclass(frozen=True)
class Factors:
    """Ground-truth generative factors of a procedural dataset, row-aligned with its items.

    ``train[i]`` describes ``bundle.train[i]``; used for latent-space analysis
    (does a latent slider follow rotation?).
    """

    names: tuple[str, ...]
    train: np.ndarray  # float32 [len(train), len(names)]
    val: np.ndarray  # float32 [len(val), len(names)]


@dataclass
class DataBundle:
    """A train and a validation dataset plus what the UI and the engine need to know about them."""

    spec: str  # the spec string it was opened from, e.g. "folder:/photos"
    train: Dataset
    val: Dataset
    channels: int  # C of every image item: 1 or 3
    image_size: int | None  # side of the square items; None if sizes vary
    kind: DataKind
    num_classes: int = 0  # labels: number of labels; segmentation: K; images: 0
    class_names: list[str] = field(default_factory=list)  # segmentation classes, index = mask value
    class_colors: list[tuple[int, int, int]] = field(
        default_factory=list
    )  # RGB per segmentation class
    bad_files: list[BadFile] = field(default_factory=list)  # grows as lazy folders meet bad files
    label_names: list[str] = field(default_factory=list)  # names of int labels (kind LABELS)
    factors: Factors | None = None  # procedural datasets only
    notes: str = ""  # extra one-liner for describe(), e.g. "val = official test set"

    def describe(self) -> str:
        """One line, e.g. ``digits: 1437 train / 360 val, 1x8x8, 10 classes``."""
        size = f"{self.image_size}x{self.image_size}" if self.image_size else "HxW"
        parts = [
            f"{self.spec}: {len(self.train)} train / {len(self.val)} val",
            f"{self.channels}x{size}",
        ]  # type: ignore[arg-type]
        if self.kind is DataKind.LABELS:
            parts.append(f"{self.num_classes} classes")
        elif self.kind is DataKind.SEGMENTATION:
            parts.append(f"{self.num_classes} mask classes")
        else:
            parts.append("unlabelled")
        if self.bad_files:
            parts.append(f"{len(self.bad_files)} bad files skipped")
        if self.notes:
            parts.append(self.notes)
        return ", ".join(parts)


# ------------------------------------------------------------------ splits


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random train/val split of ``range(n)``; both sorted."""
    check_val_fraction(val_fraction)
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(math.ceil(n * val_fraction - 1e-9))  # ceil, as scikit-learn's train_test_split
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def check_val_fraction(val_fraction: float) -> None:
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction must be within [0, 1), got {val_fraction}; e.g. 0.2")


def total_for_train(train_count: int, val_fraction: float) -> int:
    """How many procedural items to make so that ``train_count`` remain for training."""
    return int(math.ceil(train_count / (1.0 - val_fraction)))


def stable_fraction(key: str) -> float:
    """A number in [0, 1) from ``key`` that never changes between runs or machines.

    (Python's hash() is salted per process, so it cannot split data reproducibly.)
    """
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def hash_split(keys: Sequence[str], val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Split by a stable hash of each key (a relative path).

    A file stays on its side when others are added or removed, and the
    validation set is the same for every seed, so runs stay comparable.
    Tiny sets that hash all to one side still get one item on the other.
    """
    check_val_fraction(val_fraction)
    fractions = np.array([stable_fraction(k) for k in keys], dtype=np.float64)
    is_val = fractions < val_fraction
    if val_fraction > 0 and len(keys) >= 2:
        if not is_val.any():
            is_val[int(np.argmin(fractions))] = True
        elif is_val.all():
            is_val[int(np.argmax(fractions))] = False
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


# ------------------------------------------------------------------ tensors


def adapt_channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    """[C, H, W] with C 1 or 3 -> ``channels`` (luminance for colour to grey)."""
    if image.shape[0] == channels:
        return image
    if channels == 1:
        return (image * _LUMA.to(image.dtype)).sum(dim=0, keepdim=True)
    return image.expand(3, -1, -1).contiguous()


def resize_square(image: torch.Tensor, size: int, *, mask: bool = False) -> torch.Tensor:
    """Resize [C, H, W] to [C, size, size] directly (antialiased; nearest for masks)."""
    if image.shape[-2:] == (size, size):
        return image
    if mask:
        return TF.resize(image, [size, size], interpolation=TF.InterpolationMode.NEAREST_EXACT)
    return TF.resize(image, [size, size], antialias=True).clamp_(0.0, 1.0)


def resize_short_side(image: torch.Tensor, size: int, *, mask: bool = False) -> torch.Tensor:
    """Scale [C, H, W] so its shorter side is ``size``, keeping the aspect ratio."""
    height, width = image.shape[-2:]
    if min(height, width) == size:
        return image
    scale = size / min(height, width)
    new = [max(size, round(height * scale)), max(size, round(width * scale))]
    if mask:
        return TF.resize(image, new, interpolation=TF.InterpolationMode.NEAREST_EXACT)
    return TF.resize(image, new, antialias=True).clamp_(0.0, 1.0)


def validate_channels(channels: int | None, spec: str) -> None:
    if channels not in (None, 1, 3):
        raise DataError(f"{spec}: channels must be 1 or 3, got {channels!r}")


def validate_size(image_size: int | None, spec: str, minimum: int = 4) -> None:
    if image_size is not None and (int(image_size) != image_size or image_size < minimum):
        raise DataError(f"{spec}: image_size must be an integer >= {minimum}, got {image_size!r}")


class ArrayDataset(Dataset):
    """Items from in-memory uint8 or float images ``[N, C, H, W]`` and int labels.

    Resizing and channel conversion happen per item so opening stays cheap.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | np.ndarray | None,
        *,
        image_size: int | None = None,
        channels: int | None = None,
        scale: float = 255.0,
    ) -> None:
        self.images = images
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.int64)
        self.image_size = image_size
        self.channels = channels
        self.scale = scale  # the value that means white in `images` (255 for uint8, 16 for digits)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        image = self.images[index].to(torch.float32) / self.scale
        if self.image_size is not None:
            image = resize_square(image, self.image_size)
        if self.channels is not None:
            image = adapt_channels(image, self.channels)
        label = NO_LABEL if self.labels is None else int(self.labels[index])
        return image.clamp_(0.0, 1.0), label
