"""The main window: side panel (data, models), tabs (Train + exploration), menus, drops, status.

It composes the panels and routes between them: dropped or opened paths are
classified (:mod:`aestudio.gui.drops`) and sent where they belong; finished runs
are exported and loaded on the worker pool; the active model is handed to every
exploration panel. Settings and layout persist through QSettings.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
    QPaintEvent,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QGroupBox,
    QLabel,
    QMainWindow,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from aestudio.config import FinishReason, Task
from aestudio.data.project import is_project
from aestudio.gui import engine
from aestudio.gui.data_panel import DataPanel, DataSummary
from aestudio.gui.drops import DropKind, classify_all
from aestudio.gui.engine import LoadedModel
from aestudio.gui.export_status import ExportStatus
from aestudio.gui.messages import TOPIC_MODEL, Level, MessageBar, show_error_dialog
from aestudio.gui.models_panel import ModelsPanel
from aestudio.gui.panels import PANELS, ExplorePanel
from aestudio.gui.sample_strip import SampleStrip
from aestudio.gui.train_panel import TrainPanel, preload_core
from aestudio.gui.workers import TaskRunner, describe_error
from aestudio.gui.workspace import ENV_HOME, Key, add_recent, recent_items, workspace_dir
from aestudio.training.events import TrainFinished

logger = logging.getLogger(__name__)

DEFAULT_DATA = "digits"  # opened on first launch so Start works with one click
# First run (no settings saved yet): the zoo's default model is loaded so every panel
# works without training. Scripted setups that set AESTUDIO_HOME (tests, CI) skip it
# unless AESTUDIO_FIRST_RUN=1 (so do the tab offers below); AESTUDIO_FIRST_RUN=0 skips both.
ENV_FIRST_RUN = "AESTUDIO_FIRST_RUN"
# Which kind of zoo model a tab wants most, by a word of its title (tabs accept several tasks).
FIRST_PAINT_FALLBACK_MS = 1000  # start the deferred background work even if the window is never painted
BUILD_TICK_MS = 50  # the panels not shown at start-up: one built per tick once the background is idle
BUILD_AT_LATEST_MS = 20000  # ... or this long after the first paint, idle or not
TAB_TASK_HINTS = {"noise": Task.DENOISE, "segment": Task.SEGMENT, "latent": Task.GENERATE, "reconstruct": Task.RECONSTRUCT}
EXPORTABLE_REASONS = (FinishReason.DONE, FinishReason.STOPPED, FinishReason.DIVERGED)


DEFAULT_SIZE = QSize(1400, 880)  # on a large screen
FRAME_ROOM = QSize(24, 40)  # the window manager's frame and title bar, outside the geometry


def default_window_size(available: QSize | None) -> QSize:
    """The first window's size: 1400x880, or less on a smaller screen (it was larger than a
    1366x768 laptop's). The window's minimum size still applies (Qt enforces it)."""
    if available is None or not available.isValid():
        return QSize(DEFAULT_SIZE)
    return DEFAULT_SIZE.boundedTo(available - FRAME_ROOM)


def _verify_images(paths: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Split image files into readable and broken (with the reader's reason). Worker thread."""
    good: list[Path] = []
    bad: list[tuple[Path, str]] = []
    for p in paths:
        try:
            engine.read_image(p)
            good.append(p)
        except Exception as exc:  # noqa: BLE001 - ImageLoadError, OSError, decoder errors
            bad.append((p, describe_error(exc, p)))
    return good, bad


class _NoHeightForWidthLayout(QVBoxLayout):
    """Reports no height-for-width, so a scroll area sizes its widget by the minimum size.

    A scroll area sizes a widget whose layout has height-for-width (any word-wrapped
    label) by its *preferred* height: the Reconstruct tab scrolled at 1366x768 though
    its minimum fits. The layout inside still wraps its labels.
    """

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return False


