"""The photo sources the denoiser recipes train on: they load offline, a missing package is named, and
no training photo is one of the held-out photos the benchmark scores on."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from aestudio.zoo import photos
from aestudio.zoo.photos import (
    HELD_OUT_PHOTOS,
    TRAIN_PHOTOS_V2,
    PhotoSourceMissing,
    load_photo,
    write_photo_set,
)


def _thumb(image: np.ndarray) -> np.ndarray:
    """A 48 x 48 grey thumbnail, centred and normalised: correlation ~1 for the same photo."""
    from PIL import Image

    grey = image @ np.array([0.299, 0.587, 0.114]) if image.ndim == 3 else image.astype(np.float64)
    t = np.asarray(Image.fromarray(grey.astype(np.uint8)).resize((48, 48), Image.BILINEAR), dtype=np.float64)
    t -= t.mean()
    return t / (np.linalg.norm(t) + 1e-9)


def test_a_missing_debian_package_is_named_with_its_install_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(photos, "OPENCV_DOC", tmp_path / "not-installed")
    with pytest.raises(PhotoSourceMissing, match=r"apt-get install opencv-doc") as info:
        load_photo("opencv-doc:data/baboon.jpg")
    assert "\n" not in str(info.value) and "data/baboon.jpg" in str(info.value)


def test_a_missing_pip_package_is_named(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pywt", None)  # import pywt now raises ImportError
    monkeypatch.setitem(sys.modules, "pywt.data", None)
    with pytest.raises(PhotoSourceMissing, match=r"pip install PyWavelets"):
        load_photo("pywt:aero")


def test_the_tile_command_exits_with_one_line_when_a_source_is_missing(tmp_path: Path, monkeypatch,
                                                                       capsys) -> None:
    monkeypatch.setattr(photos, "OPENCV_DOC", tmp_path / "not-installed")
    monkeypatch.setitem(photos.PHOTO_SETS, "photos-v2", (("opencv-doc:data/apple.jpg",), photos.TILE))
    assert photos.main(["photos-v2", str(tmp_path / "tiles")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "apt-get install opencv-doc" in err


def test_pywavelets_camera_is_refused_as_the_held_out_camera() -> None:
    with pytest.raises(ValueError, match="held-out"):
        load_photo("pywt:camera")


def test_photo_sets_write_the_same_tiles_every_time(tmp_path: Path) -> None:
    pytest.importorskip("skimage")
    first = write_photo_set("photos", tmp_path / "a", limit=5)
    write_photo_set("photos", tmp_path / "b", limit=5)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert first == 5 and names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)


def test_every_v2_photo_loads_and_none_is_a_held_out_photo() -> None:
    """Needs the sources installed (apt-get install opencv-doc; pip install -e .[zoo]); skipped without."""
    pytest.importorskip("pywt")
    pytest.importorskip("skimage")
    pytest.importorskip("sklearn")
    if not photos.OPENCV_DOC.is_dir():
        pytest.skip("opencv-doc is not installed (apt-get install opencv-doc)")
    import pywt.data

    held = {name: _thumb(load_photo(name)) for name in HELD_OUT_PHOTOS}
    # The measure finds a copy: PyWavelets' camera is skimage's held-out camera.
    assert float((_thumb(pywt.data.camera()) * held["skimage:camera"]).sum()) > 0.95
    assert len(set(TRAIN_PHOTOS_V2)) == len(TRAIN_PHOTOS_V2) == 48
    for name in TRAIN_PHOTOS_V2:
        image = load_photo(name)
        assert image.dtype == np.uint8 and image.ndim in (2, 3) and min(image.shape[:2]) >= 96, name
        thumb = _thumb(image)
        closest = max(float((thumb * h).sum()) for h in held.values())
        assert closest < 0.8, f"{name} looks like a held-out photo (correlation {closest:.2f})"
