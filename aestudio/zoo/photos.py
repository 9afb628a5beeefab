"""Natural photos that need no download, split into the denoiser's training and held-out sets.

The zoo's photo denoiser trains on scikit-image's and scikit-learn's bundled
photos (shipped inside those packages, so a recipe rebuilds offline). Some
natural photos are kept OUT of training so benchmarks and tests measure the
denoiser on images it never saw. Numpy/Pillow only at import; scikit-image and
scikit-learn are imported when a photo is loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Training photos: natural scenes and textures. (skimage's `cat` is `chelsea`, so
# it is listed once; `stereo_motorcycle` gives two views of one scene.)
TRAIN_PHOTOS: tuple[str, ...] = (
    "skimage:chelsea", "skimage:rocket", "skimage:grass", "skimage:gravel", "skimage:brick",
    "skimage:clock", "skimage:hubble_deep_field", "skimage:immunohistochemistry",
    "skimage:stereo_motorcycle", "sklearn:china", "sklearn:flower",
)
# Held out: never seen in training; the quality benchmark and tests use them.
HELD_OUT_PHOTOS: tuple[str, ...] = (
    "skimage:camera", "skimage:astronaut", "skimage:coffee", "skimage:coins", "skimage:moon",
)

TILE = 96  # written tiles; the loader crops random patches (image_size) out of each
STRIDE = 48


def load_photo(name: str) -> np.ndarray:
    """``skimage:NAME`` or ``sklearn:china|flower`` -> uint8 [H, W] or [H, W, 3]."""
    source, _, key = name.partition(":")
    if source == "skimage":
        import skimage.data

        image = getattr(skimage.data, key)()
        if isinstance(image, tuple):  # stereo_motorcycle -> (left, right, disparity)
            image = image[0]
    elif source == "sklearn":
        from sklearn.datasets import load_sample_image

        image = load_sample_image(f"{key}.jpg")
    else:
        raise ValueError(f"unknown photo source in {name!r}; use skimage:NAME or sklearn:NAME")
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    return image.astype(np.uint8)


def _variants(image: np.ndarray) -> list[np.ndarray]:
    """The photo, its mirror image, and a half-size copy of large photos.

    Halving (2x2 box mean) also cleans JPEG and sensor noise, which a denoiser
    must not learn to keep as "clean".
    """
    out = [image, image[:, ::-1]]
    h, w = image.shape[:2]
    if min(h, w) >= 400:
        h2, w2 = h // 2 * 2, w // 2 * 2
        x = image[:h2, :w2].astype(np.float32)
        half = (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4.0
        out.append(np.clip(np.rint(half), 0, 255).astype(np.uint8))
    return out


def write_training_tiles(out_dir: Path, *, photos: tuple[str, ...] = TRAIN_PHOTOS,
                         limit: int | None = None) -> int:
    """Write overlapping TILE x TILE PNG tiles of the training photos to ``out_dir``.

    Tiles rather than whole photos: the folder loader takes one random patch per
    file per epoch, so many tiles make an epoch of many patches. ``limit`` keeps
    only the first tiles (tiny test builds). Returns the number of files written.
    """
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    for name in photos:
        stem = name.replace(":", "-")
        for v, image in enumerate(_variants(load_photo(name))):
            h, w = image.shape[:2]
            for top in range(0, h - TILE + 1, STRIDE):
                for left in range(0, w - TILE + 1, STRIDE):
                    tile = image[top:top + TILE, left:left + TILE]
                    Image.fromarray(tile).save(out_dir / f"{stem}-v{v}-{top:04d}-{left:04d}.png")
                    count += 1
                    if limit is not None and count >= limit:
                        return count
    log.info("wrote %d training tiles to %s", count, out_dir)
    return count


def held_out_gray(max_side: int | None = 512) -> dict[str, np.ndarray]:
    """Held-out photos as float32 grey [H, W] in [0, 1] (BT.601 luminance), cropped to max_side."""
    out: dict[str, np.ndarray] = {}
    for name in HELD_OUT_PHOTOS:
        image = load_photo(name).astype(np.float32) / 255.0
        if image.ndim == 3:
            image = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if max_side is not None:
            image = image[:max_side, :max_side]
        out[name.partition(":")[2]] = np.ascontiguousarray(image, dtype=np.float32)
    return out
