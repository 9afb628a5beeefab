"""Sane limits for every number that sizes a resource, and the checks that apply them.

A tiny input must never make aestudio ask for gigabytes or hours: a 5 KB PNG
declaring 1 x 5,000,000 pixels, a mask pixel of 2,000,000,000 (one class per
value), ``--workers 10000``, ``model.json`` with ``in_channels`` 1e13. Every
number that sizes memory, processes or time passes one of these checks where it
enters the program (a config dataclass, an image header, a file's size, a JSON
document), and a refusal is a :class:`LimitError` naming the field or file and
the fix. The limits are far above anything this studio trains or runs (CPU
laptops to one GPU box); raising one is a one-line change here.

No heavy imports: numpy, torch and Qt stay out, so every package can use it.
"""

from __future__ import annotations

import math
import os
from typing import Any

from aestudio.errors import AestudioError

# --- net configs (model.json, run.json, CLI flags, import-pt --param)
MAX_CHANNELS = 4  # image channels: grey, RGB (RGBA is composited before a net sees it)
MAX_NET_IMAGE_SIZE = 4096  # the square side a fixed-size net is built for
MAX_LATENT = 4096  # code values; a 64x64 RGB image has 12,288 pixels
MAX_CLASSES = 255  # mask value 255 means "unlabelled", so class indices are 0..254
MAX_WIDTH = 1024  # base_channels, channels, hidden / 256
MAX_HIDDEN = 65536
MAX_DEPTH = 10  # 2x downsamplings: 2**10 = 1024 px receptive field
MAX_SIZE_MULTIPLE = 4096
# --- training
MAX_BATCH = 8192
MAX_EPOCHS = 1_000_000
MAX_SEED = 2**32 - 1  # numpy's and torch's common range; -1 and 1e23 are refused
MAX_WORKERS_ABSOLUTE = 256  # what a config may record; the use is bounded by this machine's cores
# --- generation and noise
MAX_SAMPLES = 1024  # `sample -n`
MAX_STEPS = 256  # `interpolate -n`
MAX_BLUR_SIGMA = 50.0  # pixels; blur:100000 took 58 s an image
MAX_SIGMA = 10.0  # gaussian / speckle sigma on [0, 1] images; beyond is all clipping
MAX_PHOTONS = 1e9  # poisson: photons per unit intensity
# --- files
MAX_IMAGE_SIDE = 65_535  # pixels per side of any decoded image (PNG allows 2**31)
MAX_IMAGE_BYTES = 2 * 1024**3  # float32 bytes of one decoded image
MAX_JSON_BYTES = 64 * 1024**2  # model.json, run.json, metrics.jsonl, safetensors header
MAX_JSON_DEPTH = 64  # nesting; Python's parser would otherwise hit RecursionError
MAX_INT_DIGITS = 40  # digits of an integer in a JSON file (2**128 has 39)
MAX_WEIGHTS_BYTES = 2 * 1024**3  # model.safetensors / ONNX external data (protobuf's 2 GiB, for symmetry)
MAX_MODEL_INPUT_PIXELS = 16384**2  # a foreign model's fixed H x W


class LimitError(AestudioError, ValueError):
    """A number or a file is beyond what aestudio will allocate; the message names it and the fix."""


def cpu_count() -> int:
    """Cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS / Windows
        return max(1, os.cpu_count() or 1)


def max_workers() -> int:
    """DataLoader workers this machine can use: one per core. More only add processes
    (each a copy of the interpreter and torch, ~400 MB) that wait for the same cores."""
    return cpu_count()


def check_int(name: str, value: Any, lo: int, hi: int, *, where: str = "", fix: str = "") -> int:
    """``value`` as an int in [lo, hi]; refuses bools, floats with a fraction, NaN, strings.

    ``name`` is how the user knows the number (``--latent-dim``, ``latent_dim``),
    ``where`` the file it came from, if any."""
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LimitError(f"{prefix}{name} must be a whole number, not {_show(value)}")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise LimitError(f"{prefix}{name} must be a whole number, not {_show(value)}")
        value = int(value)
    if not lo <= value <= hi:
        raise LimitError(f"{prefix}{name} is {_show(value)}; it must be between {lo} and {hi:,}" + (f"; {fix}" if fix else ""))
    return int(value)


def check_float(name: str, value: Any, lo: float, hi: float, *, where: str = "", lo_open: bool = False) -> float:
    """``value`` as a finite float in [lo, hi] (or (lo, hi] with ``lo_open``)."""
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LimitError(f"{prefix}{name} must be a number, not {_show(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise LimitError(f"{prefix}{name} must be a finite number, not {value}")
    if value < lo or value > hi or (lo_open and value == lo):
        low = f"> {lo:g}" if lo_open else f">= {lo:g}"
        raise LimitError(f"{prefix}{name} is {value:g}; it must be {low} and <= {hi:g}")
    return value


def check_image_header(path: Any, width: int, height: int, channels: int = 3) -> None:
    """Refuse an image whose header asks for more than aestudio decodes, before decoding.

    Pillow's own bomb check counts pixels only, so a 1 x 5,000,000 strip (5 KB as a
    PNG) passes it; every later resize then works on a 5-million-pixel row."""
    if width < 1 or height < 1:
        raise LimitError(f"{path}: the header declares a {width} x {height} image; the file is damaged")
    if max(width, height) > MAX_IMAGE_SIDE:
        raise LimitError(f"{path}: the header declares a {width:,} x {height:,} image; aestudio reads images up to "
                         f"{MAX_IMAGE_SIDE:,} px a side (aestudio.limits.MAX_IMAGE_SIDE); crop or downscale it first")
    need = width * height * max(1, channels) * 4
    if need > MAX_IMAGE_BYTES:
        raise LimitError(f"{path}: the header declares a {width:,} x {height:,} image, {need / 1024**3:.1f} GiB decoded; "
                         f"the limit is {MAX_IMAGE_BYTES / 1024**3:.0f} GiB (aestudio.limits.MAX_IMAGE_BYTES); "
                         "downscale it first")


def check_file_size(path: Any, limit: int, what: str) -> int:
    """The size of ``path``; refuses files over ``limit`` (sparse ones too: st_size is what a read would fetch)."""
    size = os.stat(path).st_size
    if size > limit:
        raise LimitError(f"{path}: {what} is {size / 1024**3:.1f} GiB, over the {limit / 1024**3:.1f} GiB aestudio reads; "
                         "the file is damaged or not one aestudio wrote")
    return size


def _show(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"a {int(value.bit_length() * 0.30103) + 1}-digit number"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
