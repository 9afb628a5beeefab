"""The Label tab: paint a few strokes per class, a U-Net learns them live, correct and repeat.

Widgets only, bound to the Qt-free :class:`~aestudio.data.project.LabelProject`
(images, masks with 255 = unlabelled, classes, undo/redo) and
:class:`~aestudio.training.live.LiveTrainer` (the U-Net trained on the painted
pixels). Masks are saved after every stroke by a :class:`MaskSaver` thread;
training runs in the app's :class:`TrainWorker`; predictions are made from the
trainer's published weights on a :class:`LatestRunner` thread; export and
ranking run on the window's task pool. The GUI thread only paints.

Keys: 1-9 pick the class (1 = the first in the list), ``[`` / ``]`` brush size,
B brush, E erase, F fill, A accept the prediction under the brush, Ctrl+Z undo, Ctrl+Shift+Z (or Ctrl+Y) redo, Space+drag
or the right/middle button pans, the wheel zooms, 0 fits the image.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from aestudio.config import FinishReason
from aestudio.data.levels import Levels
from aestudio.data.project import LabelProject, MaskSaver, ProjectError, Stroke, is_project
from aestudio.gui.label_canvas import LabelCanvas
from aestudio.gui.messages import Level
from aestudio.gui.panels.base import ExplorePanel
from aestudio.gui.panels.common import LatestRunner
from aestudio.gui.panels.label_jobs import (
    Prediction,
    SnapshotNets,
    export_bundle,
    predict_image,
    rank_by_uncertainty,
)
from aestudio.gui.panels.label_schedule import RefreshSchedule
from aestudio.gui.workers import TaskRunner, TrainWorker

if TYPE_CHECKING:  # torch loads when training or a saved model first needs it, never with the window
    from aestudio.data.project import AddReport
    from aestudio.training.events import Event, TrainFinished
    from aestudio.training.live import LiveConfig, LiveTrainer

log = logging.getLogger(__name__)

UNLABELLED = 255
REFRESH_MS = 2000  # prediction refresh while training ("every few seconds")
STROKE_REFRESH_MS = 400  # after a stroke: refresh this soon (debounced)
# While training, how soon the next refresh may start is measured, not assumed: RefreshSchedule
# (label_schedule.py) reads from the trainer's step log (each step's period, and whether a prediction
# overlapped it) the share of its speed the training keeps, and spaces the refreshes to keep 90% (a
# share of the wall time, 0.05-0.45). The fixed budgets it replaced
# (a share of the process's CPU time: 12% refreshed every 6.1 s on a quiet machine with the training
# at 1.07 of its speed, every 10.6 s at load 4 with 0.93; 20% 8.5 s with 0.85 at load 3-5) were either
# too careful or too greedy depending on the machine's load (bench label_live).
# Zoomed in, only the view is predicted (with this margin of context each side, image pixels), when
# that is at most VIEW_SHARE of the image: a refresh then costs the view's size, not the image's.
VIEW_MARGIN = 48
VIEW_SHARE = 0.5
VIEW_REFRESH_MS = 250  # after a pan or zoom: predict what came into view this soon (debounced)
# After an edit while training, its neighbourhood (this margin around it, image pixels) is predicted
# first, as soon as the trainer has published weights that learnt from it, outside the schedule (a
# few hundredths of a CPU-second): the person sees the stroke's effect within a step or two; the
# whole view follows in the schedule's next slot.
LOCAL_MARGIN = 96
LOCAL_RETRY_MS = 300
LOCAL_WAIT_S = 15.0  # give up on a neighbourhood refresh the trainer has not caught up with by then
WEIGHTS = "model/weights.safetensors"
PRETRAIN_SECONDS = 30.0  # encoder pre-training before the first training (the option in the Model box)
PRETRAIN_MAX_IMAGES = 100
PRETRAIN_MAX_PIXELS = 64 * 2**20  # e.g. 16 images of 2048 x 2048 (~400 MB as float16 RGB)
UNPAINTED_MAX_IMAGES = 400  # unpainted images the trainer's pseudo-labels learn from (LiveConfig.unlabelled_share)
UNPAINTED_MAX_PIXELS = 32 * 2**20  # ~200 MB as float16 RGB; bench label_quality's 200 unpainted images are 3.3 M pixels
RECENT_KEY = "labels/recent"  # QSettings: the label projects opened last, newest first
RECENT_MAX = 8
CLASS_ROWS = 3  # class rows always in view in the Classes box; more when the tool column has room (more scroll)


class _Refit(QObject):
    """Calls ``fit`` once the watched widgets were resized or asked for a new layout, after the
    layout has settled (a zero-time timer: sizes read in the middle of a relayout were stale, and a
    list fitted to them left the column's scroll bar showing)."""

    def __init__(self, fit, parent: QObject) -> None:  # noqa: ANN001 - a callable
        super().__init__(parent)
        self._timer = QTimer(self, singleShot=True, interval=0, timeout=fit)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.Resize, QEvent.Type.LayoutRequest):
            self._timer.start()
        return False


def _swatch(color: tuple[int, int, int]) -> QIcon:
    """A class's colour as a list icon."""
    pix = QPixmap(14, 14)
    pix.fill(QColor(*color))
    return QIcon(pix)


