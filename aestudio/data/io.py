"""The one image loader and writer used everywhere (numpy, Pillow, tifffile; no torch).

Reading is a whitelist: PNG, JPEG, TIFF (8/16-bit, float; the first page of a
multi-page file) and BMP, recognised by their content, not their suffix.
Everything else (GIF, WebP, PDF, EPS, FITS, ...) is refused with a message
naming the file and what is supported. Every failure a user can meet (zero
bytes, truncated data, decompression bombs, odd colour modes) raises
:class:`ImageLoadError` naming the file and the fix.

Images come back as float32 ``[H, W, C]`` in [0, 1] with C = 1 or 3, EXIF
orientation applied, so the rest of the program never sees a Pillow mode.

Colour modes are converted explicitly:

* ``1``, ``L``: grey, C = 1. ``I;16*`` and ``I`` (16-bit PNG/TIFF): divided by
  65535 (the real white level of 16-bit files), clipped. A 16-bit *colour* PNG
  is decoded by Pillow to 8 bits: read so, with a warning (once per file) naming
  it and the fix (a 16-bit TIFF, which tifffile reads in full). ``F``: taken as is
  when already within [0, 1]; otherwise rescaled by its own min/max, because
  a float image has no fixed white level.
* ``RGBA``, ``LA``, ``P`` with transparency: composited on **white**. Dropping
  alpha instead would expose whatever colour the encoder left under fully
  transparent pixels (often black or garbage); white matches how viewers and
  documents show transparent images.
* ``P`` (palette): expanded to RGB. ``CMYK``, ``YCbCr``: converted to RGB.

Writes are atomic (a temporary file in the same folder, fsync, ``os.replace``)
and refuse to overwrite an existing file unless ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from aestudio._fs import atomic_write
from aestudio.data.tiff import float_to_unit, is_tiff, needs_tifffile, probe_tiff, read_tiff
from aestudio.errors import AestudioError
from aestudio.limits import MAX_CLASSES, LimitError, check_image_header
from aestudio.palette import default_palette

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

SUPPORTED_SUFFIXES: tuple[str, ...] = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff")
SUPPORTED_TEXT = "PNG, JPEG, TIFF (8/16/32-bit integer or float, grey or RGB) or BMP"

# Pillow's opener names we accept. (A JPEG carrying extra pictures, as many phone
# cameras write, opens through "JPEG" and reports format "MPO"; frame 0 is the photo.)
_ALLOWED_FORMATS = ("PNG", "JPEG", "TIFF", "BMP")
_MASK_FORMATS = ("PNG", "TIFF", "BMP")  # lossless only: JPEG would smear class indices

# Magic numbers of common refused formats, so the message can say what the file really is.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "PDF"),
    (b"%!PS", "EPS/PostScript"),
    (b"\xc5\xd0\xd3\xc6", "EPS/PostScript"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"SIMPLE  =", "FITS"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "Photoshop PSD"),
    (b"\x89HDF", "HDF5"),
    (b"\x93NUMPY", "NumPy .npy"),
)

# Luminance weights of ITU-R BT.601, the ones Pillow uses for RGB -> L.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_UINT16_WHITE = 65535.0
_WARNED_8BIT: set[Path] = set()  # 16-bit colour PNGs already said to be read at 8 bits
NO_LABEL_VALUE = 255  # the mask value for "unlabelled" (DESIGN.md; data.base.NO_LABEL)


class ImageLoadError(AestudioError, ValueError):
    """An image file could not be used; the message names the file and the fix."""


class _PillowCannotOpenTiff(ImageLoadError):
    """A TIFF that only tifffile reads; read_image and probe_image take that route."""


class BitDepth(enum.IntEnum):
    """Bits per sample when writing images."""

    EIGHT = 8
    SIXTEEN = 16


class ImageInfo(NamedTuple):
    """What the header says, without decoding pixels (see :func:`probe_image`)."""

    format: str  # Pillow's format name, e.g. "PNG"
    width: int
    height: int
    mode: str  # Pillow's mode, e.g. "RGB", "I;16"
    channels: int  # what read_image returns by default: 1 or 3


# ------------------------------------------------------------------ reading


def probe_image(path: PathLike) -> ImageInfo:
    """Read the header of a supported image (cheap: no pixel decoding)."""
    path = Path(path)
    try:
        with _open_checked(path) as img:
            return ImageInfo(
                img.format or "?", img.width, img.height, img.mode, _native_channels(img.mode)
            )
    except _PillowCannotOpenTiff:
        try:
            w, h, c = probe_tiff(path)
        except Exception as exc:
            raise _decode_error(path, exc) from exc
        return ImageInfo("TIFF", w, h, "tifffile", c)


def read_image(path: PathLike, *, channels: int | None = None) -> np.ndarray:
    """Decode ``path`` to float32 ``[H, W, C]`` in [0, 1].

    ``channels`` None keeps the file's nature (1 for grey, 3 for colour);
    1 converts colour to luminance (BT.601), 3 repeats grey.
    """
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be None, 1 or 3, not {channels!r}")
    path = Path(path)
    try:
        with _open_checked(path) as img:
            try:
                if img.format == "TIFF" and needs_tifffile(img.tag_v2):
                    array = _tifffile_read(path, int(img.tag_v2.get(274, 1)))
                else:
                    img.load()  # decode now so truncation errors surface inside this try
                    if (img.format == "PNG" and img.mode in ("RGB", "RGBA") and path not in _WARNED_8BIT
                            and png_bit_depth(path) == 16):
                        _WARNED_8BIT.add(path)  # once per file: training reads it for every crop
                        log.warning("%s: a 16-bit colour PNG is read at 8 bits (Pillow decodes no more); save it "
                                    "as a 16-bit TIFF to keep its full precision", path)
                    img = ImageOps.exif_transpose(img)
                    array = _to_float(img, path)
            except (ImageLoadError, MemoryError):
                raise
            except Exception as exc:  # any decoder failure is a bad file, not a crash
                raise _decode_error(path, exc) from exc
    except _PillowCannotOpenTiff:
        array = _tifffile_read(path, 1)
    return convert_channels(array, channels)


def read_mask(path: PathLike) -> np.ndarray:
    """Decode an index mask (P or L mode PNG; also lossless TIFF/BMP) to int64 ``[H, W]``.

    Pixel values are class indices; the palette of a P-mode file is ignored.
    Colour (RGB) masks are refused: their colours would need a colour-to-class table.
    """
    path = Path(path)
    with _open_checked(path) as img:
        if img.format not in _MASK_FORMATS:
            raise ImageLoadError(
                f"{path}: masks must be lossless index images (PNG, TIFF or BMP), not {img.format}; "
                "JPEG compression changes class indices. Save the mask as a P or L mode PNG."
            )
        if img.mode not in ("P", "L", "1", "I;16", "I;16B", "I;16L", "I;16N", "I"):
            raise ImageLoadError(
                f"{path}: mask is a {img.mode} image; masks must hold one class index per pixel "
                "(P or L mode PNG). Convert colour masks to indices, e.g. "
                "Image.fromarray(index_array.astype('uint8')).save('mask.png')."
            )
        try:
            img.load()
            img = ImageOps.exif_transpose(img)  # masks must rotate like their images
            mask = np.asarray(img)
        except Exception as exc:
            raise _decode_error(path, exc) from exc
    mask = mask.astype(np.int64)
    if mask.ndim != 2:
        raise ImageLoadError(
            f"{path}: mask must be a single-channel index image, got shape {mask.shape}"
        )
    if mask.min(initial=0) < 0:
        raise ImageLoadError(f"{path}: mask has negative class indices; use 0 for background")
    top = int(mask.max(initial=0))
    if top > MAX_CLASSES and top != NO_LABEL_VALUE:
        # One class per value: a single pixel of 2,000,000,000 (or 65535 in a 16-bit mask)
        # would otherwise build that many class names and a net with that many outputs.
        raise ImageLoadError(f"{path}: mask value {top:,} is not a class index; classes are 0..{MAX_CLASSES - 1} "
                             f"and {NO_LABEL_VALUE} means unlabelled. Save the mask with class indices (e.g. 0, 1, 2)")
    return mask


@contextlib.contextmanager
def _open_checked(path: Path) -> Iterator[Image.Image]:
    """Open ``path`` with Pillow after every check that needs no decoding."""
    if not path.exists():
        raise ImageLoadError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise ImageLoadError(
            f"{path}: is a folder, not an image file; pass an image or use folder:{path}"
        )
    if path.stat().st_size == 0:
        raise ImageLoadError(f"{path}: file is empty (0 bytes); re-export or re-copy the image")
    # Never set ImageFile.LOAD_TRUNCATED_IMAGES: a truncated file must fail, not load half grey.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        log.warning(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True (set elsewhere); truncated images may load"
        )
    Image.init()  # register the TIFF opener; `formats=` below fails on unregistered names
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; treat it as the error it is.
            # (catch_warnings is process-global, but only this category is affected.)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path, formats=_ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(
            f"{path}: image is too large to decode safely ({exc}). If you trust the file, "
            "raise PIL.Image.MAX_IMAGE_PIXELS, or downscale it first."
        ) from exc
    except UnidentifiedImageError as exc:
        if is_tiff(path):  # RGB float, RGB int16...: tifffile reads them (see aestudio.data.tiff)
            raise _PillowCannotOpenTiff(f"{path}: a TIFF kind Pillow cannot open; read_image reads it with tifffile") from exc
        raise ImageLoadError(
            f"{path}: {_sniff(path)} is not supported; aestudio reads {SUPPORTED_TEXT}. "
            "Convert the file to PNG (or 16-bit TIFF)."
        ) from exc
    except OSError as exc:
        if exc.errno is None:  # Pillow's own errors ("Truncated File Read"): the content, not the disk
            raise _decode_error(path, exc) from exc
        raise ImageLoadError(
            f"{path}: cannot read the file ({exc}); check permissions and the file"
        ) from exc
    except Exception as exc:  # a damaged header: Pillow raises ValueError, SyntaxError, struct.error...
        raise _decode_error(path, exc) from exc
    try:  # before any decoding: a 5 KB PNG may declare 1 x 5,000,000 pixels
        check_image_header(path, img.width, img.height, _native_channels(img.mode))
    except LimitError as exc:
        img.close()
        raise ImageLoadError(str(exc)) from None
    try:
        yield img
    finally:
        img.close()


def _sniff(path: Path) -> str:
    """Name the real format of a refused file from its first bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return "this file"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return f"its content ({name})"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "its content (WebP)"
    if head[:8] == b"\x89PNG\r\n\x1a\n" or head[:3] == b"\xff\xd8\xff":
        return "its content (a damaged PNG/JPEG header)"
    return f"its content (unknown format, suffix {path.suffix or 'none'!r})"


