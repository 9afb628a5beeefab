"""The image loader and writer: formats, bad files, EXIF, colour modes, atomic writes, listing."""

from __future__ import annotations

import io as pyio
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile

from aestudio.data import io
from aestudio.data.io import ImageLoadError, read_image, read_mask, write_image, write_mask


def _rgb(h: int = 6, w: int = 4, seed: int = 0) -> np.ndarray:
    """An asymmetric uint8 RGB image: every pixel distinct enough to catch a flip."""
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _save(img: Image.Image, path: Path, **kwargs) -> Path:
    img.save(path, **kwargs)
    return path


# ------------------------------------------------------------------ refused and broken files


def test_zero_byte_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"empty\.png.*0 bytes"):
        read_image(path)


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg")])
def test_truncated_files_are_refused(tmp_path: Path, fmt: str, suffix: str) -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    noise = np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    buf = pyio.BytesIO()
    Image.fromarray(noise).save(buf, format=fmt)
    data = buf.getvalue()
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match=r"cut\..*truncated|cut\..*corrupt"):
        read_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # the loader never flips it


@pytest.mark.parametrize("side", [12, 20])  # 144 px: Pillow only warns; 400 px: Pillow raises
def test_decompression_bomb_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int
) -> None:
    path = _save(Image.new("L", (side, side)), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageLoadError, match=r"bomb\.png.*too large.*MAX_IMAGE_PIXELS"):
        read_image(path)


def _pdf(path: Path) -> Path:
    return _save(Image.new("RGB", (8, 8), "red"), path, format="PDF")


def _eps(path: Path) -> Path:
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n")
    return path


def _gif(path: Path) -> Path:
    return _save(Image.new("P", (8, 8)), path, format="GIF")


def _fits(path: Path) -> Path:
    path.write_bytes(b"SIMPLE  =                    T" + b" " * 50 + b"END" + b" " * 2797)
    return path


def _webp(path: Path) -> Path:
    path.write_bytes(b"RIFF\x1a\x00\x00\x00WEBPVP8 " + b"\x00" * 20)
    return path


@pytest.mark.parametrize(
    "maker,name,real",
    [
        (_pdf, "doc.pdf", "PDF"),
        (_eps, "fig.eps", "EPS"),
        (_gif, "anim.gif", "GIF"),
        (_fits, "sky.fits", "FITS"),
        (_webp, "photo.webp", "WebP"),
        (_gif, "sneaky.png", "GIF"),
    ],  # last: wrong suffix, refused by content
)
def test_unsupported_formats_are_refused_by_content(
    tmp_path: Path, maker, name: str, real: str
) -> None:
    path = maker(tmp_path / name)
    with pytest.raises(ImageLoadError) as info:
        read_image(path)
    message = str(info.value)
    assert name in message and real in message and "PNG, JPEG, TIFF" in message


def test_wrong_suffix_with_right_content_loads(tmp_path: Path) -> None:
    pixels = _rgb()
    path = _save(Image.fromarray(pixels), tmp_path / "actually_png.jpg", format="PNG")
    np.testing.assert_array_equal(read_image(path), pixels / np.float32(255))


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="folder"):
        read_image(tmp_path)


# ------------------------------------------------------------------ EXIF orientation

# For each EXIF orientation, the transform that turns the upright picture into the stored one
# (the inverse of what a viewer applies).
_STORE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_upright_pixels(tmp_path: Path, orientation: int) -> None:
    upright = Image.fromarray(_rgb(6, 4))
    op = _STORE[orientation]
    stored = upright if op is None else upright.transpose(op)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(stored, tmp_path / f"o{orientation}.png", exif=exif)
    np.testing.assert_array_equal(read_image(path), np.asarray(upright) / np.float32(255))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_of_16bit_colour_tiff(tmp_path: Path, orientation: int) -> None:
    """16-bit RGB TIFFs bypass Pillow (which would drop to 8 bits); orientation must still apply."""
    upright = (np.random.default_rng(2).integers(0, 65536, size=(6, 4, 3))).astype(np.uint16)
    op = _STORE[orientation]
    stored = (
        upright
        if op is None
        else np.asarray(
            [np.asarray(Image.fromarray(upright[..., c]).transpose(op)) for c in range(3)]
        ).transpose(1, 2, 0)
    )
    path = tmp_path / f"o{orientation}.tif"
    tifffile.imwrite(path, stored, photometric="rgb", extratags=[(274, "H", 1, orientation, False)])
    out = read_image(path)
    assert out.shape == (6, 4, 3)
    np.testing.assert_allclose(out, upright / np.float32(65535), atol=1e-6)


