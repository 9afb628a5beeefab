"""A fuzz corpus of image files: each file with what ``read_image`` must do with it.

``build_corpus(folder)`` writes the files and returns ``{file name: expectation}``;
an expectation is ``("load", channels, (H, W))`` or ``("refuse", words the message must hold)``.
Used by tests/reliability/test_images.py (read in a child process) and kept
small enough to build in well under a second.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

Expectation = tuple


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width x height`` grey pixels and carries one tiny IDAT: a bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _noise(h: int, w: int, c: int = 3, seed: int = 0) -> np.ndarray:
    shape = (h, w, c) if c > 1 else (h, w)
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _exif_jpeg(orientation: int) -> bytes:
    img = Image.fromarray(_noise(6, 10))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(img, "JPEG", exif=exif.tobytes(), quality=90)


def build_corpus(folder: Path) -> dict[str, Expectation]:
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[bytes, Expectation]] = {}
    rgb = Image.fromarray(_noise(12, 20))
    png, jpg = encoded(rgb, "PNG"), encoded(rgb, "JPEG", quality=90)
    tif = io.BytesIO()
    tifffile.imwrite(tif, _noise(12, 20), photometric="rgb")
    tif_bytes = tif.getvalue()

    refuse = lambda *words: ("refuse", words)  # noqa: E731
    load = lambda c, hw: ("load", c, hw)  # noqa: E731
    files["zero.png"] = (b"", refuse("0 bytes"))
    files["truncated.png"] = (png[: len(png) // 2], refuse("truncated"))
    files["truncated.jpg"] = (jpg[: len(jpg) // 2], refuse("truncated"))
    files["truncated-header.jpg"] = (jpg[:30], refuse())
    files["truncated.tif"] = (tif_bytes[: len(tif_bytes) // 2], refuse())
    files["header-only.png"] = (png[:40], refuse())
    corrupt = bytearray(jpg)
    corrupt[len(corrupt) // 2: len(corrupt) // 2 + 64] = bytes(64)
    files["bad-scan.jpg"] = (bytes(corrupt), None)  # may decode with artefacts or be refused; never crash
    bad_crc = bytearray(png)
    bad_crc[33 + 8 + 4] ^= 0xFF  # a byte inside the first IDAT: its CRC no longer matches
    files["bad-crc.png"] = (bytes(bad_crc), refuse())
    files["bomb-2x.png"] = (png_header_only(30_000, 30_000), refuse("too large", "MAX_IMAGE_PIXELS"))
    files["bomb-1x.png"] = (png_header_only(10_000, 10_000), refuse("too large", "MAX_IMAGE_PIXELS"))
    files["doc.pdf"] = (encoded(Image.new("RGB", (8, 8)), "PDF"), refuse("PDF", "PNG, JPEG, TIFF"))
    files["fig.eps"] = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n", refuse("EPS", "PNG, JPEG, TIFF"))
    files["sky.fits"] = (b"SIMPLE  =                    T" + b" " * 50 + b"END" + b" " * 2797, refuse("FITS"))
    files["anim.gif"] = (encoded(Image.new("P", (8, 8)), "GIF"), refuse("GIF"))
    files["gif-named.png"] = (encoded(Image.new("P", (8, 8)), "GIF"), refuse("GIF"))
    files["text.png"] = (b"hello, I am not an image\n" * 10, refuse("not supported"))
    files["html.jpg"] = (b"<!doctype html><html></html>", refuse("not supported"))
    files["npy.png"] = (b"\x93NUMPY" + bytes(100), refuse("NumPy"))
    for o in range(1, 9):
        files[f"exif-{o}.jpg"] = (_exif_jpeg(o), load(3, (10, 6) if o >= 5 else (6, 10)))
    i16 = Image.fromarray(np.arange(12 * 20, dtype=np.uint16).reshape(12, 20) * 250)
    files["i16.png"] = (encoded(i16, "PNG"), load(1, (12, 20)))
    pal = Image.fromarray(_noise(12, 20, 1)).convert("P")
    files["palette.png"] = (encoded(pal, "PNG"), load(3, (12, 20)))
    files["palette-transparent.png"] = (encoded(pal, "PNG", transparency=0), load(3, (12, 20)))
    files["rgba.png"] = (encoded(Image.fromarray(_noise(12, 20, 4)), "PNG"), load(3, (12, 20)))
    files["la.png"] = (encoded(rgb.convert("LA"), "PNG"), load(1, (12, 20)))
    files["cmyk.jpg"] = (encoded(rgb.convert("CMYK"), "JPEG"), load(3, (12, 20)))
    files["cmyk.tif"] = (encoded(rgb.convert("CMYK"), "TIFF"), load(3, (12, 20)))
    files["bilevel.png"] = (encoded(rgb.convert("1"), "PNG"), load(1, (12, 20)))
    files["grey.bmp"] = (encoded(rgb.convert("L"), "BMP"), load(1, (12, 20)))
    files["rgb16.tif"] = (_tiff(np.arange(12 * 20 * 3, dtype=np.uint16).reshape(12, 20, 3), "rgb"), load(3, (12, 20)))
    files["float.tif"] = (_tiff(np.linspace(-5, 5, 240, dtype=np.float32).reshape(12, 20), "minisblack"), load(1, (12, 20)))
    files["png-named.jpg"] = (png, load(3, (12, 20)))
    files["one-pixel.png"] = (encoded(Image.new("L", (1, 1)), "PNG"), load(1, (1, 1)))
    expectations = {}
    for name, (data, exp) in files.items():
        (folder / name).write_bytes(data)
        expectations[name] = exp
    return expectations


def _tiff(array: np.ndarray, photometric: str) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, array, photometric=photometric)
    return buf.getvalue()
