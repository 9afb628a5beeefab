"""The Noise lab tab: corrupt an image with a chosen noise, watch the model remove it.

Noisy | denoised | clean side by side, with PSNR and SSIM of the noisy and of the
denoised image against the clean one, recomputed live as the noise kind and
strength sliders move. The noise comes from :mod:`aestudio.data.noise` with a
fixed seed ("New noise" draws another), so moving a slider back gives back the
same picture. "Input is already noisy" skips the corruption: the image itself
is denoised, and with no clean reference there are no metrics.

Any dropped photo works, grey or colour, of any size: fully convolutional
denoisers run at full size (large images tiled, with progress); fixed-size
autoencoders get the image resized to their size and back (``run_image``), and a
grayscale model denoises a colour photo one channel at a time. All of it runs on
a :class:`LatestRunner` (a slider drag computes only the newest setting; a large
image still being computed for an old setting is abandoned between tiles).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from aestudio._fs import unique_path
from aestudio.config import Task
from aestudio.data.levels import Levels, read_levelled, result_suffix
from aestudio.errors import Cancelled
from aestudio.explore.image_metrics import (
    as_float_hwc,
    denoise_verdict,
    display_copy,
    fmt_metric,
    image_metrics,
    run_model_image,
)
from aestudio.explore.noise_level import (
    TrainedNoise,
    add_noise,
    estimate_sigma,
    range_warning,
    trained_noise,
)
from aestudio.gui import engine
from aestudio.gui.engine import DataArrays, LoadedModel
from aestudio.gui.images import array_to_qimage
from aestudio.gui.messages import Level
from aestudio.gui.panels.common import ImagePane
from aestudio.gui.panels.metrics_view import (
    BrowseBar,
    BrowsedImagePanel,
    MetricTile,
    Progress,
    ShownImage,
    save_png,
)
from aestudio.gui.panels.noise_learn import LearnRow, NoiseLearner, Preview
from aestudio.gui.workers import TaskRunner

if TYPE_CHECKING:
    from aestudio.gui.data_panel import DataSummary
    from aestudio.inference.predictor import Predictor

logger = logging.getLogger(__name__)

DATA_LIMIT = 200  # data set images offered for browsing (evenly spaced over the split)
NOISY_INPUT_TIP = ("Off while \"Input is already noisy\" is checked: the image is denoised as it is, "
                   "no noise is added. Uncheck it to add noise of your choice.")


class Denoised(ShownImage):
    """What the three panes show for one image (computed off the GUI thread)."""

    noisy: np.ndarray  # float32 [H, W, C]: the input as the model sees it
    denoised: np.ndarray | None  # None without a model
    clean: np.ndarray | None  # None for an image that came noisy (no reference)
    noise: tuple[str, float, int] | None  # (kind, strength, seed) added, or None: it came noisy
    metrics_noisy: dict[str, float] | None  # noisy vs clean
    metrics_denoised: dict[str, float] | None  # denoised vs clean
    sigma: float | None  # the estimated noise of an image that came noisy
    file_sigma: float | None  # a dropped file's own noise estimate (also when noise is added to it)
    qimages: dict[str, QImage]  # "noisy", "denoised", "clean": ready to paint
    levels: Levels | None  # a dropped file's stored range (16-bit: stretched to [0, 1]); None for data set items


# A file whose own noise estimate is above this (8/255) is noisy already: adding more is rarely what was meant.
# Measured: clean photos estimate 0.0015-0.008 (the 5 held-out ones, chelsea, astronaut); with Gaussian
# noise of 8/255 added 0.031-0.038, of 15/255 0.054-0.064.
NOISY_FILE_SIGMA = 0.03


@dataclass(frozen=True)
class NoiseChoice:
    """One entry of the noise menu: the core's kind name and its slider."""

    label: str
    kind: str  # aestudio.data.noise.NoiseKind value
    low: float
    high: float
    default: float
    strength_name: str  # what the slider means
    decimals: int = 3


