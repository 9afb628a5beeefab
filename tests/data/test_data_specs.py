"""Dataset specs: built-in data, user folders, mask pairs, MNIST IDX files."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from aestudio.data import mnist as mnist_module
from aestudio.data.base import DataKind, hash_split, stable_fraction
from aestudio.data.io import write_mask
from aestudio.data.specs import DataError, builtin_specs, open_data


def _check_items(dataset, count: int, channels: int, size: int) -> list:
    items = [dataset[i] for i in range(count)]
    for image, _ in items:
        assert image.dtype == torch.float32 and image.shape == (channels, size, size)
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    return items


# ------------------------------------------------------------------ built-in


def test_builtin_specs_are_described() -> None:
    specs = builtin_specs()
    assert {"digits", "shapes", "shapes-seg", "folder:DIR", "pairs:IMAGES_DIR,MASKS_DIR"} <= set(
        specs
    )
    assert all(isinstance(v, str) and v for v in specs.values())


def test_digits() -> None:
    bundle = open_data("digits")
    assert (len(bundle.train), len(bundle.val)) == (1437, 360)
    assert (
        bundle.kind is DataKind.LABELS and bundle.num_classes == 10 and bundle.label_names[3] == "3"
    )
    items = _check_items(bundle.train, 20, 1, 8)
    assert {label for _, label in items} <= set(range(10))
    assert max(float(img.max()) for img, _ in items) == 1.0  # 16 is white
    assert bundle.describe() == "digits: 1437 train / 360 val, 1x8x8, 10 classes"
    big = open_data("digits", image_size=16, channels=3)
    _check_items(big.val, 3, 3, 16)
    again = open_data("digits")
    assert torch.equal(again.train[5][0], bundle.train[5][0])  # deterministic given the seed
    other = open_data("digits", seed=1)
    assert not all(torch.equal(other.train[i][0], bundle.train[i][0]) for i in range(10))


def test_shapes_items_labels_and_factors() -> None:
    bundle = open_data("shapes")
    assert (len(bundle.train), len(bundle.val)) == (10_000, 2_500)
    assert bundle.kind is DataKind.LABELS and bundle.num_classes == 4
    assert bundle.factors is not None and bundle.factors.names == (
        "shape",
        "scale",
        "rotation",
        "x",
        "y",
    )
    assert bundle.factors.train.shape == (10_000, 5) and bundle.factors.val.shape == (2_500, 5)
    items = _check_items(bundle.train, 12, 1, 32)
    for i, (image, label) in enumerate(items):
        assert label == int(bundle.factors.train[i, 0])
        assert float(image.sum()) > 5  # a visible sprite
    # Larger sprites (scale factor) cover more pixels.
    scales = bundle.factors.train[:200, 1]
    areas = np.array([float(bundle.train[i][0].sum()) for i in range(200)])
    assert np.corrcoef(scales, areas)[0, 1] > 0.5
    # The seed changes the split, never the pictures: the same factors render the same image.
    other = open_data("shapes", seed=3, image_size=32)
    row = other.factors.train[0]
    match = np.flatnonzero((bundle.factors.train == row).all(axis=1))
    if match.size:
        assert torch.equal(other.train[0][0], bundle.train[int(match[0])][0])
    small = open_data("shapes", image_size=16, channels=3)
    _check_items(small.val, 2, 3, 16)


def test_shapes_seg_masks() -> None:
    bundle = open_data("shapes-seg", image_size=32)
    assert bundle.kind is DataKind.SEGMENTATION and bundle.num_classes == 4
    assert bundle.class_names == ["background", "circle", "square", "triangle"]
    assert len(set(bundle.class_colors)) == 4
    assert len(bundle.train) == 2_000
    items = _check_items(bundle.train, 16, 3, 32)
    present: set[int] = set()
    for _, mask in items:
        assert mask.dtype == torch.int64 and mask.shape == (32, 32)
        present |= set(mask.unique().tolist())
    assert present == {0, 1, 2, 3}
    again = open_data("shapes-seg", image_size=32)
    assert torch.equal(again.val[3][1], bundle.val[3][1]) and torch.equal(
        again.val[3][0], bundle.val[3][0]
    )
    grey = open_data("shapes-seg", image_size=32, channels=1)
    assert grey.train[0][0].shape == (1, 32, 32)


def _pixels(dataset, count: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for i in range(count):
        image, mask = dataset[i]
        xs.append(image.reshape(image.shape[0], -1).T.numpy())
        ys.append(mask.reshape(-1).numpy())
    return np.concatenate(xs).astype(np.float64), np.concatenate(ys)


def test_shapes_seg_is_not_solved_by_pixel_colour() -> None:
    """A per-pixel Gaussian (QDA) colour classifier must fail on the shape classes."""
    bundle = open_data("shapes-seg", image_size=32)
    x, y = _pixels(bundle.train, 150)
    xv, yv = _pixels(bundle.val, 60)
    scores = []
    for c in range(4):
        mean, cov = x[y == c].mean(axis=0), np.cov(x[y == c].T) + 1e-4 * np.eye(3)
        d = xv - mean
        maha = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
        scores.append(-0.5 * maha - 0.5 * np.linalg.slogdet(cov)[1] + np.log((y == c).mean()))
    pred = np.argmax(scores, axis=0)
    shape_iou = [
        ((pred == c) & (yv == c)).sum() / max(((pred == c) | (yv == c)).sum(), 1) for c in (1, 2, 3)
    ]
    assert max(shape_iou) < 0.2, shape_iou


def test_unknown_and_bad_arguments() -> None:
    with pytest.raises(DataError, match="unknown data spec 'nonsense'.*digits"):
        open_data("nonsense")
    with pytest.raises(DataError, match="channels"):
        open_data("digits", channels=2)
    with pytest.raises(DataError, match="val_fraction"):
        open_data("digits", val_fraction=1.0)
    with pytest.raises(DataError, match="does not exist"):
        open_data("folder:/no/such/folder")


# ------------------------------------------------------------------ folders


def _grey(path: Path, size=(20, 14), value: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    array = (
        rng.integers(0, 256, size=size[::-1], dtype=np.uint8)
        if value is None
        else np.full(size[::-1], value, np.uint8)
    )
    Image.fromarray(array).save(path)
    return path


def _make_folder(root: Path, n: int = 12) -> list[Path]:
    paths = [_grey(root / f"img{i:02d}.png") for i in range(n // 2)]
    paths += [_grey(root / "sub" / f"deep{i:02d}.tif", size=(9, 30)) for i in range(n - n // 2)]
    (root / "readme.txt").write_text("not an image")
    return paths


def test_stable_hash_split_is_deterministic_disjoint_and_grows_stably() -> None:
    keys = [f"a/{i}.png" for i in range(200)]
    train, val = hash_split(keys, 0.2)
    assert set(train).isdisjoint(val) and len(train) + len(val) == 200
    assert 20 < len(val) < 60
    more_train, more_val = hash_split([*keys, "b/new.png"], 0.2)
    assert set(val) <= set(more_val) and set(train) <= set(more_train)  # old files keep their side
    assert stable_fraction("x/y.png") == stable_fraction("x/y.png")
    assert hash_split(["only1.png", "only2.png"], 0.2)[1].size == 1  # tiny sets still validate


def test_folder_split_items_and_channels(tmp_path: Path) -> None:
    files = _make_folder(tmp_path / "pics")
    bundle = open_data(f"folder:{tmp_path / 'pics'}", image_size=16, val_fraction=0.3)
    assert bundle.kind is DataKind.IMAGES and bundle.channels == 1 and bundle.image_size == 16
    train, val = set(bundle.train.paths), set(bundle.val.paths)
    assert train.isdisjoint(val) and train | val == set(files)
    again = open_data(f"folder:{tmp_path / 'pics'}", image_size=16, val_fraction=0.3, seed=5)
    assert set(again.val.paths) == val  # the split depends on the paths only
    items = _check_items(bundle.train, len(bundle.train), 1, 16)
    assert all(label == -1 for _, label in items)
    assert "unlabelled" in bundle.describe()
    Image.new("RGB", (10, 10), (200, 10, 10)).save(tmp_path / "pics" / "colour.png")
    assert open_data(str(tmp_path / "pics")).channels == 3  # a bare folder path works as folder:
    assert open_data(f"folder:{tmp_path / 'pics'}", channels=1).channels == 1


def test_folder_with_bad_files_trains_and_reports(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    _make_folder(root, n=8)
    (root / "zero.png").write_bytes(b"")
    good = (root / "img00.png").read_bytes()
    (root / "cut.png").write_bytes(good[: len(good) // 2])
    Image.new("RGB", (4, 4)).save(root / "fake.jpg", format="GIF")
    bundle = open_data(f"folder:{root}", image_size=12, val_fraction=0.25)
    seen = 0
    for loader in (DataLoader(bundle.train, batch_size=3), DataLoader(bundle.val, batch_size=3)):
        for images, labels in loader:
            assert (labels == -1).all()
            assert images.shape[1:] == (1, 12, 12) and torch.isfinite(images).all()
            seen += len(images)
    assert seen == len(bundle.train) + len(bundle.val)  # bad items were replaced, not dropped
    bad = {Path(p).name for p, _ in bundle.bad_files}
    assert bad == {"zero.png", "cut.png", "fake.jpg"}
    assert all(Path(p).name in reason for p, reason in bundle.bad_files)
    assert "3 bad files" in bundle.describe()
    for _batch in DataLoader(bundle.train, batch_size=3):  # a second epoch records nothing new
        pass
    assert len(bundle.bad_files) == 3


def test_folder_all_bad_or_empty_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="found no PNG"):
        open_data(f"folder:{tmp_path / 'empty'}")
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"z{i}.png").write_bytes(b"")
    bundle = open_data(f"folder:{bad}")
    with pytest.raises(DataError, match="none of the"):
        bundle.train[0]


def test_folder_patches_random_for_train_fixed_for_val(tmp_path: Path) -> None:
    root = tmp_path / "big"
    for i in range(6):
        _grey(root / f"p{i}.png", size=(40, 30))
    _grey(root / "tiny.png", size=(5, 7))  # smaller than the crop: upscaled
    bundle = open_data(f"folder:{root}", image_size=16, patches=True, val_fraction=0.3)
    torch.manual_seed(0)
    crops = [bundle.train[0][0] for _ in range(5)]
    assert all(c.shape == (1, 16, 16) for c in crops)
    assert any(not torch.equal(crops[0], c) for c in crops[1:])
    assert torch.equal(bundle.val[0][0], bundle.val[0][0])
    torch.manual_seed(0)
    assert torch.equal(bundle.train[0][0], crops[0])  # random, but from torch's seeded generator
    tiny_index = [p.name for p in bundle.train.paths + bundle.val.paths].index("tiny.png")
    holder = bundle.train if tiny_index < len(bundle.train) else bundle.val
    i = [p.name for p in holder.paths].index("tiny.png")
    assert holder[i][0].shape == (1, 16, 16)


# ------------------------------------------------------------------ pairs


def test_pairs_matching_classes_and_resizing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    images, masks = tmp_path / "images", tmp_path / "masks"
    for name in ("a", "b", "c", "lonely"):
        Image.fromarray(
            np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
        ).save(_parent(images / "sub" / f"{name}.jpg"))
    mask = np.zeros((20, 24), dtype=np.int64)
    mask[5:15, 5:10] = 1
    mask[2:6, 15:22] = 4
    write_mask(_parent(masks / "a.png"), mask)
    write_mask(masks / "b_mask.png", (mask > 0).astype(np.int64))
    write_mask(masks / "c.png", np.zeros((10, 10), dtype=np.int64))  # wrong size: a bad pair
    with caplog.at_level(logging.WARNING):
        bundle = open_data(f"pairs:{images},{masks}", image_size=12, val_fraction=0.3)
    assert "lonely.jpg" in caplog.text
    assert bundle.kind is DataKind.SEGMENTATION and bundle.channels == 3
    assert bundle.num_classes == 5 and bundle.class_names == [
        "background",
        "class 1",
        "class 2",
        "class 3",
        "class 4",
    ]
    assert len(bundle.class_colors) == 5
    assert len(bundle.train) + len(bundle.val) == 2  # a and b; c (wrong size) set aside at open
    for dataset in (bundle.train, bundle.val):
        for i in range(len(dataset)):
            image, target = dataset[i]
            assert (
                image.shape == (3, 12, 12)
                and target.shape == (12, 12)
                and target.dtype == torch.int64
            )
            assert set(target.unique().tolist()) <= {
                0,
                1,
                4,
            }  # nearest resizing never invents classes
    assert any(Path(p).name == "c.png" for p, _ in bundle.bad_files)


def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_pairs_without_matches_is_a_data_error(tmp_path: Path) -> None:
    _grey(tmp_path / "i" / "x.png")
    write_mask(_parent(tmp_path / "m" / "y.png"), np.zeros((4, 4), dtype=np.int64))
    with pytest.raises(DataError, match="same file name"):
        open_data(f"pairs:{tmp_path / 'i'},{tmp_path / 'm'}")
    with pytest.raises(DataError, match="two folders"):
        open_data(f"pairs:{tmp_path / 'i'}")


# ------------------------------------------------------------------ MNIST IDX


def _idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def _fake_mnist(folder: Path, n: int, *, test: bool, gz: bool = False) -> np.ndarray:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28))
    labels = np.arange(n) % 10
    _idx(folder / "train-images-idx3-ubyte", images, gz)
    _idx(folder / "train-labels-idx1-ubyte", labels, gz)
    if test:
        _idx(folder / "t10k-images-idx3-ubyte", images[:4], gz)
        _idx(folder / "t10k-labels-idx1-ubyte", labels[:4], gz)
    return images


def test_mnist_in_torchvision_layout_uses_official_test_as_val(tmp_path: Path) -> None:
    images = _fake_mnist(tmp_path / "MNIST" / "raw", 20, test=True)
    bundle = open_data(f"mnist:{tmp_path}")
    assert (len(bundle.train), len(bundle.val)) == (20, 4)
    assert bundle.kind is DataKind.LABELS and bundle.num_classes == 10 and bundle.image_size == 28
    image, label = bundle.train[7]
    assert label == 7
    np.testing.assert_allclose(image[0].numpy(), images[7] / 255.0, atol=1e-6)
    assert "official test" in bundle.describe()
    small = open_data(f"mnist:{tmp_path}", image_size=14, channels=3)
    _check_items(small.train, 2, 3, 14)


def test_fashion_mnist_loose_gz_files_are_split(tmp_path: Path) -> None:
    _fake_mnist(tmp_path, 20, test=False, gz=True)
    bundle = open_data(f"fashion-mnist:{tmp_path}", val_fraction=0.25)
    assert (len(bundle.train), len(bundle.val)) == (15, 5)
    assert bundle.label_names[9] == "Ankle boot"


def test_mnist_offline_without_files_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def offline(url: str, **kwargs) -> None:
        calls.append(url)
        raise URLError("no network")

    monkeypatch.setattr(mnist_module, "download_and_extract_archive", offline)
    monkeypatch.setenv("AESTUDIO_DOWNLOAD", "1")  # asked to download: it tries, then says where files go
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\(\.gz\).*run once online"):
        open_data(f"mnist:{tmp_path}")
    assert calls  # it did try to download


def test_mnist_never_downloads_unasked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--data mnist:/nonexistent reached out to the network (issue 18); now it says where to put the files."""
    calls: list[str] = []
    monkeypatch.setattr(mnist_module, "download_and_extract_archive", lambda url, **kw: calls.append(url))
    monkeypatch.delenv("AESTUDIO_DOWNLOAD", raising=False)
    with pytest.raises(DataError, match=r"nonexistent.*put train-images-idx3-ubyte\(\.gz\).*AESTUDIO_DOWNLOAD=1"):
        open_data(f"mnist:{tmp_path / 'nonexistent'}")
    assert calls == [] and not (tmp_path / "nonexistent").exists()


def test_mnist_corrupt_idx_is_a_data_error(tmp_path: Path) -> None:
    _fake_mnist(tmp_path, 5, test=False)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 10)
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        open_data(f"mnist:{tmp_path}")
