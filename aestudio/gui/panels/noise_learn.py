"""The Noise lab's "Learn this noise" row: self-supervised training on the dropped noisy images.

:class:`NoiseLearner` drives one session with the app's :class:`TrainWorker`
(the same worker as the Train tab): the images are copied into the workspace,
``aestudio.training.learn_noise.learn`` trains a ``denoising_ae`` on them alone,
and every few seconds the newest checkpoint denoises the image on screen in a
task thread (never the GUI thread). Stop -> the run's best checkpoint is asked
to become the active model (``request_model``: the window exports it to
``RUN/bundle`` and loads it), reusable by ``aestudio denoise --model RUN/bundle``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from aestudio.config import FinishReason
from aestudio.explore.image_metrics import display_copy, run_model_image
from aestudio.gui.images import array_to_qimage
from aestudio.gui.messages import Level
from aestudio.gui.workers import TaskRunner, TrainWorker
from aestudio.training.events import CheckpointSaved, Event, RunStarted, StepEnded, TrainFinished

if TYPE_CHECKING:
    from aestudio.gui.engine import LoadedModel

logger = logging.getLogger(__name__)

PREVIEW_EVERY_S = 3.0  # the denoised pane refreshes at most this often while learning


class Preview(TypedDict):
    """The run's newest checkpoint on the image on screen."""

    denoised: np.ndarray  # float32 [H, W, C]
    qimage: QImage  # ready to paint
    step: int  # the checkpoint's step


def preview_job(run_dir: Path, image: np.ndarray) -> Preview:
    """Denoise ``image`` [H, W, C] with the run's newest checkpoint (runs in a task thread)."""
    from aestudio.export.torch_predictor import TorchPredictor
    from aestudio.training.learn_noise import latest_net

    net, info = latest_net(run_dir)
    predictor = TorchPredictor.from_net(net, info.net_name, info.net_cfg)
    denoised = run_model_image(predictor, image)
    return Preview(denoised=denoised, qimage=array_to_qimage(display_copy(denoised)), step=info.step)


