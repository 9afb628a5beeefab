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


def default_palette(num_classes: int) -> list[list[int]]:
    """Distinct RGB colours; class 0 (usually background) is black."""
    base = [
        [0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
        [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128],
    ]  # fmt: skip
    out = [base[i % len(base)] for i in range(num_classes)]
    return [list(map(int, c)) for c in out]


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
