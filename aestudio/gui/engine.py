"""The GUI's use of the core, typed and Qt-free: models, runs, exports, data as arrays, the zoo.

Ordinary imports: the torch-free parts of the core (image IO, bundles, run records,
the zoo catalogue, the data menu) at the top; anything that loads torch, ONNX
Runtime or scikit-learn (data sets, nets, training, predictors) inside the function
that needs it, so the window opens without them (launch to window: bench
``launch``) and they load on the worker thread that first asks.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aestudio.config import NetConfig, Task, TrainConfig
from aestudio.data.catalog import builtin_specs as builtin_specs
from aestudio.data.io import SUPPORTED_SUFFIXES

# read_image: an image file as the models see it (float32 [H, W, C] in [0, 1]), a 16-bit one stretched
# by its own range, as folder:/pairs: training and the CLI's folder jobs read it (aestudio.data.levels).
from aestudio.data.levels import read_stretched as read_image  # noqa: F401 - re-exported for the panels
from aestudio.errors import AestudioError
from aestudio.inference.bundle import ModelInfo
from aestudio.inference.bundle import is_bundle as is_bundle
from aestudio.inference.bundle import read_bundle as read_bundle
from aestudio.training.runs import is_run_dir as is_run_dir
from aestudio.training.runs import read_record as read_record
from aestudio.training.runs import read_run as read_run
from aestudio.zoo import catalog as zoo

if TYPE_CHECKING:
    from aestudio.data.base import DataBundle
    from aestudio.inference.ort import OrtPredictor
    from aestudio.nets.registry import NetSpec
    from aestudio.training.events import Event
    from aestudio.zoo.catalog import ZooModel

logger = logging.getLogger(__name__)

BUNDLE_SUBDIR = "bundle"  # a run's own bundle: RUN/bundle (the README's convention)


# ------------------------------------------------------------------ data


def image_suffixes() -> frozenset[str]:
    return frozenset(s.lower() for s in SUPPORTED_SUFFIXES)


def open_data(spec: str, *, image_size: int | None = None, channels: int | None = None,
              seed: int = 0) -> DataBundle:
    """Open a data spec (loads torch: call it from a worker thread); the options of
    :func:`aestudio.data.specs.open_data` the app uses."""
    from aestudio.data.specs import open_data as _open

    return _open(spec, image_size=image_size, channels=channels, seed=seed)


def iter_image_files(folder: Path) -> list[Path]:
    from aestudio.data.io import iter_image_files as _iter

    return list(_iter([folder]))


# ------------------------------------------------------------------ nets


def list_nets() -> list[str]:
    from aestudio.nets import list_nets as _list

    return list(_list())


def get_spec(name: str) -> NetSpec:
    from aestudio.nets import get_spec as _get

    return _get(name)


# ------------------------------------------------------------------ runs and bundles


def run_bundle_dir(run_dir: Path) -> Path:
    return run_dir / BUNDLE_SUBDIR


class ExportFailed(AestudioError, RuntimeError):
    """The export child failed; ``details`` holds its own error output (not the GUI's traceback)."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class ExportCancelled(ExportFailed):
    """The export was cancelled (by the user or by closing the window); no bundle was written."""


@dataclass
class _Export:
    run_dir: Path
    out: Path
    proc: subprocess.Popen[str]
    started: float
    cancelled: bool = False


_exports: list[_Export] = []
_exports_lock = threading.Lock()
CANCEL_GRACE_S = 5.0  # after SIGINT the child removes its temp folder; then it is killed


def running_exports() -> list[tuple[Path, float]]:
    """(run folder, seconds running) of every export child alive now; cheap, for a status line."""
    import time

    now = time.monotonic()
    with _exports_lock:
        return [(e.run_dir, now - e.started) for e in _exports if e.proc.poll() is None]


def export_run(run_dir: Path, out_dir: Path | None = None, *, package: bool = False,
               closing: threading.Event | None = None) -> Path:
    """Export a run to ``RUN/bundle`` (or ``out_dir``); returns the bundle folder.

    ``package=True``: write a BioImage Model Zoo package ``out_dir`` (a .zip) instead;
    ``run_dir`` may then be a run or a bundle (`aestudio export --format bioimageio`).

    The export runs in a child process (`aestudio export`): done in the app's own
    process, the exporter's ~500k short-lived objects set off garbage-collection
    pauses of 130-300 ms that froze the GUI thread too (measured by bench
    gui_stalls). The calling worker thread only waits on the child, which
    :func:`cancel_exports` can end; none starts once ``closing`` is set (the window
    closed while this job waited on the pool). Raises :class:`ExportFailed` with the
    child's own error output as ``details``.
    """
    import time

    from aestudio._child import aestudio_command

    out = Path(out_dir if out_dir is not None else run_bundle_dir(run_dir))
    cmd = aestudio_command("export", str(run_dir), "-o", str(out), *(("--format", "bioimageio") if package else ()))
    with _exports_lock:  # checked and registered under the lock: a close cannot slip in between
        if closing is not None and closing.is_set():
            raise ExportCancelled(f"export of {Path(run_dir).name} not started: the app is closing")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        job = _Export(Path(run_dir), out, proc, time.monotonic())
        _exports.append(job)
    try:
        stdout, stderr = proc.communicate()
    finally:
        with _exports_lock:
            _exports.remove(job)
    if job.cancelled:
        raise ExportCancelled(f"export of {run_dir.name} cancelled; the run keeps its checkpoint "
                              "and is exported again when loaded")
    if proc.returncode != 0:
        text = (stderr or stdout or "").strip()
        lines = [ln for ln in text.splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"exit code {proc.returncode}"
        raise ExportFailed(f"export of {run_dir} failed: {reason.removeprefix('aestudio: error: ')}",
                           details=f"$ {' '.join(cmd)}\n\n{text or f'exit code {proc.returncode}'}")
    return out


def cancel_exports(timeout: float = CANCEL_GRACE_S) -> int:
    """End every export child: Ctrl-C first (it deletes its unfinished bundle), a kill after ``timeout``.

    Returns how many were running. A bundle is written to a temp folder and renamed into
    place at the very end, so an ended export never leaves a half-written bundle; after a
    kill (no chance to clean up) the child's own temp folder is removed here.
    """
    import signal
    import time

    with _exports_lock:
        jobs = [e for e in _exports if e.proc.poll() is None]
    for job in jobs:
        job.cancelled = True
        try:
            if os.name == "nt":
                job.proc.terminate()
            else:
                job.proc.send_signal(signal.SIGINT)
        except OSError:
            pass
    deadline = time.monotonic() + timeout
    for job in jobs:
        try:
            job.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            job.proc.kill()
            job.proc.wait()
            for leftover in job.out.parent.glob(f".{job.out.name}.export-*"):
                shutil.rmtree(leftover, ignore_errors=True)  # the child's own temp folder
    return len(jobs)


@dataclass(frozen=True)
class LoadedModel:
    """The active model of the exploration panels."""

    path: Path  # the bundle folder (or a foreign .onnx file)
    info: ModelInfo
    predictor: OrtPredictor  # predict / encode / decode / run_image / segment
    runtime: str  # e.g. "ONNX Runtime (CPUExecutionProvider)"
    source: Path | None = None  # the run folder it came from, if any
    bf16_ok: bool = False  # its batch work may run in bfloat16 (record and CPU allow it; see runtime_line)

    @property
    def name(self) -> str:
        return self.info.name or self.path.name


MODEL_CALL_LIMIT_S = 120.0  # one model call (a batch of tiles) on a slow CPU takes seconds, not minutes


def load_model(path: Path, *, closing: threading.Event | None = None) -> LoadedModel:
    """Open a bundle, a run (exported first when it has no bundle) or a foreign .onnx.

    Slow (export, session creation): call it from a worker thread.
    """
    path = Path(path)
    source: Path | None = None
    if is_run_dir(path):
        source = path
        bundle = run_bundle_dir(path)
        if not is_bundle(bundle) or _stale(bundle, path):
            logger.info("exporting %s to %s", path, bundle)
            bundle = export_run(path, bundle, closing=closing)
        path = bundle
    kind = ""
    if is_package(path):  # a BioImage Model Zoo package: its rdf.yaml says the task
        from aestudio.inference.bioimageio_predictor import PackagePredictor

        predictor: OrtPredictor = PackagePredictor(path, profile="interactive")
        kind = ", BioImage Model Zoo package"
    else:
        from aestudio.inference.ort import OrtPredictor

        predictor = OrtPredictor(path, profile="interactive")
    # A model that never returns (a hostile Loop of 1e15 iterations) must not hold a worker
    # thread forever: each call ends with ModelCallCancelled after this long, reported like any error.
    predictor.time_limit_s = MODEL_CALL_LIMIT_S
    provider = predictor.provider
    if predictor.info.precision != "float32":  # an int8 graph (`aestudio export --int8`): results differ a little
        kind += f", {predictor.info.precision}"
    return LoadedModel(path=path, info=predictor.info, predictor=predictor, runtime=f"ONNX Runtime ({provider}{kind})",
                       source=source, bf16_ok=path.is_dir() and _bf16_allowed(predictor.info))


def runtime_line(model: LoadedModel) -> str:
    """The status bar's runtime text: the ONNX Runtime session, and whether batch work takes bfloat16 now."""
    if model.bf16_ok and _batch_precision == "auto":
        return model.runtime + "; whole images and folders in bfloat16"
    return model.runtime


# ---------------------------------------------------------------- bfloat16 for batch work

_batch_precision = "float32"  # what install_batch_runtime set: "auto" or "float32"


def install_batch_runtime(precision: str) -> None:
    """Batch work (a whole image while nothing trains, a folder) of a denoiser or segmenter whose model.json
    allows it runs in bfloat16 on a CPU with native bfloat16 (``aestudio.export.bf16_runtime``) when
    ``precision`` is "auto"; "float32" keeps the ONNX graph. Sliders and previews always keep it."""
    from aestudio.explore.sessions import set_batch_runtime

    global _batch_precision
    _batch_precision = "auto" if precision == "auto" else "float32"
    set_batch_runtime(_bf16_twin if _batch_precision == "auto" else None)


def _bf16_allowed(info: ModelInfo) -> bool:
    """The bundle's record allows bfloat16 and this CPU runs it natively (imports torch: a worker only)."""
    from aestudio.inference.precision import record_ok

    if record_ok(info) is not None:
        return False
    try:
        from aestudio.export.bf16_runtime import bf16_native
    except ImportError:
        return False
    return bf16_native()


def _bf16_twin(predictor: Any) -> Any:
    """The batch runtime choice installed by :func:`install_batch_runtime` (runs in workers)."""
    from aestudio.inference.precision import record_ok

    path = getattr(predictor, "path", None)
    if path is None or not Path(path).is_dir() or record_ok(predictor.info) is not None:
        return predictor
    try:
        from aestudio.export.bf16_runtime import choose_bf16

        twin, why = choose_bf16(predictor, "auto")
    except Exception as exc:  # noqa: BLE001 - a broken torch must not stop a folder job: float32 runs it
        logger.warning("%s: bfloat16 runtime unavailable (%s); using ONNX Runtime", path, exc)
        return predictor
    logger.info("%s: %s", path, why)
    return twin


def is_package(path: Path) -> bool:
    """A BioImage Model Zoo package (a .zip with an rdf.yaml)."""
    from aestudio.inference.bioimageio_package import is_package as _is_package

    return Path(path).suffix.lower() == ".zip" and _is_package(path)


def _stale(bundle: Path, run_dir: Path) -> bool:
    """True when the run's weights are newer than its bundle (training went on)."""
    try:
        weights = max(p.stat().st_mtime for p in run_dir.glob("*.safetensors"))
        return weights > (bundle / "model.onnx").stat().st_mtime
    except (ValueError, OSError):
        return False


# ------------------------------------------------------------------ training


def train(net_name: str, net_cfg: NetConfig, data_spec: str, cfg: TrainConfig, run_dir: Path, *,
          stop: threading.Event, pause: threading.Event) -> Iterator[Event]:
    """The core's training generator (torch loads here: call it on the training thread)."""
    from aestudio.training import train as _train

    return _train(net_name, net_cfg, data_spec, cfg, run_dir, stop=stop, pause=pause)


def resume(run_dir: Path, *, stop: threading.Event, pause: threading.Event,
           epochs: int | None = None, time_limit_minutes: float | None = None) -> Iterator[Event]:
    """The core's resume generator (torch loads here: call it on the training thread)."""
    from aestudio.training import resume as _resume

    return _resume(run_dir, stop=stop, pause=pause, epochs=epochs, time_limit_minutes=time_limit_minutes)


# ------------------------------------------------------------------ data as arrays (for the panels)


@dataclass(frozen=True)
class DataArrays:
    """A slice of a data set as plain numpy, for browsing, maps and metrics in the panels."""

    spec: str
    split: str  # "val", "train" or "train+val"
    images: np.ndarray  # float32 [N, C, H, W] in [0, 1]
    labels: np.ndarray | None = None  # int64 [N] class labels (-1: none), or None when the data has no labels
    masks: np.ndarray | None = None  # int64 [N, H, W] ground-truth masks for segmentation data, else None
    label_names: tuple[str, ...] = ()  # names of the labels (digits: "0".."9")
    class_names: tuple[str, ...] = ()  # segmentation classes
    class_colors: tuple[tuple[int, int, int], ...] = ()
    indices: np.ndarray | None = None  # int64 [N]: the item index in the split of each row (train+val: train's first)
    factors: np.ndarray | None = None  # float32 [N, 5] generative factors (shapes), else None


def data_arrays(spec: str, *, split: str = "val", limit: int = 2000, seed: int = 0,
                image_size: int | None = None, channels: int | None = None) -> DataArrays:
    """Up to ``limit`` items of ``spec``'s split as arrays (evenly spaced over the split).

    ``split="all"``: the train items then the validation ones (a folder of a few images, whose
    train split alone is too small for a map). Slow for folders (decodes files): call it from
    a worker thread. ``image_size`` and ``channels`` ask the data for a size/channel count
    (e.g. the model's).
    """
    data = open_data(spec, image_size=image_size, channels=channels, seed=seed)
    parts = [data.train, data.val] if split == "all" else [data.val if split == "val" and len(data.val) else data.train]
    used_split = "train+val" if split == "all" else ("val" if parts[0] is data.val else "train")
    starts = np.cumsum([0] + [len(p) for p in parts])
    n = int(starts[-1])
    if n == 0:
        raise ValueError(f"{spec} has no images in its {split} split")
    idx = np.unique(np.linspace(0, n - 1, num=min(limit, n)).round().astype(np.int64))
    images, targets = [], []
    for i in idx:
        k = int(np.searchsorted(starts, i, side="right")) - 1  # which split row i falls in
        image, target = parts[k][int(i - starts[k])]
        images.append(np.asarray(image.numpy() if hasattr(image, "numpy") else image, dtype=np.float32))
        targets.append(target.numpy() if hasattr(target, "numpy") else target)
    kind = data.kind.value
    labels = masks = None
    if kind == "segmentation":
        masks = np.stack([np.asarray(t, dtype=np.int64) for t in targets])
    elif kind == "labels":
        labels = np.asarray(targets, dtype=np.int64)
    factors = None
    f = data.factors
    if f is not None:
        table = {"val": f.val, "train": f.train}.get(used_split)
        if table is None:  # train+val: the rows in the same order as the items
            table = np.concatenate([np.asarray(f.train), np.asarray(f.val)])
        factors = np.asarray(table, dtype=np.float32)[idx]
    return DataArrays(
        spec=spec, split=used_split, images=np.stack(images), labels=labels, masks=masks,
        label_names=tuple(data.label_names), class_names=tuple(data.class_names),
        class_colors=tuple((int(r), int(g), int(b)) for r, g, b in data.class_colors),
        indices=idx, factors=factors)


# ------------------------------------------------------------------ zoo (shipped models, sample images)


def zoo_models() -> list[ZooModel]:
    """The shipped zoo (``ZooModel`` items: name, path, task, summary); [] when none is installed."""
    return list(zoo.list_models())


def zoo_default_model() -> Path | None:
    """The bundle a first run opens with, or None when no zoo is installed."""
    model = zoo.default_model()
    return None if model is None else Path(model.path)


def zoo_model_for_task(task: Task) -> ZooModel | None:
    """The zoo model suggested for a task, or None."""
    return zoo.model_for_task(task.value)


def is_zoo_path(path: Path) -> bool:
    """True for a bundle folder of the shipped zoo."""
    try:
        return any(Path(m.path).resolve() == Path(path).resolve() for m in zoo_models())
    except OSError:
        return False


def sample_images() -> list[Path]:
    """The shipped sample images (resources/samples or the installed package); [] without them."""
    return list(zoo.sample_images())
