"""The Train tab: pick a family and settings, run training in the background, watch it live.

The panel turns form values into configs, starts a :class:`TrainWorker` over the
core's ``train`` / ``resume`` generator, and renders event batches: progress with
ETA and images/s, throttled curves, a preview grid per epoch, and the validation
metrics. It never exports or loads models itself; it emits
:attr:`TrainPanel.run_finished` and the window decides what happens next.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from aestudio.config import FinishReason, Task, TrainConfig
from aestudio.gui import engine
from aestudio.gui.collapsible import Collapsible
from aestudio.gui.config_form import ConfigForm
from aestudio.gui.curves import CurvesView
from aestudio.gui.devices import Device, best_device, list_devices
from aestudio.gui.elided_label import ElidedLabel
from aestudio.gui.messages import Level
from aestudio.gui.metrics_table import MetricsTable
from aestudio.gui.presets import PRESETS, preset_for
from aestudio.gui.preview_grid import PreviewGrid
from aestudio.gui.run_compare import RunCompareList
from aestudio.gui.workers import TrainWorker
from aestudio.gui.workspace import new_run_dir
from aestudio.training.events import (
    BatchSizeReduced,
    CheckpointSaved,
    EpochEnded,
    Event,
    Paused,
    RunStarted,
    StepEnded,
    TrainFinished,
)

logger = logging.getLogger(__name__)

# in_channels always comes from the data; image_size stays visible because fixed-size nets
# resize the data to it (the training engine decides, see aestudio.training.runner).
NET_HIDDEN = ("in_channels",)
TRAIN_MAIN = ("epochs", "batch_size", "lr", "recon_loss", "noise", "kl_warmup_epochs", "time_limit_minutes")
TRAIN_ADVANCED = ("self_supervised", "weight_decay", "val_fraction", "seed", "max_steps", "amp", "bf16", "ema",
                  "checkpoint_every_steps", "preview_count", "max_oom_retries", "num_workers")


# A paused run is unpaused, not "continued": "Continue" beside "Resume" (which restarts a
# stopped run from its checkpoint) read as two names for one thing.
PAUSED_TEXT = "Unpause"


def format_seconds(s: float) -> str:
    if not math.isfinite(s) or s < 0:
        return "—"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {sec:02d}s" if m else f"{sec}s"


def preload_core() -> list[Device]:
    """Import the net families (and so torch) and list the devices: a worker's job, ~3 s."""
    engine.list_nets()
    return list_devices()


BOTTOM_LIST_MIN_HEIGHT = 44  # the metrics table and the compare list (a header and a row or two)


