"""Numpy-only image helpers for the predictors and the inference CLI.

Dtype conversion to float [0, 1], grayscale/RGB conversion, antialiased
resizing, padding to a size multiple, image grids, class palettes and mask
overlays. No torch and no Pillow, so the ONNX Runtime path can use them in an
environment that has only numpy and onnxruntime.
"""

from __future__ import annotations

import numpy as np

# ITU-R BT.601 luma weights: what Pillow's "L" conversion uses, so grayscale
# nets see the same values as images converted by the data loaders.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def to_float01(image: np.ndarray) -> np.ndarray:
    """uint8/uint16 -> float32 scaled to [0, 1]; float arrays -> float32 (values unchanged)."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if image.dtype == np.bool_:
        return image.astype(np.float32)
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32, copy=False)
    raise ValueError(f"unsupported image dtype {image.dtype}; pass uint8, uint16 or float in [0, 1]")


def _integer_scale(dtype: np.dtype) -> float | None:
    """The divisor that maps an integer dtype to [0, 1]; None for float and bool (values as they are)."""
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if dtype == np.bool_ or np.issubdtype(dtype, np.floating):
        return None
    raise ValueError(f"unsupported image dtype {dtype}; pass uint8, uint16 or float in [0, 1]")


def image_view(image: np.ndarray) -> np.ndarray:
    """Validate a raw image (dtype, rank, channels) and return it as [H, W, C] without copying."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy array, got {type(image).__name__}")
    _integer_scale(image.dtype)
    return as_hwc(image)


_CHUNK_ELEMENTS = 1 << 20  # rows per chunk are chosen so temporaries stay around 1-4 MiB