class _PanelHost(QWidget):
    """Holds one exploration panel in its tab's scroll area; scrolls only below its minimum size."""

    def __init__(self, panel: QWidget) -> None:
        super().__init__()
        self.panel = panel
        lay = _NoHeightForWidthLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(panel)


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.first_run = self._is_first_run(settings)
        self.workspace = workspace_dir(settings)
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.active_model: LoadedModel | None = None
        self._closing = False
        self.tasks = TaskRunner(self)
        self._closed = threading.Event()  # set on close: exports queued by this window never start then
        # Its own thread for loading torch in the background (~3 s), so checking a dropped
        # image or opening data never queues behind it in the shared pool.
        self._preload = TaskRunner(self, max_workers=1, reads_only=True)
        # Opening data sets and checking dropped images: reads, which quitting need not wait for
        # (exports, copies and saves stay on self.tasks, whose jobs finish before the exit).
        self.reads = TaskRunner(self, max_workers=2, reads_only=True)
        self.setWindowTitle("aestudio")
        self.setAcceptDrops(True)
        screen = self.screen() or QGuiApplication.primaryScreen()
        self.resize(default_window_size(screen.availableGeometry().size() if screen is not None else None))

        self.messages = MessageBar()
        self.data_panel = DataPanel(self.reads)
        self.models_panel = ModelsPanel(self.workspace)
        self.models_panel.set_recent(recent_items(settings))
        self.train_panel = TrainPanel(self.workspace)
        # Built when their tab is first current, or after the first paint once idle (see _build_later).
        self._panels: list[ExplorePanel | None] = [None] * len(PANELS)
        self.samples = SampleStrip()
        self._offered: set[str] = set()  # zoo models already suggested for a tab (ask once)
        self._show_tab_for_model = False  # first run: switch to the default model's tab when it loads
        # Opened paths chose the tab (a project -> Label, images -> the panel they went to): the first
        # run's switch to the default model's tab must not move the window away from them later.
        self._paths_chose_tab = False
        # `aestudio IMAGE...` on a first start: the images open in the Noise lab (its shipped denoiser takes
        # any photo), not in the default digits model's Reconstruct tab, which shrank a photo to 8 x 8.
        self._launch_images_panel: str | None = None
        self._load_seq = 0  # the newest model load request; an older one finishing later is dropped
        self._restoring: Path | None = None  # the last session's model, while it loads (no tab offers meanwhile)
        self._build_layout()
        self._build_status_bar()
        self._build_menus()
        self._painted = False  # background work waits for the first paint (see _when_shown)
        self._idle_jobs: list[Callable[[], object]] = []  # GUI-thread work waiting for an idle background
        self._idle_since: float | None = None
        self._after_first_paint: list[Callable[[], object]] = []
        self._connect()
        self._restore()

    # ================================================================ construction

    def _build_layout(self) -> None:
        side = QSplitter(Qt.Orientation.Vertical)
        data_box = QGroupBox("Data")
        QVBoxLayout(data_box).addWidget(self.data_panel)
        models_box = QGroupBox("Models")
        QVBoxLayout(models_box).addWidget(self.models_panel)
        side.addWidget(data_box)
        side.addWidget(models_box)
        side.setSizes([480, 360])
        side.setMinimumWidth(290)  # room for run names and three buttons a row

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(False)
        self.tabs.addTab(self.train_panel, "Train")
        # Each exploration tab scrolls rather than widen the window: the panels' minimum
        # sizes added up to ~1640x1000, more than a laptop screen.
        self._panel_tabs: dict[ExplorePanel, QScrollArea] = {}
        self._panel_areas: list[QScrollArea] = []  # one per PANELS entry; the panel goes in when built
        for entry in PANELS:
            area = QScrollArea()
            area.setWidgetResizable(True)
            area.setFrameShape(QFrame.Shape.NoFrame)
            self._panel_areas.append(area)
            self.tabs.addTab(area, entry.title)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.tabs, 1)
        self.messages.float_over(right)  # over the bottom (the sample strip): nothing moves as messages come and go
        rl.addWidget(self.samples)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(side)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([340, 1060])
        central = QWidget()
        central.setObjectName("central")
        cl = QVBoxLayout(central)
        cl.setContentsMargins(6, 6, 6, 0)
        cl.addWidget(self.splitter)
        self.setCentralWidget(central)

    # ------------------------------------------------ the exploration panels, built on demand

    @property
    def explore(self) -> list[ExplorePanel]:
        """Every exploration panel, in tab order (building any not built yet)."""
        return [self._panel(i) for i in range(len(PANELS))]

    def _built_panels(self) -> list[ExplorePanel]:
        return [p for p in self._panels if p is not None]

    def _panel(self, index: int) -> ExplorePanel:
        """The exploration panel of ``PANELS[index]``, built (and told the model and data) on first use.

        Only the tab current at start-up is built before the window's first paint: each panel
        imports its own stack (pyqtgraph, superqt, explore modules), which made a first launch
        take 2.3 s (bench ``launch``). The others follow after the paint (``_build_later``).
        """
        panel = self._panels[index]
        if panel is None:
            panel = PANELS[index].load()(self.tasks)
            self._panels[index] = panel
            area = self._panel_areas[index]
            area.setWidget(_PanelHost(panel))
            self._panel_tabs[panel] = area
            panel.notify.connect(self.notify)
            request = getattr(panel, "request_model", None)  # e.g. the Label tab's exported model
            if request is not None:
                request.connect(self.load_model)
            if self.data_panel.summary is not None:
                panel.set_data(self.data_panel.summary)
            if self.active_model is not None:
                panel.set_model(self.active_model)
        return panel

    def _tab_changed(self, index: int) -> None:
        area = self.tabs.widget(index)
        if area in self._panel_areas:
            self._panel(self._panel_areas.index(area))
        self._offer_model_for_tab()

    def _build_later(self) -> None:
        """Queue what the first paint left out (the Train tab's plots, the panels not shown)."""
        self._when_idle(self.train_panel.build_deferred)
        for i in range(len(PANELS)):
            self._when_idle(lambda i=i: self._panel(i))

    def _when_idle(self, job: Callable[[], object], *, first: bool = False) -> None:
        """Run ``job`` in the GUI thread once no background job runs, one job per BUILD_TICK_MS tick.

        Building a panel while the start-up loads import torch, ONNX Runtime and the data set
        shares the GIL and the import locks with them: it held the event loop for 1.3-4 s in
        one turn (bench ``launch``, longest stall). After BUILD_AT_LATEST_MS from the first
        job queued the jobs run anyway. A tab made current is built at once, not here.
        """
        if first:
            self._idle_jobs.insert(0, job)
        else:
            self._idle_jobs.append(job)
        if self._idle_since is None:
            self._idle_since = time.monotonic()
            QTimer.singleShot(BUILD_TICK_MS, self, self._idle_tick)

    def _idle_tick(self) -> None:
        if self._closing or not self._idle_jobs:
            self._idle_since = None
            return
        busy = any(runner.pending for runner in (self.tasks, self.reads, self._preload))
        if not busy or time.monotonic() - self._idle_since > BUILD_AT_LATEST_MS / 1000:
            self._idle_jobs.pop(0)()
        QTimer.singleShot(BUILD_TICK_MS, self, self._idle_tick)

    @property
    def deferred_built(self) -> bool:
        """Whether everything the first paint left for later is built (the bench waits for it)."""
        return self.train_panel.curves.plot_built and all(p is not None for p in self._panels)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.device_label = QLabel("Device: —")
        self.runtime_label = QLabel("Runtime: no model")
        self.model_label = QLabel("Model: none")
        self.export_status = ExportStatus()
        bar.addWidget(self.export_status)
        for w in (self.model_label, self.runtime_label, self.device_label):
            bar.addPermanentWidget(w)

    def _build_menus(self) -> None:
        self.actions: dict[str, QAction] = {}

        def act(menu, name: str, text: str, slot, shortcut=None, tip: str = "") -> QAction:
            a = QAction(text, self)
            if shortcut is not None:
                a.setShortcut(QKeySequence(shortcut))
            a.setStatusTip(tip)
            a.triggered.connect(slot)
            menu.addAction(a)
            self.actions[name] = a
            return a

        file = self.menuBar().addMenu("&File")
        act(file, "open_images", "Open &images…", self.open_images_dialog, QKeySequence.StandardKey.Open,
            "Open image files in the current panel")
        act(file, "open_folder", "Open &folder…", self.open_folder_dialog, "Ctrl+Shift+O",
            "Use a folder of images as the data set")
        act(file, "open_model", "Open &run or bundle…", self.open_model_dialog, "Ctrl+L",
            "Load a trained run, a bundle or an .onnx file as the active model")
        act(file, "open_package", "Open model &file (.zip, .onnx)…", self.open_model_file_dialog, None,
            "Load a BioImage Model Zoo package (.zip) or a .onnx file as the active model")
        act(file, "export", "&Export active model…", self.export_active_dialog, "Ctrl+E",
            "Write the active model's ONNX bundle to a folder")
        act(file, "export_package", "Export as BioImage &Model Zoo package…", self.export_package_dialog, None,
            "Write the active model as a .zip that ilastik, deepImageJ, napari and bioimageio.core run")
        file.addSeparator()
        a = act(file, "bf16", "Whole images and folders in &bfloat16 where faster", self._set_bf16, None,
                "Denoisers and segmenters whose export measured bfloat16 close to float32 run in bfloat16 (torch) "
                "on a CPU with native bfloat16 (AVX512-BF16 or AMX) for whole images and folders; off: always "
                "the float32 ONNX graph")
        a.setCheckable(True)
        a.setChecked(self.settings.value(Key.PRECISION, "auto", type=str) == "auto")
        engine.install_batch_runtime("auto" if a.isChecked() else "float32")
        act(file, "workspace", "Change &workspace…", self.change_workspace_dialog, None,
            "Choose the folder where runs and bundles are kept")
        file.addSeparator()
        act(file, "quit", "&Quit", self.close, QKeySequence.StandardKey.Quit)

        train = self.menuBar().addMenu("&Train")
        act(train, "start", "&Start", self.train_panel.start, "Ctrl+Return")
        act(train, "stop", "S&top", self.train_panel.stop, "Ctrl+.")
        act(train, "resume", "&Resume last run",
            lambda: self.train_panel.resume_run(self.train_panel.run_dir), "Ctrl+Shift+Return")

        view = self.menuBar().addMenu("&View")
        for i in range(self.tabs.count()):
            act(view, f"tab{i}", self.tabs.tabText(i), lambda _=False, i=i: self.tabs.setCurrentIndex(i), f"Ctrl+{i + 1}")
        # The actions' shortcuts must work whichever widget has focus.
        self.actions["quit"].setShortcut(QKeySequence("Ctrl+Q"))

    def _set_bf16(self, on: bool) -> None:
        precision = "auto" if on else "float32"
        self.settings.setValue(Key.PRECISION, precision)
        engine.install_batch_runtime(precision)
        if self.active_model is not None:  # the runtime line says which runtime batch work takes
            self.runtime_label.setText(f"Runtime: {engine.runtime_line(self.active_model)}")

    def _connect(self) -> None:
        for source in (self.data_panel, self.models_panel, self.train_panel):  # (panels: in _panel)
            source.notify.connect(self.notify)
        self.data_panel.data_changed.connect(self._data_changed)
        self.data_panel.image_activated.connect(lambda p: self.open_paths([p]))
        self.samples.open_requested.connect(self.open_paths)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.models_panel.load_requested.connect(self.load_model)
        self.models_panel.export_requested.connect(self.export_dialog)
        self.models_panel.resume_requested.connect(self._resume_run)
        self.train_panel.run_finished.connect(self._run_finished)
        self.train_panel.device_reported.connect(lambda d: self.device_label.setText(f"Device: {d}"))
        self.train_panel.running_changed.connect(self._running_changed)
        self.train_panel.checkpoint_saved.connect(self.models_panel.refresh)  # "5 ep · running", not "0 ep"
        self.train_panel.device_box.currentTextChanged.connect(
            lambda _t: self.device_label.setText(f"Device: {self.train_panel.device_key()}"))

    # ================================================================ settings

    def _restore(self) -> None:
        s = self.settings
        geometry = s.value(Key.GEOMETRY)
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = s.value(Key.STATE)
        if isinstance(state, QByteArray):
            self.restoreState(state)
        split = s.value(Key.SPLITTER)
        if isinstance(split, QByteArray):
            self.splitter.restoreState(split)
        last_model = self._last_model()
        if last_model is not None:
            # Set before the tab: restoring the tab would otherwise offer (and load) a zoo model
            # while the session's own model is still loading.
            self._restoring = last_model
        self.tabs.setCurrentIndex(int(s.value(Key.TAB, 0, type=int)))
        device = s.value(Key.DEVICE, "", type=str)
        if device:
            self.train_panel.set_device(device)
        self.device_label.setText(f"Device: {self.train_panel.device_key()}")
        self.train_panel.refresh_compare()
        # Background work (it loads torch and ONNX Runtime) starts after the first paint, so
        # the window shows first and the GUI thread is not sharing the interpreter while it builds.
        self._when_shown(self._build_later)
        spec = s.value(Key.DATA_SPEC, "", type=str) or (DEFAULT_DATA if DEFAULT_DATA in engine.builtin_specs() else "")
        if spec:  # unless paths given at launch chose the data meanwhile
            self._when_shown(lambda: None if self.data_panel.requested_spec else self.data_panel.open_spec(spec))
        self._when_shown(lambda: self._preload.submit(preload_core, on_result=self.train_panel.ensure_core,
                                                      on_error=lambda exc, _d: self.train_panel.ensure_core()))
        if last_model is not None:
            self._when_shown(lambda: self.load_model(last_model))  # after the first paint, like the data
        elif self.first_run:
            default = engine.zoo_default_model()
            if default is not None:
                self._show_tab_for_model = True  # once loaded, open the tab where it shines
                self.load_model(default)

    def _last_model(self) -> Path | None:
        """The model active when the app last closed, if it is still there."""
        saved = self.settings.value(Key.MODEL, "", type=str)
        if not saved:
            return None
        path = Path(saved)
        if not path.exists():
            logger.info("last session's model %s is gone; not reopened", path)
            return None
        return path

    @staticmethod
    def _zoo_helpers_enabled() -> bool:
        """Automatic zoo loads (first run, tab offers) are off for scripted setups (AESTUDIO_HOME)."""
        flag = os.environ.get(ENV_FIRST_RUN, "")
        return flag == "1" or (flag != "0" and not os.environ.get(ENV_HOME))

    @classmethod
    def _is_first_run(cls, settings: QSettings) -> bool:
        return cls._zoo_helpers_enabled() and not settings.allKeys()

    def save_settings(self) -> None:
        s = self.settings
        s.setValue(Key.GEOMETRY, self.saveGeometry())
        s.setValue(Key.STATE, self.saveState())
        s.setValue(Key.SPLITTER, self.splitter.saveState())
        s.setValue(Key.TAB, self.tabs.currentIndex())
        s.setValue(Key.DEVICE, self.train_panel.device_key())
        if self.data_panel.spec:
            s.setValue(Key.DATA_SPEC, self.data_panel.spec)
        s.sync()

    def _when_shown(self, job: Callable[[], object]) -> None:
        """Run ``job`` now if the window has been painted, else right after its first paint.

        Background jobs load torch, ONNX Runtime and data; started while the window is being
        built they share the interpreter with it and delay the first paint (bench ``launch``).
        """
        if self._painted:
            job()
        else:
            self._after_first_paint.append(job)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._painted:  # in case no paint comes (a minimised start): go on anyway
            QTimer.singleShot(FIRST_PAINT_FALLBACK_MS, self, self._run_after_first_paint)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        if not self._painted:
            QTimer.singleShot(0, self, self._run_after_first_paint)

    def _run_after_first_paint(self) -> None:
        if self._painted:
            return
        self._painted = True
        jobs, self._after_first_paint = self._after_first_paint, []
        for job in jobs:
            job()

    def _cancel_model_calls(self) -> None:
        """Stop the active model's ONNX Runtime calls in flight (they end with ModelCallCancelled)."""
        model = getattr(self, "active_model", None)
        cancel = getattr(getattr(model, "predictor", None), "cancel", None)
        if cancel is not None:
            cancel()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self._closing = True
        self.save_settings()
        self.train_panel.shutdown()
        for panel in self._built_panels():
            try:
                panel.shutdown()
            except Exception:  # noqa: BLE001 - closing must never fail because one panel did
                logger.exception("panel %s failed to shut down", panel.title)
        self._cancel_model_calls()  # a model call must not keep the process alive after the window
        self.tasks.shutdown()
        self.reads.shutdown()
        self._preload.shutdown()
        # An export child must not outlive the window (it did, invisibly, for ~50 s): end it.
        # It writes to a temp folder and renames at the end, so no half-written bundle stays;
        # the run is exported again when next loaded.
        self._closed.set()  # an export still waiting on the pool must not start after this
        if engine.cancel_exports():
            logger.info("export cancelled by closing the window")
        super().closeEvent(event)

    # ================================================================ messages

    def notify(self, level: Level, text: str, details: str = "", *, topic: str = "") -> None:
        self.messages.post(level, text, details, topic=topic)  # (not also in the status bar: cut there, beside the labels)

    def status(self, text: str) -> None:
        """A transient progress note: status bar only, replaced by the outcome's message."""
        self.statusBar().showMessage(text, 10000)

    # ================================================================ drops and opening

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        remote = [u.toString() for u in event.mimeData().urls() if not u.isLocalFile()]
        for url in remote:
            self.notify(Level.WARNING, f"{url}: only local files can be opened; download it first.")
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    def open_paths(self, paths: list[Path], *, at_launch: bool = False) -> None:
        """Route paths by kind: images to the current panel, folders to data, runs/bundles to models.

        The tab follows what was opened: a project shows the Label tab, images the panel they go to
        (the current one, Reconstruct from Train), and then stays there. ``at_launch`` (``aestudio
        PATH...``): a model alone opens on the tab for its task, as a first start does.
        """
        groups = classify_all(paths)
        if groups[DropKind.IMAGE] or any(is_project(i.path) for i in groups[DropKind.FOLDER]):
            self._paths_chose_tab = True
            self._show_tab_for_model = False
            only_images = not any(groups[k] for k in DropKind if k not in (DropKind.IMAGE, DropKind.MISSING,
                                                                             DropKind.UNSUPPORTED))
            if at_launch and self.first_run and only_images:
                self._launch_images_panel = "NoiseLabPanel"
        elif at_launch and any(groups[k] for k in (DropKind.RUN, DropKind.BUNDLE, DropKind.ONNX, DropKind.PACKAGE)):
            self._show_tab_for_model = True
        for item in groups[DropKind.MISSING] + groups[DropKind.UNSUPPORTED]:
            self.notify(Level.WARNING, item.reason)
        folders = groups[DropKind.FOLDER]
        projects = [i.path for i in folders if is_project(i.path)]
        if projects:  # a label project opens in the Label tab, not as a data set
            folders = [i for i in folders if i.path not in projects]
            # Only the Label tab is built (`self.explore` built all five: at `aestudio PROJECT` the window's
            # first paint waited ~3 s for the other panels' imports).
            label = next((self._panel(i) for i, e in enumerate(PANELS) if e.class_name == "LabelPanel"), None)
            if label is not None:
                self.show_panel(label)
                label.add_images(projects[-1:])
        if folders:
            if len(folders) > 1:
                self.notify(Level.INFO, f"Using {folders[-1].path.name} as the data set; one folder at a time.")
            self.data_panel.open_folder(folders[-1].path)
        models = groups[DropKind.RUN] + groups[DropKind.BUNDLE] + groups[DropKind.ONNX] + groups[DropKind.PACKAGE]
        if models:
            if len(models) > 1:
                self.notify(Level.INFO, f"Loading {models[-1].path.name}; one active model at a time.", topic=TOPIC_MODEL)
            self.load_model(models[-1].path)
        images = [i.path for i in groups[DropKind.IMAGE]]
        if images:
            self.reads.submit(_verify_images, images, on_result=self._images_checked,
                              on_error=lambda exc, det: self.notify(Level.ERROR, f"Cannot open images: {exc}", det))

    def _images_checked(self, result: tuple[list[Path], list[tuple[Path, str]]]) -> None:
        good, bad = result
        for path, reason in bad:
            # The loader's own message already starts with the path; say it once.
            self.notify(Level.WARNING, f"Cannot open {path}: {reason.removeprefix(f'{path}: ')}")
        if not good:
            return
        panel = self.current_explore_panel()
        landing, self._launch_images_panel = self._launch_images_panel, None
        if landing is not None:
            panel = next(self._panel(i) for i, e in enumerate(PANELS) if e.class_name == landing)
            self.show_panel(panel)
        elif panel is None:  # images dropped on the Train tab go to the first exploration panel
            panel = self._panel(0)
            self.show_panel(panel)
        panel.add_images(good)
        if not panel.reports_added_images:
            self.notify(Level.INFO, f"{len(good)} image(s) sent to {panel.title}.")

    def current_explore_panel(self) -> ExplorePanel | None:
        w = self.tabs.currentWidget()
        inner = w.widget() if isinstance(w, QScrollArea) else w
        inner = inner.panel if isinstance(inner, _PanelHost) else inner
        return inner if isinstance(inner, ExplorePanel) else None

    def show_panel(self, panel: QWidget) -> None:
        """Make ``panel`` (the Train panel or an exploration panel) the current tab."""
        self.tabs.setCurrentWidget(self._panel_tabs.get(panel, panel))

    def open_images_dialog(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(engine.image_suffixes()))
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", "", f"Images ({patterns});;All files (*)")
        if files:
            self.open_paths([Path(f) for f in files])

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.open_paths([Path(folder)])

    def open_model_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a run or bundle folder", str(self.workspace))
        if folder:
            self.open_paths([Path(folder)])

    def open_model_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model file", str(self.workspace),
                                              "Models (*.zip *.onnx);;BioImage Model Zoo package (*.zip);;ONNX (*.onnx)")
        if path:
            self.open_paths([Path(path)])

    # ================================================================ models

    def load_model(self, path: Path) -> None:
        if not self._painted:  # restored settings ask for a model while the window builds: after the paint
            self._when_shown(lambda: self.load_model(path))
            return
        path = Path(path)
        self._load_seq += 1
        seq = self._load_seq
        self.status(f"Loading {path.name}" + (" (a run is exported to ONNX first)…" if engine.is_run_dir(path) else "…"))
        self.tasks.submit(lambda: engine.load_model(path, closing=self._closed),
                          on_result=lambda m: self._model_loaded(seq, m, path),
                          on_error=lambda exc, det: self._load_failed(path, exc, det))

    def _model_loaded(self, seq: int, model: LoadedModel, path: Path) -> None:
        # The newest request wins: on a first start the default model (asked for at start-up) could finish
        # after the one a tab asked for a moment later, and replaced it (the Noise lab got the digits VAE).
        if seq != self._load_seq:
            logger.info("%s loaded after a newer model was asked for; not made active", path)
            return
        self.set_active_model(model, path)

    def _load_failed(self, path: Path, exc: BaseException, details: str) -> None:
        self._task_failed(f"Cannot load {path}", exc, details, path, topic=TOPIC_MODEL)
        if self._restoring == path:
            self._restoring = None
            self._offer_model_for_tab()

    def _task_failed(self, what: str, exc: BaseException, details: str, path: Path | None = None,
                     topic: str = "") -> None:
        """Report a failed load/export; an export child's own error output is the details."""
        if isinstance(exc, engine.ExportCancelled):
            self.notify(Level.INFO, str(exc), topic=topic)
            return
        self.notify(Level.ERROR, f"{what}: {describe_error(exc, path)}", getattr(exc, "details", "") or details,
                    topic=topic)

    def set_active_model(self, model: LoadedModel, requested: Path | None = None) -> None:
        self._cancel_model_calls()  # the old model's calls in flight are of no use now
        self.active_model = model
        self.statusBar().clearMessage()  # "Loading …" is over
        for panel in self._built_panels():  # (a panel built later gets it in _panel)
            panel.set_model(model)
        self.runtime_label.setText(f"Runtime: {engine.runtime_line(model)}")
        task = Task(model.info.task).value
        self.model_label.setText(f"Model: {model.name}" + (f" · {task}" if task else ""))  # a name may hold "(grey)"
        add_recent(self.settings, requested or model.path)
        self.settings.setValue(Key.MODEL, str(requested or model.path))
        self._restoring = None
        self.models_panel.protected = {p for p in (model.path, model.source) if p is not None}
        self.models_panel.set_recent(recent_items(self.settings))
        self.notify(Level.INFO, f"Active model: {model.name} ({engine.runtime_line(model)}).", topic=TOPIC_MODEL)
        self._open_data_of_shipped(model)
        if self._show_tab_for_model:
            self._show_tab_for_model = False
            # Once the start-up loads are done: building that tab now waited on their imports.
            # (Checked when it runs: images or a project opened meanwhile keep their tab.)
            self._when_idle(lambda: None if self._paths_chose_tab else self._show_tab_for_task(task), first=True)

    def _show_tab_for_task(self, task: str) -> None:
        for i, entry in enumerate(PANELS):
            hinted = next((t for word, t in TAB_TASK_HINTS.items() if word in entry.title.lower()), None)
            if hinted == task:
                self.show_panel(self._panel(i))
                return

    def _open_data_of_shipped(self, model: LoadedModel) -> None:
        """A shipped model brings its built-in training data to the data panel.

        Its panels then browse and map what it knows (the shapes-seg U-Net over
        digits would score nothing). A user's own model keeps the user's data.
        """
        worker = self.train_panel.worker
        if not engine.is_zoo_path(model.path) or (worker is not None and worker.running):
            return  # (while training, the data panel shows the data being trained on)
        if self.data_panel.chosen_by_user:
            return  # the person's own pick this session stays (`aestudio FOLDER` lost its folder to digits)
        training = getattr(model.info, "training", None) or {}
        spec = training.get("data_spec") if isinstance(training, dict) else None
        if spec and spec != self.data_panel.spec and spec in engine.builtin_specs():
            self.data_panel.open_spec(spec)

    def _offer_model_for_tab(self) -> None:
        """On a tab the active model does not serve, load (or name) the zoo model that does.

        Only a zoo model (or no model) is replaced automatically; the user's own model
        stays active and the message names the zoo model to load instead.
        """
        panel = self.current_explore_panel()
        if panel is None or not self._zoo_helpers_enabled():
            return
        preferred = panel.preferred_task
        model_task = self.active_model.info.task if self.active_model is not None else None
        if panel.supports(self.active_model) and (preferred is None or model_task is preferred):
            return
        if self._restoring is not None:
            return  # the last session's model is loading; offer once it is known
        supported = panel.tasks_supported
        by_title = next((task for word, task in TAB_TASK_HINTS.items() if word in panel.title.lower()), None)
        task = preferred or (by_title if by_title in supported else next(
            (t for t in (Task.SEGMENT, Task.GENERATE, Task.RECONSTRUCT, Task.DENOISE) if t in supported), None))
        zoo = engine.zoo_model_for_task(task) if task else None
        if zoo is None or zoo.name in self._offered:
            return
        self._offered.add(zoo.name)
        current = self.active_model
        needs = "works best with" if panel.supports(current) else "needs"
        if current is None or engine.is_zoo_path(current.path):
            self.notify(Level.INFO, f"{panel.title} {needs} a {task.value} model: loading the shipped {zoo.name}.",
                        topic=TOPIC_MODEL)
            self.load_model(Path(zoo.path))
        else:
            self.notify(Level.INFO, f"{panel.title} {needs} a {task.value} model; the shipped {zoo.name} is one "
                                    "click away in Models > Shipped models.")

    def _run_finished(self, ev: TrainFinished) -> None:
        if self._closing:
            return  # the run was stopped by closing the window: its checkpoint is on disk
        self.models_panel.refresh()
        if ev.run_dir is None or ev.reason not in EXPORTABLE_REASONS or not engine.is_run_dir(Path(ev.run_dir)):
            return
        if ev.step == 0:
            return  # stopped before the first step: nothing to export
        self.load_model(Path(ev.run_dir))  # exports to RUN/bundle first, in the worker

    def _running_changed(self, running: bool) -> None:
        run = self.train_panel.run_dir
        protected = set(self.models_panel.protected)
        if run is not None:
            (protected.add if running else protected.discard)(run)
        self.models_panel.protected = protected
        self.models_panel.refresh()

    def _resume_run(self, path: Path) -> None:
        self.show_panel(self.train_panel)
        self.train_panel.resume_run(path)

    def _data_changed(self, summary: DataSummary) -> None:
        self.train_panel.set_data(summary.spec, summary.image_size)
        for panel in self._built_panels():  # (a panel built later gets it in _panel)
            panel.set_data(summary)

    # ================================================================ export and workspace

    def export_active_dialog(self) -> None:
        if self.active_model is None:
            self.notify(Level.INFO, "No active model to export: train one or load a run first.")
            return
        self.export_dialog(self.active_model.source or self.active_model.path)

    def export_dialog(self, source: Path) -> None:
        out = QFileDialog.getExistingDirectory(self, f"Export {source.name} to…", str(self.workspace))
        if out:
            self.export_to(source, Path(out) / source.name)

    def export_to(self, source: Path, target: Path) -> None:
        if target.exists():
            self.notify(Level.WARNING, f"Cannot export to {target}: it already exists; choose another folder.")
            return

        def work() -> Path:
            if engine.is_run_dir(source):
                return engine.export_run(source, target, closing=self._closed)
            shutil.copytree(source, target)  # a bundle is a plain folder
            return target

        self.status(f"Exporting {source.name}…")
        self.tasks.submit(work, on_result=lambda p: self.notify(Level.INFO, f"Exported to {p}."),
                          on_error=lambda exc, det: self._task_failed(f"Export of {source.name} failed", exc, det))

    def export_package_dialog(self) -> None:
        if self.active_model is None:
            self.notify(Level.INFO, "No active model to export: train one or load a run first.")
            return
        source = self.active_model.source or self.active_model.path
        out, _ = QFileDialog.getSaveFileName(self, f"Export {source.name} as a BioImage Model Zoo package",
                                             str(self.workspace / f"{source.name}.zip"), "BioImage Model Zoo package (*.zip)")
        if out:
            self.export_package_to(source, Path(out) if out.lower().endswith(".zip") else Path(out + ".zip"))

    def export_package_to(self, source: Path, target: Path) -> None:
        """Write ``source`` (a run or a bundle) as a package, in a child process (see engine.export_run)."""
        if target.exists():
            self.notify(Level.WARNING, f"Cannot export to {target}: it already exists; choose another name.")
            return
        self.status(f"Exporting {source.name} as a BioImage Model Zoo package…")
        self.tasks.submit(lambda: engine.export_run(source, target, package=True, closing=self._closed),
                          on_result=lambda p: self.notify(Level.INFO, f"Exported the BioImage Model Zoo package {p}."),
                          on_error=lambda exc, det: self._task_failed(f"Export of {source.name} failed", exc, det))

    def change_workspace_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose the workspace folder", str(self.workspace))
        if folder:
            self.set_workspace(Path(folder))

    def set_workspace(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.settings.setValue(Key.WORKSPACE, str(folder))
        self.workspace = folder
        self.models_panel.set_workspace(folder)
        self.train_panel.set_workspace(folder)
        self.train_panel.refresh_compare()
        if os.environ.get(ENV_HOME):
            self.notify(Level.INFO, "AESTUDIO_HOME is set; it will override this workspace at the next launch.")

    def show_error(self, text: str, details: str = "") -> None:
        show_error_dialog(self, text, details)
