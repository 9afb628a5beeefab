"""Data specs: one string (``digits``, ``folder:DIR``, ...) -> a :class:`DataBundle`.

The CLI and the GUI both open data only through :func:`open_data`; the menu
of built-in choices comes from :func:`builtin_specs`. Opening is cheap for
every spec (files are listed, not decoded; procedural items render on access).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from aestudio.data.base import (
    UNLABELLED,
    ArrayDataset,
    BadFile,
    DataBundle,
    DataError,
    DataKind,
    Factors,
    check_val_fraction,
    hash_split,
    split_indices,
    total_for_train,
    validate_channels,
    validate_size,
)
from aestudio.data.catalog import NATIVE_SIZE, builtin_specs
from aestudio.data.classes import ClassesError, read_classes
from aestudio.data.crops import NativePairsDataset, NativeScale
from aestudio.data.folders import (
    FolderDataset,
    Geometry,
    PairsDataset,
    guess_channels,
    levels_note,
    match_pairs,
)
from aestudio.data.io import iter_image_files, probe_image, read_mask
from aestudio.data.mnist import DIGIT_LABELS, open_mnist
from aestudio.data.procedural import (
    FACTOR_NAMES,
    SEG_CLASS_COLORS,
    SEG_CLASS_NAMES,
    SPRITE_NAMES,
    ShapesDataset,
    ShapesSegDataset,
    shape_factors,
)
from aestudio.palette import default_palette

__all__ = [
    "BadFile",
    "DataBundle",
    "DataError",
    "DataKind",
    "Factors",
    "builtin_specs",
    "open_data",
]

log = logging.getLogger(__name__)

SHAPES_TRAIN = (
    10_000  # dSprites-like variety needs thousands of samples for a VAE to find the factors
)
SHAPES_SEG_TRAIN = 2_000
DEFAULT_FOLDER_SIZE = 64


def open_data(
    spec: str,
    *,
    image_size: int | None = None,
    channels: int | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    patches: bool = False,
    native: NativeScale | None = None,
    noisy: bool = False,
) -> DataBundle:
    """Open ``spec`` (see :func:`builtin_specs`); an existing folder path alone means ``folder:``.

    ``image_size`` is the side of the square items (each spec has a default),
    ``channels`` 1 or 3 converts, ``seed`` fixes the split of built-in data,
    ``patches`` makes folder data yield random crops instead of whole resized images,
    ``native`` makes ``pairs:`` data keep the images' own scale (random crops for
    training, whole images for validation; see :mod:`aestudio.data.crops`) and
    ignores ``image_size``; ``noisy`` opens ``folder:`` data as noisy-only
    crops of side ``image_size`` at full resolution, for self-supervised
    denoising (:mod:`aestudio.data.noisy`).
    """
    spec = spec.strip()
    validate_channels(channels, spec)
    validate_size(image_size, spec)
    check_val_fraction(val_fraction)
    name, sep, arg = spec.partition(":")
    key = name.strip().lower()
    if (
        not sep
        and key not in ("digits", "shapes", "shapes-seg")
        and Path(spec).expanduser().is_dir()
    ):
        key, arg, spec = "folder", spec, f"folder:{spec}"
    if noisy and key != "folder":
        raise DataError(f"{spec}: self-supervised training reads a folder of noisy images; use folder:DIR")
    if key == "digits":
        return _open_digits(image_size, channels, val_fraction, seed)
    if key == "shapes":
        return _open_shapes(image_size, channels, val_fraction, seed)
    if key == "shapes-seg":
        return _open_shapes_seg(image_size, channels, val_fraction, seed)
    if key in ("mnist", "fashion-mnist"):
        return open_mnist(
            key,
            arg.strip(),
            image_size=image_size,
            channels=channels,
            val_fraction=val_fraction,
            seed=seed,
        )
    if key == "folder" and noisy:
        from aestudio.data.noisy import open_noisy_folder

        return open_noisy_folder(spec, _folder(spec, arg.strip(), "image"), crop=image_size, channels=channels, seed=seed)
    if key == "folder":
        return _open_folder(spec, arg.strip(), image_size, channels, val_fraction, seed, patches)
    if key == "pairs":
        return _open_pairs(spec, arg.strip(), image_size, channels, val_fraction, seed, patches, native)
    raise DataError(f"unknown data spec {spec!r}; use one of: {', '.join(builtin_specs())}")


# ------------------------------------------------------------------ built-in


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as (float32 [N, 8, 8] in 0..16, int64 labels).

    Reads the CSV that ships inside scikit-learn directly: importing
    sklearn.datasets takes seconds, and opening data should feel instant.
    """
    package = importlib.util.find_spec("sklearn")
    if package is not None and package.submodule_search_locations:
        csv = (
            Path(list(package.submodule_search_locations)[0])
            / "datasets"
            / "data"
            / "digits.csv.gz"
        )
        if csv.is_file():
            table = np.loadtxt(csv, delimiter=",", dtype=np.float32)
            return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits  # the public route, if the file ever moves

    digits = load_digits()
    return digits.images.astype(np.float32), digits.target.astype(np.int64)