class NoiseLearner(QObject):
    """One "Learn this noise" session at a time; signals carry plain data to the panel."""

    preview_ready = Signal(object)  # dict from preview_job
    running_changed = Signal(bool)
    status = Signal(str)  # one line for the row's label
    model_ready = Signal(object)  # Path of the run whose best checkpoint should become the active model
    notify = Signal(object, str, str)

    def __init__(self, tasks: TaskRunner, current_image: Callable[[], np.ndarray | None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.current_image = current_image  # the noisy image on screen, or None
        self.worker: TrainWorker | None = None
        self.run_dir: Path | None = None
        self._last_preview = 0.0
        self._preview_pending = False
        self._checkpointed = False
        self._steps = 0  # where the last session stopped
        self._origin = "from scratch"  # or "fine-tuning MODEL": said on every step's line

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.running

    def start(self, paths: list[Path], workspace: Path, model: LoadedModel | None = None) -> bool:
        """Copy ``paths`` into the workspace and start training on them; False (with a message) if it cannot.

        ``model`` (the active ``LoadedModel``): a denoising_ae bundle with the images' channel count is
        fine-tuned instead of starting from scratch, so the preview starts from its quality."""
        from aestudio._fs import unique_path
        from aestudio.gui.workspace import new_run_dir
        from aestudio.training.learn_noise import (
            NET,
            can_start_from,
            learn,
            session_name,
            stage_images,
            usable_images,
        )

        if self.running:
            return False
        try:
            good, left_out = usable_images(paths)
            images = stage_images(good or paths, unique_path(workspace / "noisy" / session_name(good), "-", folder=True))
        except (ValueError, OSError) as exc:
            self.notify.emit(Level.ERROR, f"Cannot learn this noise: {exc}", "")
            return False
        if left_out:  # too small or unreadable: named, and the others still train
            self.notify.emit(Level.WARNING, f"Learn this noise: left out {len(left_out)} image(s): {left_out[0]}"
                             + (" …" if len(left_out) > 1 else ""), "\n".join(left_out))
        run_dir = new_run_dir(workspace, NET, f"selfsup-{images.name}")  # denoising_ae-selfsup-NAME-STAMP
        self.run_dir = run_dir
        base = getattr(model, "path", None)
        init_from = Path(base) if base is not None and can_start_from(getattr(model, "info", None), images) else None
        self._checkpointed = False
        self._last_preview = 0.0

        def source(stop, pause):
            return learn(images, run_dir, stop=stop, pause=pause, init_from=init_from)

        self.worker = TrainWorker(source, self)
        self.worker.events.connect(self._on_events)
        self.worker.finished.connect(self._on_finished)
        self.worker.start()
        if init_from is not None:
            start = f", starting from {model.name}"
        elif model is not None and getattr(model.info, "net", None) == NET:
            start = f", from scratch ({model.name} has {model.info.in_channels} channel(s), these images need another count)"
        else:
            start = ", from scratch"
        self._origin = f"fine-tuning {model.name}" if init_from is not None else "from scratch"
        self.status.emit(f"Learning from {len(list(images.iterdir()))} noisy image(s){start}… the denoised image "
                         "refreshes every few seconds; press Stop to keep the best model so far.")
        self.running_changed.emit(True)
        return True

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.status.emit("Stopping after this step, then exporting the best model so far…")

    def shutdown(self, timeout: float = 5.0) -> None:
        if self.running and self.worker is not None:
            self.worker.stop()
            self.worker.join(timeout)

    # ------------------------------------------------------------------ events (GUI thread)

    def _on_events(self, batch: list[Event]) -> None:
        step = next((e for e in reversed(batch) if isinstance(e, StepEnded)), None)
        for event in batch:
            if isinstance(event, CheckpointSaved):
                self._checkpointed = True
            elif isinstance(event, RunStarted) and event.notes:
                self.notify.emit(Level.INFO, "Learn this noise: " + "; ".join(event.notes), "")
        if step is not None:
            self.status.emit(f"Learning ({self._origin})… step {step.step:,} · loss {step.loss:.4g} · "
                             f"{step.images_per_s:,.0f} crops/s · Stop keeps the best model so far")
        if self._checkpointed and time.monotonic() - self._last_preview >= PREVIEW_EVERY_S:
            self.refresh_preview()

    def refresh_preview(self) -> None:
        """Denoise the image on screen with the newest weights, off the GUI thread (one job at a time)."""
        image = self.current_image()
        if self._preview_pending or image is None or self.run_dir is None or not self._checkpointed:
            return
        self._preview_pending = True
        self._last_preview = time.monotonic()
        self.tasks.submit(preview_job, self.run_dir, image, on_result=self._previewed, on_error=self._preview_failed)

    def _previewed(self, result: Preview) -> None:
        self._preview_pending = False
        self.preview_ready.emit(result)

    def _preview_failed(self, exc: BaseException, details: str) -> None:
        self._preview_pending = False
        logger.warning("live preview failed: %s", exc)  # the next checkpoint tries again

    def _on_finished(self, ev: TrainFinished) -> None:
        self.running_changed.emit(False)
        run_dir = Path(ev.run_dir) if ev.run_dir else self.run_dir
        if ev.reason is FinishReason.FAILED or run_dir is None or not self._checkpointed:
            self.status.emit("Learning ended without a model." if ev.reason is not FinishReason.FAILED
                             else "Learning failed (see the message).")
            if ev.reason is FinishReason.FAILED:
                self.notify.emit(Level.ERROR, f"Learn this noise failed: {ev.message}", ev.details)
            return
        self._steps = ev.step
        self.status.emit(f"Learned for {ev.step:,} steps; exporting the best model as {run_dir.name}/bundle "
                         "and making it the active model…")
        self.model_ready.emit(run_dir)

    def model_changed(self, model: LoadedModel | None) -> None:
        """The window's active model changed: when it is this session's bundle, the row says so."""
        path = getattr(model, "path", None)
        if self.running or self.run_dir is None or path is None or self.run_dir not in (Path(path), *Path(path).parents):
            return
        self.status.emit(f"Active model: {model.name}, the best of {self._steps:,} steps "
                         f"(in {self.run_dir.name}/bundle; `aestudio denoise --model` takes it too).")


class LearnRow(QWidget):
    """[Learn this noise] [Stop] status: the panel's row for a :class:`NoiseLearner`."""

    def __init__(self, learner: NoiseLearner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.learner = learner
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.learn_button = QPushButton("Learn this noise")
        self.learn_button.setToolTip("Train a denoiser on the dropped noisy images alone (self-supervised, "
                                     "Neighbor2Neighbor) in the background; no clean copy needed")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop learning: the best model so far is saved as a bundle and becomes the active model")
        self.stop_button.clicked.connect(learner.stop)
        self.label = QLabel("")
        self.label.setObjectName("hint")
        self.label.setWordWrap(True)
        row.addWidget(self.learn_button)
        row.addWidget(self.stop_button)
        row.addWidget(self.label, 1)
        learner.status.connect(self.label.setText)
        learner.running_changed.connect(self.set_running)
        self.set_running(False)

    def set_running(self, running: bool) -> None:
        self.learn_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