def test_exif_orientation_of_jpeg(tmp_path: Path) -> None:
    upright = Image.fromarray(
        np.kron(_rgb(3, 2), np.ones((8, 8, 1), dtype=np.uint8))
    )  # flat 8x8 blocks
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(
        upright.transpose(Image.Transpose.ROTATE_90),
        tmp_path / "phone.jpg",
        exif=exif,
        quality=98,
        subsampling=0,
    )
    np.testing.assert_allclose(read_image(path), np.asarray(upright) / 255.0, atol=0.08)


# ------------------------------------------------------------------ colour modes


def test_palette_without_and_with_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (3, 1))
    pal.putpalette([10, 20, 30, 200, 100, 50, 0, 0, 255] + [0] * (768 - 9))
    pal.putdata([0, 1, 2])
    plain = read_image(_save(pal, tmp_path / "p.png"))
    assert plain.shape == (1, 3, 3)
    np.testing.assert_allclose(plain[0, 1] * 255, [200, 100, 50], atol=1e-4)
    pal.info["transparency"] = 0
    see_through = read_image(_save(pal, tmp_path / "pt.png", transparency=0))
    np.testing.assert_allclose(see_through[0, 0], [1.0, 1.0, 1.0])  # transparent -> white
    np.testing.assert_allclose(see_through[0, 2] * 255, [0, 0, 255], atol=1e-4)


def test_rgba_and_la_composite_on_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (2, 1))
    rgba.putdata([(255, 0, 0, 128), (0, 0, 255, 0)])
    out = read_image(_save(rgba, tmp_path / "a.png"))
    a = 128 / 255
    np.testing.assert_allclose(out[0, 0], [1.0, 1 - a, 1 - a], atol=1e-6)
    np.testing.assert_allclose(out[0, 1], [1.0, 1.0, 1.0])  # fully transparent -> white, not blue
    la = Image.new("LA", (1, 1), (0, 64))
    grey = read_image(_save(la, tmp_path / "la.png"))
    assert grey.shape == (1, 1, 1)
    np.testing.assert_allclose(grey[0, 0, 0], 1 - 64 / 255, atol=1e-6)


def test_16bit_grey_png_and_tiff_use_full_depth(tmp_path: Path) -> None:
    values = np.array([[0, 1, 32768, 65535]], dtype=np.uint16)
    png = _save(Image.fromarray(values), tmp_path / "g16.png")
    tif = tmp_path / "g16.tif"
    tifffile.imwrite(tif, values)
    for path in (png, tif):
        out = read_image(path)
        assert out.shape == (1, 4, 1) and out.dtype == np.float32
        np.testing.assert_allclose(out[0, :, 0], values[0] / 65535.0, atol=1e-7)
        assert out[0, 1, 0] > 0  # one step of 65535 survives: not squashed to 8 bits


def test_multipage_tiff_reads_first_page(tmp_path: Path) -> None:
    path = tmp_path / "stack.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(np.full((4, 4), 10, np.uint8))
        tif.write(np.full((4, 4), 200, np.uint8))
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 2
    np.testing.assert_allclose(read_image(path), 10 / 255.0)


def test_float_tiff(tmp_path: Path) -> None:
    inside = np.array([[0.0, 0.25, 1.0]], dtype=np.float32)
    tifffile.imwrite(tmp_path / "f.tif", inside)
    np.testing.assert_allclose(read_image(tmp_path / "f.tif")[..., 0], inside)
    tifffile.imwrite(tmp_path / "hdr.tif", inside * 1000 - 10)
    np.testing.assert_allclose(
        read_image(tmp_path / "hdr.tif")[..., 0], inside, atol=1e-6
    )  # min/max rescale


def test_cmyk_and_bilevel(tmp_path: Path) -> None:
    cmyk = read_image(_save(Image.new("CMYK", (2, 2), (0, 255, 255, 0)), tmp_path / "c.tif"))
    np.testing.assert_allclose(cmyk[0, 0], [1.0, 0.0, 0.0])
    bits = Image.new("1", (2, 1))
    bits.putdata([0, 255])
    out = read_image(_save(bits, tmp_path / "b.png"))
    assert out.shape == (1, 2, 1)
    np.testing.assert_array_equal(out[0, :, 0], [0.0, 1.0])


