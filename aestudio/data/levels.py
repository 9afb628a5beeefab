"""16-bit images at their own range for denoising: stretched to [0, 1] on reading, put back on writing.

A 16-bit file from a 12-bit camera holds 0-4095; a dim micrograph may hold
1000-3000. Read by the type's white level (65535, :func:`aestudio.data.io.read_image`)
it is nearly black, and its noise looks tiny next to the [0, 1] range the
denoisers were trained on (photos), so a denoiser leaves it and the noise
estimate misjudges it. So the denoising paths (self-supervised training,
``aestudio denoise``, the Noise lab and its "Learn this noise") read an
unsigned 16-bit image with :func:`read_levelled`: its own minimum becomes 0 and
its own maximum 1, the same rule for training and inference, one image at a
time and all channels together (colours keep their balance). The labelling and
segmentation paths read with the same rule (:func:`read_stretched`: the Label
tab's canvas and live trainer, ``folder:`` and ``pairs:`` data, the folder job
behind ``aestudio segment``/``reconstruct``, the app's panels), so a model
trained on stretched images is always run on stretched images. :func:`write_levelled`
maps a result back to the stored range and writes it as 16-bit, so outputs keep
the input's values and dtype.

Minimum and maximum, not percentiles: nothing is clipped, so the mapping is
exactly invertible. (A single hot pixel at 65535 leaves the image as dark as
before; that is the price of never clipping data.) 8-bit and float images, and
constant ones, are read as they are (:attr:`Levels.stretched` is False).

Float images (float TIFFs) follow the same idea, decided where they are decoded
(:func:`aestudio.data.tiff.float_to_unit`): values within [0, 1] are taken as they
are, because for a float image 0 is black and 1 white by convention (scikit-image's
``img_as_float``, and aestudio's own float results read back unchanged), so a narrow
float image in [0.2, 0.25] stays a flat grey; values beyond [0, 1] have no white level
and are mapped by their own min/max, which is this stretch (a float micrograph
holding 1000-3000 reads like the 16-bit one holding 1000-3000). Masks are never
stretched: they are class indices, read by :func:`aestudio.data.io.read_mask`.

Where results are written (``aestudio denoise`` / ``reconstruct``, the panels' Save):
a 16-bit input gives a 16-bit TIFF in its own range (:func:`result_suffix`,
:func:`write_levelled`), a float TIFF a float32 TIFF in its own range (values within
[0, 1] as they are, others mapped back onto the input's min/max: the decoder's
stretch undone, :func:`aestudio.data.tiff.float_span`), anything else an 8-bit PNG.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aestudio.data.io import (
    BitDepth,
    PathLike,
    convert_channels,
    probe_image,
    read_image,
    write_float_tiff,
    write_image,
)

log = logging.getLogger(__name__)

_WHITE16 = 65535.0
FLOAT_BITS = 32  # :attr:`Levels.bits` of a float TIFF (results are float32 TIFFs)
_MIN_SPAN = 2.0 / _WHITE16  # fewer than 3 distinct levels: nothing to stretch


@dataclass(frozen=True)
class Levels:
    """How an image's stored values map to what the nets see: ``(v - lo) / (hi - lo)``, in
    :func:`read_image` units (stored value / 65535 for 16-bit files). For a float TIFF
    (``bits`` 32) ``lo``/``hi`` are the file's own values, which the decoder already
    stretched (:func:`aestudio.data.tiff.float_to_unit`): only :meth:`restore` uses them."""

    lo: float = 0.0
    hi: float = 1.0
    bits: int = 8  # bits per stored sample: results are written at this depth (8, 16, or 32 = float)

    @property
    def stretched(self) -> bool:
        return (self.lo, self.hi) != (0.0, 1.0)

    def apply(self, image: np.ndarray) -> np.ndarray:
        if not self.stretched or self.bits == FLOAT_BITS:  # a float image comes stretched from the decoder
            return image
        return np.clip((image - np.float32(self.lo)) / np.float32(self.hi - self.lo), 0.0, 1.0).astype(np.float32)

    def restore(self, image: np.ndarray) -> np.ndarray:
        """A result in [0, 1] back in the stored range (still :func:`read_image` units)."""
        unit = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
        if not self.stretched:
            return unit
        return (unit * np.float32(self.hi - self.lo) + np.float32(self.lo)).astype(np.float32)

    def short(self) -> str:
        """``"16-bit 1000-3000, stretched"`` (beside a file's name)."""
        if self.bits == FLOAT_BITS:
            return f"float {self.lo:g} to {self.hi:g}, stretched" if self.stretched else "float"
        return f"{self.bits}-bit {round(self.lo * _WHITE16)}-{round(self.hi * _WHITE16)}, stretched" if self.stretched \
            else f"{self.bits}-bit"

    def describe(self) -> str:
        """``"16-bit values 1000-3000, stretched to the full range"`` (for notes and captions)."""
        if self.bits == FLOAT_BITS:
            return f"float values {self.lo:g} to {self.hi:g}, stretched to the full range" if self.stretched \
                else "float"
        if not self.stretched:
            return f"{self.bits}-bit"
        return (f"{self.bits}-bit values {round(self.lo * _WHITE16)}-{round(self.hi * _WHITE16)}, "
                "stretched to the full range")


def sample_bits(path: PathLike) -> int:
    """16 for an unsigned 16-bit PNG/TIFF (read from the header), 32 (:data:`FLOAT_BITS`) for a float
    TIFF, else 8 (8-bit and other kinds)."""
    path = Path(path)
    info = probe_image(path)
    if info.format == "TIFF":  # Pillow reports 16-bit colour TIFFs as "RGB": ask tifffile
        import tifffile  # here: the app's start-up must not import it (bench launch)

        try:
            with tifffile.TiffFile(path) as tif:
                dtype = np.dtype(tif.pages[0].dtype)
            return 16 if dtype == np.uint16 else FLOAT_BITS if np.issubdtype(dtype, np.floating) else 8
        except Exception:  # noqa: BLE001 - unreadable headers are read_image's to report
            return 8
    return 16 if info.mode.startswith("I;16") else 8


def levels_for(image: np.ndarray, bits: int) -> Levels:
    """The stretch of one image [H, W, C] (all channels together) read from a file of ``bits`` bits."""
    if bits != 16 or image.size == 0:
        return Levels(bits=bits)
    lo, hi = float(image.min()), float(image.max())
    if hi - lo < _MIN_SPAN or (lo, hi) == (0.0, 1.0):
        return Levels(bits=bits)
    return Levels(lo=lo, hi=hi, bits=bits)


def read_levelled(path: PathLike, *, channels: int | None = None) -> tuple[np.ndarray, Levels]:
    """:func:`read_image`, with a 16-bit image stretched by its own range; (image, how to put it back).
    A float TIFF comes stretched from the decoder; its levels are the range it came from."""
    image = read_image(path)
    bits = sample_bits(path)
    if bits == FLOAT_BITS:
        from aestudio.data.tiff import float_span

        lo, hi = float_span(Path(path))
        return convert_channels(image, channels), Levels(lo=lo, hi=hi, bits=bits)
    levels = levels_for(image, bits)
    if levels.stretched:
        log.debug("%s: %s", path, levels.describe())
    out = levels.apply(image)
    return convert_channels(out, channels), levels


def read_stretched(path: PathLike, *, channels: int | None = None) -> np.ndarray:
    """An image as the models see it: :func:`read_levelled` without the way back (labelling,
    segmentation, ``folder:``/``pairs:`` data). 8-bit and float files read exactly as
    :func:`read_image` reads them; masks are never read here."""
    image = read_image(path)
    levels = levels_for(image, sample_bits(path))  # a float file: not stretched again, no second read for its span
    return convert_channels(levels.apply(image), channels)


def result_suffix(levels: Levels | None) -> str:
    """The file type of an image result: a 16-bit TIFF for a 16-bit input (TIFF holds 16-bit grey and
    colour alike, so every command names its results the same way), a float32 TIFF for a float one,
    else an 8-bit PNG."""
    return ".tif" if levels is not None and levels.bits in (16, FLOAT_BITS) else ".png"


def file_result_suffix(path: PathLike) -> str:
    """:func:`result_suffix` of a file from its header alone (a folder job names its outputs before reading)."""
    return result_suffix(Levels(bits=sample_bits(path)))


def write_levelled(path: PathLike, image: np.ndarray, levels: Levels, *, overwrite: bool = False) -> Path:
    """Write a [0, 1] result of an image read by :func:`read_levelled` in its stored range and depth
    (a float input's as a float32 TIFF)."""
    if levels.bits == FLOAT_BITS:
        return write_float_tiff(path, levels.restore(image), overwrite=overwrite)
    depth = BitDepth.SIXTEEN if levels.bits == 16 else BitDepth.EIGHT
    return write_image(path, levels.restore(image), bit_depth=depth, overwrite=overwrite)


# ------------------------------------------------------------------ what a model was trained on

# The kinds of input a data set's images are, as the levels above read them (a model packaged for
# other programs is told how to scale each: aestudio.export.bioimageio).
EIGHT_BIT, SIXTEEN_BIT, FLOAT_UNIT, FLOAT_STRETCHED = "8-bit", "16-bit", "float", "float-stretched"
PROBE_FILES = 16  # files whose headers decide a folder's kind (cheap: headers, and float TIFFs' pixels)


def input_kind(data_spec: str, *, max_files: int = PROBE_FILES) -> str | None:
    """What kind of files ``data_spec``'s images are: :data:`EIGHT_BIT` (read as /255; the built-in
    data sets too), :data:`SIXTEEN_BIT` (stretched by their own min/max), :data:`FLOAT_UNIT` (float
    within [0, 1], taken as they are), :data:`FLOAT_STRETCHED` (float beyond it, stretched); ``None``
    when unknown: a folder that is gone or unreadable, or mixing kinds."""
    from aestudio.data.catalog import NATIVE_SIZE
    from aestudio.data.io import iter_image_files

    name, _, rest = data_spec.partition(":")
    name = name.strip().lower()
    if name in NATIVE_SIZE:
        return EIGHT_BIT
    if name == "folder":
        folder = rest
    elif name == "pairs":
        folder = rest.split(",")[0]
    else:
        return None
    kinds: set[str] = set()
    try:
        for i, path in enumerate(iter_image_files(Path(folder.strip()))):
            if i >= max_files or len(kinds) > 1:
                break
            kinds.add(_file_kind(path))
    except (OSError, ValueError) as exc:  # gone, unreadable: the caller falls back to what suits any kind
        log.debug("input kind of %s unknown: %s", data_spec, exc)
        return None
    return kinds.pop() if len(kinds) == 1 else None


def _file_kind(path: Path) -> str:
    bits = sample_bits(path)
    if bits == 16:
        return SIXTEEN_BIT
    if bits == FLOAT_BITS:
        from aestudio.data.tiff import float_span

        return FLOAT_UNIT if float_span(path) == (0.0, 1.0) else FLOAT_STRETCHED
    return EIGHT_BIT
