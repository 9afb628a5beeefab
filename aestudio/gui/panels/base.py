"""The base class every exploration tab builds on: it receives the active model and dropped images.

A panel never loads models or files itself. The window calls
:meth:`ExplorePanel.set_model` whenever the active model changes (``None`` when
there is none) and :meth:`ExplorePanel.add_images` with image files the user
dropped or opened while the panel was current (already checked to be readable).
Heavy work belongs on ``self.tasks`` (a shared :class:`TaskRunner`), never on the
GUI thread; the model's predictor is an ONNX Runtime session with the
*interactive* profile, safe to call from one worker at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from aestudio.config import Task
from aestudio.gui.engine import LoadedModel
from aestudio.gui.workers import TaskRunner

if TYPE_CHECKING:
    from aestudio.gui.data_panel import DataSummary


class ExplorePanel(QWidget):
    """Subclass and override :meth:`on_model_changed` and :meth:`on_images`."""

    title: ClassVar[str] = "Panel"  # the tab text
    purpose: ClassVar[str] = ""  # one sentence: what this panel does
    drop_hint: ClassVar[str] = "Drop images here."  # what to drop, shown while empty
    tasks_supported: ClassVar[frozenset[Task]] = frozenset(Task)  # which models make sense here
    # The task this panel is made for, when it also runs others (the Noise lab runs any
    # autoencoder, but only a denoiser removes noise): the window offers the shipped model
    # for it, as it does for an unsupported model.
    preferred_task: ClassVar[Task | None] = None
    # A panel that says itself what became of dropped images (Label: "Added N image(s) to the
    # project", after copying them in) sets this, so the window does not say it a second time.
    reports_added_images: ClassVar[bool] = False

    notify = Signal(object, str, str)  # Level, text, details: routed to the window's message bar

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.model: LoadedModel | None = None
        self.images: list[Path] = []
        self.data: DataSummary | None = None  # what the data panel opened (spec, sizes, kind, class names)

    # -------------------------------------------------------------- called by the window

    def set_model(self, model: LoadedModel | None) -> None:
        self.model = model
        self.on_model_changed(model)

    def set_data(self, summary: DataSummary | None) -> None:
        """The data set chosen in the data panel changed (a ``DataSummary``).

        Panels that browse or map the data load its arrays themselves, off the GUI
        thread, with :func:`aestudio.gui.engine.data_arrays`.
        """
        self.data = summary
        self.on_data_changed(summary)

    def add_images(self, paths: list[Path]) -> None:
        self.images.extend(paths)
        self.on_images(paths)

    def supports(self, model: LoadedModel | None) -> bool:
        """Whether the model's task fits this panel (the window may say so in the status bar)."""
        if model is None:
            return False
        return model.info.task in self.tasks_supported

    def shutdown(self) -> None:
        """The window is closing: stop background threads (a job may finish, its result is dropped)."""

    # -------------------------------------------------------------- for subclasses

    def on_model_changed(self, model: LoadedModel | None) -> None:
        """React to a new active model (``None``: no model)."""

    def on_images(self, paths: list[Path]) -> None:
        """React to newly added image files."""

    def on_data_changed(self, summary: DataSummary | None) -> None:
        """React to a new data set in the data panel (``summary.spec`` names it)."""