class TrainPanel(QWidget):
    run_finished = Signal(object)  # TrainFinished (run_dir set when a run folder exists)
    device_reported = Signal(str)  # "cpu" / "cuda:0 · NVIDIA ..." from RunStarted
    notify = Signal(object, str, str)  # Level, text, details
    running_changed = Signal(bool)
    checkpoint_saved = Signal()  # run.json was rewritten (epoch ends): lists showing runs may refresh

    def __init__(self, workspace: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.data_spec = ""
        self.data_image_size: int | None = None  # the data's own size; None: any size
        self.worker: TrainWorker | None = None
        self.run_dir: Path | None = None
        self._steps_per_epoch = 1
        self._last_step: StepEnded | None = None
        self._device = ""  # the device of the current run, from RunStarted
        self._devices: list[Device] | None = None
        self._core_ready = False  # families and devices listed (both need torch; see ensure_core)
        self._pending_device = ""  # a device asked for before the list existed (restored settings)
        self.net_form: ConfigForm | None = None

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self._build_settings())
        splitter.addWidget(self._build_live())
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 900])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(splitter)
        self.family_help.setText("Loading the model families (PyTorch)…")
        self._show_train_fields()  # no family yet: no family-specific field
        self._update_buttons()
        self._fit_settings_width()

    # ================================================================ layout

    def _build_settings(self) -> QWidget:
        host = QWidget()
        col = QVBoxLayout(host)
        col.setContentsMargins(0, 0, 6, 0)

        model_box = QGroupBox("Model")
        self._model_layout = QVBoxLayout(model_box)
        top = QFormLayout()
        self.family_box = QComboBox()
        self.family_box.setObjectName("family")
        self.family_box.currentTextChanged.connect(self._family_changed)
        top.addRow("Family", self.family_box)
        self._model_layout.addLayout(top)
        self.family_help = QLabel()
        self.family_help.setObjectName("hint")
        self.family_help.setWordWrap(True)
        self._model_layout.addWidget(self.family_help)
        self._net_form_host = QVBoxLayout()
        self._model_layout.addLayout(self._net_form_host)
        col.addWidget(model_box)

        train_box = QGroupBox("Training")
        tl = QVBoxLayout(train_box)
        self.train_form = ConfigForm(TrainConfig, include=TRAIN_MAIN)
        tl.addWidget(self.train_form)
        # Noise on the inputs of an autoencoder that is not the denoiser makes it a denoising
        # autoencoder (the CLI's --noise on any family): asked for explicitly, so its Noise
        # field does not sit in every family's form (issue 16).
        self.noisy_inputs = QCheckBox("Train on noisy inputs (denoising)")
        self.noisy_inputs.setObjectName("noisyInputs")
        self.noisy_inputs.setToolTip("Corrupt each input with the Noise below and learn to output the clean image "
                                     "(as `aestudio train --noise` does); the denoising_ae family always trains this way")
        self.noisy_inputs.toggled.connect(self._noisy_inputs_toggled)
        self.train_form.insert_row_before("noise", self.noisy_inputs)  # just above the field it reveals
        self.advanced_form = ConfigForm(TrainConfig, include=TRAIN_ADVANCED)
        adv = Collapsible("Advanced")
        adv.addWidget(self.advanced_form)
        tl.addWidget(adv)
        dev = QFormLayout()
        self.device_box = QComboBox()
        self.device_box.setObjectName("device")
        dev.addRow("Device", self.device_box)
        tl.addLayout(dev)
        col.addWidget(train_box)

        self.preset_help = QLabel()
        self.preset_help.setObjectName("hint")
        self.preset_help.setWordWrap(True)
        col.addWidget(self.preset_help)

        buttons = QGridLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("primary")
        self.start_button.setToolTip("Train a new run on the chosen data (Ctrl+Return)")
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._pause_toggled)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("End after the current step; the run keeps its checkpoint")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the last run (raise Epochs to train a finished run further)")
        self.resume_button.clicked.connect(lambda: self.resume_run(self.run_dir) if self.run_dir else None)
        for i, b in enumerate((self.start_button, self.pause_button, self.stop_button, self.resume_button)):
            buttons.addWidget(b, i // 2, i % 2)
        col.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(host)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._settings_scroll = scroll
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        # The run buttons stay under the settings, outside their scroll area: at 1366x768 the
        # settings scroll, and Start was below the fold.
        column = QWidget()
        outer = QVBoxLayout(column)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll, 1)
        buttons.setContentsMargins(0, 4, 6, 0)
        outer.addLayout(buttons)
        return column

    def _build_live(self) -> QWidget:
        host = QWidget()
        col = QVBoxLayout(host)
        col.setContentsMargins(6, 0, 0, 0)
        # Two lines at most, then "…" (the whole title is the tooltip): long run names must not widen
        # the window, nor wrap to six lines in a narrow one and squeeze the plots below.
        self.run_label = ElidedLabel("No run yet. Pick data on the left, then press Start.", lines=2)
        self.run_label.setObjectName("runTitle")
        col.addWidget(self.run_label)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        col.addWidget(self.progress)
        self.stats_label = QLabel(" ")
        self.stats_label.setObjectName("stats")
        col.addWidget(self.stats_label)

        vsplit = QSplitter(Qt.Orientation.Vertical)
        self.curves = CurvesView(deferred=True)  # its plots: after the window's first paint (build_deferred)
        vsplit.addWidget(self.curves)

        bottom = QSplitter(Qt.Orientation.Horizontal)
        self.preview = PreviewGrid()
        bottom.addWidget(self.preview)
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        self.metrics = MetricsTable()
        self.metrics.setMinimumWidth(220)
        sl.addWidget(self.metrics, 3)
        self.compare = RunCompareList(self.curves)
        self.compare.notify.connect(self.notify)
        sl.addWidget(self.compare, 2)
        bottom.addWidget(side)
        bottom.setStretchFactor(0, 3)
        bottom.setStretchFactor(1, 1)
        vsplit.addWidget(bottom)
        vsplit.setSizes([430, 290])
        # The lists below the plots give way first: at Qt's default minimum (70 px each) the column's
        # minimum left 9 px to spare at 1366 x 768, so a run title wrapping to two or three lines (a
        # narrow window, or a long run name) squeezed the plots under their minimum and cut their axes.
        for view in (self.metrics, self.compare.list):
            view.setMinimumHeight(BOTTOM_LIST_MIN_HEIGHT)
        col.addWidget(vsplit, 1)
        return host

    def _fit_settings_width(self) -> None:
        """No horizontal scrolling in the settings column: it is as wide as its widest form."""
        scroll = self._settings_scroll
        width = scroll.widget().sizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 6
        scroll.setMinimumWidth(max(300, width))

    def build_deferred(self) -> None:
        """Build what waited for the window's first paint: the curves' plots (pyqtgraph)."""
        self.curves.build_plot()

    # ================================================================ choices

    def _populate_families(self) -> None:
        try:
            names = engine.list_nets()
        except Exception as exc:  # noqa: BLE001 - a broken net module must not stop the window
            logger.warning("no net families: %s", exc)
            names = []
        self.family_box.blockSignals(True)
        self.family_box.clear()
        self.family_box.addItems(names)
        self.family_box.blockSignals(False)
        if names:
            self._family_changed(names[0])
        else:
            self.family_help.setText("No model families found: aestudio.nets is not importable.")

    def _family_changed(self, name: str) -> None:
        if not name:
            return
        try:
            spec = engine.get_spec(name)
        except Exception as exc:  # noqa: BLE001
            self.family_help.setText(str(exc))
            return
        if self.net_form is not None:
            self._net_form_host.removeWidget(self.net_form)
            self.net_form.deleteLater()
        self.net_form = ConfigForm(spec.config_cls, exclude=NET_HIDDEN)
        self._net_form_host.addWidget(self.net_form)
        self.family_help.setText(f"{spec.description or name} · task: {spec.task.value}")
        self._family_spec = spec
        self._show_train_fields()
        preset = preset_for(self.data_spec) if self.data_spec else None
        if preset is not None and preset.net == name:
            self.net_form.set_values(preset.net_params)
        if self.data_image_size:
            # Fixed-size nets default to the data's own size (digits are 8x8, not 28x28).
            self.net_form.set_values({"image_size": self.data_image_size})
        if hasattr(self, "_settings_scroll"):
            self._fit_settings_width()

    def _noisy_inputs_toggled(self, on: bool) -> None:
        """Ticked with Noise at none, the box would change nothing: it fills in the noise the
        folder preset's denoiser trains with, which the person may then edit."""
        edit = self.train_form.editor("noise")
        if on and isinstance(edit, QLineEdit) and edit.text().strip().lower() in ("", "none"):
            self.train_form.set_values({"noise": PRESETS["folder"].train_params["noise"]})
        self._show_train_fields()

    def _show_train_fields(self) -> None:
        """Training fields only for the families they act on: KL warm-up for the VAE; Noise for the
        denoiser, and for the other autoencoders when "Train on noisy inputs" is ticked (not for
        segmentation, whose training adds no noise). A hidden field returns to its default, so it
        never acts unseen. No family yet (torch still loading): neither."""
        spec = getattr(self, "_family_spec", None)
        fields = {f.name for f in dataclasses.fields(spec.config_cls)} if spec is not None else set()
        optional_noise = spec is not None and spec.task not in (Task.DENOISE, Task.SEGMENT)
        self.noisy_inputs.setVisible(optional_noise)
        if not optional_noise:
            self.noisy_inputs.setChecked(False)
        noise = spec is not None and (spec.task is Task.DENOISE or self.noisy_inputs.isChecked())
        for name, applies in (("kl_warmup_epochs", "beta" in fields), ("noise", noise)):
            self.train_form.set_row_visible(name, applies)

    @property
    def core_ready(self) -> bool:
        return self._core_ready

    def ensure_core(self, devices: list[Device] | None = None) -> None:
        """Fill the family picker and the device list, once.

        Both need torch (the nets register in torch modules; devices ask CUDA), a 3 s import,
        so the window opens without them: it preloads them on a worker after the first paint
        (:func:`preload_core`) and hands over ``devices``; anything that needs them sooner
        (data chosen, Start, a device asked for) calls this and loads them here.
        """
        if self._core_ready:
            return
        self._core_ready = True
        self._populate_families()
        self._devices = devices if devices is not None else list_devices()
        self.device_box.clear()
        for d in self._devices:
            self.device_box.addItem(d.label, d.key)
        self.device_box.setCurrentIndex(self._devices.index(best_device(self._devices)))
        if self._pending_device:
            self.set_device(self._pending_device)
        if self.data_spec:
            self.set_data(self.data_spec, self.data_image_size)
        self._update_buttons()

    def device_key(self) -> str:
        if not self._core_ready:
            return self._pending_device or "cpu"
        return self.device_box.currentData() or "cpu"

    def set_device(self, key: str) -> None:
        if not self._core_ready:
            self._pending_device = key
            return
        idx = self.device_box.findData(key)
        if idx >= 0:
            self.device_box.setCurrentIndex(idx)

    def set_data(self, spec: str, image_size: int | None = None) -> None:
        """The data to train on; applies that data's preset unless a run is going.

        ``image_size`` is the data's own size (None: any size, e.g. a folder); fixed-size
        nets start at that size instead of their config default.
        """
        self.data_spec = spec
        self.data_image_size = image_size
        if self.worker is not None and self.worker.running:
            return
        self.ensure_core()
        preset = preset_for(spec)
        if self.family_box.findText(preset.net) >= 0:
            if self.family_box.currentText() == preset.net:
                self._family_changed(preset.net)
            else:
                self.family_box.setCurrentText(preset.net)
        # From the defaults every time, so a value one data set's preset set (KL warm-up 5 for
        # shapes) is not carried to the next data set, and a session does not depend on the order.
        for form in (self.train_form, self.advanced_form):
            form.reset()
            form.set_values(preset.train_params)
        self.noisy_inputs.setChecked(False)  # (a denoising preset uses the denoiser, whose Noise always shows)
        self._show_train_fields()  # the preset may set a field this family ignores: back to hidden and default
        self.preset_help.setText(f"Defaults for {spec}: {preset.why}" if preset.why else f"Data: {spec}")
        self._update_buttons()

    def set_workspace(self, workspace: Path) -> None:
        self.workspace = workspace

    # ================================================================ run control

    def start(self) -> None:
        if self.worker is not None and self.worker.running:
            return
        self.ensure_core()
        if not self.data_spec:
            self.notify.emit(Level.WARNING, "Choose data first (a built-in set or a folder), then press Start.", "")
            return
        net_name = self.family_box.currentText()
        try:
            net_cfg = self.net_form.build() if self.net_form else None
            cfg = self.train_form.build(device=self.device_key(), **self.advanced_form.values())
        except (ValueError, TypeError) as exc:
            self.notify.emit(Level.ERROR, f"Cannot start: {exc}", "")
            return
        run_dir = new_run_dir(self.workspace, net_name, self.data_spec)
        spec = self.data_spec

        def source(stop, pause):
            return engine.train(net_name, net_cfg, spec, cfg, run_dir, stop=stop, pause=pause)

        self._launch(source, run_dir, f"{run_dir.name}")

    def resume_run(self, run_dir: Path | None) -> None:
        if run_dir is None or (self.worker is not None and self.worker.running):
            return
        try:
            info = engine.read_run(run_dir)
            target = int(getattr(info.train_cfg, "epochs", 0))
            form = self.train_form.values()
            wanted = int(form.get("epochs", target))
            time_limit = form.get("time_limit_minutes")  # this invocation's own budget, as on the CLI
            done = int(getattr(info, "epoch", 0))
        except Exception as exc:  # noqa: BLE001 - any unreadable run is reported, not raised
            self.notify.emit(Level.ERROR, f"Cannot resume {run_dir.name}: {exc}", "")
            return
        epochs = max(target, wanted)
        if done >= epochs:
            self.notify.emit(Level.INFO, f"{run_dir.name} already has {done} epochs; raise Epochs to train it further.", "")
            return

        def source(stop, pause):
            return engine.resume(run_dir, stop=stop, pause=pause, epochs=epochs, time_limit_minutes=time_limit)

        self._launch(source, run_dir, f"{run_dir.name} (resumed at epoch {done + 1})", keep_curves=True)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.stats_label.setText("Stopping after this step…")

    def _pause_toggled(self, paused: bool) -> None:
        if self.worker is not None and self.worker.running:
            self.worker.set_paused(paused)
        self.pause_button.setText(PAUSED_TEXT if paused else "Pause")

    def _launch(self, source, run_dir: Path, title: str, keep_curves: bool = False) -> None:
        self.run_dir = run_dir
        if not keep_curves:
            self.curves.reset_live()
            self.metrics.reset()
            self.preview.clear()
        self._last_step = None
        self.run_label.setText(f"Starting {title}…")
        self.progress.setRange(0, 0)  # busy until RunStarted says how many steps
        self.worker = TrainWorker(source, self)
        self.worker.events.connect(self._on_events)
        self.worker.finished.connect(self._on_finished)
        self.worker.start()
        self._update_buttons()
        self.running_changed.emit(True)

    def _update_buttons(self) -> None:
        running = self.worker is not None and self.worker.running
        self.start_button.setEnabled(not running and self.family_box.count() > 0)  # empty until ensure_core
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(not running and self.run_dir is not None)
        self.family_box.setEnabled(not running)

    # ================================================================ events

    def _on_events(self, batch: list[Event]) -> None:
        last_preview: EpochEnded | None = None
        saved = False
        for event in batch:
            if isinstance(event, StepEnded):
                self._last_step = event
                self.curves.add_step(event.step / self._steps_per_epoch, event.loss)
            elif isinstance(event, EpochEnded):
                self.curves.add_epoch(event.epoch + 1, event.train_loss, event.metrics)
                self.metrics.add_epoch(event.epoch, event.metrics)
                if event.preview is not None:
                    last_preview = event
            elif isinstance(event, RunStarted):
                self._run_started(event)
            elif isinstance(event, CheckpointSaved):
                logger.info("checkpoint %s (epoch %d)", event.path, event.epoch)
                saved = True
            elif isinstance(event, BatchSizeReduced):
                self.notify.emit(Level.WARNING, f"Batch size reduced from {event.old} to {event.new}: {event.reason}", "")
            elif isinstance(event, Paused):
                self.pause_button.blockSignals(True)
                self.pause_button.setChecked(event.paused)
                self.pause_button.setText(PAUSED_TEXT if event.paused else "Pause")
                self.pause_button.blockSignals(False)
        if last_preview is not None:
            self.preview.set_preview(last_preview.preview, last_preview.epoch)
        self._show_progress()
        self.curves.redraw()  # once per batch: the worker batches at ~10 Hz
        if saved:
            self.checkpoint_saved.emit()

    def _run_started(self, ev: RunStarted) -> None:
        self._steps_per_epoch = max(1, ev.steps_per_epoch)
        total = max(1, ev.epochs * ev.steps_per_epoch)
        self.progress.setRange(0, total)
        self.progress.setValue(ev.start_step)
        device = f"{ev.device} · {ev.device_name}" if ev.device_name and ev.device_name != ev.device else ev.device
        name = ev.run_dir.name if ev.run_dir else ev.net_name
        self.run_label.setText(
            f"{name} — training on {device} · {ev.num_params:,} parameters · "
            f"{ev.train_size:,} train / {ev.val_size:,} validation images")
        self._device = device
        self.device_reported.emit(device)
        self.running_changed.emit(True)  # again: the run folder exists now, lists can show it

    def _show_progress(self) -> None:
        s = self._last_step
        if s is None:
            return
        if s.total_steps and self.progress.maximum() != s.total_steps:
            self.progress.setRange(0, max(1, s.total_steps))
        self.progress.setValue(min(s.step, self.progress.maximum()))
        self.progress.setFormat(f"step {s.step:,} / {s.total_steps:,} (%p%)")
        paused = " · paused" if self.worker is not None and self.worker.paused else ""
        self.stats_label.setText(
            f"epoch {s.epoch + 1} · loss {s.loss:.4g} · {s.images_per_s:,.0f} images/s · "
            f"ETA {format_seconds(s.eta_s)}{paused}")

    def _on_finished(self, ev: TrainFinished) -> None:
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(False)
        self.pause_button.setText("Pause")
        self.pause_button.blockSignals(False)
        if ev.run_dir is not None:
            self.run_dir = Path(ev.run_dir)
        self._update_buttons()
        self.running_changed.emit(False)
        words = {FinishReason.DONE: "finished", FinishReason.STOPPED: "stopped",
                 FinishReason.DIVERGED: "diverged", FinishReason.FAILED: "failed"}
        name = self.run_dir.name if self.run_dir else "run"
        self.stats_label.setText(f"{name} {words.get(ev.reason, ev.reason)} after {ev.epoch} epochs, {ev.step:,} steps")
        # The header said "training on cpu" after the end: say how it ended.
        on = f" on {self._device}" if self._device else ""
        epochs = f"{ev.epoch} epoch{'' if ev.epoch == 1 else 's'}"
        self.run_label.setText(f"{name} — {words.get(ev.reason, ev.reason)}{on} after {epochs}, {ev.step:,} steps")
        if ev.reason is FinishReason.FAILED:
            self.progress.setRange(0, 1)
            self.notify.emit(Level.ERROR, f"Training {name} failed: {ev.message}. The run folder keeps its last checkpoint.", ev.details)
        elif ev.reason is FinishReason.DIVERGED:
            self.notify.emit(Level.WARNING, f"Training {name} diverged: {ev.message}. Try a lower learning rate.", ev.details)
        elif ev.reason is FinishReason.STOPPED and "time limit" in ev.message:
            self.stats_label.setText(f"{name}: {ev.message}")  # say why it stopped; Resume continues it
            self.notify.emit(Level.INFO, f"Training {name}: {ev.message}.", "")
        else:
            self.notify.emit(Level.INFO, f"Training {name} {words[ev.reason]}: {ev.epoch} epochs.", "")
        self.refresh_compare()
        self.run_finished.emit(ev)

    # ================================================================ overlays

    def refresh_compare(self) -> None:
        running = self.worker is not None and self.worker.running
        self.compare.refresh(self.workspace, exclude=self.run_dir if running else None)

    # ================================================================ shutdown

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop a running worker and give it a moment to checkpoint (window closing)."""
        if self.worker is not None and self.worker.running:
            self.worker.stop()
            if not self.worker.join(timeout):
                logger.warning("training thread still running at exit; its last checkpoint is kept")