class LabelPanel(ExplorePanel):
    title = "Label"
    reports_added_images = True  # _images_added says how many the project took
    purpose = "Paint a few strokes per class; a U-Net learns them while you paint; correct it and repeat."
    drop_hint = "Drop images or a label project folder."
    tasks_supported = frozenset()

    request_model = Signal(object)  # Path of an exported bundle the window should load

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(tasks, parent)
        self.project: LabelProject | None = None
        self.saver: MaskSaver | None = None
        self._started_in: Path | None = None  # a project this drop created: announced with its images
        self.current = -1
        self.image: np.ndarray | None = None  # the float image on screen
        self.stroke: Stroke | None = None
        self.class_index = 1
        self.tool = "brush"
        self.trainer: LiveTrainer | None = None
        self.worker: TrainWorker | None = None
        self.prediction: Prediction | None = None
        self.predictions_made = 0
        self.layer_mode = "prediction"
        self.runner = LatestRunner(self, name="aestudio-label-predict")
        self.nets = SnapshotNets()
        # Rank by doubt's own (it runs on the TaskRunner, and a SnapshotNets serves one thread): kept between
        # rankings, so they share one session and one graph export; one ranking at a time.
        self._rank_nets: SnapshotNets | None = None
        self._ranking = False
        self._load_token = 0
        self._predict_t0 = 0.0
        self._next_refresh = 0.0  # monotonic time before which a training-time refresh waits
        self.schedule = RefreshSchedule()  # spaces the refreshes while training (measured cost)
        self._inflight_key = ""  # the image of the prediction submitted last
        self._accept_pending: tuple[str, int | None] | None = None  # (image, class) an Accept waits to take
        self._graph_asked = False  # the prediction's graph was asked for (exported ahead of the first Train)
        self.live_config: LiveConfig | None = None  # an override (tests, benches)
        self.pretrain_seconds = PRETRAIN_SECONDS
        self._build()
        self._refresh_timer = QTimer(self, interval=REFRESH_MS, timeout=self.refresh_prediction)
        self._stroke_timer = QTimer(self, singleShot=True, interval=STROKE_REFRESH_MS, timeout=self.refresh_prediction)
        self._view_timer = QTimer(self, singleShot=True, interval=VIEW_REFRESH_MS, timeout=self.refresh_prediction)
        self._local_timer = QTimer(self, singleShot=True, interval=LOCAL_RETRY_MS, timeout=self.refresh_local)
        self._local: tuple[str, tuple[int, int, int, int], int, float] | None = None  # key, box, step, deadline
        self.local_predictions = 0
        self.canvas.view_changed.connect(self._view_timer.start)
        self._error_timer = QTimer(self, interval=1000, timeout=self._report_save_errors)
        self._error_timer.start()

    # ================================================================ layout

    def _build(self) -> None:
        top = QHBoxLayout()
        self.new_btn = QPushButton("New project…", clicked=self.new_project_dialog)
        self.open_btn = QPushButton("Open project…", clicked=self.open_project_dialog)
        self.add_btn = QPushButton("Add images…", clicked=self.add_images_dialog)
        # A push button with a menu sizes itself for its text and the arrow (a QToolButton
        # in InstantPopup mode drew its arrow over "Recent").
        self.recent_btn = QPushButton("Recent")
        self.recent_menu = QMenu(self.recent_btn)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.recent_btn.setMenu(self.recent_menu)
        self.project_label = QLabel("No project: drop images to start one.")
        self.project_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for w in (self.new_btn, self.open_btn, self.recent_btn, self.add_btn):
            top.addWidget(w)
        top.addWidget(self.project_label, 1)

        self.image_list = QListWidget()
        self.image_list.setMinimumWidth(150)
        # Name, "7.6% painted" and "doubt 0.42" on lines of their own: in one line the numbers were cut off at 1366x768.
        # A long name is shortened in the middle (its start and extension stay); the tooltip has it whole.
        self.image_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.image_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.image_list.setAlternatingRowColors(True)  # which two lines belong together
        self.image_list.currentRowChanged.connect(self._row_changed)
        self.canvas = LabelCanvas()
        self.canvas.pressed.connect(self._pressed)
        self.canvas.dragged.connect(self._dragged)
        self.canvas.released.connect(self._released)

        side = QVBoxLayout()
        classes = QGroupBox("Classes (keys 1-9)")
        cl = QVBoxLayout(classes)
        self.class_list = QListWidget()
        # Whole rows only (a half-cut 4th row read as a bug at 1366 x 768): one row per class up
        # to the room the tool column has (_fit_class_rows), scrolling a row at a time beyond.
        self.class_list.setVerticalScrollMode(QListWidget.ScrollMode.ScrollPerItem)
        self.class_list.currentRowChanged.connect(self._class_changed)
        cl.addWidget(self.class_list)
        row = QHBoxLayout()
        row.addWidget(QPushButton("Add", clicked=self.add_class_dialog))
        row.addWidget(QPushButton("Rename", clicked=self.rename_class_dialog))
        row.addWidget(QPushButton("Colour", clicked=self.recolor_class_dialog))
        cl.addLayout(row)
        side.addWidget(classes)

        tools = QGroupBox("Tools")
        tl = QVBoxLayout(tools)
        grid = QGridLayout()
        self.tool_group = QButtonGroup(self)
        self.tool_buttons: dict[str, QToolButton] = {}
        tips = {"accept": "Brush the model's prediction into the pixels nobody painted"}
        for n, (name, text) in enumerate((("brush", "Brush (B)"), ("erase", "Erase (E)"), ("fill", "Fill (F)"),
                                          ("accept", "Accept (A)"))):
            b = QToolButton(text=text, checkable=True)
            b.setToolTip(tips.get(name, ""))
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            b.clicked.connect(lambda _=False, nm=name: self.set_tool(nm))
            self.tool_group.addButton(b)
            self.tool_buttons[name] = b
            grid.addWidget(b, n // 2, n % 2)
        self.tool_buttons["brush"].setChecked(True)
        self.size_slider = QSlider(Qt.Orientation.Horizontal, minimum=1, maximum=100, value=6)
        self.size_slider.valueChanged.connect(self._size_changed)
        self.size_label = QLabel()
        for w in (self.size_label, self.size_slider):
            w.setToolTip("Brush size: [ and ] make it smaller and larger")
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=60)
        self.opacity_slider.valueChanged.connect(self._opacity_changed)
        # Label and slider side by side: the whole tool column must fit a 768-pixel screen
        # without scrolling the Model box (Train, Accept) out of sight.
        sliders = QGridLayout()
        sliders.addWidget(self.size_label, 0, 0)
        sliders.addWidget(self.size_slider, 0, 1)
        sliders.addWidget(QLabel("Opacity"), 1, 0)
        sliders.addWidget(self.opacity_slider, 1, 1)
        tl.addLayout(sliders)
        # Undo and Redo as a third column of the tool grid: one row less in the column.
        self.undo_btn = QPushButton("Undo", clicked=self.undo)
        self.redo_btn = QPushButton("Redo", clicked=self.redo)
        self.undo_btn.setToolTip("Undo the last edit of this image (Ctrl+Z)")
        self.redo_btn.setToolTip("Redo (Ctrl+Shift+Z)")
        grid.addWidget(self.undo_btn, 0, 2)
        grid.addWidget(self.redo_btn, 1, 2)
        tl.insertLayout(0, grid)
        side.addWidget(tools)

        model = QGroupBox("Model")
        ml = QVBoxLayout(model)
        self.train_btn = QPushButton("Train", clicked=self.toggle_training)
        self.train_btn.setToolTip("Train a U-Net on the painted pixels only; it continues from its current weights")
        self.grow_box = QCheckBox("Grow strokes")
        self.grow_box.setChecked(True)  # LiveConfig.regions > 0: what bench label_quality measured best
        self.grow_box.setToolTip(
            "Grow strokes to regions. On: each stroke also labels the patch of similar colour it falls in (a superpixel whose painted "
            "pixels are at least 90% one class), so the U-Net learns where objects end, not only where you "
            "painted; grown pixels count half as much as painted ones. Off: it learns from the painted pixels "
            "only. Takes effect at once, also while training. (CLI: aestudio train --grow-strokes)")
        self.grow_box.toggled.connect(self._grow_toggled)
        # Both boxes on one row: the tool column must fit 1366 x 768 with room to spare (it had 2 px).
        self.pretrain_box = QCheckBox(f"Pre-train on unlabelled ({PRETRAIN_SECONDS:.0f} s)")
        self.pretrain_box.setToolTip(
            f"Before the first training, a denoising autoencoder learns for {PRETRAIN_SECONDS:.0f} s from every "
            "image of the project, the unlabelled ones included, and the U-Net's encoder starts from it. Off by "
            "default: it measured worse at the budgets tried (mean IoU 0.07 with it vs 0.11 without, bench "
            "label_quality, 120 s runs).")
        boxes = QHBoxLayout()
        boxes.addWidget(self.grow_box)
        boxes.addWidget(self.pretrain_box)
        boxes.addStretch(1)
        ml.addLayout(boxes)
        self.status = QLabel("Not trained yet.")
        self.status.setWordWrap(True)
        ml.addWidget(self.status)
        self.layer_box = QComboBox()
        self.layer_box.addItems(["Show prediction", "Show uncertainty", "Hide model layer"])
        self.layer_box.currentIndexChanged.connect(self._layer_changed)
        row = QHBoxLayout()
        row.addWidget(self.train_btn)
        row.addWidget(self.layer_box)
        ml.insertLayout(0, row)
        row = QHBoxLayout()
        self.accept_btn = QPushButton("Accept all", clicked=lambda: self.accept_prediction(None))
        self.accept_btn.setToolTip("Copy the prediction into the unlabelled pixels of this image (painted ones stay)")
        self.accept_class_btn = QPushButton("Accept class", clicked=lambda: self.accept_prediction(self.class_index))
        self.accept_class_btn.setToolTip("Copy only the pixels predicted as the selected class")
        row.addWidget(self.accept_btn)
        row.addWidget(self.accept_class_btn)
        ml.addLayout(row)
        row = QHBoxLayout()
        self.rank_btn = QPushButton("Rank by doubt", clicked=self.rank_images)
        self.rank_btn.setToolTip("Order the images by the model's mean uncertainty on their unlabelled pixels")
        self.export_btn = QPushButton("Export…", clicked=self.export_model)
        self.export_btn.setToolTip("Export the model as a bundle; it segments folders in the Segment tab and the CLI")
        row.addWidget(self.rank_btn)
        row.addWidget(self.export_btn)
        ml.addLayout(row)
        side.addWidget(model)
        for box in (classes, tools, model):
            box.layout().setContentsMargins(6, 4, 6, 4)
            box.layout().setSpacing(4)
        side.addStretch(1)
        side.setSpacing(4)
        side.setContentsMargins(0, 0, 0, 0)
        side_widget = QWidget()
        side_widget.setLayout(side)
        # Its own scroll area: on a 768-pixel screen the canvas keeps the height, the tools scroll.
        side_scroll = QScrollArea()
        side_scroll.setWidget(side_widget)
        side_scroll.setWidgetResizable(True)
        side_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        side_scroll.setFrameShape(QFrame.Shape.NoFrame)
        side_scroll.setFixedWidth(side_widget.sizeHint().width() + 18)
        self._side_scroll = side_scroll
        self._fit_class_rows()
        # The room for class rows changes with the window's height and with the column's other
        # contents (a status line that wraps): refit on either.
        self._refit = _Refit(self._fit_class_rows, self)
        side_scroll.viewport().installEventFilter(self._refit)
        side_widget.installEventFilter(self._refit)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.image_list)
        split.addWidget(self.canvas)
        split.addWidget(side_scroll)
        split.setStretchFactor(1, 1)
        split.setSizes([170, 800, 270])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        self._size_changed(self.size_slider.value())
        self._update_enabled()

    def _update_enabled(self) -> None:
        has = self.project is not None
        painting = has and self.current >= 0
        for w in (self.add_btn, self.train_btn):
            w.setEnabled(has)
        for w in (self.undo_btn, self.redo_btn):
            w.setEnabled(painting)
        model = self.trainer is not None
        for w in (self.accept_btn, self.accept_class_btn):
            w.setEnabled(painting and self.prediction is not None)
        self.rank_btn.setEnabled(model and has)
        self.export_btn.setEnabled(model and has)

    # ================================================================ projects

    def new_project_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose an empty folder for the new project")
        if folder:
            self.create_project(Path(folder))

    def open_project_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a label project folder")
        if folder:
            self.open_project(Path(folder))

    def add_images_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add images to the project", "",
                                                "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp)")
        if files:
            self.on_images([Path(f) for f in files])

    def create_project(self, folder: Path, class_names: tuple[str, ...] = ("background", "foreground")) -> bool:
        try:
            project = LabelProject.create(folder, class_names)
        except (ProjectError, OSError) as exc:
            self.notify.emit(Level.ERROR, str(exc), "")
            return False
        self._set_project(project)
        return True

    def open_project(self, folder: Path) -> bool:
        try:
            project = LabelProject.open(folder)
        except (ProjectError, OSError) as exc:
            self.notify.emit(Level.ERROR, str(exc), "")
            return False
        self._set_project(project)
        for item in project.items:
            if item.problem is not None:
                self.notify.emit(Level.WARNING, item.problem.message, "")
        if project.model_path("weights") is not None:
            self.tasks.submit(_load_trainer, project, self.live_config, on_result=self._trainer_loaded,
                              on_error=lambda exc, det: self.notify.emit(
                                  Level.WARNING, f"{project.model_path('weights')}: cannot load the model ({exc}); "
                                  "train again to replace it", det))
        return True

    def _set_project(self, project: LabelProject) -> None:
        self.close_project()
        self.project = project
        self.saver = MaskSaver(project)
        self._remember(project.root)
        self.project_label.setText(f"Project: {project.root}")
        self.project_label.setToolTip(f"Also training data: aestudio train --model unet --data {project.data_spec()}")
        self._fill_classes()
        self._fill_images()
        if project.items:
            self.image_list.setCurrentRow(0)
        self._update_enabled()

    def recent_projects(self) -> list[Path]:
        """Projects opened before (newest first) that still exist."""
        from aestudio.gui.workspace import make_settings

        raw = make_settings().value(RECENT_KEY, [], type=list) or []
        return [Path(p) for p in raw if isinstance(p, str) and is_project(Path(p))]

    def _remember(self, root: Path) -> None:
        from aestudio.gui.workspace import make_settings

        settings = make_settings()
        old = [p for p in (settings.value(RECENT_KEY, [], type=list) or []) if isinstance(p, str)]
        settings.setValue(RECENT_KEY, [str(root)] + [p for p in old if p != str(root)][: RECENT_MAX - 1])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        projects = self.recent_projects()
        for path in projects:
            self.recent_menu.addAction(path.name, lambda p=path: self.open_project(p)).setToolTip(str(path))
        if not projects:
            self.recent_menu.addAction("No recent projects").setEnabled(False)

    def close_project(self) -> None:
        self.stop_training()
        if self.saver is not None:
            self.saver.close()
        self.project = None
        self.saver = None
        self.trainer = None
        self.prediction = None
        self.current = -1
        self.image = None
        self.canvas.set_image(None)
        self.image_list.clear()
        self.class_list.clear()

    def _auto_project(self) -> bool:
        from aestudio.gui.workspace import make_settings, workspace_dir

        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = workspace_dir(make_settings()) / "labels" / f"project-{stamp}"
        ok = self.create_project(folder)
        if ok:  # said once, with the images this drop adds (one banner, not two stacked)
            self._started_in = folder
        return ok

    # ================================================================ images

    def on_images(self, paths: list[Path]) -> None:
        projects = [p for p in paths if p.is_dir() and is_project(p)]
        if projects:
            self.open_project(projects[-1])
            paths = [p for p in paths if p not in projects]
        if not paths:
            return
        if self.project is None and not self._auto_project():
            return
        project = self.project
        self.tasks.submit(project.add_images, paths, on_result=lambda r: self._images_added(project, r),
                          on_error=lambda exc, det: self.notify.emit(Level.ERROR, f"Cannot add images: {exc}", det))

    def _images_added(self, project: LabelProject, report: AddReport) -> None:
        if project is not self.project:
            return
        started, self._started_in = self._started_in, None
        if started is not None:
            self.notify.emit(Level.INFO, f"Started a label project in {started} with {len(report.added)} image(s).", "")
        for path, reason in report.failed:
            self.notify.emit(Level.WARNING, f"Not added: {reason}", str(path))
        first_new = self.image_list.count()
        self._fill_images()
        if report.added:
            if started is None:
                self.notify.emit(Level.INFO, f"Added {len(report.added)} image(s) to the project.", "")
            if self.current < 0:
                self.image_list.setCurrentRow(first_new)

    def _fill_images(self) -> None:
        assert self.project is not None
        row = self.image_list.currentRow()
        self.image_list.blockSignals(True)
        self.image_list.clear()
        for i in range(len(self.project.items)):
            entry = QListWidgetItem(self._item_text(i))
            entry.setToolTip(self.project.items[i].name)
            self.image_list.addItem(entry)
        self.image_list.setCurrentRow(row)
        self.image_list.blockSignals(False)

    def _item_text(self, i: int, score: float | None = None) -> str:
        assert self.project is not None
        item = self.project.items[i]
        if item.problem is not None:
            return f"⚠ {item.name}"
        frac = self.project.labelled_fraction(i) if i in self.project._masks else None
        parts = []
        if frac is not None:
            parts.append(f"{100 * frac:.1f}% painted")
        if score is not None:
            parts.append(f"doubt {score:.2f}")
        return "\n".join([item.name, *parts])  # one fact a line: side by side they did not fit the list

    def _row_changed(self, row: int) -> None:
        if self.project is None or row < 0 or row == self.current:
            return
        self.show_image(row)

    def show_image(self, index: int) -> None:
        assert self.project is not None
        self._end_stroke()
        item = self.project.items[index]
        if item.problem is not None:
            self.notify.emit(Level.WARNING, item.problem.message, "")
        self._load_token += 1
        token = self._load_token
        project = self.project
        self.tasks.submit(_load_pair, project, index, on_result=lambda r: self._image_loaded(project, token, index, r),
                          on_error=lambda exc, det: self.notify.emit(Level.ERROR, f"{item.image_path}: {exc}", det))

    def _image_loaded(self, project: LabelProject, token: int, index: int, result: tuple[np.ndarray, np.ndarray | None, Levels]) -> None:
        if project is not self.project or token != self._load_token:
            return
        image, mask, levels = result
        self.current = index
        self.image = image
        self.prediction = None
        self._accept_pending = None  # an Accept of another image's prediction is not carried over
        self.canvas.set_image(image)
        self.canvas.set_colors(list(project.classes.colors))
        focus = self.window().focusWidget()
        if self.isVisible() and (focus is None or not self.isAncestorOf(focus)):
            # After a drop or an open the keys (1-9, [ ], B E F A, Ctrl+Z) went to the tab bar until a first click.
            self.canvas.setFocus(Qt.FocusReason.OtherFocusReason)
        if mask is not None:
            self.canvas.set_labels(mask)
        if self.image_list.currentRow() != index:
            self.image_list.blockSignals(True)
            self.image_list.setCurrentRow(index)
            self.image_list.blockSignals(False)
        self.image_list.item(index).setText(self._item_text(index))
        # A 16-bit image's own range ("16-bit values 0-4095, stretched to the full range"): why it looks
        # brighter than in other viewers. A tooltip: the narrow list has no room for it.
        name = project.items[index].name
        self.image_list.item(index).setToolTip(f"{name}\n{levels.describe()}" if levels.stretched else name)
        self._update_enabled()
        self.refresh_prediction()
        if self.trainer is None and not self._graph_asked:
            # The prediction's ONNX graph is exported once per net shape and machine, in a child process
            # (~5.6 CPU-s): start it while the person paints, not at the first Train, where it competed
            # with the training's start and the first ~30 s of predictions ran in torch at 3x the CPU.
            self._graph_asked = True
            self.runner.submit(_prepare_graph, self.nets, project, self.live_config, on_result=lambda _: None)

    @property
    def key(self) -> str:
        return self.project.items[self.current].name if self.project is not None and self.current >= 0 else ""

    # ================================================================ classes

    def _fit_class_rows(self) -> None:
        """Make the class list a whole number of rows high: one per class, as many as the tool
        column has room for without scrolling, but never fewer than CLASS_ROWS (or all the classes
        when there are fewer); beyond that it scrolls. It was always CLASS_ROWS: 4 classes scrolled
        beside empty space."""
        lst = self.class_list
        row = lst.sizeHintForRow(0) if lst.count() else 0
        if row <= 0:  # no class yet: measure a stand-in row
            lst.addItem(QListWidgetItem(_swatch((0, 0, 0)), "1  background"))
            row = lst.sizeHintForRow(0)
            lst.takeItem(0)
        count = lst.count()
        rows = CLASS_ROWS if not count else min(count, CLASS_ROWS)
        columns = 1
        scroll = getattr(self, "_side_scroll", None)
        if count > rows and scroll is not None and scroll.widget() is not None:
            # Lay the Classes box and the column out now: their size hints still held the list's
            # previous height until the posted layout requests ran (a row too many, a scroll bar).
            for box in (lst.parentWidget(), scroll.widget()):
                if box is not None and box.layout() is not None:
                    box.layout().activate()
            others = scroll.widget().sizeHint().height() - lst.minimumHeight()  # the column without the list (fixed height)
            room = (scroll.viewport().height() - others - 2 * lst.frameWidth()) // row
            rows = max(rows, min(count, room))
            if count > rows and self._class_columns_fit(2):
                # Two columns rather than a scroll (5 classes at 1366 x 768, where 4 rows fit).
                columns = 2
                rows = max(min(CLASS_ROWS, count), min(-(-count // 2), room))
        self._set_class_columns(columns)
        height = rows * row + 2 * lst.frameWidth()
        if lst.minimumHeight() != height or lst.maximumHeight() != height:
            lst.setFixedHeight(height)

    def _class_columns_fit(self, columns: int) -> bool:
        """Whether every class name fits whole in a column when the list has ``columns``."""
        lst = self.class_list
        width = (lst.viewport().width() - lst.verticalScrollBar().sizeHint().width()) // columns
        return all(lst.sizeHintForIndex(lst.model().index(i, 0)).width() + 8 <= width for i in range(lst.count()))

    def _set_class_columns(self, columns: int) -> None:
        """One column (a list) or a grid of ``columns``, read left to right (1 2 / 3 4 ...)."""
        lst = self.class_list
        if columns == 1:
            if lst.isWrapping():
                lst.setWrapping(False)
                lst.setFlow(QListWidget.Flow.TopToBottom)
                lst.setGridSize(QSize())
            return
        width = (lst.viewport().width() - lst.verticalScrollBar().sizeHint().width()) // columns
        grid = QSize(width, lst.sizeHintForRow(0))
        if not lst.isWrapping() or lst.gridSize() != grid:
            lst.setFlow(QListWidget.Flow.LeftToRight)
            lst.setWrapping(True)
            lst.setResizeMode(QListWidget.ResizeMode.Adjust)
            lst.setGridSize(grid)

    def _fill_classes(self) -> None:
        assert self.project is not None
        self.class_list.blockSignals(True)
        self.class_list.clear()
        for i, (name, color) in enumerate(zip(self.project.classes.names, self.project.classes.colors, strict=True)):
            self.class_list.addItem(QListWidgetItem(_swatch(color), f"{i + 1}  {name}" if i < 9 else name))
        self._fit_class_rows()
        self.class_index = min(self.class_index, len(self.project.classes) - 1)
        self.class_list.setCurrentRow(self.class_index)
        self.class_list.blockSignals(False)
        self.canvas.set_colors(list(self.project.classes.colors))
        if self.current >= 0 and self.project.editable(self.current):
            self.canvas.set_labels(self.project.mask(self.current))

    def _class_changed(self, row: int) -> None:
        if row >= 0:
            self.class_index = row
            if self.tool == "erase":
                self.set_tool("brush")

    def select_class(self, index: int) -> None:
        if self.project is not None and 0 <= index < len(self.project.classes):
            self.class_list.setCurrentRow(index)

    def add_class_dialog(self) -> None:
        if self.project is None:
            return
        name, ok = QInputDialog.getText(self, "Add a class", "Name:")
        if ok:
            self.add_class(name)

    def add_class(self, name: str) -> None:
        assert self.project is not None
        self.class_index = self.project.add_class(name)
        self._fill_classes()

    def rename_class_dialog(self) -> None:
        if self.project is None:
            return
        name, ok = QInputDialog.getText(self, "Rename the class", "Name:",
                                        text=self.project.classes.names[self.class_index])
        if ok:
            try:
                self.project.rename_class(self.class_index, name)
            except ValueError as exc:
                self.notify.emit(Level.WARNING, str(exc), "")
            self._fill_classes()

    def recolor_class_dialog(self) -> None:
        if self.project is None:
            return
        old = QColor(*self.project.classes.colors[self.class_index])
        color = QColorDialog.getColor(old, self, "Class colour")
        if color.isValid():
            self.project.recolor_class(self.class_index, (color.red(), color.green(), color.blue()))
            self._fill_classes()

    # ================================================================ painting

    def set_tool(self, tool: str) -> None:
        self.tool = tool
        self.tool_buttons[tool].setChecked(True)

    def _size_changed(self, value: int) -> None:
        self.canvas.brush_radius = value / 2.0
        self.size_label.setText(f"Brush {value} px")

    def _opacity_changed(self, value: int) -> None:
        self.canvas.opacity = value / 100.0
        self.canvas.update()

    def _editable(self) -> bool:
        return self.project is not None and self.current >= 0 and self.project.editable(self.current)

    def _pressed(self, y: float, x: float) -> None:
        if not self._editable():
            return
        assert self.project is not None
        if self.tool == "fill":
            rect = self.project.fill(self.current, int(y), int(x), self.class_index)
            if rect is not None:
                self.canvas.update_labels(self.project.mask(self.current), rect)
                self._after_edit()
            return
        if self.tool == "accept":  # paint the prediction in, where nothing is painted yet
            if self.prediction is None or self.prediction.key != self.key:
                self.notify.emit(Level.INFO, "No prediction for this image yet: train first, then brush it in.", "")
                return
            self.stroke = self.project.accept_stroke(self.current, self.prediction.mask)
            self._dragged(y, x)
            return
        value = UNLABELLED if self.tool == "erase" else self.class_index
        self.stroke = self.project.stroke(self.current, value)
        self._dragged(y, x)

    def _dragged(self, y: float, x: float) -> None:
        if self.stroke is None:
            return
        rect = self.stroke.dab(y, x, self.canvas.brush_radius)
        self.canvas.update_labels(self.stroke.mask, rect)

    def _released(self) -> None:
        self._end_stroke()

    def _end_stroke(self) -> None:
        if self.stroke is None:
            return
        stroke, self.stroke = self.stroke, None
        rect = stroke.end()
        if rect is not None:
            self._after_edit(rect)

    def _after_edit(self, rect: tuple[int, int, int, int] | None = None) -> None:
        assert self.project is not None and self.saver is not None
        self.saver.submit(self.current)
        self.image_list.item(self.current).setText(self._item_text(self.current))
        if self.trainer is not None and self.image is not None:
            mask = self.project.mask(self.current)  # the trainer takes its own (uint8) copy
            if self.trainer.has_example(self.key):
                self.trainer.update_mask(self.key, mask)
            else:
                self.trainer.set_example(self.key, self.image, mask)
        if self.worker is not None and self.worker.running:
            self._stroke_timer.start(STROKE_REFRESH_MS)
            if rect is not None:
                self._queue_local(rect)
        self._update_enabled()

    def _queue_local(self, rect: tuple[int, int, int, int]) -> None:
        """Predict the edit's neighbourhood once the trainer has learnt from it (see LOCAL_MARGIN)."""
        if self.image is None or self.trainer is None or self.layer_mode == "none":
            return
        h, w = self.image.shape[:2]
        m = LOCAL_MARGIN
        box = (max(0, rect[0] - m), max(0, rect[1] - m), min(h, rect[2] + m), min(w, rect[3] + m))
        pending = self._local
        if pending is not None and pending[0] == self.key:  # edits in a row: one neighbourhood for all
            old = pending[1]
            box = (min(box[0], old[0]), min(box[1], old[1]), max(box[2], old[2]), max(box[3], old[3]))
        if (box[2] - box[0]) * (box[3] - box[1]) > VIEW_SHARE * h * w:
            self._local = None  # as large as the view: the schedule's refresh does it
            return
        self._local = (self.key, box, self.trainer.step, time.monotonic() + LOCAL_WAIT_S)
        self._local_timer.start(LOCAL_RETRY_MS)

    def refresh_local(self) -> None:
        pending, t = self._local, self.trainer
        training = self.worker is not None and self.worker.running
        if pending is None or t is None or self.image is None or self.project is None or not training \
                or self.layer_mode == "none" or pending[0] != self.key or time.monotonic() > pending[3]:
            self._local = None
            return
        snapshot = t.snapshot()
        if snapshot[0] <= pending[2] or self.runner.busy:  # not learnt from the edit yet, or a refresh runs
            self._local_timer.start(LOCAL_RETRY_MS)
            return
        self._local = None
        same = self.prediction if self.prediction is not None and self.prediction.key == self.key else None
        self.runner.submit(predict_image, self.nets, self.key, self.image, snapshot, t.channels, t.num_classes, t.cfg,
                           list(self.project.classes.colors), True, pending[1], same, t.sharing,
                           on_result=self._predicted_local,
                           on_error=lambda exc, det: self.notify.emit(Level.ERROR, f"Prediction failed: {exc}", det))

    def _predicted_local(self, prediction: Prediction) -> None:
        if prediction.key != self.key:
            return
        self.prediction = prediction
        self.local_predictions += 1
        self._show_layer()
        self._update_enabled()

    def undo(self) -> None:
        self._history(redo=False)

    def redo(self) -> None:
        self._history(redo=True)

    def _history(self, *, redo: bool) -> None:
        if not self._editable():
            return
        assert self.project is not None
        self._end_stroke()
        rect = (self.project.redo if redo else self.project.undo)(self.current)
        if rect is not None:
            self.canvas.update_labels(self.project.mask(self.current), rect)
            self._after_edit()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key, mods = event.key(), event.modifiers()
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        if ctrl and key == Qt.Key.Key_Z:
            self.redo() if shift else self.undo()
        elif ctrl and key == Qt.Key.Key_Y:
            self.redo()
        elif not ctrl and Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            self.select_class(key - Qt.Key.Key_1)
        elif key == Qt.Key.Key_BracketLeft:
            self.size_slider.setValue(max(1, round(self.size_slider.value() / 1.25)))
        elif key == Qt.Key.Key_BracketRight:
            self.size_slider.setValue(min(100, round(self.size_slider.value() * 1.25) + 1))
        elif key == Qt.Key.Key_B:
            self.set_tool("brush")
        elif key == Qt.Key.Key_E:
            self.set_tool("erase")
        elif key == Qt.Key.Key_F:
            self.set_tool("fill")
        elif key == Qt.Key.Key_A:
            self.set_tool("accept")
        elif key == Qt.Key.Key_0:
            self.canvas.fit()
        elif key == Qt.Key.Key_Space:
            self.canvas.space_held = True
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.canvas.space_held = False
        super().keyReleaseEvent(event)

    # ================================================================ the live loop

    def toggle_training(self) -> None:
        if self.worker is not None and self.worker.running:
            self.stop_training()
        else:
            self.start_training()

    def start_training(self) -> None:
        if self.project is None or (self.worker is not None and self.worker.running):
            return
        from aestudio.training.live import LiveTrainer

        project = self.project
        self._end_stroke()
        k = max(2, len(project.classes))
        if self.trainer is None:
            self.trainer = LiveTrainer(_project_channels(project), k, self.training_config())
        else:
            self.trainer.grow_classes(k)
            self.trainer.cfg = self.training_config(self.trainer.cfg)
        # Masks are copied here (GUI thread, memory only); images are read in the training thread.
        labelled = [(i, project.mask_copy(i)) for i, it in enumerate(project.items)
                    if it.problem is None and (i in project._masks or it.mask_path.exists())]
        labelled = [(i, m) for i, m in labelled if (m != UNLABELLED).any()]
        if not labelled:
            self.notify.emit(Level.WARNING, "Nothing is painted yet: paint a few strokes of each class, then Train.", "")
            return
        trainer = self.trainer
        items = [(project.items[i].name, project.items[i].image_path, m) for i, m in labelled]
        painted = {i for i, _ in labelled}
        # Unpainted images teach through pseudo-labels (LiveConfig.pseudo, unlabelled_share), read in the
        # training thread up to a pixel budget; an image painted later becomes an ordinary example.
        blank = [(it.name, it.image_path) for i, it in enumerate(project.items)
                 if it.problem is None and i not in painted][:UNPAINTED_MAX_IMAGES] \
            if trainer.cfg.pseudo > 0 and trainer.cfg.unlabelled_share > 0 else []
        pretrain = [it.image_path for it in project.items if it.problem is None][:PRETRAIN_MAX_IMAGES] \
            if self.pretrain_box.isChecked() and trainer.step == 0 else []
        seconds = self.pretrain_seconds

        def source(stop: threading.Event, pause: threading.Event):
            # 16-bit images at their own range, as the canvas shows them and segmentation reads them
            from aestudio.data.levels import read_stretched

            if pretrain:
                images, pixels = [], 0
                for p in pretrain:  # bounded memory: images kept as float16 up to a pixel budget
                    if pixels >= PRETRAIN_MAX_PIXELS or stop.is_set():
                        break
                    image = read_stretched(p).astype(np.float16)
                    images.append(image)
                    pixels += image.shape[0] * image.shape[1]
                copied = trainer.pretrain_encoder(images, seconds, stop)
                log.info("encoder pre-trained on %d images: %d tensors copied", len(pretrain), copied)
            for name, path, mask in items:
                if not trainer.has_example(name):
                    trainer.set_example(name, read_stretched(path), mask)
                else:
                    trainer.update_mask(name, mask)
            pixels = 0
            for name, path in blank:
                if pixels >= UNPAINTED_MAX_PIXELS or stop.is_set():
                    break
                if not trainer.has_example(name):
                    image = read_stretched(path)
                    trainer.set_example(name, image, np.full(image.shape[:2], UNLABELLED, np.uint8))
                    pixels += image.shape[0] * image.shape[1]
            yield from trainer.events(stop, pause)

        self.worker = TrainWorker(source, self)
        self.worker.events.connect(self._train_events)
        self.worker.finished.connect(self._train_finished)
        self.worker.start()
        self.train_btn.setText("Stop")
        first = f"Pre-training the encoder on {len(pretrain)} images ({seconds:.0f} s), then t" if pretrain else "T"
        self.status.setText(f"{first}raining on {len(items)} painted image(s)…")
        self._refresh_timer.start()
        self.schedule.interrupt()
        self._next_refresh = 0.0
        self._update_enabled()

    def training_config(self, base: LiveConfig | None = None) -> LiveConfig:
        """The config Train uses: ``base`` (else the override, else the defaults) with the Model box's choices."""
        from dataclasses import replace

        from aestudio.training.live import LiveConfig

        cfg = base or self.live_config or LiveConfig()
        if not self.grow_box.isChecked():
            return replace(cfg, regions=0.0)
        if cfg.regions > 0:
            return cfg
        default = (self.live_config or LiveConfig()).regions
        return replace(cfg, regions=default if default > 0 else LiveConfig().regions)

    def _grow_toggled(self, _on: bool) -> None:
        # The trainer reads cfg.regions per batch (a frozen config swapped whole), so a run in progress
        # follows the box from its next step; the regions are made in the training thread when first needed.
        if self.trainer is not None:
            self.trainer.cfg = self.training_config(self.trainer.cfg)

    def stop_training(self) -> None:
        if self.worker is not None and self.worker.running:
            self.worker.stop()

    def _train_events(self, events: list[Event]) -> None:
        from aestudio.training.events import StepEnded

        steps = [e for e in events if isinstance(e, StepEnded)]
        if steps:
            last = steps[-1]
            self.status.setText(f"Training: step {last.step}, loss {last.loss:.3f}, {last.images_per_s:.0f} crops/s")

    def _train_finished(self, finished: TrainFinished) -> None:
        self._refresh_timer.stop()
        self.train_btn.setText("Train")
        note = "" if finished.reason is FinishReason.STOPPED else f" ({finished.message})"
        self.status.setText(f"Stopped at step {finished.step}{note}. Train again to continue from here.")
        if finished.reason is FinishReason.FAILED:
            self.notify.emit(Level.ERROR, f"Training failed: {finished.message}", finished.details)
        if self.project is not None and self.trainer is not None and self.trainer.step > 0:
            project, trainer = self.project, self.trainer
            self.tasks.submit(_save_model, project, trainer, on_result=lambda _: None,
                              on_error=lambda exc, det: self.notify.emit(
                                  Level.ERROR, f"Cannot save the model in {project.root}: {exc}", det))
        self.refresh_prediction()
        self._update_enabled()

    def _trainer_loaded(self, trainer: LiveTrainer) -> None:
        if self.trainer is None:
            self.trainer = trainer
            self.status.setText(f"Model loaded (step {trainer.step}). Train continues from it.")
            self.refresh_prediction()
            self._update_enabled()

    def refresh_prediction(self) -> None:
        """Predict the image on screen from the trainer's last published weights (off the GUI thread)."""
        if self.trainer is None or self.image is None or self.project is None or self.layer_mode == "none":
            return  # a hidden model layer costs nothing: the cores stay with the training
        snapshot = self.trainer.snapshot()
        region = self.predict_region() if self._accept_pending is None else None  # an Accept waits for the whole
        same = self.prediction if self.prediction is not None and self.prediction.key == self.key else None
        if same is not None and same.step == snapshot[0] and same.covers(region):
            return
        if self.worker is not None and self.worker.running:
            if self.runner.busy and self._inflight_key == self.key:
                return  # its result sets the budget and schedules the next (queueing one ran two back to back)
            wait_s = self._next_refresh - time.monotonic()
            if wait_s > 0:  # keep the cores for training: come back when the duty cycle allows
                self._stroke_timer.start(_wait_ms(wait_s))
                return
        self._submit_prediction(snapshot, region, same,
                                lambda exc, det: self.notify.emit(Level.ERROR, f"Prediction failed: {exc}", det))

    def _submit_prediction(self, snapshot, region, base, on_error) -> None:  # noqa: ANN001 - as predict_image
        """Run ``predict_image`` on the prediction thread; while training it counts as a refresh (the schedule
        measures its cost)."""
        assert self.trainer is not None and self.image is not None and self.project is not None
        self._predict_t0 = time.monotonic()
        self._inflight_key = self.key
        t = self.trainer
        training = self.worker is not None and self.worker.running
        if training:
            self.schedule.started(self._predict_t0)
        # `sharing` even when nothing trains: a Train pressed while this (all-core) prediction runs then
        # steps on one thread until it ends, instead of 2 OpenMP threads beside 2 ORT threads.
        self.runner.submit(predict_image, self.nets, self.key, self.image, snapshot, t.channels, t.num_classes, t.cfg,
                           list(self.project.classes.colors), training, region, base, t.sharing,
                           on_result=self._predicted, on_error=on_error)

    def predict_region(self) -> tuple[int, int, int, int] | None:
        """What to predict: the view and a margin when that is a small part of the image, else None (all of it)."""
        view = self.canvas.visible_rect()
        if view is None or self.image is None:
            return None
        h, w = self.image.shape[:2]
        t, left, b, r = view
        t, left, b, r = max(0, t - VIEW_MARGIN), max(0, left - VIEW_MARGIN), min(h, b + VIEW_MARGIN), min(w, r + VIEW_MARGIN)
        return (t, left, b, r) if (b - t) * (r - left) <= VIEW_SHARE * h * w else None

    def _predicted(self, prediction: Prediction) -> None:
        if self.worker is not None and self.worker.running and self.trainer is not None:
            self._next_refresh = self.schedule.finished(time.monotonic(), self.trainer.step_log.steps())
            # Come back as soon as the schedule allows (the 2 s timer alone added up to 2 s to each wait).
            self._stroke_timer.start(_wait_ms(self._next_refresh - time.monotonic()))
        if prediction.key != self.key:
            return
        self.prediction = prediction
        self.predictions_made += 1
        self._show_layer()
        self._update_enabled()
        pending = self._accept_pending
        if pending is not None and pending[0] == self.key:
            if prediction.region is None:
                self._accept_pending = None
                self._accept(prediction, pending[1])
            elif not self.runner.busy:  # a part came (it was running when Accept was pressed): now the whole
                self._predict_whole()

    def _layer_changed(self, index: int) -> None:
        self.layer_mode = ("prediction", "uncertainty", "none")[index]
        self._show_layer()
        self.refresh_prediction()

    def _show_layer(self) -> None:
        p = self.prediction
        if p is None or self.layer_mode == "none":
            self.canvas.set_layer(None)
        else:
            self.canvas.set_layer(p.layer_prediction if self.layer_mode == "prediction" else p.layer_uncertainty)

    def accept_prediction(self, only_class: int | None) -> None:
        """Accept all (``only_class`` None) or one class of a prediction of the whole image from one set of
        weights. When what is shown is partly older (zoomed in, only the view was predicted from the newest
        weights; after a stroke, its neighbourhood), the whole image is predicted from the current weights
        first, and that is accepted (and shown) when it arrives."""
        if not self._editable() or self.prediction is None or self.prediction.key != self.key:
            return
        self._end_stroke()
        if self.prediction.region is None:
            self._accept(self.prediction, only_class)
            return
        self._accept_pending = (self.key, only_class)
        self.status.setText("Accept: predicting the whole image from the current weights first…")
        self._predict_whole()

    def _accept(self, prediction: Prediction, only_class: int | None) -> None:
        assert self.project is not None and prediction.region is None
        rect = self.project.accept(self.current, prediction.mask, only_class=only_class)
        what = "all classes" if only_class is None else f"class {self.project.classes.names[only_class]}" \
            if only_class < len(self.project.classes) else f"class {only_class}"
        self.status.setText(f"Accepted {what} of the whole image's prediction (step {prediction.step}) into its "
                            "unpainted pixels.")
        if rect is not None:
            self.canvas.update_labels(self.project.mask(self.current), rect)
            self._after_edit()

    def _predict_whole(self) -> None:
        """Predict the whole image now, outside the schedule (an Accept waits for it)."""
        if self.trainer is None or self.image is None or self.project is None:
            self._accept_pending = None
            return
        self._submit_prediction(self.trainer.snapshot(), None, None, self._accept_failed)

    def _accept_failed(self, exc: BaseException, details: str) -> None:
        self._accept_pending = None  # not taken later, by surprise, from some other prediction
        self.status.setText("Accept: the whole image could not be predicted; nothing was accepted.")
        self.notify.emit(Level.ERROR, f"Prediction failed: {exc}", details)

    def rank_images(self) -> None:
        if self.project is None or self.trainer is None or self._ranking:
            return
        project, t = self.project, self.trainer
        items = [(it.name, it.image_path, it.mask_path) for it in project.items if it.problem is None]
        self.status.setText("Ranking images by uncertainty…")
        training = self.worker is not None and self.worker.running
        self._rank_nets = self._rank_nets or SnapshotNets()
        self._ranking = True

        def failed(exc: BaseException, details: str) -> None:
            self._ranking = False
            self.notify.emit(Level.ERROR, f"Ranking failed: {exc}", details)

        self.tasks.submit(rank_by_uncertainty, items, t.snapshot(), t.channels, t.num_classes, t.cfg, training,
                          self._rank_nets, on_result=lambda r: self._ranked(project, r), on_error=failed)

    def _ranked(self, project: LabelProject, scores: list[tuple[str, float]]) -> None:
        self._ranking = False
        if project is not self.project:
            return
        self.ranking = scores
        for name, score in scores:
            i = project.index_of(name)
            self.image_list.item(i).setText(self._item_text(i, score))
        top = ", ".join(n for n, _ in scores[:3])
        self.status.setText(f"Most uncertain: {top}. Paint there next.")

    def export_model(self, out_dir: Path | None = None) -> None:
        if self.project is None or self.trainer is None:
            return
        project, t = self.project, self.trainer
        out = Path(out_dir) if out_dir else project.root / "model" / "bundle"
        self.status.setText(f"Exporting the model to {out}…")
        self.tasks.submit(export_bundle, t.snapshot(), t.channels, t.num_classes, t.cfg, out, project.root.name,
                          list(project.classes.names), list(project.classes.colors), project.data_spec(),
                          on_result=self._exported,
                          on_error=lambda exc, det: self.notify.emit(Level.ERROR, f"Export failed: {exc}", det))

    def _exported(self, out: Path) -> None:
        self.exported = out
        self.status.setText(f"Exported {out}. It segments folders in the Segment tab and with aestudio segment.")
        self.notify.emit(Level.INFO, f"Exported the model to {out}", "")
        self.request_model.emit(out)

    def _report_save_errors(self) -> None:
        if self.saver is not None and self.saver.errors:
            errors, self.saver.errors = self.saver.errors, []
            for path, message in errors:
                self.notify.emit(Level.ERROR, f"Could not save {path}: {message}; the labels stay in memory "
                                 "and are saved with the next stroke", "")

    def shutdown(self) -> None:
        self._refresh_timer.stop()
        self._error_timer.stop()
        self.stop_training()
        if self.worker is not None:
            self.worker.join(5.0)
        if self.saver is not None:
            self.saver.close()
        self.runner.shutdown()
        self.runner.join(10.0)  # a prediction inside torch at interpreter exit would abort the process
        self.nets.close()
        if self._rank_nets is not None:
            self._rank_nets.close()


# ------------------------------------------------------------------ worker-side helpers


def _wait_ms(seconds: float) -> int:
    """A timer's interval for a wait: at least 1 ms, at most a minute (the timer then looks again)."""
    return int(min(max(seconds, 0.0), 60.0) * 1000) + 1


def _load_pair(project: LabelProject, index: int) -> tuple[np.ndarray, np.ndarray | None, Levels]:
    image, levels = project.image_levelled(index)
    mask = project.mask(index) if project.editable(index) else None
    return image, mask, levels


def _project_channels(project: LabelProject) -> int:
    from aestudio.data.io import probe_image

    model = project.model or {}
    net = model.get("net")
    saved = (net.get("params") or {}).get("in_channels") if isinstance(net, dict) else None
    if saved in (1, 3):
        return int(saved)
    for item in project.items[:8]:
        try:
            if probe_image(item.image_path).channels == 3:
                return 3
        except ValueError:
            continue
    return 1


def _prepare_graph(nets: SnapshotNets, project: LabelProject, live_config: LiveConfig | None) -> None:
    """Have the prediction's ONNX graph for this project's net ready (its export started, or its session
    made) before the first Train. Runs on the prediction thread (torch and ONNX Runtime load there). Not
    where the CPU predicts in bfloat16 (``SnapshotNets.bf16``): that needs no graph."""
    from aestudio.training.live import LiveConfig

    if nets.uses_bf16():
        return
    nets.session(_project_channels(project), max(2, len(project.classes)), live_config or LiveConfig())


def _save_model(project: LabelProject, trainer: LiveTrainer) -> None:
    trainer.save(project.root / WEIGHTS)
    project.set_model(trainer.record(WEIGHTS))


def _load_trainer(project: LabelProject, live_config: LiveConfig | None) -> LiveTrainer:
    from aestudio.nets.registry import net_config_from_dict
    from aestudio.training.checkpoint import load_weights
    from aestudio.training.live import LiveConfig, LiveTrainer

    model = project.model or {}
    path = project.model_path("weights")
    assert path is not None
    state, meta = load_weights(path)
    _, net_cfg = net_config_from_dict(model["net"])
    cfg = live_config or LiveConfig(base_channels=net_cfg.base_channels, depth=net_cfg.depth,
                                    crop=int(model.get("crop", 128)))
    trainer = LiveTrainer(net_cfg.in_channels, max(net_cfg.num_classes, len(project.classes)), cfg, state=state,
                          step=int(model.get("step", meta.get("step", 0))))
    return trainer
