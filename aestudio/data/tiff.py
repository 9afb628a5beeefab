"""TIFFs that Pillow cannot read faithfully, read through tifffile (numpy only, no torch).

Pillow reduces 16-bit and float colour TIFFs to 8 bits, clips signed integers at
0, and does not open RGB float32/float64 or RGB int16 files at all ("unknown
format"). Microscopes, scanners and scientific cameras write exactly these, so
:func:`read_tiff` takes them with tifffile and maps every sample type to float32
in [0, 1]:

* 8/16-bit unsigned integers: divided by the type's maximum (the white level);
* 8/16-bit signed integers: the same when no value is negative, else the type's
  whole range mapped onto [0, 1] (so -32768 is black, 32767 white);
* 32/64-bit integers (counts, labels): rescaled by their own min/max, as floats;
* floats: as is when within [0, 1]; else rescaled by their own min/max, computed
  in float64 (±3e38 in float32 overflowed the subtraction to inf, then NaN);
  NaN becomes 0 and ±inf the ends of the finite range.

The first page only, like Pillow's frame 0.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from aestudio import limits
from aestudio.errors import AestudioError

log = logging.getLogger(__name__)

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF


class TiffError(AestudioError, ValueError):
    """A TIFF tifffile cannot turn into an image; the message names the file."""


def is_tiff(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in TIFF_MAGIC
    except OSError:
        return False


def needs_tifffile(tags: Any) -> bool:
    """From a Pillow TIFF's tags: deep colour, signed or 32-bit integer samples."""
    bits = tags.get(258, (8,))  # BitsPerSample
    bits = bits if isinstance(bits, tuple) else (bits,)
    samples = int(tags.get(277, 1))  # SamplesPerPixel
    fmt = tags.get(339, (1,))  # SampleFormat: 1 unsigned, 2 signed, 3 float
    fmt = fmt if isinstance(fmt, tuple) else (fmt,)
    return (samples >= 3 and max(bits) > 8) or 2 in fmt or (max(bits) == 32 and 3 not in fmt)


def probe_tiff(path: Path) -> tuple[int, int, int]:
    """(width, height, channels) of the first page, from its header."""
    import tifffile  # here, not at the top: the app's start-up imports this module (bench launch)

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        shape = page.shape
        samples = int(getattr(page, "samplesperpixel", 1))
    h, w = _hw(shape, samples)
    return w, h, 1 if samples < 3 else 3


def read_tiff(path: Path) -> np.ndarray:
    """float32 ``[H, W, C]`` in [0, 1], C = 1 or 3, alpha composited on white, as stored
    (the caller, :func:`aestudio.data.io.read_image`, applies the EXIF orientation)."""
    import tifffile  # (see probe_tiff)

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        samples = int(getattr(page, "samplesperpixel", 1))
        h, w = _hw(page.shape, samples)
        limits.check_image_header(path, w, h, min(samples, 3))  # before decoding
        data = page.asarray()
    if data.ndim == 3 and data.shape[0] in (2, 3, 4) and data.shape[-1] not in (2, 3, 4):
        data = np.moveaxis(data, 0, -1)  # planar (separate) configuration
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3 or data.shape[-1] not in (1, 2, 3, 4):
        raise TiffError(f"{path}: unexpected TIFF layout {data.shape}; save it as RGB or grey")
    array = to_unit(data, path)
    if array.shape[-1] in (2, 4):  # grey + alpha, RGB + alpha
        colour, alpha = array[..., :-1], array[..., -1:]
        array = colour * alpha + (1.0 - alpha)
    return array


def to_unit(data: np.ndarray, path: Path) -> np.ndarray:
    """Any numeric sample type as float32 in [0, 1] (see the module docstring)."""
    if data.dtype == np.bool_:
        return data.astype(np.float32)
    if np.issubdtype(data.dtype, np.integer) and data.dtype.itemsize >= 4:
        return float_to_unit(data.astype(np.float64), path)  # 32-bit counts never span their type's range
    if np.issubdtype(data.dtype, np.unsignedinteger):
        return (data.astype(np.float64) / float(np.iinfo(data.dtype).max)).astype(np.float32)
    if np.issubdtype(data.dtype, np.signedinteger):
        info = np.iinfo(data.dtype)
        if data.size == 0 or data.min() >= 0:
            return (data.astype(np.float64) / float(info.max)).astype(np.float32)
        return ((data.astype(np.float64) - info.min) / (float(info.max) - info.min)).astype(np.float32)
    if np.issubdtype(data.dtype, np.floating):
        return float_to_unit(data, path)
    raise TiffError(f"{path}: samples of type {data.dtype} are not an image; save it as 8/16-bit or float")


def _finite(array: np.ndarray) -> np.ndarray:
    """float64 with NaN and -inf black, +inf white, at the ends of the finite range (or of [0, 1])."""
    work = np.asarray(array, dtype=np.float64)
    finite = np.isfinite(work)
    if not finite.all():
        lo_f = float(work[finite].min()) if finite.any() else 0.0
        hi_f = float(work[finite].max()) if finite.any() else 1.0
        work = np.nan_to_num(work, nan=min(lo_f, 0.0), posinf=max(hi_f, 1.0), neginf=min(lo_f, 0.0))
    return work


def float_span(path: Path) -> tuple[float, float]:
    """The stored range a float TIFF's first page was mapped from by :func:`read_tiff`: (0, 1) when its
    values lie within [0, 1] (taken as they are), else its own min and max (the way back to them).
    Reads the pixels again: only the paths that write results back in the input's range ask."""
    import tifffile  # (see probe_tiff)

    with tifffile.TiffFile(path) as tif:
        work = _finite(tif.pages[0].asarray())
    lo, hi = (float(work.min()), float(work.max())) if work.size else (0.0, 0.0)
    return (0.0, 1.0) if lo >= 0.0 and hi <= 1.0 else (lo, hi)


def float_to_unit(array: np.ndarray, path: Path) -> np.ndarray:
    """Finite float32 in [0, 1]: as is when already there, else by its own finite min/max (in float64)."""
    work = _finite(array)
    lo, hi = (float(work.min()), float(work.max())) if work.size else (0.0, 0.0)
    if lo >= 0.0 and hi <= 1.0:
        return work.astype(np.float32)
    log.info("%s: float image spans [%g, %g]; rescaling to [0, 1] by its min/max", path, lo, hi)
    if not hi > lo:
        return np.zeros(work.shape, dtype=np.float32)
    return np.clip((work - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _hw(shape: tuple[int, ...], samples: int) -> tuple[int, int]:
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) == 3 and samples > 1 and shape[0] == samples and shape[-1] != samples:
        return shape[1], shape[2]  # planar
    if len(shape) >= 2:
        return shape[0], shape[1]
    return 0, 0
