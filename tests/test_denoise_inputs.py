"""Issue 14's bad input for `aestudio denoise` on a folder and `aestudio train --self-supervised`: tiny images,
one image, grey and colour mixed, narrow-range 16-bit images, NaNs in float TIFFs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from aestudio.cli import main
from aestudio.data.io import write_image

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "photo-denoiser"


def _smooth(h: int, w: int, seed: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return 0.5 + 0.4 * np.sin(xx / 5.0 + seed) * np.cos(yy / 7.0 - seed)


def _hostile_folder(folder: Path) -> dict[str, np.ndarray]:
    """A folder of every kind of awkward image; returns the raw arrays of the 16-bit ones."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    write_image(folder / "grey.png", _smooth(40, 48)[..., None])
    write_image(folder / "rgb.png", np.stack([_smooth(36, 40, s) for s in range(3)], axis=2))
    nan = _smooth(40, 40).astype(np.float32)
    nan[5:9, 5:9] = np.nan
    tifffile.imwrite(folder / "nan.tif", nan)
    raws = {
        # a dim micrograph: 1000-3000 of 65535, noise of 60 counts
        "narrow.tif": np.clip(1000 + 2000 * _smooth(48, 48) + rng.normal(0, 60, (48, 48)), 0, 65535).astype(np.uint16),
        "narrow_rgb.tif": np.clip(500 + 3000 * np.stack([_smooth(32, 32, s) for s in range(3)], 2)
                                  + rng.normal(0, 60, (32, 32, 3)), 0, 65535).astype(np.uint16),
    }
    tifffile.imwrite(folder / "narrow.tif", raws["narrow.tif"])
    tifffile.imwrite(folder / "narrow_rgb.tif", raws["narrow_rgb.tif"], photometric="rgb")
    return raws


def test_denoise_folder_of_awkward_images_writes_every_result_and_16_bit_ones_in_their_own_range(tmp_path) -> None:
    if not (SHIPPED / "model.json").is_file():
        pytest.skip("the shipped photo-denoiser is not built")
    raws = _hostile_folder(tmp_path / "in")
    write_image(tmp_path / "in" / "tiny.png", np.full((1, 1, 1), 0.5, np.float32))  # 1 x 1: nothing to crop, still denoised
    write_image(tmp_path / "in" / "small.png", np.full((2, 3, 3), 0.5, np.float32))
    before = {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()}
    out = tmp_path / "out"
    assert main(["denoise", "--model", str(SHIPPED), str(tmp_path / "in"), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "grey_denoised.png", "nan_denoised.tif", "narrow_denoised.tif", "narrow_rgb_denoised.tif",
        "rgb_denoised.png", "small_denoised.png", "tiny_denoised.png"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()} == before  # inputs only read
    nan_result = tifffile.imread(out / "nan_denoised.tif")  # a float input: a float32 TIFF in [0, 1], as it was
    assert nan_result.dtype == np.float32 and np.isfinite(nan_result).all()
    assert 0.0 <= nan_result.min() and nan_result.max() <= 1.0
    for name, raw in raws.items():
        result = tifffile.imread(out / name.replace(".tif", "_denoised.tif"))
        assert result.dtype == np.uint16 and result.shape == raw.shape  # the input's dtype and channels
        assert raw.min() <= result.min() and result.max() <= raw.max()  # and its range, not stretched
    # Stretched to its own range, the micrograph's noise is noise the denoiser knows: it removes most of it.
    # (Read as 1000-3000 of 65535 its 60 counts were 0.001, and an 8-bit PNG result kept nothing of it.)
    clean = 1000 + 2000 * _smooth(48, 48)
    denoised = tifffile.imread(out / "narrow_denoised.tif").astype(float)
    noisy = raws["narrow.tif"].astype(float)
    assert np.abs(denoised - clean)[4:-4, 4:-4].std() < 0.6 * np.abs(noisy - clean)[4:-4, 4:-4].std()
    # A folder with one image is a folder like any other.
    (tmp_path / "one").mkdir()
    write_image(tmp_path / "one" / "only.png", _smooth(20, 20)[..., None])
    assert main(["denoise", "--model", str(SHIPPED), str(tmp_path / "one"), "-o", str(tmp_path / "out1")]) == 0
    assert [p.name for p in (tmp_path / "out1").iterdir()] == ["only_denoised.png"]


def test_denoise_noise_of_a_file_does_not_depend_on_which_others_were_skipped(tmp_path) -> None:
    if not (SHIPPED / "model.json").is_file():
        pytest.skip("the shipped photo-denoiser is not built")
    folder = tmp_path / "in"
    folder.mkdir()
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        write_image(folder / name, _smooth(24, 24, i)[..., None])
    args = ["denoise", "--model", str(SHIPPED), str(folder), "--noise", "gaussian:0.1", "--seed", "5"]
    assert main([*args, "-o", str(tmp_path / "all")]) == 0
    (tmp_path / "some").mkdir()
    write_image(tmp_path / "some" / "a_denoised.png", np.zeros((24, 24, 1), np.float32))  # a's result is there: skipped
    assert main([*args, "-o", str(tmp_path / "some")]) == 0
    for name in ("b_noisy.png", "c_noisy.png"):
        assert (tmp_path / "all" / name).read_bytes() == (tmp_path / "some" / name).read_bytes()
    assert (tmp_path / "all" / "b_noisy.png").read_bytes() != (tmp_path / "all" / "c_noisy.png").read_bytes()


def test_self_supervised_training_on_awkward_images_trains_reads_only_and_refuses_tiny_ones(tmp_path, capsys) -> None:
    folder = tmp_path / "in"
    _hostile_folder(folder)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    base = ["train", "--model", "denoising_ae", "--data", f"folder:{folder}", "--self-supervised", "--image-size", "16",
            "--batch-size", "4", "--max-steps", "2", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "run")]) == 0
    assert "2 16-bit image(s) stretched by their own min/max" in capsys.readouterr().err  # said when it starts
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["net"]["params"]["in_channels"] == 3  # grey and colour mixed: read as colour
    assert all(np.isfinite(v) for v in record["metrics"].values())  # NaN pixels read as 0, not NaN losses
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()} == before  # nothing written there
    # One image is enough.
    one = tmp_path / "one"
    one.mkdir()
    write_image(one / "only.png", _smooth(24, 24)[..., None])
    assert main([*base[:4], f"folder:{one}", *base[5:], "--out", str(tmp_path / "run1")]) == 0
    # Too small to crop: refused in one line naming the file and the fix.
    write_image(folder / "tiny.png", np.full((8, 30, 1), 0.5, np.float32))
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tiny.png: 30x8 is too small" in err and "remove it" in err