def _open_digits(
    image_size: int | None, channels: int | None, val_fraction: float, seed: int
) -> DataBundle:
    pixels, labels = _load_digits()
    images = torch.from_numpy(pixels)[:, None]  # values 0..16
    train_idx, val_idx = split_indices(len(images), val_fraction, seed)
    size = image_size or NATIVE_SIZE["digits"]
    out_channels = channels or 1

    def dataset(idx: np.ndarray) -> ArrayDataset:
        return ArrayDataset(
            images[idx], labels[idx], image_size=size, channels=out_channels, scale=16.0
        )

    return DataBundle(
        spec="digits",
        train=dataset(train_idx),
        val=dataset(val_idx),
        channels=out_channels,
        image_size=size,
        kind=DataKind.LABELS,
        num_classes=10,
        label_names=list(DIGIT_LABELS),
    )


def _open_shapes(
    image_size: int | None, channels: int | None, val_fraction: float, seed: int
) -> DataBundle:
    size = image_size or NATIVE_SIZE["shapes"]
    out_channels = channels or 1
    table = shape_factors(total_for_train(SHAPES_TRAIN, val_fraction))
    train_idx, val_idx = split_indices(len(table), val_fraction, seed)
    return DataBundle(
        spec="shapes",
        train=ShapesDataset(table[train_idx], size, out_channels),
        val=ShapesDataset(table[val_idx], size, out_channels),
        channels=out_channels,
        image_size=size,
        kind=DataKind.LABELS,
        num_classes=len(SPRITE_NAMES),
        label_names=list(SPRITE_NAMES),
        factors=Factors(names=FACTOR_NAMES, train=table[train_idx], val=table[val_idx]),
    )


def _open_shapes_seg(
    image_size: int | None, channels: int | None, val_fraction: float, seed: int
) -> DataBundle:
    size = image_size or NATIVE_SIZE["shapes-seg"]
    out_channels = channels or 3
    train_idx, val_idx = split_indices(
        total_for_train(SHAPES_SEG_TRAIN, val_fraction), val_fraction, seed
    )
    return DataBundle(
        spec="shapes-seg",
        train=ShapesSegDataset(train_idx, size, out_channels),
        val=ShapesSegDataset(val_idx, size, out_channels),
        channels=out_channels,
        image_size=size,
        kind=DataKind.SEGMENTATION,
        num_classes=len(SEG_CLASS_NAMES),
        class_names=list(SEG_CLASS_NAMES),
        class_colors=list(SEG_CLASS_COLORS),
    )


# ------------------------------------------------------------------ user folders


def _folder(spec: str, text: str, what: str) -> Path:
    if not text:
        raise DataError(f"{spec}: needs a folder, e.g. folder:~/pictures")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise DataError(f"{spec}: {path} is a file, not a folder; give the folder that holds the images, "
                        f"e.g. folder:{path.parent}")
    if not path.is_dir():
        raise DataError(f"{spec}: {what} folder {path} does not exist; check the path")
    return path