def test_channels_conversion(tmp_path: Path) -> None:
    pixels = _rgb()
    path = _save(Image.fromarray(pixels), tmp_path / "c.png")
    grey = read_image(path, channels=1)
    expected = (pixels.astype(np.float32) / 255) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    np.testing.assert_allclose(grey[..., 0], expected, atol=1e-6)
    g = _save(Image.fromarray(pixels[..., 0]), tmp_path / "g.png")
    three = read_image(g, channels=3)
    assert three.shape == (6, 4, 3)
    np.testing.assert_array_equal(three[..., 0], three[..., 2])
    with pytest.raises(ValueError):
        read_image(path, channels=2)


def test_probe_reads_header(tmp_path: Path) -> None:
    info = io.probe_image(_save(Image.new("I;16", (5, 3)), tmp_path / "p.png"))
    assert (info.format, info.width, info.height, info.channels) == ("PNG", 5, 3, 1)


# ------------------------------------------------------------------ masks


def test_read_mask_from_p_and_l(tmp_path: Path) -> None:
    mask = np.array([[0, 1, 2], [3, 0, 1]])
    p = write_mask(
        tmp_path / "m.png", mask, palette=[(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255)]
    )
    assert Image.open(p).mode == "P"
    out = read_mask(p)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, mask)
    l_path = _save(Image.fromarray(mask.astype(np.uint8)), tmp_path / "l.png")
    np.testing.assert_array_equal(read_mask(l_path), mask)


def test_read_mask_refuses_colour_and_jpeg(tmp_path: Path) -> None:
    rgb = _save(Image.new("RGB", (2, 2)), tmp_path / "rgb.png")
    with pytest.raises(ImageLoadError, match=r"rgb\.png.*RGB.*index"):
        read_mask(rgb)
    jpg = _save(Image.new("L", (2, 2)), tmp_path / "m.jpg")
    with pytest.raises(ImageLoadError, match="JPEG"):
        read_mask(jpg)


# ------------------------------------------------------------------ writing


@pytest.mark.parametrize(
    "suffix,depth,tol",
    [
        (".png", 8, 0.5 / 255),
        (".bmp", 8, 0.5 / 255),
        (".tif", 8, 0.5 / 255),
        (".tif", 16, 0.5 / 65535),
        (".jpg", 8, 0.03),
    ],
)
def test_write_image_round_trip(tmp_path: Path, suffix: str, depth: int, tol: float) -> None:
    yy, xx = np.mgrid[0:16, 0:12] / np.float32(16)
    image = np.stack([yy, xx, 0.5 + 0.4 * np.sin(3 * xx)], axis=-1).astype(
        np.float32
    )  # smooth: JPEG-friendly
    path = write_image(tmp_path / f"out{suffix}", image, bit_depth=depth)
    np.testing.assert_allclose(read_image(path), image, atol=tol + 1e-6)


def test_write_grey_16bit_png_and_shapes(tmp_path: Path) -> None:
    grey = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    path = write_image(tmp_path / "g.png", grey[..., None], bit_depth=16)
    assert Image.open(path).mode.startswith("I")
    np.testing.assert_allclose(read_image(path)[..., 0], grey, atol=1e-5)
    with pytest.raises(ValueError, match="16-bit"):
        write_image(tmp_path / "c.png", np.zeros((2, 2, 3)), bit_depth=16)
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "nan.png", np.full((2, 2), np.nan))
    with pytest.raises(ValueError):
        write_image(tmp_path / "bad.png", np.zeros((2, 2, 2)))
    assert not (tmp_path / "nan.png").exists()


def test_writes_are_atomic_and_do_not_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "keep.png"
    write_image(path, np.zeros((4, 4)))
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_image(path, np.ones((4, 4)))
    with pytest.raises(FileExistsError):
        write_mask(path, np.ones((4, 4), dtype=np.int64))
    assert path.read_bytes() == before
    write_image(path, np.ones((4, 4)), overwrite=True)
    assert read_image(path).min() == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]  # no temp files left behind


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        write_image(tmp_path / "x.png", np.zeros((2, 2)))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ listing


def test_iter_image_files_sorted_recursive_filtered(tmp_path: Path) -> None:
    for rel in [
        "b.png",
        "a.JPG",
        "sub/c.tif",
        "sub/deeper/d.bmp",
        "notes.txt",
        ".hidden.png",
        ".git/e.png",
    ]:
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in io.iter_image_files(tmp_path)]
    assert found == ["a.JPG", "b.png", "sub/c.tif", "sub/deeper/d.bmp"]
    flat = [p.name for p in io.iter_image_files([tmp_path, tmp_path / "b.png"], recursive=False)]
    assert flat == ["a.JPG", "b.png"]
    with pytest.raises(FileNotFoundError):
        list(io.iter_image_files(tmp_path / "missing"))
