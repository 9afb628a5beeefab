"""The Latent tab: slide a model's code, map a data set's codes, retrieve and interpolate by code.

Composition and flow only. The numbers live in :mod:`aestudio.explore.latent_codes`
and the worker jobs in :mod:`aestudio.explore.latent_ops` (both Qt-free); the
widgets beside this module: ``latent_view`` (widgets and
layout: ``latent_sliders``, ``latent_map``, ``latent_neighbours``, ``latent_interp``)
and ``latent_save`` (PNG exports). Inference never runs on the GUI thread: a slider move
submits one decode to a :class:`LatestRunner` (only the newest code is decoded,
on the model's interactive ONNX Runtime session: one thread, no spinning, so a
training run keeps its speed); data codes, t-SNE, dropped images, strips and
saved grids go to the shared task pool. Every background result carries the
generation it was started in and is dropped when the model or the data
changed meanwhile.
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget
from superqt.utils import qthrottled

from aestudio.config import Task
from aestudio.errors import Cancelled
from aestudio.explore.latent_codes import (
    MIN_MAP_CODES,
    CodeSet,
    code_ranges,
    compute_codes,
    map_problem,
    nearest,
    tsne_2d,
)
from aestudio.explore.latent_ops import Dropped, decode_one, encode_images, strip
from aestudio.explore.sessions import training_active
from aestudio.gui import engine
from aestudio.gui.engine import LoadedModel
from aestudio.gui.images import array_to_qimage
from aestudio.gui.messages import Level
from aestudio.gui.panels.base import ExplorePanel
from aestudio.gui.panels.common import LatestRunner
from aestudio.gui.panels.latent_interp import End
from aestudio.gui.panels.latent_map import DropMark
from aestudio.gui.panels.latent_neighbours import NEIGHBOURS
from aestudio.gui.panels.latent_save import LatentSaving
from aestudio.gui.panels.latent_view import LatentStack
from aestudio.gui.workers import TaskRunner
from aestudio.inference.bundle import LatentKind

if TYPE_CHECKING:
    from aestudio.gui.data_panel import DataSummary
    from aestudio.inference.predictor import Predictor

logger = logging.getLogger(__name__)

DATA_LIMIT = 1500  # codes on the map: enough to see structure; t-SNE stays under ~10 s on 2 cores
# The map's cross moves to the sliders' code once a drag pauses this long: a repaint of the map
# costs 10-20 ms of Python in pyqtgraph's paint() (GIL held), which during a drag would delay
# the decoded image and slow a training run.
CROSS_MS = 150
TRAINING_DECODE_MS = 33  # slider decodes while a run trains: about 30 a second


def decode_for_display(predictor: Predictor, z: np.ndarray) -> tuple[np.ndarray, QImage]:
    """Worker side of a slider move: the decoded image and a QImage ready to draw.

    The QImage is built here, off the GUI thread (QImage is thread-safe; QPixmap is not), in
    RGB32: the raster engine draws it scaled ~7x faster than an 8-bit grey image (0.07 vs
    0.45 ms for 28x28 -> 256x256), which is GUI-thread time saved on every move.
    """
    image = decode_one(predictor, z)
    return image, array_to_qimage(image).convertToFormat(QImage.Format.Format_RGB32)


class LatentPanel(LatentSaving, ExplorePanel):
    title = "Latent"
    purpose = ("Slide latent values to generate new images, map a data set's codes in 2-D "
               "(PCA / t-SNE), find the nearest images by code and interpolate between two images.")
    drop_hint = "Load a model with a code (a VAE works best), then drop images to place them on the map."
    tasks_supported = frozenset({Task.GENERATE, Task.RECONSTRUCT, Task.DENOISE})

    _progress = Signal(int, int, int)  # generation, done, total (emitted from the codes worker)

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(tasks, parent)
        self.live = LatestRunner(self, name="aestudio-latent")  # slider decodes
        # While a training run shares the cores, a drag decodes at most every other frame
        # (first and last move always): half the decode-and-paint work taken from training.
        self._decode_while_training = qthrottled(self._decode, timeout=TRAINING_DECODE_MS, leading=True,
                                                 parent=self)
        self.side = LatestRunner(self, name="aestudio-latent-between")  # the strip's in-between frame
        self.codes: CodeSet | None = None
        self.drops: list[Dropped] = []
        self.neighbours = np.zeros(0, np.int64)
        self._gen = 0  # bumped when the model or the data changes: stale results are dropped
        self._cancel = threading.Event()
        self._tsne: dict[int, np.ndarray] = {}  # generation -> t-SNE positions
        self._strip_gen = 0
        self._source = ""  # where the sliders' code came from (the decoded image's caption)
        self._edited = False
        self._rng = np.random.default_rng()
        self._progress.connect(self._on_progress)
        self._build()
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self._codes_wanted = False  # the data's codes are due once the tab is shown
        self._pending_cross: np.ndarray | None = None
        self._cross_timer = QTimer(self)
        self._cross_timer.setSingleShot(True)
        self._cross_timer.setInterval(CROSS_MS)
        self._cross_timer.timeout.connect(self._move_cross)
        self._refresh()

    # ================================================================ layout

    def _build(self) -> None:
        self.stack = LatentStack(self.title, self.purpose, self.drop_hint)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.stack)
        self.empty_page, self.empty_state = self.stack.empty_page, self.stack.empty_page.state
        page = self.page = self.stack.page
        # The widgets the panel drives, by name (tests and benchmarks use them too).
        self.header, self.subheader, self.progress = page.header, page.subheader, page.progress
        self.decoded, self.sliders, self.code_box = page.decoded, page.sliders, page.code_box
        self.reset_button, self.random_button = page.reset_button, page.random_button
        self.save_image_button, self.save_grid_button = page.save_image_button, page.save_grid_button
        self.map, self.neighbour_row, self.interp = page.map, page.neighbour_row, page.interp

        self.reset_button.clicked.connect(self.reset_code)
        self.random_button.clicked.connect(self.random_code)
        self.save_image_button.clicked.connect(lambda: self._ask_save("latent-sample.png", self.save_image))
        self.save_grid_button.clicked.connect(lambda: self._ask_save("latent-samples.png", self.save_samples))
        self.sliders.on_move = self._slider_moved
        self.map.clicked.connect(self.pick_item)
        self.map.projection_requested.connect(self.show_projection)
        self.neighbour_row.picked.connect(self.pick_item)
        self.interp.changed.connect(self._strip_changed)
        self.interp.t_changed.connect(self._between_moved)
        self.interp.take_a.clicked.connect(lambda: self._take_end(0))
        self.interp.take_b.clicked.connect(lambda: self._take_end(1))
        self.interp.save_button.clicked.connect(lambda: self._ask_save("latent-strip.png", self.save_strip))

    # ================================================================ window calls

    def on_model_changed(self, model: LoadedModel | None) -> None:
        self._refresh()

    def on_data_changed(self, summary: DataSummary | None) -> None:
        self._refresh()

    def on_images(self, paths: list[Path]) -> None:
        if not self._usable():
            self.notify.emit(Level.INFO, "Load a model with a code (e.g. a VAE) to place images in its latent space.", "")
            return
        gen, predictor = self._gen, self.model.predictor  # type: ignore[union-attr]

        def work() -> list[Dropped]:
            out = []
            for p in paths:
                raw = np.asarray(engine.read_image(p), dtype=np.float32)
                out.extend(encode_images(predictor, [raw], [p]))
            return out

        self.tasks.submit(work, on_result=partial(self._dropped_ready, gen),
                          on_error=partial(self._failed, "Could not encode the dropped image"))

    def shutdown(self) -> None:
        """Stop the panel's decode threads (the window is closing)."""
        self._cancel.set()
        self._decode_while_training.cancel()
        self.live.shutdown()
        self.side.shutdown()

    # ================================================================ state

    def _usable(self) -> bool:
        info = getattr(self.model, "info", None)
        return info is not None and bool(getattr(info, "has_latent", False))

    def data_spec(self) -> str | None:
        """The data panel's data set, else the one the model was trained on."""
        spec = getattr(self.data, "spec", None)
        if spec:
            return str(spec)
        info = getattr(self.model, "info", None)
        training = getattr(info, "training", None) or {}
        return training.get("data_spec") or None

    def _gaussian(self) -> bool:
        return self.model is not None and self.model.info.latent_kind is LatentKind.GAUSSIAN

    def _refresh(self) -> None:
        """The model or the data changed: drop everything derived and recompute in the background."""
        self._gen += 1
        self._cancel.set()
        self._cancel = threading.Event()
        self.codes = None
        self._codes_wanted = False
        self._tsne.clear()
        self.neighbours = np.zeros(0, np.int64)
        self.progress.hide()
        if self.model is None:
            self.empty_state.setText("No model loaded: train one, or drop a run or bundle folder.")
            self.stack.setCurrentWidget(self.empty_page)
            return
        if not self._usable():
            self.empty_state.setText(
                f"{self.model.name} ({self.model.info.net}) has no code to explore. Load a model with an "
                "encoder and a decoder: vae, conv_ae, dense_ae, sparse_ae or contractive_ae.")
            self.stack.setCurrentWidget(self.empty_page)
            return
        self.stack.setCurrentWidget(self.page)
        info = self.model.info
        d = int(info.latent_dim)
        gaussian = self._gaussian()
        self.header.setText(f"{self.model.name}: a code of {d} values")
        self.sliders.set_ranges(code_ranges(None, None, gaussian=gaussian, latent_dim=d))
        self.code_box.setTitle(f"Code ({d} values)")
        self.random_button.setToolTip("A sample from the prior N(0, I)" if gaussian
                                      else "The code of a random data item")
        self.reset_button.setToolTip("All zeros: the prior's mean" if gaussian else "The data's mean code")
        self.neighbour_row.clear()
        self.interp.set_end(0, None, emit=False)
        self.interp.set_end(1, None, emit=False)
        self.interp.set_frames(None)
        self._show_code(self.sliders.code(), "the prior's mean" if gaussian else "zero code (no data yet)")
        spec = self.data_spec()
        if spec is None:
            self.subheader.setText("No data: open a data set to rank the sliders and map the codes.")
            self.map.set_codes(None, "Open a data set (Data panel) to map its codes.")
            self._update_buttons()
            self._reencode_drops()
            return
        self.subheader.setText(f"Encoding {spec}…")
        self.map.set_codes(None, f"Encoding {spec}…")
        self._update_buttons()
        self._reencode_drops()
        if not self.isVisible():
            # Encoding a data set takes a pool worker for seconds: wait until the tab is looked at
            # (a model loaded while training on the Train tab costs nothing here).
            self._codes_wanted = True
            return
        self._start_codes(spec)

    def showEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt override
        super().showEvent(event)
        spec = self.data_spec()
        if self._codes_wanted and self._usable() and spec is not None:
            self._start_codes(spec)

    def _start_codes(self, spec: str) -> None:
        """Encode ``spec`` in the background for the current generation (progress in the header)."""
        self._codes_wanted = False
        info = self.model.info  # type: ignore[union-attr]
        self.progress.setRange(0, 0)
        self.progress.show()
        size, channels = info.fixed_size, int(info.in_channels)
        gen, cancel, predictor = self._gen, self._cancel, self.model.predictor

        def work() -> CodeSet:
            arrays = engine.data_arrays(spec, split="train", limit=DATA_LIMIT, image_size=size, channels=channels)
            if len(arrays.images) < MIN_MAP_CODES:  # a folder of 3 images keeps 1 for validation: map all 3
                arrays = engine.data_arrays(spec, split="all", limit=DATA_LIMIT, image_size=size,
                                            channels=channels)
            if cancel.is_set():
                raise Cancelled()
            return compute_codes(predictor, arrays, cancel=cancel,
                                 progress=lambda i, n: self._progress.emit(gen, i, n))

        self.tasks.submit(work, on_result=partial(self._codes_ready, gen),
                          on_error=partial(self._codes_failed, gen, spec))

    def _on_progress(self, gen: int, done: int, total: int) -> None:
        if gen == self._gen:
            self.progress.setRange(0, max(1, total))
            self.progress.setValue(done)
            self.progress.setFormat("encoding %v / %m")

    def _codes_ready(self, gen: int, codes: CodeSet) -> None:
        if gen != self._gen:
            return
        self.codes = codes
        self.progress.hide()
        rank = {"KL": "ranked by mean KL (nats)", "variance": "ranked by variance"}.get(codes.ranges.importance_kind, "")
        self.subheader.setText(f"{len(codes)} codes of {codes.spec} ({codes.split}); sliders {rank}, "
                               f"{'prior ±3' if self._gaussian() else 'data mean ±3 std'}")
        problem = map_problem(codes.codes)
        self.map.set_codes(None if problem else codes, problem or "")
        if self.drops:
            self.sliders.set_ranges(codes.ranges, code=self.drops[-1].code)
            self._show_code(self.drops[-1].code, f"dropped: {self.drops[-1].path.name}")
            self._place_drops()
            self._show_neighbours(self.drops[-1])
        else:
            self.sliders.set_ranges(codes.ranges)
            self._show_code(codes.ranges.center, "the prior's mean" if self._gaussian() else "the data's mean code")
        self._update_buttons()

    def _codes_failed(self, gen: int, spec: str, exc: BaseException, details: str) -> None:
        if gen != self._gen or isinstance(exc, Cancelled):
            return
        self.progress.hide()
        self.subheader.setText(f"Could not read {spec}: {exc}")
        self.map.set_codes(None, f"Could not encode {spec}:\n{exc}\nOpen another data set in the Data panel.")
        self.notify.emit(Level.WARNING, f"Latent map: could not encode {spec}: {exc}", details)
        self._update_buttons()

    def _update_buttons(self) -> None:
        usable = self._usable()
        self.random_button.setEnabled(usable and (self._gaussian() or self.codes is not None))
        self.save_grid_button.setEnabled(usable and (self._gaussian() or self.codes is not None))
        self.reset_button.setEnabled(usable)

    # ================================================================ decoding the sliders' code

    def _slider_moved(self, z: np.ndarray) -> None:
        if not self._edited:
            self._edited = True
            self.decoded.caption.setText(f"{self._source}, edited" if self._source else "edited")
        if training_active():
            self._decode_while_training(z)
        else:
            self._decode(z)

    def _show_code(self, z: np.ndarray, source: str) -> None:
        """Put ``z`` on the sliders (no signal storm) and decode it once."""
        z = np.asarray(z, dtype=np.float32)
        self.sliders.set_code(z, emit=False)
        self._source, self._edited = source, False
        self.decoded.caption.setText(source)
        self._decode(self.sliders.code())

    def _decode(self, z: np.ndarray) -> None:
        if not self._usable():
            return
        gen = self._gen
        self.live.submit(decode_for_display, self.model.predictor, z,  # type: ignore[union-attr]
                         on_result=partial(self._decoded, gen), on_error=self._decode_failed)
        self._pending_cross = z
        self._cross_timer.start()  # restarts: a debounce, not a throttle

    def _decoded(self, gen: int, result: tuple[np.ndarray, QImage]) -> None:
        if gen == self._gen:
            image, qimage = result
            self.decoded.array = image
            self.decoded.set_qimage(qimage)
            # Paint now rather than after whatever else the event loop has queued: the pixels
            # follow the slider one event-loop turn sooner (the canvas is opaque: ~0.1 ms).
            self.decoded.canvas.repaint()

    def _decode_failed(self, exc: BaseException, details: str) -> None:
        self.notify.emit(Level.ERROR, f"Decoding failed: {exc}", details)

    def _move_cross(self) -> None:
        z = self._pending_cross
        if self.codes is not None and z is not None:
            self.map.set_current(self.codes.pca.project(z)[0])

    def reset_code(self) -> None:
        ranges = self.codes.ranges if self.codes is not None else None
        centre = ranges.center if ranges is not None else np.zeros(self.sliders.dim, np.float32)
        self._show_code(centre, "the prior's mean" if self._gaussian() else "the data's mean code")

    def random_code(self) -> None:
        if self._gaussian():
            self._show_code(self._rng.standard_normal(self.sliders.dim).astype(np.float32), "a sample from the prior")
        elif self.codes is not None and len(self.codes):
            i = int(self._rng.integers(len(self.codes)))
            self._show_code(self.codes.codes[i], f"random {self.map.describe(i)}")

    def pick_item(self, index: int) -> None:
        """A point on the map (or a neighbour) was clicked: its code goes on the sliders."""
        if self.codes is None or not 0 <= index < len(self.codes):
            return
        self.map.show_preview(index)
        self._show_code(self.codes.codes[index], self.map.describe(index))

    # ================================================================ maps

    def show_projection(self, name: str) -> None:
        codes = self.codes
        if codes is None:
            return
        if name == "PCA":
            self.map.set_positions("PCA", codes.xy_pca)
            self._place_drops()
            self._move_cross()
            return
        gen = self._gen
        if gen in self._tsne:
            self._tsne_ready(gen, self._tsne[gen])
            return
        self.map.set_busy(f"computing t-SNE of {len(codes)} codes…")
        self.tasks.submit(tsne_2d, codes.codes, on_result=partial(self._tsne_ready, gen),
                          on_error=partial(self._tsne_failed, gen))

    def _tsne_ready(self, gen: int, xy: np.ndarray) -> None:
        if gen != self._gen or self.codes is None:
            return
        self._tsne[gen] = xy
        self.map.set_busy(None)
        if self.map.projection_box.currentText() == "t-SNE":
            self.map.set_positions("t-SNE", xy)
            self._place_drops()
            if self.drops:
                self.map.status.setText("dropped images sit at their nearest neighbour's place (≈)")

    def _tsne_failed(self, gen: int, exc: BaseException, details: str) -> None:
        if gen != self._gen:
            return
        self.map.set_busy(None)
        self.map.set_positions("PCA", self.codes.xy_pca)  # type: ignore[union-attr]
        self.notify.emit(Level.WARNING, f"t-SNE failed: {exc}", details)

    def _drop_position(self, z: np.ndarray) -> tuple[tuple[float, float], bool]:
        codes = self.codes
        assert codes is not None
        if self.map.projection == "PCA":
            x, y = codes.pca.project(z)[0]
            return (float(x), float(y)), False
        idx, _ = nearest(codes.codes, z, 1)
        x, y = self.map.xy[int(idx[0])]  # type: ignore[index]
        return (float(x), float(y)), True

    def _place_drops(self) -> None:
        if self.codes is None:
            self.map.set_drops([])
            return
        marks = []
        for d in self.drops:
            xy, approx = self._drop_position(d.code)
            marks.append(DropMark(xy, d.path.name, approx))
        self.map.set_drops(marks)

    # ================================================================ dropped images

    def _reencode_drops(self) -> None:
        """A new model: the dropped images get codes under it (off the GUI thread)."""
        if not self.drops or not self._usable():
            return  # kept: they get codes when a model with a code is loaded
        old, self.drops = self.drops, []
        gen, predictor = self._gen, self.model.predictor  # type: ignore[union-attr]
        self.tasks.submit(encode_images, predictor, [d.raw for d in old], [d.path for d in old],
                          on_result=partial(self._dropped_ready, gen),
                          on_error=partial(self._failed, "Could not encode the dropped images"))

    def _dropped_ready(self, gen: int, items: list[Dropped]) -> None:
        if gen != self._gen or not items:
            return
        self.drops.extend(items)
        self.drops = self.drops[-16:]  # the map stays readable
        last = items[-1]
        self._show_code(last.code, f"dropped: {last.path.name}")
        self._place_drops()
        self._show_neighbours(last)
        for d in items[-2:]:
            self.interp.push(End(d.code, d.image, d.path.name))

    def _show_neighbours(self, d: Dropped) -> None:
        codes = self.codes
        if codes is None:
            self.neighbour_row.clear("The nearest data items appear once the data's codes are computed.")
            return
        idx, dist = nearest(codes.codes, d.code, NEIGHBOURS)
        self.neighbours = idx
        self.neighbour_row.show_neighbours(d.image, d.path.name, idx, dist, codes.images[idx],
                                           [self._short(i) for i in idx])
        if not self.interp.ready:
            self.page.lower_tabs.setCurrentIndex(0)  # the neighbours of what was just dropped

    def _short(self, i: int) -> str:
        codes = self.codes
        if codes is not None and codes.labels is not None:
            lab = int(codes.labels[i])
            names = codes.label_names
            return str(names[lab] if 0 <= lab < len(names) else lab)
        return f"#{int(i)}"

    # ================================================================ interpolation

    def _take_end(self, k: int) -> None:
        self.interp.set_end(k, End(self.sliders.code(), self.decoded.array, self.decoded.caption.text() or "sliders"))

    def _strip_changed(self) -> None:
        if not self.interp.ready or not self._usable():
            self.interp.set_frames(None)
            return
        a, b = self.interp.ends
        self._strip_gen += 1
        key = (self._gen, self._strip_gen)
        self.tasks.submit(strip, self.model.predictor, a.code, b.code, self.interp.frames_box.value(),  # type: ignore[union-attr]
                          on_result=partial(self._strip_ready, key),
                          on_error=partial(self._failed, "Could not decode the interpolation"))

    def _strip_ready(self, key: tuple[int, int], result: tuple[np.ndarray, np.ndarray]) -> None:
        if key != (self._gen, self._strip_gen):
            return
        frames, grid = result
        self.interp.set_frames(frames, grid)
        self.page.lower_tabs.setCurrentWidget(self.interp)
        self._between_moved(self.interp.t)

    def _between_moved(self, t: float) -> None:
        if not self.interp.ready or not self._usable():
            return
        a, b = self.interp.ends
        z = ((1.0 - t) * a.code + t * b.code).astype(np.float32)
        gen = self._gen
        self.side.submit(decode_one, self.model.predictor, z,  # type: ignore[union-attr]
                         on_result=lambda img: self.interp.set_between(img, t) if gen == self._gen else None)

    def _failed(self, what: str, exc: BaseException, details: str) -> None:
        self.notify.emit(Level.WARNING, f"{what}: {exc}", details)


__all__ = ["LatentPanel"]
