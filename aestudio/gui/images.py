"""numpy arrays to QImage/QPixmap: images in [0, 1] and class-index masks.

Arrays are validated here (finite, right shape) so nothing malformed reaches a
painter; conversion copies the data, so the QImage owns its pixels and may cross
threads (QImage is thread-safe to build off the GUI thread; QPixmap is not).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap

# Class colours when a model or data set gives none (tab10, then repeating).
DEFAULT_PALETTE = np.array([
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
], dtype=np.uint8)
BACKGROUND_COLOR = (20, 20, 24)  # class 0 is usually background: keep it dark


def to_uint8_hwc(image: np.ndarray) -> np.ndarray:
    """[C, H, W] or [H, W, C] or [H, W] float in [0, 1] -> uint8 [H, W, 1|3]."""
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    elif a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
        a = np.transpose(a, (1, 2, 0))
    elif a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] in (1, 3) and a.shape[0] < a.shape[2]:
        a = np.transpose(a, (1, 2, 0))  # ambiguous tiny case: tensors are channels-first
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"cannot show an array of shape {np.shape(image)} as an image")
    a = np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0)
    return (np.clip(a[:, :, :3], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def array_to_qimage(image: np.ndarray) -> QImage:
    a = np.ascontiguousarray(to_uint8_hwc(image))
    h, w, c = a.shape
    if c == 1:
        q = QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8)
    else:
        q = QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return q.copy()  # detach from the numpy buffer


def mask_to_qimage(mask: np.ndarray, palette: np.ndarray | None = None) -> QImage:
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"a mask must be [H, W], got shape {m.shape}")
    pal = np.asarray(palette if palette is not None else _palette_with_background(), dtype=np.uint8)
    rgb = pal[np.clip(m.astype(np.int64), 0, None) % len(pal)]
    return array_to_qimage(rgb.astype(np.float32) / 255.0)


def _palette_with_background() -> np.ndarray:
    return np.vstack([np.array([BACKGROUND_COLOR], dtype=np.uint8), DEFAULT_PALETTE])


def scaled_pixmap(image: QImage, size: int) -> QPixmap:
    """Upscale small images without blur (pixels stay crisp), downscale smoothly."""
    mode = (Qt.TransformationMode.FastTransformation if max(image.width(), image.height()) < size
            else Qt.TransformationMode.SmoothTransformation)
    return QPixmap.fromImage(image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, mode))
