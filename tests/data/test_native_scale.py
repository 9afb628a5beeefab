"""Segmentation at the images' own scale: crops, padding, class names beside the masks, 255 = unlabelled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aestudio.data.base import UNLABELLED, DataError
from aestudio.data.crops import NativeScale, crop_window, pad_collate, repeats_for
from aestudio.data.io import write_image, write_mask
from aestudio.data.specs import open_data


def make_pairs(root: Path, sizes: list[tuple[int, int]], *, unlabelled_rows: int = 0, value: int = 1) -> str:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, (h, w) in enumerate(sizes):
        mask = np.zeros((h, w), np.int64)
        mask[h // 4 : h // 2, w // 4 : w // 2] = value
        mask[:unlabelled_rows] = UNLABELLED
        image = rng.random((h, w, 3)).astype(np.float32) * 0.3 + 0.6 * (mask == value)[..., None]
        write_image(root / "images" / f"im{i}.png", image)
        write_mask(root / "masks" / f"im{i}.png", mask)
    return f"pairs:{root / 'images'},{root / 'masks'}"


def test_native_pairs_keep_their_scale_and_pad_with_unlabelled(tmp_path) -> None:
    spec = make_pairs(tmp_path, [(40, 70), (200, 90), (33, 33), (64, 64), (50, 300)])
    data = open_data(spec, native=NativeScale(crop=48, multiple=8), val_fraction=0.2)
    assert data.image_size is None
    for i in range(len(data.train)):
        x, m = data.train[i]
        assert x.shape[-2:] == m.shape and max(m.shape) <= 48  # a crop, never a resize
    # A large image is visited about once per crop of its area; a small one once.
    assert repeats_for(200, 90, 48) == round(200 * 90 / 48**2) and repeats_for(33, 33, 48) == 1
    x, m = pad_collate(8)([data.train[i] for i in range(len(data.train))])
    assert x.shape[-1] % 8 == 0 and x.shape[-2] % 8 == 0 and m.dtype == torch.int64
    # The padding is unlabelled: the 33x33 image padded to 48x48 has 255 outside its own pixels.
    batch = pad_collate(16)([(torch.rand(1, 33, 20), torch.zeros(33, 20, dtype=torch.int64))])
    assert batch[0].shape == (1, 1, 48, 32)
    assert (batch[1][0, 33:] == UNLABELLED).all() and (batch[1][0, :, 20:] == UNLABELLED).all()
    assert (batch[1][0, :33, :20] == 0).all()
    # Validation images come whole.
    val_sizes = {tuple(data.val[i][1].shape) for i in range(len(data.val))}
    assert val_sizes <= {(40, 70), (200, 90), (33, 33), (64, 64), (50, 300)}


def test_crops_centre_on_labelled_pixels() -> None:
    mask = np.full((400, 400), UNLABELLED)
    mask[300:305, 10:15] = 1  # a single small stroke
    rng = np.random.default_rng(0)
    for _ in range(50):
        top, left, h, w = crop_window(mask, 64, rng)
        assert (mask[top : top + h, left : left + w] != UNLABELLED).any()


def test_class_names_come_from_classes_json(tmp_path) -> None:
    spec = make_pairs(tmp_path, [(32, 32)] * 3, value=2)
    (tmp_path / "masks" / "classes.json").write_text(json.dumps(
        {"classes": [{"name": "sky", "color": [0, 0, 255]}, {"name": "tree", "color": [0, 255, 0]},
                     {"name": "house", "color": [255, 0, 0]}]}))
    data = open_data(spec)
    assert data.class_names == ["sky", "tree", "house"] and data.class_colors[2] == (255, 0, 0)
    assert data.num_classes == 3


def test_values_beyond_the_named_classes_name_the_mask(tmp_path) -> None:
    spec = make_pairs(tmp_path, [(32, 32)] * 2, value=3)
    (tmp_path / "masks" / "classes.json").write_text(json.dumps(["background", "cell"]))
    with pytest.raises(DataError, match=r"im\d\.png holds value 3 .*names only 2 classes"):
        open_data(spec)
    (tmp_path / "masks" / "classes.json").write_text("{not json")
    with pytest.raises(DataError, match="classes.json: cannot be read"):
        open_data(spec)


def test_255_is_not_a_class(tmp_path) -> None:
    spec = make_pairs(tmp_path, [(32, 32)] * 3, unlabelled_rows=10)
    data = open_data(spec)
    assert data.num_classes == 2 and data.class_names == ["background", "class 1"]