def _relative_keys(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def _open_folder(
    spec: str,
    text: str,
    image_size: int | None,
    channels: int | None,
    val_fraction: float,
    seed: int,
    patches: bool,
) -> DataBundle:
    root = _folder(spec, text, "image")
    paths = list(iter_image_files(root))
    if not paths:
        raise DataError(
            f"{spec}: found no PNG, JPEG, TIFF or BMP images under {root}; add images or pick another folder"
        )
    size = image_size or DEFAULT_FOLDER_SIZE
    out_channels = channels or guess_channels(paths)
    train_idx, val_idx = hash_split(_relative_keys(paths, root), val_fraction)
    bad: list[BadFile] = []
    common = {"size": size, "channels": out_channels, "seed": seed, "bad_files": bad, "spec": spec}
    train = FolderDataset(
        [paths[i] for i in train_idx],
        geometry=Geometry.RANDOM_CROP if patches else Geometry.RESIZE,
        **common,
    )
    val = FolderDataset(
        [paths[i] for i in val_idx],
        geometry=Geometry.FIXED_CROP if patches else Geometry.RESIZE,
        **common,
    )
    return DataBundle(
        spec=spec,
        train=train,
        val=val,
        channels=out_channels,
        image_size=size,
        kind=DataKind.IMAGES,
        bad_files=bad,
        notes=levels_note(paths),
    )


def _open_pairs(
    spec: str,
    text: str,
    image_size: int | None,
    channels: int | None,
    val_fraction: float,
    seed: int,
    patches: bool,
    native: NativeScale | None = None,
) -> DataBundle:
    images_text, comma, masks_text = text.partition(",")
    if not comma:
        raise DataError(f"{spec}: needs two folders, e.g. pairs:~/data/images,~/data/masks")
    images_root = _folder(spec, images_text.strip(), "images")
    masks_root = _folder(spec, masks_text.strip(), "masks")
    masks = list(iter_image_files(masks_root))
    mask_set = set(masks)
    images = [p for p in iter_image_files(images_root) if p not in mask_set]
    pairs, unmatched = match_pairs(images, masks, spec)
    if unmatched:
        shown = ", ".join(p.name for p in unmatched[:10]) + (" ..." if len(unmatched) > 10 else "")
        log.warning(
            "%s: %d image(s) have no mask with the same name and are left out: %s",
            spec,
            len(unmatched),
            shown,
        )
    if not pairs:
        raise DataError(
            f"{spec}: no image in {images_root} has a mask of the same file name in {masks_root}; "
            "name masks like their images (cat.jpg -> cat.png or cat_mask.png)"
        )
    bad: list[BadFile] = []
    scan = _scan_masks(pairs, bad)
    good_pairs = scan.good
    if not good_pairs:
        raise DataError(
            f"{spec}: none of the {len(pairs)} masks could be read ({bad[0].reason}); save masks as index PNGs"
        )
    names, colors, num_classes = _pairs_classes(spec, masks_root, scan)
    out_channels = channels or guess_channels([image for image, _ in good_pairs])
    train_idx, val_idx = hash_split(
        _relative_keys([image for image, _ in good_pairs], images_root), val_fraction
    )
    if native is not None:
        size: int | None = None
        common_n = {"plan": native, "channels": out_channels, "seed": seed, "bad_files": bad, "spec": spec}
        train: Dataset = NativePairsDataset([good_pairs[i] for i in train_idx], [scan.sizes[i] for i in train_idx],
                                            train=True, **common_n)
        val: Dataset = NativePairsDataset([good_pairs[i] for i in val_idx], [scan.sizes[i] for i in val_idx],
                                          train=False, **common_n)
    else:
        size = image_size or DEFAULT_FOLDER_SIZE
        common = {"size": size, "channels": out_channels, "seed": seed, "bad_files": bad, "spec": spec}
        train = PairsDataset(
            [good_pairs[i] for i in train_idx],
            geometry=Geometry.RANDOM_CROP if patches else Geometry.RESIZE,
            **common,
        )
        val = PairsDataset(
            [good_pairs[i] for i in val_idx],
            geometry=Geometry.FIXED_CROP if patches else Geometry.RESIZE,
            **common,
        )
    return DataBundle(
        spec=spec,
        train=train,
        val=val,
        channels=out_channels,
        image_size=size,
        kind=DataKind.SEGMENTATION,
        num_classes=num_classes,
        class_names=names,
        class_colors=colors,
        bad_files=bad,
        notes=levels_note([image for image, _ in good_pairs]),
    )


def _pairs_classes(
    spec: str, masks_root: Path, scan: _MaskScan
) -> tuple[list[str], list[tuple[int, int, int]], int]:
    """Class names and colours from ``MASKS/classes.json`` when present, else 'background', 'class 1', ..."""
    try:
        table = read_classes(masks_root)
    except ClassesError as exc:
        raise DataError(f"{spec}: {exc}") from None
    if table is None:
        k = scan.num_classes
        return ["background"] + [f"class {c}" for c in range(1, k)], default_palette(k), k
    if scan.largest >= len(table):
        raise DataError(
            f"{spec}: {scan.largest_file} holds value {scan.largest} but {masks_root / 'classes.json'} names only "
            f"{len(table)} classes (0..{len(table) - 1}, 255 = unlabelled); add the missing class names or fix the mask"
        )
    return list(table.names), list(table.colors), len(table)


class _MaskScan(NamedTuple):
    num_classes: int  # largest labelled value + 1 (at least 2)
    good: list[tuple[Path, Path]]  # readable pairs whose sizes agree
    sizes: list[tuple[int, int]]  # (height, width) of each good pair
    largest: int  # largest class value seen (255, unlabelled, excluded)
    largest_file: Path | None  # a mask that holds it


def _scan_masks(pairs: list[tuple[Path, Path]], bad: list[BadFile]) -> _MaskScan:
    """Read every mask once (fine for the small sets masks come in).

    The largest index other than 255 (unlabelled) gives the class count.
    Unreadable masks, and masks whose size differs from their image's header,
    are set aside before the split.
    """
    largest = 0
    largest_file: Path | None = None
    good: list[tuple[Path, Path]] = []
    sizes: list[tuple[int, int]] = []
    for image, mask_path in pairs:
        try:
            mask = read_mask(mask_path)
            info = probe_image(image)
            if mask.shape != (info.height, info.width):
                raise ValueError(
                    f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {image.name} is "
                    f"{info.width}x{info.height}; masks must match their images pixel for pixel"
                )
        except ValueError as exc:
            bad.append(BadFile(str(mask_path), str(exc)))
            log.warning("skipping bad pair %s", exc)
            continue
        labelled = mask[mask != UNLABELLED]
        top = int(labelled.max(initial=0))
        if largest_file is None or top > largest:
            largest, largest_file = top, mask_path
        good.append((image, mask_path))
        sizes.append((int(mask.shape[0]), int(mask.shape[1])))
    return _MaskScan(max(2, largest + 1), good, sizes, largest, largest_file)
