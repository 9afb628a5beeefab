"""The built-in data specs as names and one-line descriptions, for menus and ``--help``.

Kept apart from :mod:`aestudio.data.specs` (which opens them and imports torch) so
the app can fill its data menu without loading torch at start-up.
"""

from __future__ import annotations


def builtin_specs() -> dict[str, str]:
    """Spec name -> one-line description, for menus and ``--help``."""
    return {
        "digits": "scikit-learn's 1,797 handwritten digits, 8x8 grey, labels 0-9 (bundled, instant)",
        "shapes": "procedural sprites (square, ellipse, triangle, heart) with known scale, rotation and position, 32x32",
        "shapes-seg": "procedural scenes of circles, squares and triangles on textured backgrounds, 64x64 RGB, 4-class masks",
        "mnist:DIR": "MNIST handwritten digits from IDX files in DIR (downloaded there when online), 28x28",
        "fashion-mnist:DIR": "Fashion-MNIST clothing from IDX files in DIR (downloaded there when online), 28x28",
        "folder:DIR": "any PNG/JPEG/TIFF/BMP images under DIR, loaded lazily, unlabelled",
        "pairs:IMAGES_DIR,MASKS_DIR": "images with index-PNG masks matched by file name, for segmentation",
    }


# The built-in data sets' own image side (mnist files are 28x28 by their format). The opener
# uses it as the default size; the CLI reads it to train a fixed-size net at the data's own
# size without opening the data set a second time.
NATIVE_SIZE = {"digits": 8, "shapes": 32, "shapes-seg": 64, "mnist": 28, "fashion-mnist": 28}


def native_size(spec: str) -> int | None:
    """A built-in spec's own image side, or None (folders, pairs: sizes vary)."""
    return NATIVE_SIZE.get(spec.partition(":")[0].strip().lower())
