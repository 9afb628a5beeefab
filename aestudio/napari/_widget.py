"""napari dock widget: run an aestudio model (zoo, bundle, run or package) on the selected image layer.

The work happens on a napari ``thread_worker`` (never the GUI thread); the
result comes back as a new image layer (denoised / reconstructed) or labels
layer (segmentation, in the model's class colours). All the numbers are in
:mod:`aestudio.napari._logic`; this module only wires widgets.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)

from aestudio.napari._logic import LayerResult, model_choices, open_model, run_on_layer

log = logging.getLogger(__name__)

BROWSE = "Bundle, run or package…"


class _Progress(QObject):
    changed = Signal(int, int)  # emitted from the worker thread; Qt queues it to the GUI thread


class ModelWidget(QWidget):
    """Model picker, image-layer picker, Run, progress; results become new layers."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self._predictors: dict[Path, Any] = {}
        self.worker: Any = None
        self.model_box = QComboBox()
        for label, path in model_choices():
            self.model_box.addItem(label, str(path))
        self.model_box.addItem(BROWSE, "")
        self.model_box.activated.connect(self._maybe_browse)
        self.layer_box = QComboBox()
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("Model", self.model_box)
        form.addRow("Image layer", self.layer_box)
        form.addRow(self.run_button)
        form.addRow(self.progress)
        form.addRow(self.status)
        self._progress = _Progress()
        self._progress.changed.connect(self._on_progress)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(lambda _e=None: self.refresh_layers())
        self.refresh_layers()

    # ------------------------------------------------------------- choices

    def refresh_layers(self) -> None:
        current = self.layer_box.currentText()
        self.layer_box.clear()
        for layer in self.viewer.layers:
            if type(layer).__name__ == "Image":
                self.layer_box.addItem(layer.name)
        index = self.layer_box.findText(current)
        if index >= 0:
            self.layer_box.setCurrentIndex(index)

    def set_model(self, path: Path | str) -> None:
        """Choose a model by path (or zoo name); adds it to the list if it is not there."""
        text = str(path)
        index = self.model_box.findData(text)
        if index < 0:
            self.model_box.insertItem(self.model_box.count() - 1, Path(text).name, text)
            index = self.model_box.count() - 2
        self.model_box.setCurrentIndex(index)

    def _maybe_browse(self, index: int) -> None:
        if self.model_box.itemData(index):
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open a BioImage Model Zoo package", "", "Package (*.zip)")
        if not path:
            path = QFileDialog.getExistingDirectory(self, "Or a bundle or run folder")
        if path:
            self.set_model(path)
        else:
            self.model_box.setCurrentIndex(0)

    # ------------------------------------------------------------- running

    def run(self) -> None:
        from napari.qt.threading import thread_worker

        model = self.model_box.currentData()
        name = self.layer_box.currentText()
        if not model or not name:
            self.status.setText("Choose a model and an image layer first.")
            return
        layer = self.viewer.layers[name]
        data, rgb = layer.data, bool(getattr(layer, "rgb", False))
        report = self._progress.changed.emit

        @thread_worker
        def work() -> LayerResult:
            pred = self._predictor(Path(model))
            return run_on_layer(pred, data, rgb=rgb, name=name, progress=report)

        self.run_button.setEnabled(False)
        self.status.setText(f"Running {Path(model).name} on {name}…")
        self.worker = work()
        self.worker.returned.connect(self._add_layer)
        self.worker.errored.connect(self._failed)
        self.worker.finished.connect(lambda: self.run_button.setEnabled(True))
        self.worker.start()

    def _predictor(self, path: Path) -> Any:
        pred = self._predictors.get(path)
        if pred is None:
            pred = self._predictors[path] = open_model(path)
        return pred

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _add_layer(self, result: LayerResult) -> None:
        meta = dict(result.meta)
        if result.kind == "labels":
            colors = meta.get("metadata", {}).get("class_colors") or {}
            try:
                from napari.utils.colormaps import DirectLabelColormap

                meta["colormap"] = DirectLabelColormap(color_dict={**colors, None: (0, 0, 0, 0)})
            except (ImportError, TypeError, ValueError):  # older napari: its own label colours
                pass
            layer = self.viewer.add_labels(result.data, **meta)
        else:
            layer = self.viewer.add_image(result.data, **meta)
        self.status.setText(f"Added layer {layer.name!r}.")

    def _failed(self, exc: BaseException) -> None:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        self.status.setText(f"Failed: {first}")
        log.warning("aestudio model run failed: %s", exc)
