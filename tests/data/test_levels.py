"""16-bit images at their own range (aestudio.data.levels): stretched on reading, put back exactly on writing."""

from __future__ import annotations

import numpy as np
import tifffile

from aestudio.data.io import read_image, write_image
from aestudio.data.levels import read_levelled, result_suffix, sample_bits, write_levelled


def test_a_12_bit_camera_frame_is_stretched_and_written_back_to_its_own_values(tmp_path) -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 4096, (20, 30)).astype(np.uint16)  # a 12-bit camera in a 16-bit file
    raw[0, 0], raw[0, 1] = 0, 4095
    tifffile.imwrite(tmp_path / "cam.tif", raw)
    assert float(read_image(tmp_path / "cam.tif").max()) < 0.07  # by the type's white level: nearly black
    image, levels = read_levelled(tmp_path / "cam.tif")
    assert levels.bits == 16 and levels.stretched and "values 0-4095" in levels.describe()
    assert float(image.min()) == 0.0 and float(image.max()) == 1.0
    out = write_levelled(tmp_path / "back.tif", image, levels)
    back = tifffile.imread(out)
    assert back.dtype == np.uint16 and np.array_equal(back, raw)  # the input's values and dtype, exactly


def test_a_narrow_colour_frame_keeps_its_colour_balance_and_range(tmp_path) -> None:
    rng = np.random.default_rng(1)
    raw = (1000 + rng.integers(0, 2001, (16, 16, 3))).astype(np.uint16)
    raw[..., 2] //= 2  # blue is darker than red and green: one stretch for all channels keeps it so
    tifffile.imwrite(tmp_path / "rgb.tif", raw, photometric="rgb")
    assert sample_bits(tmp_path / "rgb.tif") == 16
    image, levels = read_levelled(tmp_path / "rgb.tif")
    assert image.shape == (16, 16, 3) and image[..., 2].mean() < 0.5 * image[..., 0].mean()
    assert result_suffix(levels) == ".tif"
    back = tifffile.imread(write_levelled(tmp_path / "back.tif", image, levels))
    assert back.dtype == np.uint16 and np.array_equal(back, raw)


def test_8_bit_full_range_and_constant_images_are_read_as_they_are(tmp_path) -> None:
    rng = np.random.default_rng(2)
    dim8 = (rng.random((12, 12, 1)) * 0.2).astype(np.float32)  # a dark 8-bit photo is meant to be dark
    write_image(tmp_path / "dim.png", dim8)
    write_image(tmp_path / "flat.png", np.full((12, 12, 1), 0.3, np.float32), bit_depth=16)
    for name in ("dim.png", "flat.png"):
        image, levels = read_levelled(tmp_path / name)
        assert not levels.stretched and np.array_equal(image, read_image(tmp_path / name))
    assert sample_bits(tmp_path / "dim.png") == 8 and sample_bits(tmp_path / "flat.png") == 16


def test_a_16_bit_colour_png_is_said_to_be_read_at_8_bits_once(tmp_path, caplog) -> None:
    """Pillow decodes 16-bit colour PNGs to 8 bits; the file is named with the fix (a 16-bit TIFF keeps it all)."""
    import logging
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    h, w = 6, 7
    pixels = (1000 + 40 * np.arange(h * w * 3)).reshape(h, w, 3).astype(">u2")
    rows = b"".join(b"\x00" + pixels[i].tobytes() for i in range(h))
    path = tmp_path / "rgb16.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    with caplog.at_level(logging.WARNING, logger="aestudio.data.io"):
        image = read_image(path)
        read_image(path)
    said = [r.getMessage() for r in caplog.records if "16-bit colour PNG" in r.getMessage()]
    assert len(said) == 1 and str(path) in said[0] and "16-bit TIFF" in said[0]
    assert image.shape == (h, w, 3) and sample_bits(path) == 8  # what was read: 8 bits, so not stretched
    write_image(tmp_path / "grey16.png", np.linspace(0, 1, 42, dtype=np.float32).reshape(6, 7, 1), bit_depth=16)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="aestudio.data.io"):
        read_image(tmp_path / "grey16.png")  # grey 16-bit PNGs are read in full: nothing to say
    assert not caplog.records