def _decode_error(path: Path, exc: Exception) -> ImageLoadError:
    text = str(exc)
    if "truncated" in text.lower() or isinstance(exc, (EOFError, SyntaxError)) or "broken" in text:
        return ImageLoadError(
            f"{path}: file is truncated or corrupt ({text}); re-download or re-export it"
        )
    return ImageLoadError(
        f"{path}: cannot decode the image ({type(exc).__name__}: {text}); "
        f"re-save it as {SUPPORTED_TEXT}"
    )


def png_bit_depth(path: Path) -> int:
    """Bits per sample from a PNG's header (IHDR byte 24); 8 when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(25)
    except OSError:
        return 8
    return head[24] if len(head) == 25 and head[12:16] == b"IHDR" else 8


def _native_channels(mode: str) -> int:
    return 1 if mode in ("1", "L", "LA", "La", "F", "I") or mode.startswith("I;16") else 3


def _to_float(img: Image.Image, path: Path) -> np.ndarray:
    """Convert any accepted Pillow mode to float32 [H, W, C] in [0, 1]."""
    mode = img.mode
    if mode == "P":
        # Palette transparency lives in info["transparency"]; RGBA keeps it for compositing.
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    elif mode == "PA":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode == "1":
        array = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    elif mode == "L":
        array = np.asarray(img, dtype=np.float32) / 255.0
    elif mode == "RGB":
        array = np.asarray(img, dtype=np.float32) / 255.0
    elif mode in ("RGBA", "RGBa", "LA", "La"):
        array = _composite_on_white(img)
    elif mode.startswith("I;16") or mode == "I":
        array = np.clip(np.asarray(img).astype(np.float32) / _UINT16_WHITE, 0.0, 1.0)
    elif mode == "F":
        array = _float_to_unit(np.asarray(img, dtype=np.float32), path)
    elif mode in ("CMYK", "YCbCr", "RGBX"):
        array = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    else:
        raise ImageLoadError(
            f"{path}: colour mode {mode} is not supported; re-save the image as RGB or grey"
        )
    if array.ndim == 2:
        array = array[:, :, None]
    return np.ascontiguousarray(array, dtype=np.float32)


def _composite_on_white(img: Image.Image) -> np.ndarray:
    straight = img.convert("LA" if img.mode in ("LA", "La") else "RGBA")  # un-premultiply if needed
    array = np.asarray(straight, dtype=np.float32) / 255.0
    colour, alpha = array[..., :-1], array[..., -1:]
    return colour * alpha + (1.0 - alpha)


def _float_to_unit(array: np.ndarray, path: Path) -> np.ndarray:
    return float_to_unit(array, path)


def _tifffile():  # noqa: ANN202 - the module
    """tifffile, imported when a TIFF is written: the app's start-up imports this module (bench launch)."""
    import tifffile

    return tifffile


