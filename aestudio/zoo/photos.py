"""Natural photos that need no download, split into the denoiser's training and held-out sets.

The zoo's photo denoiser trains on photos shipped inside packages, so a recipe
rebuilds offline: scikit-image's and scikit-learn's bundled photos (``TRAIN_PHOTOS``,
the shipped model's set) and, for the larger set ``TRAIN_PHOTOS_V2``, PyWavelets'
two photos (pip ``PyWavelets``, the ``zoo`` extra) and the classic sample photos of
OpenCV's documentation (Debian package ``opencv-doc``, files under
``/usr/share/doc/opencv-doc/examples``). Some natural photos are kept OUT of training
so benchmarks and tests measure the denoiser on images it never saw (PyWavelets'
``camera`` is skimage's ``camera`` and is not used). Numpy/Pillow only at import;
the packages are imported when a photo is loaded, and a missing one is named.
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
# Photos inside the Debian package opencv-doc (`apt-get install opencv-doc`), relative to
# OPENCV_DOC. Natural photos only: drawings, logos, charts, text pages and synthetic shapes
# are left out, and so are second views of a scene already listed (aloeR, leuvenB is a
# different street view and kept); none is a held-out photo (checked by eye: no cameraman,
# astronaut, coffee, coins or moon among the package's images).
OPENCV_DOC = Path("/usr/share/doc/opencv-doc/examples")
OPENCV_DOC_PHOTOS: tuple[str, ...] = (
    "data/aero1.jpg", "data/aero3.jpg", "data/aloeL.jpg", "data/apple.jpg", "data/baboon.jpg",
    "data/basketball1.png", "data/board.jpg", "data/box_in_scene.png", "data/building.jpg",
    "data/butterfly.jpg", "data/chicky_512.png", "data/ela_original.jpg", "data/fruits.jpg",
    "data/graf1.png", "data/home.jpg", "data/leuvenA.jpg", "data/leuvenB.jpg", "data/messi5.jpg",
    "data/orange.jpg", "data/rubberwhale1.png", "data/smarties.png", "data/squirrel_cls.jpg",
    "data/stuff.jpg", "alphamat/input_images/plant.jpg", "hfs/data/000.jpg", "hfs/data/001.jpg",
    "hfs/data/002.jpg", "reg/home.png", "dnn_superres/butterfly.png",
    *(f"text/scenetext0{i}.jpg" for i in range(1, 7)),
)
# The larger training set of the next photo denoiser (zoo-training/photo-denoiser-v2):
# the 11 above, PyWavelets' aerial photo and `ascent`, and OpenCV's 35 photos (48 photos).
TRAIN_PHOTOS_V2: tuple[str, ...] = (
    *TRAIN_PHOTOS, "pywt:aero", "pywt:ascent", *(f"opencv-doc:{rel}" for rel in OPENCV_DOC_PHOTOS),
)
# Where each source comes from: the one-line fix when it is missing.
INSTALL_HINTS = {
    "skimage": "pip install scikit-image",
    "sklearn": "pip install scikit-learn",
    "pywt": "pip install PyWavelets (or pip install -e .[zoo])",
    "opencv-doc": "apt-get install opencv-doc (Debian's OpenCV documentation, with its sample photos)",
}

# Held out: never seen in training; the quality benchmark and tests use them.
HELD_OUT_PHOTOS: tuple[str, ...] = (
    "skimage:camera", "skimage:astronaut", "skimage:coffee", "skimage:coins", "skimage:moon",
)

TILE = 96  # written tiles; the loader crops random patches (image_size) out of each
STRIDE = 48


class PhotoSourceMissing(ImportError):
    """A photo's package is not installed; the message names the package and how to install it."""


def _missing(name: str, source: str) -> PhotoSourceMissing:
    return PhotoSourceMissing(f"photo {name!r} needs {source}: {INSTALL_HINTS[source]}")


def load_photo(name: str) -> np.ndarray:
    """``skimage:NAME``, ``sklearn:china|flower``, ``pywt:aero|ascent`` or ``opencv-doc:REL`` -> uint8
    [H, W] or [H, W, 3]. Raises :class:`PhotoSourceMissing` naming the package to install."""
    source, _, key = name.partition(":")
    if source == "skimage":
        try:
            import skimage.data
        except ImportError:
            raise _missing(name, source) from None
        image = getattr(skimage.data, key)()
        if isinstance(image, tuple):  # stereo_motorcycle -> (left, right, disparity)
            image = image[0]
    elif source == "sklearn":
        try:
            from sklearn.datasets import load_sample_image
        except ImportError:
            raise _missing(name, source) from None
        image = load_sample_image(f"{key}.jpg")
    elif source == "pywt":
        if key == "camera":  # skimage's camera: a held-out photo
            raise ValueError(f"{name!r} is the held-out skimage:camera; it must not be trained on")
        try:
            import pywt.data
        except ImportError:
            raise _missing(name, source) from None
        image = getattr(pywt.data, key)()
    elif source == "opencv-doc":
        path = OPENCV_DOC / key
        if not path.is_file():
            raise _missing(name, source)
        from PIL import Image

        with Image.open(path) as im:
            image = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
    else:
        raise ValueError(f"unknown photo source in {name!r}; use skimage:, sklearn:, pywt: or opencv-doc:")
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
                         limit: int | None = None, stride: int = STRIDE) -> int:
    """Write TILE x TILE PNG tiles (every ``stride`` pixels) of the training photos to ``out_dir``.

    Tiles rather than whole photos: the folder loader takes one random patch per
    file per epoch, so many tiles make an epoch of many patches. ``limit`` keeps
    only the first tiles (tiny test builds). Returns the number of files written.
    """
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    for name in photos:
        stem = name.replace(":", "-").replace("/", "-")
        for v, image in enumerate(_variants(load_photo(name))):
            h, w = image.shape[:2]
            for top in range(0, h - TILE + 1, stride):
                for left in range(0, w - TILE + 1, stride):
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


# Photo sets a recipe's `prepare` step names: photos, tile stride.
PHOTO_SETS: dict[str, tuple[tuple[str, ...], int]] = {
    "photos": (TRAIN_PHOTOS, STRIDE),  # the shipped photo-denoiser's set
    # 48 photos; tiles without overlap (3,816 tiles: an epoch of a few minutes, so every epoch's
    # checkpoint is minutes apart on a shared machine).
    "photos-v2": (TRAIN_PHOTOS_V2, TILE),
}


def write_photo_set(set_name: str, out_dir: Path, *, limit: int | None = None) -> int:
    """Write the tiles of a named photo set (:data:`PHOTO_SETS`); the same files every time."""
    if set_name not in PHOTO_SETS:
        raise ValueError(f"unknown photo set {set_name!r}; known: {', '.join(PHOTO_SETS)}")
    photos, stride = PHOTO_SETS[set_name]
    return write_training_tiles(out_dir, photos=photos, limit=limit, stride=stride)


def main(argv: list[str] | None = None) -> int:
    """``python -m aestudio.zoo.photos SET OUT_DIR``: write a photo set's training tiles (offline)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m aestudio.zoo.photos", description=main.__doc__)
    parser.add_argument("set", choices=sorted(PHOTO_SETS))
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        write_photo_set(args.set, args.out)
    except PhotoSourceMissing as exc:
        print(f"aestudio.zoo.photos: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