NOISES: tuple[NoiseChoice, ...] = (
    NoiseChoice("Gaussian", "gaussian", 0.0, 0.5, 0.1, "sigma"),
    NoiseChoice("Salt and pepper", "saltpepper", 0.0, 0.5, 0.05, "fraction of pixels"),
    NoiseChoice("Speckle", "speckle", 0.0, 1.0, 0.2, "sigma (multiplicative)"),
    NoiseChoice("Poisson (shot)", "poisson", 1.0, 200.0, 30.0, "photons (fewer = noisier)", 1),
    NoiseChoice("Masking: pixels", "mask", 0.0, 0.9, 0.2, "fraction dropped"),
    NoiseChoice("Masking: blocks", "block", 0.0, 0.9, 0.25, "fraction covered"),
    NoiseChoice("Blur", "blur", 0.0, 5.0, 1.5, "sigma in pixels", 2),
)


# ---------------------------------------------------------------------- worker-side functions


def denoise_job(predictor: Predictor | None, image: np.ndarray, noise: tuple[str, float, int] | None,
                progress: Progress | None = None, sigma: float | None = None) -> Denoised:
    """What the three panes show: ``noise`` None means ``image`` is already noisy (no clean reference).

    ``sigma``: the already-noisy image's noise estimate when the caller knows it (it does not
    change while the image stays; "Learn this noise" re-runs the job every few seconds)."""
    image = as_float_hwc(image)
    clean = image if noise is not None else None
    noisy = add_noise(image, *noise) if noise is not None else image
    denoised = run_model_image(predictor, noisy, progress) if predictor is not None else None
    return Denoised(
        noisy=noisy, denoised=denoised, clean=clean, noise=noise,
        metrics_noisy=image_metrics(clean, noisy) if clean is not None else None,
        metrics_denoised=image_metrics(clean, denoised) if clean is not None and denoised is not None else None,
        levels=None, file_sigma=None,
        # An image that came noisy: estimate its noise level (the lab compares it with what the model knows).
        sigma=(sigma if sigma is not None else estimate_sigma(noisy)) if noise is None else None,
        qimages={k: array_to_qimage(display_copy(v)) for k, v in
                 (("noisy", noisy), ("denoised", denoised), ("clean", clean)) if v is not None})


def load_arrays(spec: str) -> DataArrays:
    """A few images of the data set's validation split, at the data's own size."""
    return engine.data_arrays(spec, split="val", limit=DATA_LIMIT)