def _tifffile_read(path: Path, orientation: int) -> np.ndarray:
    try:
        array = read_tiff(path)
    except LimitError as exc:
        raise ImageLoadError(str(exc)) from None
    except (ImageLoadError, MemoryError):
        raise
    except Exception as exc:  # tifffile's errors on a damaged file
        raise _decode_error(path, exc) from exc
    return np.ascontiguousarray(_apply_orientation(array, orientation), dtype=np.float32)


def _apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """The eight EXIF orientations as numpy flips/rotations (same as ImageOps.exif_transpose)."""
    ops: dict[int, Callable[[np.ndarray], np.ndarray]] = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.swapaxes(a[::-1, ::-1], 0, 1),  # transverse
        8: lambda a: np.rot90(a, 1),
    }
    return ops.get(orientation, ops[1])(array)


def convert_channels(array: np.ndarray, channels: int | None) -> np.ndarray:
    """[H, W, C] with ``channels`` channels (None: as is): colour to luminance (BT.601), or grey repeated."""
    if channels is None or array.shape[-1] == channels:
        return array
    if channels == 1:
        return np.ascontiguousarray((array @ _LUMA)[..., None], dtype=np.float32)
    return np.ascontiguousarray(np.repeat(array, 3, axis=-1))


# ------------------------------------------------------------------ writing


