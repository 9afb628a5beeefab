"""``photo-shapes``: segmentation scenes whose background and objects are all cut from real photos.

Issue 13 asks for its label-quality measurement "a segmentation set of your own making with
real-photo textures". In ``shapes-seg`` (:func:`aestudio.data.procedural.render_seg`) objects are
flat colours on smooth gradients or stripes, so a pixel's colour and its neighbours' already say
"object" and a per-pixel random forest does well. Here every surface is a photo:

* the background is a random crop of a random photo, and so is each of the 2-5 objects
  (circle, square or triangle: the same geometry as ``shapes-seg``, later ones over earlier ones);
* every crop is drawn from the same distribution whatever it fills: any of the 16 natural photos
  that install offline with scikit-image and scikit-learn (:mod:`aestudio.zoo.photos`; no
  segmentation model of ours trains on them), scaled 0.5-2x, turned by any angle, mirrored at
  random, its contrast and brightness varied and grey photos kept grey.

So texture alone cannot give the class away (the background and a triangle may even come from the
same photo): what tells a circle from a square, or an object from the background, is the outline
where one texture meets another. Content is fixed: scene ``index`` is the same picture on every
machine (seeded by the index), like ``shapes-seg``.
"""

from __future__ import annotations

import functools

import numpy as np

from aestudio.data.procedural import SEG_CLASS_NAMES, SegClass, seg_shape, shape_local

SEED = 20_261_207
CLASS_NAMES = tuple(SEG_CLASS_NAMES)  # background, circle, square, triangle


@functools.cache
def _photos() -> tuple[np.ndarray, ...]:
    """Every offline photo as float32 [H, W, 3] in [0, 1] (grey ones repeated), in a fixed order."""
    from aestudio.zoo.photos import HELD_OUT_PHOTOS, TRAIN_PHOTOS, load_photo

    out = []
    for name in HELD_OUT_PHOTOS + TRAIN_PHOTOS:
        img = load_photo(name).astype(np.float32) / 255.0
        out.append(np.ascontiguousarray(np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img))
    return tuple(out)


def texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random [size, size, 3] crop of a random photo: scaled, turned, maybe mirrored, relit."""
    from scipy.ndimage import map_coordinates

    photos = _photos()
    photo = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    scale = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))  # photo pixels per scene pixel
    scale = min(scale, 0.7 * min(h, w) / size)  # the turned window must fit in the photo
    angle = rng.uniform(0, 2 * np.pi)
    half = 0.5 * size * scale * np.sqrt(2.0)  # the window's half diagonal, in photo pixels
    cy, cx = rng.uniform(half, h - half), rng.uniform(half, w - half)
    t = (np.arange(size, dtype=np.float32) - (size - 1) / 2) * scale
    gy, gx = np.meshgrid(t, t, indexing="ij")
    if rng.random() < 0.5:
        gx = -gx
    c, s = np.cos(angle), np.sin(angle)
    ys, xs = cy + c * gy - s * gx, cx + s * gy + c * gx
    out = np.stack([map_coordinates(photo[..., k], [ys, xs], order=1, mode="reflect") for k in range(3)], -1)
    mean = out.mean()
    gain, shift = rng.uniform(0.6, 1.4), rng.uniform(-0.2, 0.2)
    return np.clip((out - mean) * gain + mean + shift, 0, 1).astype(np.float32)


def render(index: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Scene ``index``: uint8 image [size, size, 3] and uint8 mask [size, size] (classes 0-3)."""
    rng = np.random.default_rng([SEED, index])
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    xx, yy = np.meshgrid(coords, coords)
    image = texture(rng, size)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(2, 6))):
        cls = SegClass(int(rng.integers(1, len(SegClass))))
        radius = rng.uniform(0.08, 0.22)
        cx, cy = rng.uniform(0.05, 0.95, size=2)
        angle = rng.uniform(0, 2 * np.pi)
        hit = seg_shape(cls, *shape_local(xx, yy, cx, cy, radius, angle))
        image[hit] = texture(rng, size)[hit]
        mask[hit] = cls
    image += rng.normal(0.0, rng.uniform(0.01, 0.03), size=image.shape).astype(np.float32)
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), mask
