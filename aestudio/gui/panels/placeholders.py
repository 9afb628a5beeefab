"""Empty-state placeholders for the exploration tabs until their real panels land.

Each says what the tab will do and what to drop, and shows the active model and
the images received, so the routing of models and drops is visible (and testable)
before the panels exist.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from aestudio.config import Task
from aestudio.gui.engine import LoadedModel
from aestudio.gui.panels.base import ExplorePanel
from aestudio.gui.workers import TaskRunner


class PlaceholderPanel(ExplorePanel):
    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(tasks, parent)
        lay = QVBoxLayout(self)
        lay.addStretch(2)
        heading = QLabel(self.title)
        heading.setObjectName("emptyTitle")
        heading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(heading)
        purpose = QLabel(self.purpose)
        purpose.setObjectName("emptyText")
        purpose.setWordWrap(True)
        purpose.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(purpose)
        hint = QLabel(self.drop_hint)
        hint.setObjectName("emptyHint")
        hint.setWordWrap(True)
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(hint)
        self.state = QLabel()
        self.state.setObjectName("emptyState")
        self.state.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.state.setWordWrap(True)
        lay.addWidget(self.state)
        lay.addStretch(3)
        self._refresh()

    def on_model_changed(self, model: LoadedModel | None) -> None:
        self._refresh()

    def on_images(self, paths: list[Path]) -> None:
        self._refresh()

    def _refresh(self) -> None:
        if self.model is None:
            model = "No model loaded: train one, or drop a run or bundle folder."
        elif self.supports(self.model):
            model = f"Model: {self.model.name} ({self.model.runtime})"
        else:
            model = f"Model {self.model.name} does not fit this panel; load a {self._task_names()} model."
        images = f"{len(self.images)} image(s) received" if self.images else "No images yet."
        self.state.setText(f"{model}\n{images}\n(This panel is coming in the next release.)")

    def _task_names(self) -> str:
        return " or ".join(sorted(t.value for t in self.tasks_supported))


class ReconstructPlaceholder(PlaceholderPanel):
    title = "Reconstruct"
    purpose = ("See what the model keeps: each image beside its reconstruction, the error map "
               "(anomalies light up), the compression ratio, and the most similar images by code.")
    drop_hint = "Drop images (PNG, JPEG, TIFF…) or a folder to reconstruct them."
    tasks_supported = frozenset({Task.RECONSTRUCT, Task.DENOISE, Task.GENERATE})


class NoiseLabPlaceholder(PlaceholderPanel):
    title = "Noise lab"
    purpose = ("Add noise (gaussian, salt and pepper, speckle, masking, blur) with a slider and "
               "watch the model remove it, with PSNR and SSIM against the clean image.")
    drop_hint = "Drop a photo or a few images to corrupt and denoise."
    tasks_supported = frozenset({Task.DENOISE, Task.RECONSTRUCT, Task.GENERATE})


class SegmentPlaceholder(PlaceholderPanel):
    title = "Segment"
    purpose = "Pixel-wise class masks over your images, with adjustable opacity and per-class colours."
    drop_hint = "Load a U-Net (segment) model, then drop images to segment; large images are tiled."
    tasks_supported = frozenset({Task.SEGMENT})


class LatentPlaceholder(PlaceholderPanel):
    title = "Latent"
    purpose = ("Slide latent values to generate new images, interpolate between two images, and map "
               "a data set's codes in 2-D (PCA / t-SNE).")
    drop_hint = "Load a model with a code (a VAE works best), then drop two images to interpolate."
    tasks_supported = frozenset({Task.GENERATE, Task.RECONSTRUCT, Task.DENOISE})
