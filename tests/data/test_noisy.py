"""Noisy-only folders for self-supervised training: full-resolution crops, any size, 8/16-bit, grey/colour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aestudio.data.base import DataError
from aestudio.data.io import read_image, write_image
from aestudio.data.levels import read_levelled
from aestudio.data.noisy import MIN_CROP, MIN_EPOCH_CROPS, random_crop
from aestudio.data.specs import open_data


def _write(path, h, w, c=1, bits=8, seed=0):
    rng = np.random.default_rng(seed)
    write_image(path, rng.random((h, w, c), dtype=np.float32), bit_depth=bits)
    return read_image(path)


def _is_window(crop: np.ndarray, image: np.ndarray) -> bool:
    """True if ``crop`` [C, S, S] equals a window of ``image`` [H, W, C] up to rotation and flip."""
    s = crop.shape[-1]
    h, w = image.shape[:2]
    chw = image.transpose(2, 0, 1)
    variants = []
    for k in range(4):
        r = np.rot90(crop, -k, axes=(1, 2))
        variants += [r, r[:, :, ::-1], np.rot90(crop[:, :, ::-1], -k, axes=(1, 2))]
    for top in range(h - s + 1):
        for left in range(w - s + 1):
            win = chw[:, top:top + s, left:left + s]
            if any(np.array_equal(win, v) for v in variants):
                return True
    return False


def test_crops_are_exact_windows_at_full_16_bit_precision(tmp_path) -> None:
    _write(tmp_path / "a.png", 40, 48, bits=16)
    image, levels = read_levelled(tmp_path / "a.png")  # 16-bit: stretched by its own min/max (aestudio.data.levels)
    assert levels.bits == 16 and len(np.unique(image)) > 256  # really 16-bit values, not 8-bit ones
    data = open_data(f"folder:{tmp_path}", image_size=32, noisy=True)
    assert data.image_size == 32 and data.channels == 1 and len(data.train) >= MIN_EPOCH_CROPS
    torch.manual_seed(0)
    for i in range(3):
        crop, label = data.train[i]
        assert crop.shape == (1, 32, 32) and label == -1
        assert _is_window(crop.numpy(), image)  # never resized or interpolated
    a, b = data.val[0][0], data.val[0][0]
    assert torch.equal(a, b)  # validation crops are fixed


def test_small_images_shrink_the_crop_with_a_note_and_tiny_ones_are_refused(tmp_path) -> None:
    _write(tmp_path / "big.png", 100, 120)
    _write(tmp_path / "small.png", 41, 90)
    data = open_data(f"folder:{tmp_path}", image_size=64, noisy=True)
    assert data.image_size == 40  # the shortest side, made even for the neighbour sub-sampling
    assert "small.png is 90x41" in data.notes and "never resized" in data.notes
    _write(tmp_path / "tiny.png", 12, 300)
    with pytest.raises(DataError, match=r"tiny.png: 300x12 is too small .* remove it"):
        open_data(f"folder:{tmp_path}", image_size=64, noisy=True)
    assert MIN_CROP == 16


def test_mixed_grey_and_colour_read_as_colour_and_one_image_is_enough(tmp_path) -> None:
    _write(tmp_path / "grey.png", 64, 64, c=1)
    _write(tmp_path / "rgb.tif", 64, 80, c=3, bits=16)
    data = open_data(f"folder:{tmp_path}", image_size=32, noisy=True)
    assert data.channels == 3 and all(data.train[i][0].shape == (3, 32, 32) for i in range(4))
    one = tmp_path / "one"
    one.mkdir()
    _write(one / "only.png", 50, 50)
    single = open_data(f"folder:{one}", image_size=32, noisy=True)
    assert len(single.train) > 0 and len(single.val) > 0  # trains and validates on its one image


def test_noisy_needs_a_folder(tmp_path) -> None:
    with pytest.raises(DataError, match="use folder:DIR"):
        open_data("digits", noisy=True)


def test_random_crop_refuses_a_smaller_image() -> None:
    with pytest.raises(ValueError, match="smaller than the 32-pixel crop"):
        random_crop(torch.zeros(1, 20, 40), 32)


def test_float_tiff_with_nans_and_a_narrow_16_bit_range_read_without_crashing(tmp_path) -> None:
    import tifffile

    rng = np.random.default_rng(0)
    image = rng.random((40, 40)).astype(np.float32)
    image[5:8, 5:8] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", image)
    narrow = (30000 + rng.integers(0, 50, (40, 40))).astype(np.uint16)  # a dim 16-bit frame
    tifffile.imwrite(tmp_path / "narrow.tif", narrow)
    data = open_data(f"folder:{tmp_path}", image_size=32, noisy=True)
    assert "1 16-bit image(s) stretched" in data.notes
    crops = [data.train[i][0] for i in range(8)] + [data.val[i][0] for i in range(len(data.val))]
    assert all(torch.isfinite(c).all() for c in crops)  # NaNs read as 0 (documented in aestudio.data.noisy)
    narrow_crops = torch.stack([data.val[i][0] for i in range(len(data.val)) if data.val.paths[data.val.index[i]].name == "narrow.tif"])
    # The narrow frame's 50 levels are stretched over [0, 1] (its own min/max), not left at 0.458-0.459.
    assert float(narrow_crops.min()) < 0.1 and float(narrow_crops.max()) > 0.9
    assert len(torch.unique(narrow_crops)) >= 40  # its 16-bit steps kept, not rounded to 8 bits
