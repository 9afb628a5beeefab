"""The painting surface of the Label tab: image, painted labels, prediction and uncertainty layers.

The canvas knows nothing about projects: it shows arrays and reports what the
mouse does in image coordinates (``pressed`` / ``dragged`` / ``released``); the
panel edits the project and calls :meth:`LabelCanvas.update_labels` with the
rectangle a dab touched. Only that rectangle of the label layer is recoloured
(a lookup table from class index to ARGB) and only its screen rectangle is
repainted, so a stroke on a 2048 x 2048 image costs the size of the brush,
not of the image.

Zoom with the wheel (around the cursor), pan with the middle or right button
(or Space + left drag); ``fit()`` shows the whole image.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from aestudio.gui.images import to_uint8_hwc

UNLABELLED = 255
MIN_SCALE, MAX_SCALE = 0.02, 40.0


def argb_lut(colors: list[tuple[int, int, int]], alpha: int = 255) -> np.ndarray:
    """uint32 [256]: class index -> premultiplied ARGB32; 255 (unlabelled) and unknown -> transparent."""
    lut = np.zeros(256, np.uint32)
    a = alpha / 255.0
    for i, (r, g, b) in enumerate(colors[:255]):
        lut[i] = (alpha << 24) | (int(r * a) << 16) | (int(g * a) << 8) | int(b * a)
    return lut


def premultiplied_argb(rgba: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 4] straight RGBA -> uint32 [H, W] premultiplied ARGB32 (Qt's fastest format to draw)."""
    a = rgba[..., 3].astype(np.uint32)
    premul = (rgba[..., :3].astype(np.uint32) * a[..., None]) // 255
    return np.ascontiguousarray((a << 24) | (premul[..., 0] << 16) | (premul[..., 1] << 8) | premul[..., 2],
                                dtype=np.uint32)


def _argb_image(buffer: np.ndarray) -> QImage:
    h, w = buffer.shape
    return QImage(buffer.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)