def row_chunks(height: int, row_elements: int) -> range:
    """Row starts for walking an image in chunks of about ``_CHUNK_ELEMENTS`` elements."""
    return range(0, height, max(1, _CHUNK_ELEMENTS // max(1, row_elements)))


def all_finite(image: np.ndarray) -> bool:
    """``np.isfinite(image).all()`` in row chunks (no full-size boolean temporary); integers are finite."""
    if not np.issubdtype(image.dtype, np.floating):
        return True
    step = row_chunks(image.shape[0], image[0].size if image.ndim > 1 else 1).step
    return all(np.isfinite(image[i : i + step]).all() for i in range(0, image.shape[0], step))


def fill_chw(src: np.ndarray, dst: np.ndarray, value_range: tuple[float, float] = (0.0, 1.0)) -> None:
    """Convert a raw [h, w, c] image region into a float32 [C, h, w] array ``dst``, in place.

    Does in one pass what ``to_float01`` + ``convert_channels`` + a value-range
    map + a channels-first transpose would do with four full-size copies: each
    output plane is written directly (dtype scaling, RGBA -> RGB, RGB -> gray by
    luma, gray -> RGB by repeat), then mapped from [0, 1] to ``value_range``.
    """
    c_out, h, w = dst.shape
    if src.shape[:2] != (h, w):
        raise ValueError(f"fill_chw: source {src.shape[:2]} and destination {(h, w)} sizes differ")
    scale = _integer_scale(src.dtype)
    c_in = 3 if src.shape[2] == 4 else src.shape[2]
    if c_in == c_out:
        for k in range(c_out):
            dst[k] = src[:, :, k]
    elif c_in == 1 and c_out == 3:
        dst[0] = src[:, :, 0]
        dst[1] = dst[0]
        dst[2] = dst[0]
    elif c_in == 3 and c_out == 1:
        plane = dst[0]
        plane[...] = src[:, :, 0]
        plane *= _LUMA[0]
        tmp = np.empty((h, w), dtype=np.float32)
        for k in (1, 2):
            tmp[...] = src[:, :, k]
            tmp *= _LUMA[k]
            plane += tmp
    else:
        raise ValueError(f"cannot convert a {src.shape[2]}-channel image to {c_out} channels")
    if scale is not None:
        dst /= np.float32(scale)
    lo, hi = value_range
    if (lo, hi) != (0.0, 1.0):
        dst *= np.float32(hi - lo)
        dst += np.float32(lo)


def as_hwc(image: np.ndarray) -> np.ndarray:
    """[H, W] or [H, W, C] (C in 1, 3, 4) -> [H, W, C]; anything else is a ValueError."""
    if image.ndim == 2:
        return image[:, :, None]
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        return image
    raise ValueError(
        f"expected an image of shape [H, W] or [H, W, C] with C in 1, 3, 4; got {image.shape}. "
        "Channels-first arrays must be transposed to channels-last first"
    )


def convert_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """[H, W, C] -> [H, W, channels]: RGBA drops alpha, RGB -> gray by luma, gray -> RGB by repeat."""
    c = image.shape[2]
    if c == 4:
        image, c = image[:, :, :3], 3
    if c == channels:
        return image
    if c == 3 and channels == 1:
        return (image @ _LUMA)[:, :, None].astype(np.float32, copy=False)
    if c == 1 and channels == 3:
        return np.repeat(image, 3, axis=2)
    raise ValueError(f"cannot convert a {c}-channel image to {channels} channels")


def _resize_matrix(src: int, dst: int) -> np.ndarray:
    """[dst, src] weights of a triangle (bilinear) filter, widened when shrinking (antialias)."""
    scale = src / dst
    support = max(1.0, scale)  # filter half-width in source pixels
    centers = (np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5
    j = np.arange(src, dtype=np.float64)
    w = np.maximum(0.0, 1.0 - np.abs(j[None, :] - centers[:, None]) / support)
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    return w.astype(np.float32)


def resize_chw(image: np.ndarray, height: int, width: int, *, channels_last: bool = False) -> np.ndarray:
    """Antialiased bilinear resize of [C, H, W] float32 planes; ``channels_last`` returns [height, width, C]."""
    c, h, w = image.shape
    if (h, w) == (height, width):
        return np.ascontiguousarray(image.transpose(1, 2, 0) if channels_last else image, dtype=np.float32)
    ry = _resize_matrix(h, height)
    rx = _resize_matrix(w, width)
    out = np.empty((height, width, c) if channels_last else (c, height, width), dtype=np.float32)
    for k in range(c):
        plane = ry @ image[k] @ rx.T
        if channels_last:
            out[:, :, k] = plane
        else:
            out[k] = plane
    return out


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Antialiased bilinear resize of [H, W, C] float32 (like Pillow's BILINEAR with reducing)."""
    h, w, c = image.shape
    if (h, w) == (height, width):
        return image
    ry = _resize_matrix(h, height)
    rx = _resize_matrix(w, width)
    out = np.empty((height, width, c), dtype=np.float32)
    for k in range(c):  # per channel: two small matrix products
        out[:, :, k] = ry @ image[:, :, k] @ rx.T
    return out


def pad_to_multiple(image: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad [C, H, W] on the bottom/right to multiples of ``multiple``; return it and (H, W).

    Reflect padding keeps the statistics of the border (zeros would read as a
    dark frame to the net); images too small to reflect fall back to edge padding.
    """
    _, h, w = image.shape
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return image, (h, w)
    mode = "reflect" if min(h, w) > 1 else "edge"
    return np.pad(image, ((0, 0), (0, ph), (0, pw)), mode=mode), (h, w)


def pad_indices(length: int, padded: int, *, reflect: bool = True) -> np.ndarray:
    """Source index of each of ``padded`` positions along an axis of ``length`` padded at the end.

    The same mapping as ``pad_to_multiple`` (``np.pad`` reflect, or edge when ``reflect`` is
    False), so a tile can be read from the unpadded image without a padded full-size copy.
    """
    return np.pad(np.arange(length), (0, padded - length), mode="reflect" if reflect else "edge")


def make_grid(images: np.ndarray, *, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """[N, C, H, W] float in [0, 1] -> one [H', W', C] image in a near-square grid."""
    if images.ndim != 4:
        raise ValueError(f"make_grid needs [N, C, H, W], got {images.shape}")
    n, c, h, w = images.shape
    cols = nrow or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), pad_value, dtype=np.float32)
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = padding + r * (h + padding), padding + q * (w + padding)
        grid[y : y + h, x : x + w] = images[i].transpose(1, 2, 0)
    return grid


def colorize(mask: np.ndarray, colors: list[list[int]]) -> np.ndarray:
    """int [H, W] class indices -> uint8 [H, W, 3] using ``colors``."""
    lut = np.asarray(colors, dtype=np.uint8)
    return lut[np.clip(mask, 0, len(lut) - 1)]


def overlay(image: np.ndarray, mask: np.ndarray, colors: list[list[int]], *, alpha: float = 0.5) -> np.ndarray:
    """Blend class colours over ``image`` [H, W, C] float [0, 1]; class 0 is left unpainted."""
    rgb = convert_channels(as_hwc(image), 3)
    col = colorize(mask, colors).astype(np.float32) / 255.0
    a = np.where(mask[:, :, None] > 0, alpha, 0.0).astype(np.float32)
    return np.clip(rgb * (1 - a) + col * a, 0.0, 1.0)


def softmax(logits: np.ndarray, axis: int = 0) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z


def softmax_argmax_(logits: np.ndarray) -> np.ndarray:
    """Turn float32 logits [K, H, W] into probabilities in place; return the argmax int64 [H, W].

    Works in row chunks so the temporaries (the per-pixel max and sum) stay small:
    a 4096 x 4096 segmentation needs the logits and the mask, nothing full-size besides.
    """
    k, h, w = logits.shape
    mask = np.empty((h, w), dtype=np.int64)
    rows = row_chunks(h, k * w)
    for r in rows:
        block = logits[:, r : r + rows.step]
        np.argmax(block, axis=0, out=mask[r : r + block.shape[1]])
        block -= block.max(axis=0, keepdims=True)
        np.exp(block, out=block)
        block /= block.sum(axis=0, keepdims=True)
    return mask
