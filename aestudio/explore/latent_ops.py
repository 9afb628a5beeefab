"""The Latent panel's worker jobs (Qt-free): decode a code, encode dropped images, strips, PNGs.

Each function runs on a worker thread (``LatestRunner`` or the shared task
pool) and returns plain numpy or a path; none touches a widget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aestudio.explore.latent_codes import line_codes

if TYPE_CHECKING:
    from aestudio.inference.predictor import Predictor


@dataclass
class Dropped:
    """A dropped image and its code under the current model."""

    path: Path
    raw: np.ndarray  # as read, [H, W, C] float32 (re-encoded when the model changes)
    image: np.ndarray  # [C, H, W] at the model's size: what the encoder saw
    code: np.ndarray  # float32 [D]


def decode_one(predictor: Predictor, z: np.ndarray) -> np.ndarray:
    """One code [D] -> one image [C, H, W] in [0, 1]."""
    return predictor.decode(np.asarray(z, dtype=np.float32).reshape(1, -1))[0]


def encode_images(predictor: Predictor, raws: list[np.ndarray], paths: list[Path]) -> list[Dropped]:
    """Resize each image to the model's input and encode it (mu for a VAE)."""
    out = []
    for raw, path in zip(raws, paths, strict=True):
        batch, _ = predictor.prepare_image(raw)
        code = predictor.encode(batch)[0].astype(np.float32)
        if not np.isfinite(code).all():
            raise ValueError(f"{Path(path).name}: the encoder gave a code with NaN or infinite values")
        out.append(Dropped(Path(path), raw, batch[0], code))
    return out


def strip(predictor: Predictor, za: np.ndarray, zb: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` frames decoded on the line from ``za`` to ``zb`` and the strip as one image."""
    frames = predictor.decode(line_codes(za, zb, steps))
    return frames, grid_image(frames, nrow=steps)


def grid_image(images: np.ndarray, *, nrow: int | None = None) -> np.ndarray:
    """[N, C, H, W] -> one [H', W', C] image (a lone image is returned without a border)."""
    from aestudio.inference.imageops import make_grid

    images = np.clip(np.nan_to_num(np.asarray(images, dtype=np.float32)), 0.0, 1.0)
    if len(images) == 1:
        return images[0].transpose(1, 2, 0)
    return make_grid(images, nrow=nrow, padding=2, pad_value=1.0)


def save_png(make: Callable[[np.ndarray], np.ndarray], images: np.ndarray, path: Path, overwrite: bool) -> Path:
    """Write ``make(images)`` as a PNG (atomic; refuses to replace a file unless ``overwrite``)."""
    from aestudio.data.io import write_image

    return Path(write_image(Path(path), make(images), overwrite=overwrite))


def samples_grid(predictor: Predictor, n: int, seed: int, codes: np.ndarray | None, path: Path,
                 overwrite: bool) -> Path:
    """``n`` decoded samples as a grid PNG: prior samples, or the codes of random data items."""
    rng = np.random.default_rng(seed)
    if codes is None:
        z = rng.standard_normal((n, int(predictor.info.latent_dim))).astype(np.float32)
    else:
        z = np.asarray(codes, dtype=np.float32)[rng.integers(len(codes), size=n)]
    return save_png(grid_image, predictor.decode(z), path, overwrite)