class LabelCanvas(QWidget):
    """Shows one image with its layers; reports mouse strokes in image coordinates."""

    pressed = Signal(float, float)  # y, x of a left-button press (image pixels)
    dragged = Signal(float, float)  # y, x while the left button is held
    released = Signal()
    zoom_changed = Signal(float)
    view_changed = Signal()  # zoomed, panned, fitted or resized: what is visible changed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._image: QImage | None = None
        self._image_u8: np.ndarray | None = None  # keeps the QImage's buffer alive
        self._labels = np.zeros((0, 0), np.uint32)
        self._labels_q: QImage | None = None
        self._layer: QImage | None = None  # prediction or uncertainty, drawn under the labels
        self._layer_buf: np.ndarray | None = None
        self._lut = argb_lut([])
        self.opacity = 0.6  # of the painted labels
        self.layer_opacity = 0.45
        self.brush_radius = 6.0
        self.scale = 1.0
        self.offset = QPointF(0, 0)
        self._panning: QPointF | None = None
        self._painting = False
        self._cursor: QPointF | None = None
        self.space_held = False
        self._fit_mode = True  # follow the widget's size until the person zooms or pans

    # ------------------------------------------------------------- content

    @property
    def image_size(self) -> tuple[int, int]:
        return (self._image.height(), self._image.width()) if self._image is not None else (0, 0)

    def set_image(self, image: np.ndarray | None) -> None:
        """image: float [H, W, C] in [0, 1] (or None to clear); fits it in view."""
        if image is None:
            self._image = self._image_u8 = self._labels_q = self._layer = None
            self.update()
            return
        u8 = np.ascontiguousarray(to_uint8_hwc(image))
        if u8.shape[2] == 1:
            u8 = np.ascontiguousarray(np.repeat(u8, 3, axis=2))
        h, w, _ = u8.shape
        self._image_u8 = u8
        self._image = QImage(u8.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        self._labels = np.zeros((h, w), np.uint32)
        self._labels_q = _argb_image(self._labels)
        self._layer = self._layer_buf = None
        self.fit()

    def set_colors(self, colors: list[tuple[int, int, int]]) -> None:
        self._lut = argb_lut(colors)

    def set_labels(self, mask: np.ndarray) -> None:
        """Recolour the whole label layer from mask uint8 [H, W]."""
        if self._image is None or mask.shape != self._labels.shape:
            return
        np.take(self._lut, mask, out=self._labels)
        self.update()

    def update_labels(self, mask: np.ndarray, rect: tuple[int, int, int, int] | None) -> None:
        """Recolour only ``rect`` = (top, left, bottom, right) and repaint only its screen area."""
        if rect is None or self._image is None:
            return
        t, left, b, r = rect
        np.take(self._lut, mask[t:b, left:r], out=self._labels[t:b, left:r])
        self.update(self._screen_rect(rect))

    def set_layer(self, layer: np.ndarray | None) -> None:
        """A prediction/uncertainty layer, or None to hide it.

        uint32 [H, W] premultiplied ARGB (see :func:`premultiplied_argb`; build it off the GUI
        thread: for a 2048^2 image it costs tens of ms), or uint8 [H, W, 4] straight RGBA."""
        if layer is None or self._image is None or layer.shape[:2] != self._labels.shape:
            self._layer = self._layer_buf = None
        else:
            buf = layer if layer.dtype == np.uint32 and layer.ndim == 2 else premultiplied_argb(layer)
            self._layer_buf = np.ascontiguousarray(buf)
            self._layer = _argb_image(self._layer_buf)
        self.update()

    # ------------------------------------------------------------- view

    def fit(self) -> None:
        h, w = self.image_size
        if not h:
            return
        self._fit_mode = True
        s = min(self.width() / w, self.height() / h)
        self.scale = float(np.clip(s, MIN_SCALE, MAX_SCALE))
        self.offset = QPointF((self.width() - w * self.scale) / 2, (self.height() - h * self.scale) / 2)
        self.zoom_changed.emit(self.scale)
        self.view_changed.emit()
        self.update()

    def zoom_at(self, factor: float, at: QPointF) -> None:
        self._fit_mode = False
        new = float(np.clip(self.scale * factor, MIN_SCALE, MAX_SCALE))
        img = self.to_image(at)
        self.scale = new
        self.offset = QPointF(at.x() - img.x() * new, at.y() - img.y() * new)
        self.zoom_changed.emit(new)
        self.view_changed.emit()
        self.update()

    def visible_rect(self) -> tuple[int, int, int, int] | None:
        """The image pixels in view: (top, left, bottom, right), bottom/right exclusive; None without an
        image or when none is in view."""
        h, w = self.image_size
        if not h:
            return None
        a = self.to_image(QPointF(0, 0))
        z = self.to_image(QPointF(self.width(), self.height()))
        top, left = max(0, int(np.floor(a.y()))), max(0, int(np.floor(a.x())))
        bottom, right = min(h, int(np.ceil(z.y()))), min(w, int(np.ceil(z.x())))
        if bottom <= top or right <= left:
            return None
        return top, left, bottom, right

    def to_image(self, p: QPointF) -> QPointF:
        """Widget position -> image (x, y) in pixels (continuous)."""
        return QPointF((p.x() - self.offset.x()) / self.scale, (p.y() - self.offset.y()) / self.scale)

    def to_widget(self, y: float, x: float) -> QPointF:
        return QPointF(x * self.scale + self.offset.x(), y * self.scale + self.offset.y())

    def _screen_rect(self, rect: tuple[int, int, int, int]) -> QRect:
        t, left, b, r = rect
        a = self.to_widget(t, left)
        z = self.to_widget(b, r)
        return QRectF(a, z).toAlignedRect().adjusted(-2, -2, 2, 2)

    # ------------------------------------------------------------- painting

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(event.rect(), QColor(48, 48, 52))
        if self._image is None:
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "Drop images or a label project here, or use Add images.")
            return
        # Only the part of the image under the repainted area is drawn (source rect in image pixels).
        clip = QRectF(event.rect())
        a, z = self.to_image(clip.topLeft()), self.to_image(clip.bottomRight())
        h, w = self.image_size
        x0, y0 = max(0, int(np.floor(a.x()))), max(0, int(np.floor(a.y())))
        x1, y1 = min(w, int(np.ceil(z.x())) + 1), min(h, int(np.ceil(z.y())) + 1)
        if x1 > x0 and y1 > y0:
            source = QRectF(x0, y0, x1 - x0, y1 - y0)
            target = QRectF(self.to_widget(y0, x0), self.to_widget(y1, x1))
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.scale < 1.0)
            painter.drawImage(target, self._image, source)
            if self._layer is not None:
                painter.setOpacity(self.layer_opacity)
                painter.drawImage(target, self._layer, source)
            if self._labels_q is not None and self.opacity > 0:
                painter.setOpacity(self.opacity)
                painter.drawImage(target, self._labels_q, source)
            painter.setOpacity(1.0)
        if self._cursor is not None and self._panning is None:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(QPen(QColor(255, 255, 255, 200), 1))
            r = self.brush_radius * self.scale
            painter.drawEllipse(self._cursor, r, r)

    def _cursor_rect(self) -> QRect:
        if self._cursor is None:
            return QRect()
        r = self.brush_radius * self.scale + 3
        return QRectF(self._cursor.x() - r, self._cursor.y() - r, 2 * r, 2 * r).toAlignedRect()

    # ------------------------------------------------------------- mouse

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        if event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton) or (
                event.button() == Qt.MouseButton.LeftButton and self.space_held):
            self._panning = pos
            return
        if event.button() == Qt.MouseButton.LeftButton and self._image is not None:
            self._painting = True
            p = self.to_image(pos)
            self.pressed.emit(p.y(), p.x())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        old = self._cursor_rect()
        self._cursor = pos
        if self._panning is not None:
            self._fit_mode = False
            self.offset += pos - self._panning
            self._panning = pos
            self.view_changed.emit()
            self.update()
            return
        self.update(old.united(self._cursor_rect()))
        if self._painting:
            p = self.to_image(pos)
            self.dragged.emit(p.y(), p.x())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._panning is not None:
            self._panning = None
            return
        if self._painting and event.button() == Qt.MouseButton.LeftButton:
            self._painting = False
            self.released.emit()

    def leaveEvent(self, event) -> None:  # noqa: N802
        old = self._cursor_rect()
        self._cursor = None
        self.update(old)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_at(1.25 ** steps, event.position())

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._image is not None and (self._fit_mode or event.oldSize().width() <= 0):
            self.fit()
        elif self._image is not None:
            self.view_changed.emit()
