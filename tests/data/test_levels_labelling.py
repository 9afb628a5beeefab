"""16-bit images at their own range on the labelling and segmentation paths too: a Label project,
``pairs:``/``folder:`` training and the folder job behind ``aestudio segment`` read them stretched,
as the denoising paths do (aestudio.data.levels); 8-bit images read exactly as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from aestudio.data.io import read_image, write_image, write_mask
from aestudio.data.levels import read_levelled, read_stretched


def deep_images(folder: Path) -> dict[str, Path]:
    """A 12-bit camera frame (0-4095, TIFF) and a dim micrograph (1000-3000, 16-bit PNG), each with a
    bright square on a darker field; both nearly black when read by 65535."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    cam = rng.integers(0, 1200, (40, 48)).astype(np.uint16)
    cam[10:30, 12:36] = rng.integers(2900, 4096, (20, 24))
    cam[0, 0], cam[0, 1] = 0, 4095
    tifffile.imwrite(folder / "cam.tif", cam)
    dim = (1000 + rng.integers(0, 700, (40, 48))).astype(np.uint16)
    dim[10:30, 12:36] = 2300 + rng.integers(0, 701, (20, 24))
    dim[0, 0], dim[0, 1] = 1000, 3000
    write_image(folder / "dim.png", (dim / 65535.0).astype(np.float32)[..., None], bit_depth=16)
    assert float(read_image(folder / "cam.tif").max()) < 0.07 and float(read_image(folder / "dim.png").max()) < 0.05
    return {"cam": folder / "cam.tif", "dim": folder / "dim.png"}


def square_mask(path: Path) -> Path:
    mask = np.zeros((40, 48), np.uint8)
    mask[10:30, 12:36] = 1
    write_mask(path, mask, [(0, 0, 0), (255, 0, 0)])
    return path


def test_a_label_project_reads_16_bit_images_at_their_full_range_and_8_bit_as_before(tmp_path) -> None:
    from aestudio.data.project import LabelProject

    paths = deep_images(tmp_path / "src")
    photo = tmp_path / "src" / "photo.png"
    write_image(photo, (np.random.default_rng(1).random((20, 24, 3)) * 0.3).astype(np.float32))  # dark 8-bit: kept dark
    project = LabelProject.create(tmp_path / "proj", ["background", "cell"])
    project.add_images([paths["cam"], paths["dim"], photo])
    for i, item in enumerate(project.items):
        image = project.image(i)
        if item.name.startswith("photo"):
            assert np.array_equal(image, read_image(photo))  # bit-identical
            assert np.array_equal(read_stretched(photo, channels=1), read_image(photo, channels=1))
        else:
            assert float(image.min()) == 0.0 and float(image.max()) == 1.0
            assert np.array_equal(image, read_levelled(item.image_path)[0])


def test_pairs_and_folder_training_data_and_the_folder_job_see_the_same_stretch(tmp_path) -> None:
    from aestudio.data.specs import open_data
    from aestudio.explore.folder_job import FolderWork

    paths = deep_images(tmp_path / "images")
    (tmp_path / "masks").mkdir()
    for name in paths:
        square_mask(tmp_path / "masks" / f"{name}.png")
    data = open_data(f"pairs:{tmp_path / 'images'},{tmp_path / 'masks'}", image_size=32, channels=1, val_fraction=0.0)
    assert len(data.train) == 2
    for i in range(len(data.train)):
        image, mask = data.train[i]
        assert float(image.max()) > 0.9 and float(image.min()) < 0.1  # not nearly black
        assert set(np.unique(mask.numpy()).tolist()) <= {0, 1}  # masks are never stretched
    folder = open_data(f"folder:{tmp_path / 'images'}", image_size=32, channels=1, val_fraction=0.0)
    assert all(float(folder.train[i][0].max()) > 0.9 for i in range(len(folder.train)))
    assert "16-bit images stretched" in data.notes and "16-bit images stretched" in folder.notes  # said at the start
    (tmp_path / "eight").mkdir()
    write_image(tmp_path / "eight" / "photo.png", np.full((8, 8, 1), 0.2, np.float32))
    assert open_data(f"folder:{tmp_path / 'eight'}", image_size=8, val_fraction=0.0).notes == ""

    seen: list[np.ndarray] = []
    work = FolderWork("Segmented", "segmentation", ("_x.png",), compute=lambda image: seen.append(image) or {})
    for name, path in paths.items():  # what segment_work's compute gets for each file (aestudio segment)
        work.results(path, name)
        assert np.array_equal(seen[-1], read_levelled(path)[0])
