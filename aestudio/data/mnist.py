"""``mnist:DIR`` and ``fashion-mnist:DIR``: the IDX files of torchvision's MNIST/FashionMNIST.

Files are looked for in torchvision's layout (``DIR/MNIST/raw``,
``DIR/FashionMNIST/raw``), then ``DIR/raw`` and ``DIR`` itself, plain or
``.gz``. When the training files are missing a :class:`DataError` says where to
put them; only with ``AESTUDIO_DOWNLOAD=1`` in the environment are they
downloaded (torchvision's mirrors and checksums, torchvision's layout): a typo
in a path must not reach out to the network unasked.

The IDX files are parsed here rather than through ``torchvision.datasets.MNIST``
because that class first loads a legacy ``processed/*.pt`` file if one exists,
which is unpickling a file from the user's folder; we never unpickle.
When the official test files are present they are the validation set.
"""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch
from torchvision import datasets
from torchvision.datasets.utils import download_and_extract_archive

from aestudio.data.base import ArrayDataset, DataBundle, DataError, DataKind, split_indices

log = logging.getLogger(__name__)

FASHION_LABELS = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
DIGIT_LABELS = [str(d) for d in range(10)]

_SOURCES: dict[str, tuple[type[datasets.MNIST], list[str]]] = {
    "mnist": (datasets.MNIST, DIGIT_LABELS),
    "fashion-mnist": (datasets.FashionMNIST, FASHION_LABELS),
}
_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: np.uint8}  # MNIST only uses unsigned bytes


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally gzipped) into a numpy array, validating its header."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc}); re-download the file") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(
            f"{path}: not an IDX file of unsigned bytes (bad magic number); re-download it"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) if shape else 0
    if len(data) - header != expected:
        raise DataError(
            f"{path}: IDX header says {shape} but the file holds {len(data) - header} bytes; re-download it"
        )
    return (
        np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()
    )  # writable for torch


def _find(folders: list[Path], name: str) -> Path | None:
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


DOWNLOAD_ENV = "AESTUDIO_DOWNLOAD"


def _download(cls: type[datasets.MNIST], raw: Path, spec: str) -> None:
    log.info("%s: downloading %s into %s", spec, cls.__name__, raw)
    raw.mkdir(parents=True, exist_ok=True)
    for filename, md5 in cls.resources:
        errors: list[str] = []
        for mirror in cls.mirrors:
            try:
                download_and_extract_archive(
                    f"{mirror}{filename}", download_root=str(raw), filename=filename, md5=md5
                )
                break
            except (URLError, RuntimeError, OSError) as exc:
                errors.append(f"{mirror}: {exc}")
        else:
            raise DataError(
                f"{spec}: found no {cls.__name__} files in {raw.parent.parent} and could not download them "
                f"({'; '.join(errors)[:300]}). Put train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz) "
                f"(and t10k-*) in {raw.parent.parent} or run once online."
            )


def open_mnist(
    name: str,
    root_text: str,
    *,
    image_size: int | None,
    channels: int | None,
    val_fraction: float,
    seed: int,
) -> DataBundle:
    spec = f"{name}:{root_text}"
    if not root_text:
        raise DataError(f"{name}: needs a folder, e.g. {name}:~/data/{name}")
    cls, label_names = _SOURCES[name]
    root = Path(root_text).expanduser()
    raw = root / cls.__name__ / "raw"  # torchvision's layout, where downloads go
    folders = [raw, root / "raw", root]
    if (
        _find(folders, _FILES["train_images"]) is None
        or _find(folders, _FILES["train_labels"]) is None
    ):
        if os.environ.get(DOWNLOAD_ENV) != "1":  # never reach out to the network unasked
            raise DataError(
                f"{spec}: found no {cls.__name__} files in {root}; put train-images-idx3-ubyte(.gz) and "
                f"train-labels-idx1-ubyte(.gz) (and t10k-*) in {root}, or run once with {DOWNLOAD_ENV}=1 "
                f"to let aestudio download them from torchvision's mirrors into {raw}"
            )
        _download(cls, raw, spec)
    found = {key: _find(folders, filename) for key, filename in _FILES.items()}
    if found["train_images"] is None or found["train_labels"] is None:
        raise DataError(
            f"{spec}: found no {cls.__name__} files in {root}; put train-images-idx3-ubyte(.gz) "
            "and train-labels-idx1-ubyte(.gz) there or run once online"
        )
    images, labels = _pair(found["train_images"], found["train_labels"], spec)
    notes = ""
    if found["test_images"] is not None and found["test_labels"] is not None:
        val_images, val_labels = _pair(found["test_images"], found["test_labels"], spec)
        notes = "val = official test set"
    else:
        train_idx, val_idx = split_indices(len(images), val_fraction, seed)
        images, val_images = images[train_idx], images[val_idx]
        labels, val_labels = labels[train_idx], labels[val_idx]
    out_channels = channels or 1
    size = image_size or int(images.shape[-1])

    def dataset(x: np.ndarray, y: np.ndarray) -> ArrayDataset:
        return ArrayDataset(
            torch.from_numpy(np.ascontiguousarray(x[:, None])),
            y,
            image_size=size,
            channels=out_channels,
        )

    return DataBundle(
        spec=spec,
        train=dataset(images, labels),
        val=dataset(val_images, val_labels),
        channels=out_channels,
        image_size=size,
        kind=DataKind.LABELS,
        num_classes=len(label_names),
        label_names=list(label_names),
        notes=notes,
    )


def _pair(images_path: Path, labels_path: Path, spec: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{spec}: {images_path.name} {images.shape} and {labels_path.name} {labels.shape} do not match; "
            "re-download the files"
        )
    return images, labels.astype(np.int64)
