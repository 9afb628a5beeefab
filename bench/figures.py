"""Image grids for the report (sample grids, latent traversals), written atomically as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from aestudio._fs import atomic_write


def grid(images: np.ndarray, *, cols: int, pad: int = 1, scale: int = 1, pad_value: float = 0.5) -> np.ndarray:
    """Tile float images [N, C, H, W] in [0, 1] into one [H', W', C] uint8 array.

    ``scale`` enlarges each pixel (nearest neighbour) so 8 x 8 digits are visible;
    the grey padding separates cells without suggesting a value of its own.
    """
    imgs = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    if imgs.ndim != 4:
        raise ValueError(f"grid needs [N, C, H, W] images, got shape {imgs.shape}")
    n, c, h, w = imgs.shape
    if scale > 1:
        imgs = imgs.repeat(scale, axis=2).repeat(scale, axis=3)
        h, w = h * scale, w * scale
    rows = -(-n // cols)
    out = np.full((c, rows * (h + pad) + pad, cols * (w + pad) + pad), pad_value, dtype=np.float32)
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        out[:, y : y + h, x : x + w] = imgs[i]
    return (out.transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8)


def save_png(path: Path, array: np.ndarray) -> Path:
    """Write a [H, W, C] uint8 array as PNG via a temp file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    # mkstemp makes the temp file private; docs are for everyone, hence mode 0o644.
    return atomic_write(
        path, lambda f: img.save(f, format="PNG"), prefix=f".{path.stem}.", suffix=".png", mode=0o644
    )