def write_image(
    path: PathLike,
    array: np.ndarray,
    *,
    bit_depth: BitDepth | int = BitDepth.EIGHT,
    overwrite: bool = False,
    quality: int = 95,
) -> Path:
    """Write float ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]`` in [0, 1] atomically.

    The format follows the suffix (PNG, JPEG, BMP, TIFF). ``bit_depth=16`` is
    available for TIFF (grey or RGB) and grey PNG. Values are clipped to [0, 1];
    non-finite values are refused.
    """
    path = Path(path)
    bit_depth = BitDepth(bit_depth)
    image = np.asarray(array)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)):
        raise ValueError(
            f"{path}: write_image needs [H, W], [H, W, 1] or [H, W, 3], got {np.shape(array)}"
        )
    if not np.all(np.isfinite(image)):
        raise ValueError(f"{path}: image has NaN or infinite values; clean it before saving")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(
            f"{path}: cannot write {suffix or 'no suffix'}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    unit = np.clip(image.astype(np.float32), 0.0, 1.0)
    if bit_depth is BitDepth.SIXTEEN:
        if suffix in (".tif", ".tiff"):
            data16 = np.round(unit * _UINT16_WHITE).astype(np.uint16)
            _atomic_write(
                path,
                lambda fh: _tifffile().imwrite(fh, data16, photometric=_photometric(data16)),
                overwrite,
            )
            return path
        if suffix == ".png" and unit.ndim == 2:
            pil = Image.fromarray(np.round(unit * _UINT16_WHITE).astype(np.uint16))
            _atomic_write(path, lambda fh: pil.save(fh, format="PNG"), overwrite)
            return path
        raise ValueError(
            f"{path}: 16-bit output is available for TIFF and grey PNG only; use a .tif suffix"
        )
    data8 = np.round(unit * 255.0).astype(np.uint8)
    if suffix in (".tif", ".tiff"):
        _atomic_write(
            path, lambda fh: _tifffile().imwrite(fh, data8, photometric=_photometric(data8)), overwrite
        )
        return path
    pil8 = Image.fromarray(data8)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}[suffix]
    # 4:4:4 chroma: saved results keep sharp colour edges (Pillow defaults to 4:2:0).
    options = {"quality": quality, "subsampling": 0} if fmt == "JPEG" else {}
    _atomic_write(path, lambda fh: pil8.save(fh, format=fmt, **options), overwrite)
    return path