class _ImageCache:
    """The last few images read from disk (the LatestRunner thread only: a slider never re-reads a photo).

    16-bit files are read at their own range (:func:`aestudio.data.levels.read_levelled`), as
    ``aestudio denoise`` and "Learn this noise" read them: a 12-bit camera's frame is not shown black,
    and the denoiser and the noise estimate see the noise at its real size."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._items: dict[Path, tuple[np.ndarray, Levels]] = {}

    def get(self, path: Path) -> tuple[np.ndarray, Levels]:
        if path not in self._items:
            while len(self._items) >= self.size:
                self._items.pop(next(iter(self._items)))
            image, levels = read_levelled(path)
            self._items[path] = as_float_hwc(image), levels
        return self._items[path]


# ---------------------------------------------------------------------- the panel


class NoiseLabPanel(BrowsedImagePanel):
    request_model = Signal(object)  # a run or bundle Path the window should load as the active model
    title = "Noise lab"
    purpose = ("Add noise (gaussian, salt and pepper, speckle, shot noise, masking, blur) with a slider and "
               "watch the model remove it, with PSNR and SSIM against the clean image.")
    drop_hint = "Drop a photo (any size, grey or colour) or open a data set in the data panel to corrupt and denoise it."
    tasks_supported = frozenset({Task.DENOISE, Task.RECONSTRUCT, Task.GENERATE})
    preferred_task = Task.DENOISE  # other autoencoders blur a photo into a blob: offer a denoiser
    runner_name = "aestudio-noiselab"
    busy_bar_width = 200
    busy_tiles = "Denoising: tile {done} of {total}…"
    busy_text = "Reading, adding noise, denoising…"

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(tasks, parent)
        self.arrays: DataArrays | None = None  # the data panel's spec (browsable images)
        self.data_files: list[Path] = []  # folder data: its image files, browsed at full size
        self.result: Denoised | None = None  # what the panes show (for Save and tests)
        self.seed = 0  # fixed: the same slider value gives the same noise
        self._strengths = {n.kind: n.default for n in NOISES}  # remembered per kind
        self._cache = _ImageCache()
        self._sigmas: dict[Path, float] = {}  # noise estimates of already-noisy files, by path
        self._gen = 0  # bumped when the model changes: older results are dropped
        self._data_gen = 0  # bumped when the data set changes
        self._deferred = False  # settings changed while the tab was hidden: compute when shown
        self._build()
        self._noise_picked(0)
        self._refresh_state()

    # ================================================================ layout

    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 8)
        root.setSpacing(6)

        top = self._top_bar(self.recompute)
        self.save_button = QPushButton("Save denoised…")
        self.save_button.setToolTip("Write the denoised image as a PNG at full size (never over the original)")
        self.save_button.clicked.connect(lambda: self.save())
        top.addWidget(self.save_button)
        root.addLayout(top)

        controls = QHBoxLayout()
        self.noise_label = QLabel("Noise")
        controls.addWidget(self.noise_label)
        self.kind_box = QComboBox()
        for n in NOISES:
            self.kind_box.addItem(n.label, n.kind)
        self.kind_box.setToolTip("The corruption added to the clean image (aestudio.data.noise)")
        self.kind_box.currentIndexChanged.connect(self._noise_picked)
        controls.addWidget(self.kind_box)
        self.strength_name = QLabel("")
        self.strength_name.setMinimumWidth(150)
        self.strength_name.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        controls.addWidget(self.strength_name)
        self.strength = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.strength.setMinimumWidth(220)
        self.strength.valueChanged.connect(self._strength_moved)
        controls.addWidget(self.strength, 1)
        self.new_noise_button = QPushButton("New noise")
        self.new_noise_button.setToolTip("Draw another noise pattern of the same kind and strength")
        self.new_noise_button.clicked.connect(self.new_noise)
        controls.addWidget(self.new_noise_button)
        self.already_noisy = QCheckBox("Input is already noisy")
        self.already_noisy.setToolTip("Denoise the image as it is: no noise added, no clean reference, no metrics")
        self.already_noisy.toggled.connect(self._noisy_toggled)
        controls.addWidget(self.already_noisy)
        self._noise_tips = {w: w.toolTip() for w in (self.noise_label, self.kind_box, self.strength_name,
                                                     self.strength, self.new_noise_button)}
        root.addLayout(controls)

        # "Learn this noise": self-supervised training on the dropped images, live preview, Stop -> active model.
        self.learner = NoiseLearner(self.tasks, self._learn_image, self)
        self.learner.preview_ready.connect(self._show_learned)
        self.learner.model_ready.connect(self.request_model.emit)
        self.learner.notify.connect(self.notify.emit)
        self.learner.running_changed.connect(lambda _r: self._refresh_state())
        self.learn_row = LearnRow(self.learner)
        self.learn_row.learn_button.clicked.connect(self.learn_this_noise)
        root.addWidget(self.learn_row)
        self.noise_level_label = QLabel("")
        self.noise_level_label.setObjectName("hint")
        self.noise_level_label.setWordWrap(True)
        root.addWidget(self.noise_level_label)

        self.state_label = QLabel("")
        self.state_label.setObjectName("emptyHint")
        self.state_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.state_label.setWordWrap(True)
        root.addWidget(self.state_label)

        panes = QHBoxLayout()
        self.noisy_pane = ImagePane("Noisy", self.drop_hint)
        self.denoised_pane = ImagePane("Denoised", "")
        self.clean_pane = ImagePane("Clean (reference)", "")
        for pane in (self.noisy_pane, self.denoised_pane, self.clean_pane):
            panes.addWidget(pane, 1)
        root.addLayout(panes, 1)

        tiles = QHBoxLayout()
        tiles.addStretch(1)
        self.tiles = {
            "psnr": MetricTile("PSNR, noisy → denoised", "Against the clean image: peak signal-to-noise ratio "
                               "(peak 1); higher is better"),
            "ssim": MetricTile("SSIM, noisy → denoised", "Against the clean image: structural similarity "
                               "(11x11 Gaussian window); 1 is identical"),
        }
        for tile in self.tiles.values():
            tiles.addWidget(tile)
        tiles.addStretch(1)
        self.metrics_row = QWidget()
        self.metrics_row.setLayout(tiles)
        root.addWidget(self.metrics_row)
        self.gain_label = QLabel("")
        self.gain_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.gain_label.setObjectName("hint")
        root.addWidget(self.gain_label)

    # ================================================================ window hooks

    def on_model_changed(self, model: LoadedModel | None) -> None:
        self.learner.model_changed(model)
        self._gen += 1
        self._last_error = ""
        self._refresh_state()
        self.recompute()

    def on_data_changed(self, summary: DataSummary | None) -> None:
        self._data_gen += 1
        self.arrays = None
        self.data_files = []
        self.browse.set_count(BrowseBar.DATA, 0)
        spec = getattr(summary, "spec", None)
        files = [Path(f) for f in (getattr(summary, "files", None) or [])]
        if files:  # a folder of photos: browse the files themselves, at full size (not 64x64 crops)
            self.data_files = files
            self.browse.set_count(BrowseBar.DATA, len(files), Path(str(spec).split(":", 1)[-1]).name or str(spec))
            if not self.images:
                self.browse.set_position(BrowseBar.DATA, 0)
        elif spec:
            gen = self._data_gen
            self.tasks.submit(load_arrays, spec,
                              on_result=lambda a: self._data_loaded(gen, a),
                              on_error=lambda e, d: self._data_failed(gen, spec, e, d))
        self._refresh_state()

    def on_images(self, paths: list[Path]) -> None:
        self.browse.set_count(BrowseBar.FILES, len(self.images))
        self.browse.set_position(BrowseBar.FILES, len(self.images) - len(paths))

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._deferred:
            self.recompute()

    def _data_loaded(self, gen: int, arrays: DataArrays) -> None:
        images = getattr(arrays, "images", None)
        if gen != self._data_gen or not isinstance(images, np.ndarray) or images.ndim != 4 or not len(images):
            return
        self.arrays = arrays
        self.browse.set_count(BrowseBar.DATA, len(images), f"{arrays.spec} ({arrays.split})")
        if not self.images:
            self.browse.set_position(BrowseBar.DATA, 0)
        self._refresh_state()

    def _data_failed(self, gen: int, spec: str, exc: BaseException, details: str) -> None:
        if gen == self._data_gen:
            self.notify.emit(Level.ERROR, f"Noise lab: cannot open {spec}: {exc}", details)

    # ================================================================ controls

    def choice(self) -> NoiseChoice:
        return NOISES[max(0, self.kind_box.currentIndex())]

    def set_noise(self, kind: str, strength: float | None = None) -> None:
        """Pick a noise by its kind name (``"gaussian"``, ``"blur"``…) and optionally its strength."""
        i = self.kind_box.findData(kind)
        if i < 0:
            raise ValueError(f"unknown noise {kind!r}; choose one of {[n.kind for n in NOISES]}")
        self.kind_box.setCurrentIndex(i)
        if strength is not None:
            self.strength.setValue(float(strength))

    def _noise_picked(self, _i: int) -> None:
        n = self.choice()
        self.strength_name.setText(n.strength_name)
        self.strength.blockSignals(True)
        self.strength.setDecimals(n.decimals)
        self.strength.setRange(n.low, n.high)
        self.strength.setSingleStep((n.high - n.low) / 100)
        self.strength.setValue(self._strengths[n.kind])
        self.strength.blockSignals(False)
        self.recompute()

    def _strength_moved(self, value: float) -> None:
        self._strengths[self.choice().kind] = float(value)
        self.recompute()

    def new_noise(self) -> None:
        self.seed += 1
        self.recompute()

    def _noisy_toggled(self, on: bool) -> None:
        # The noise controls do nothing while the input is taken as it is: greyed, and saying why.
        why = NOISY_INPUT_TIP if on else ""
        for w in (self.noise_label, self.kind_box, self.strength_name, self.strength, self.new_noise_button):
            w.setEnabled(not on)
            w.setToolTip(why or self._noise_tips.get(w, ""))
        self._refresh_state()
        self.recompute()

    # ================================================================ computing

    def current_image(self) -> tuple[np.ndarray | None, Path | None, str] | None:
        """(array or None, path or None, description) of the browsed image, or None."""
        src, i = self.browse.source(), self.browse.index()
        if src == BrowseBar.FILES and i < len(self.images):
            return None, self.images[i], str(self.images[i])
        if src == BrowseBar.DATA and i < len(self.data_files):
            return None, self.data_files[i], str(self.data_files[i])
        if src == BrowseBar.DATA and self.arrays is not None and i < len(self.arrays.images):
            idx = int(self.arrays.indices[i]) if self.arrays.indices is not None else i
            return self.arrays.images[i], None, f"{self.arrays.spec} {self.arrays.split} #{idx}"
        return None

    def recompute(self) -> None:
        """Corrupt and denoise the current image with the current settings (off the GUI thread)."""
        if not self.isVisible():  # a hidden tab computes when it is shown (a large photo is not free)
            self._deferred = True
            return
        self._deferred = False
        current = self.current_image()
        if current is None:
            self._clear()
            return
        array, path, text = current
        self.item_label.setText(text)
        noise = None if self.already_noisy.isChecked() else (self.choice().kind, float(self.strength.value()), self.seed)
        predictor = self.model.predictor if self._usable(self.model) else None
        progress = self._start_job(text)  # a large image still running for an older setting stops between tiles
        gen = self._gen
        self.runner.submit(self._job, predictor, array, path, noise, progress,
                           on_result=lambda r: self._show(gen, path, r, text),
                           on_error=lambda e, d: self._failed(gen, progress, e, d))

    def _job(self, predictor: Predictor | None, array: np.ndarray | None, path: Path | None,
             noise: tuple[str, float, int] | None, progress: Progress) -> Denoised:
        image, levels = self._cache.get(path) if path is not None else (array, None)
        out = denoise_job(predictor, image, noise, progress, sigma=self._sigmas.get(path) if path is not None else None)
        if path is not None:
            if out["sigma"] is not None:
                self._sigmas[path] = out["sigma"]
            elif path not in self._sigmas:  # noise added to a file: is the file itself noisy already?
                self._sigmas[path] = estimate_sigma(image)
            out["file_sigma"] = self._sigmas[path]
        out["levels"] = levels
        return out

    def _hide_stale(self) -> None:
        if self.noisy_pane.array is not None:
            for pane in (self.noisy_pane, self.denoised_pane, self.clean_pane):
                pane.clear()
            self.noisy_pane.set_placeholder("Working on it…")

    def _show(self, gen: int, path: Path | None, r: Denoised, key: str = "") -> None:
        if gen != self._gen:
            return
        self._last_error = ""
        self.result = {**r, "path": path}
        self._shown_key = key
        q = r["qimages"]
        mn, md = r["metrics_noisy"], r["metrics_denoised"]
        h, w, c = r["noisy"].shape
        size = f"{w}×{h} {'grey' if c == 1 else 'colour'}"
        levels = r.get("levels")
        if levels is not None and levels.stretched and key:  # beside the name: a pane caption wrapped and shrank its image
            self.item_label.setText(f"{key} · {levels.short()}")
        self.noisy_pane.title.setText("Input (noisy)" if r["noise"] is None else f"Noisy: {self.choice().label.lower()}")
        self.noisy_pane.set_qimage(q["noisy"], self._caption(mn) if mn else size)
        self.noisy_pane.array = r["noisy"]
        if r["denoised"] is not None:
            self.denoised_pane.set_qimage(q["denoised"], self._caption(md) if md else size)
            self.denoised_pane.array = r["denoised"]
        else:
            self.denoised_pane.clear()
        if r["clean"] is not None:
            self.clean_pane.set_qimage(q["clean"], size)
            self.clean_pane.array = r["clean"]
        else:
            self.clean_pane.clear()
        for metric, tile in self.tiles.items():
            tile.set_value(self._pair(metric, mn, md))
            # Without a model there is no denoised side: the caption must not promise one.
            tile.name.setText(f"{metric.upper()}, noisy → denoised" if md else f"{metric.upper()} of the noisy image")
        if mn and md:
            self.gain_label.setText(f"{denoise_verdict(mn, md)} Noise seed {self.seed}.")
        else:
            self.gain_label.setText("")
        self._refresh_state()

    def _failed(self, gen: int, _progress: Progress, exc: BaseException, details: str) -> None:
        if isinstance(exc, Cancelled) or gen != self._gen:
            return
        self.result = None
        self.denoised_pane.clear()
        self.denoised_pane.set_placeholder("The model failed on this image (see the message).")
        for tile in self.tiles.values():
            tile.set_value("–")
        self.gain_label.setText("")
        self._say_error_once(exc, details)  # a slider drag over a failing model says it once
        self._refresh_state()

    @staticmethod
    def _pair(metric: str, noisy: dict[str, float] | None, denoised: dict[str, float] | None) -> str:
        """``"14.7 → 21.3 dB"``; one side alone when there is no model, ``–`` without a reference."""
        if noisy is None:
            return "–"
        a = fmt_metric(metric, noisy[metric])
        if denoised is None:
            return a
        b = fmt_metric(metric, denoised[metric])
        if metric == "psnr" and a.endswith(" dB") and b.endswith(" dB"):
            a = a[:-3]
        return f"{a} → {b}"

    @staticmethod
    def _caption(m: dict[str, float]) -> str:
        return f"PSNR {fmt_metric('psnr', m['psnr'])}   ·   SSIM {fmt_metric('ssim', m['ssim'])}"

    def _clear(self) -> None:
        self.result = None
        self.item_label.setText("")
        for pane in (self.noisy_pane, self.denoised_pane, self.clean_pane):
            pane.clear()
        for tile in self.tiles.values():
            tile.set_value("–")
        self.gain_label.setText("")
        self._refresh_state()

    # ================================================================ noise level vs the model's range

    def trained_range(self) -> TrainedNoise | None:
        """What the active model was trained on (``TrainedNoise``), or None when its bundle does not say."""
        return trained_noise(getattr(self.model.info, "training", None)) if self.model is not None else None

    def _noise_level_text(self) -> str:
        r = self.result
        if r is None or r.get("sigma") is None:
            return ""
        sigma = float(r["sigma"])
        text = f"Estimated noise of this image: sigma ≈ {sigma:.3f} ({sigma * 255:.0f}/255, Gaussian-equivalent)."
        trained = self.trained_range()
        if self.model is not None and trained is not None:
            text += f" {self.model.name}: {trained.describe()}."
        return text

    def _noisy_file_note(self) -> list[str]:
        """A hint when noise is being added to a file that is noisy already (a first start with a noisy photo)."""
        r = self.result
        sigma = r.get("file_sigma") if r is not None and not self.already_noisy.isChecked() else None
        if sigma is None or sigma <= NOISY_FILE_SIGMA:
            return []
        return [f"{r['path'].name} looks noisy already (estimated sigma ≈ {sigma:.3f}, {sigma * 255:.0f}/255): "
                "check \"Input is already noisy\" to denoise it as it is."]

    def _noise_range_notes(self, usable: bool) -> list[str]:
        """Warnings when the noise on screen is outside what the active denoiser was trained for."""
        trained = self.trained_range() if usable else None
        if trained is None or self.model is None:
            return []
        r = self.result
        if self.already_noisy.isChecked():
            warn = range_warning(self.model.name, trained, float(r["sigma"])) if r and r.get("sigma") is not None else None
            return [warn] if warn else []
        n = self.choice()
        value = float(self.strength.value())
        if n.kind == trained.kind == "gaussian" and value > trained.high + 0.01:
            return [f"Sigma {value:.3f} is beyond what {self.model.name} was trained on (Gaussian sigma "
                    f"{trained.low:.2f}-{trained.high:.2f}): expect leftover noise."]
        return []

    # ================================================================ learning this noise

    def learn_this_noise(self) -> bool:
        """Train a denoiser on the dropped (or browsed folder's) images alone, in the background."""
        from aestudio.gui.workspace import make_settings, workspace_dir

        paths = list(self.images) or list(self.data_files)
        if not paths:
            self.notify.emit(Level.WARNING, "Drop or open the noisy images to learn from first.", "")
            return False
        if not self.already_noisy.isChecked():
            self.already_noisy.setChecked(True)  # the images themselves are the noisy input now
        # A loaded denoising_ae is fine-tuned (adapted to this noise), else a new one learns from scratch.
        return self.learner.start(paths, workspace_dir(make_settings()), self.model)

    def _learn_image(self) -> np.ndarray | None:
        r = self.result
        return r["noisy"] if r is not None and r.get("noise") is None else None

    def _show_learned(self, result: Preview) -> None:
        if self.result is None or self.result.get("noise") is not None:
            return  # the screen moved on to synthetic noise
        self.result = {**self.result, "denoised": result["denoised"]}
        self.denoised_pane.set_qimage(result["qimage"], f"learning: step {result['step']:,}")
        self.denoised_pane.array = result["denoised"]
        self.save_button.setEnabled(True)

    def shutdown(self) -> None:
        self.learner.shutdown()
        super().shutdown()

    # ================================================================ saving

    def save(self, path: Path | None = None) -> Path | None:
        """Write the denoised image as a PNG (full size); ask where when ``path`` is None.

        A 16-bit input is saved as a 16-bit TIFF in its own range (it was denoised stretched).
        Never overwrites the input; a ``path`` given in code never replaces an
        existing file (the dialog asks before it does). Returns the path or None.
        """
        r = self.result
        if r is None or r.get("denoised") is None:
            self.notify.emit(Level.WARNING, "Nothing to save yet: load a model and denoise an image first.", "")
            return None
        source: Path | None = r.get("path")
        levels = r.get("levels")
        deep = result_suffix(levels) == ".tif"  # 16-bit or float input: a TIFF in its range (save_png)
        overwrite = False
        if path is None:
            stem = source.stem if source is not None else "image"
            folder = source.parent if source is not None else Path.home()
            ext, kind = (".tif", "TIFF image (*.tif *.tiff)") if deep else (".png", "PNG image (*.png)")
            name, _ = QFileDialog.getSaveFileName(self, "Save the denoised image",
                                                  str(unique_path(folder / f"{stem}_denoised{ext}")), kind)
            if not name:
                return None
            path = Path(name)
            overwrite = path.exists()  # the dialog asked before replacing it
        return save_png(self, Path(path), r["denoised"], source, overwrite=overwrite, levels=levels)

    # ================================================================ state

    def _usable(self, model: LoadedModel | None) -> bool:
        return model is not None and model.info.task is not Task.SEGMENT

    def _refresh_state(self) -> None:
        has_images = bool(self.images) or self.arrays is not None or bool(self.data_files)
        usable = self._usable(self.model)
        notes = []
        if not has_images:
            notes.append(self.drop_hint)
        if self.model is None:
            notes.append("No model loaded: the noise is shown, but nothing denoises it. "
                         "Load a denoising model (train a denoising_ae, or drop a run or bundle folder).")
        elif not usable:
            notes.append(f"{self.model.name} is a segmentation model; load a denoiser or an autoencoder.")
        elif self.result is not None and getattr(self.model.info, "fixed_size", None):
            s = self.model.info.fixed_size
            h, w = self.result["noisy"].shape[:2]
            if (h, w) != (s, s):
                notes.append(f"{self.model.name} works at {s}×{s}: this {w}×{h} image is resized to it and back, "
                             "so fine detail is lost. A denoising_ae works at any size.")
        notes += self._noise_range_notes(usable) + self._noisy_file_note()
        if usable and self.model.info.task is not Task.DENOISE:
            shipped = engine.zoo_model_for_task(Task.DENOISE)
            notes.append(f"{self.model.name} is a {self.model.info.task.value} model, not a denoiser: expect a blurred "
                         "copy rather than a clean image."
                         + (f" The shipped {shipped.name} removes noise from photos (Models > Shipped models)."
                            if shipped is not None else " Train a denoising_ae to remove noise."))
        self.noise_level_label.setText(self._noise_level_text())
        self.noise_level_label.setVisible(bool(self.noise_level_label.text()))
        self.state_label.setText("\n".join(notes))
        self.state_label.setVisible(bool(notes))
        self.noisy_pane.set_placeholder(self.drop_hint if not has_images else "")
        self.denoised_pane.set_placeholder("" if usable else "Load a model to denoise.")
        noisy_input = self.already_noisy.isChecked()
        self.clean_pane.setVisible(not noisy_input)
        self.metrics_row.setVisible(not noisy_input)
        self.gain_label.setVisible(not noisy_input)
        self.save_button.setEnabled(self.result is not None and self.result.get("denoised") is not None)


__all__ = ["NOISES", "NoiseChoice", "NoiseLabPanel", "add_noise", "denoise_job"]