def write_mask(
    path: PathLike,
    mask: np.ndarray,
    palette: Iterable[tuple[int, int, int]] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write an integer ``[H, W]`` class-index mask as a P-mode (palette) PNG, atomically.

    ``palette`` gives an (r, g, b) colour per class; by default :func:`default_palette`.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: masks are written as index PNGs; use a .png suffix")
    mask = np.asarray(mask)
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(
            f"{path}: mask must be an integer [H, W] array, got {mask.dtype} {mask.shape}"
        )
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f"{path}: mask indices must be within 0..255 for an index PNG")
    colours = list(palette) if palette is not None else default_palette(256)
    flat = [int(c) for rgb in colours[:256] for c in rgb]
    flat += [0] * (768 - len(flat))
    pil = Image.fromarray(mask.astype(np.uint8), mode="L").convert("P")
    pil.putpalette(flat)
    _atomic_write(path, lambda fh: pil.save(fh, format="PNG"), overwrite)
    return path


def write_float_tiff(path: PathLike, array: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write float ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]`` as a float32 TIFF atomically, values as they
    are (no clipping: a float input's result written back in the input's own range, :mod:`aestudio.data.levels`)."""
    path = Path(path)
    image = np.asarray(array, dtype=np.float32)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)):
        raise ValueError(f"{path}: write_float_tiff needs [H, W], [H, W, 1] or [H, W, 3], got {np.shape(array)}")
    if path.suffix.lower() not in (".tif", ".tiff"):
        raise ValueError(f"{path}: float output is written as TIFF only; use a .tif suffix")
    if not np.all(np.isfinite(image)):
        raise ValueError(f"{path}: image has NaN or infinite values; clean it before saving")
    data = np.ascontiguousarray(image)
    _atomic_write(path, lambda fh: _tifffile().imwrite(fh, data, photometric=_photometric(data)), overwrite)
    return path


def _photometric(data: np.ndarray) -> str:
    return "rgb" if data.ndim == 3 else "minisblack"


def _atomic_write(path: Path, writer: Callable[[IO[bytes]], None], overwrite: bool) -> None:
    """Write via a temp file in the same folder, fsync, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, writer, overwrite=overwrite)


# ------------------------------------------------------------------ listing


def is_supported_file(path: PathLike) -> bool:
    """True when the suffix is one we read (hidden files, e.g. macOS '._x.png', are not)."""
    p = Path(path)
    return p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith(".")


def iter_image_files(
    paths: PathLike | Iterable[PathLike], recursive: bool = True
) -> Iterator[Path]:
    """Yield supported image files from files and folders, sorted and without duplicates.

    Folders are walked in sorted order (recursively by default), skipping
    hidden files and folders. A path that does not exist raises FileNotFoundError.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    seen: set[Path] = set()
    for raw in paths:
        root = Path(raw).expanduser()
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or folder")
        found = [root] if root.is_file() else _walk(root, recursive)
        for file in found:
            if is_supported_file(file) and file not in seen and _reachable(file):
                seen.add(file)
                yield file


def _reachable(file: Path) -> bool:
    """False (and a warning naming it) for a link pointing to itself or to nothing: such an
    entry once stopped denoise/segment before any file was processed (Path.resolve raised)."""
    try:
        file.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        why = "a symbolic link pointing to itself" if "loop" in str(exc).lower() or getattr(exc, "errno", None) == 40 \
            else "a link to nothing" if file.is_symlink() else "cannot be reached"
        log.warning("%s: %s; skipped", file, why)
        return False
    return True


def _unreadable(exc: OSError) -> None:
    log.warning("%s: cannot be read (%s); skipped with everything in it", exc.filename, exc.strerror or exc)


def _walk(root: Path, recursive: bool) -> list[Path]:
    if not recursive:
        try:
            return sorted(p for p in root.iterdir() if p.is_file() or p.is_symlink())
        except OSError as exc:
            _unreadable(exc)
            return []
    files: list[Path] = []
    for folder, dirs, names in os.walk(root, followlinks=False, onerror=_unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(Path(folder) / n for n in names)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())
