"""Lazy, typed access from the GUI to the core (data, training, export, predictors).

The window must open even when a part of the core is missing or broken (an ORT-only
install, a half-installed checkout), so every core import happens here, on first
use, and a missing piece raises :class:`EngineUnavailable` naming the module and the
fix instead of killing the app at import time. Everything here is Qt-free.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

logger = logging.getLogger(__name__)

# Image suffixes used when aestudio.data.io is not importable (kept in sync by hand
# with the reader's SUPPORTED_SUFFIXES; the reader's list wins when present).
_FALLBACK_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})

BUNDLE_SUBDIR = "bundle"  # a run's own bundle: RUN/bundle (the README's convention)


class EngineUnavailable(RuntimeError):
    """A core module the GUI needs could not be imported."""


def _module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise EngineUnavailable(
            f"{name} is not available ({exc}); reinstall aestudio with `pip install -e .`"
        ) from exc


def _attr(module: str, name: str) -> Any:
    mod = _module(module)
    try:
        return getattr(mod, name)
    except AttributeError:
        raise EngineUnavailable(f"{module}.{name} is missing; update aestudio") from None


# ------------------------------------------------------------------ data


def image_suffixes() -> frozenset[str]:
    try:
        return frozenset(s.lower() for s in _attr("aestudio.data.io", "SUPPORTED_SUFFIXES"))
    except EngineUnavailable:
        return _FALLBACK_SUFFIXES


def read_image(path: Path) -> Any:
    """float32 [H, W, C] in [0, 1]; raises ImageLoadError (a ValueError) naming the file."""
    return _attr("aestudio.data.io", "read_image")(path)


def builtin_specs() -> dict[str, str]:
    try:
        return dict(_attr("aestudio.data.specs", "builtin_specs")())
    except EngineUnavailable as exc:
        logger.warning("%s", exc)
        return {}


def open_data(spec: str, **kwargs: Any) -> Any:
    return _attr("aestudio.data.specs", "open_data")(spec, **kwargs)


def iter_image_files(folder: Path) -> list[Path]:
    try:
        return list(_attr("aestudio.data.io", "iter_image_files")([folder]))
    except EngineUnavailable:
        suffixes = image_suffixes()
        return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())


# ------------------------------------------------------------------ nets


def list_nets() -> list[str]:
    return list(_attr("aestudio.nets", "list_nets")())


def get_spec(name: str) -> Any:
    return _attr("aestudio.nets", "get_spec")(name)


# ------------------------------------------------------------------ runs and bundles


def is_run_dir(path: Path) -> bool:
    try:
        return bool(_attr("aestudio.training.runs", "is_run_dir")(path))
    except EngineUnavailable:
        return (path / "run.json").is_file()


def is_bundle(path: Path) -> bool:
    try:
        return bool(_attr("aestudio.inference.bundle", "is_bundle")(path))
    except EngineUnavailable:
        return (path / "model.json").is_file() and (path / "model.onnx").is_file()


def read_run(path: Path) -> Any:
    return _attr("aestudio.training.runs", "read_run")(path)


def read_bundle(path: Path) -> Any:
    return _attr("aestudio.inference.bundle", "read_bundle")(path)


def run_bundle_dir(run_dir: Path) -> Path:
    return run_dir / BUNDLE_SUBDIR


class ExportFailed(RuntimeError):
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
    proc: Any  # subprocess.Popen
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


def export_run(run_dir: Path, out_dir: Path | None = None, *, package: bool = False) -> Path:
    """Export a run to ``RUN/bundle`` (or ``out_dir``); returns the bundle folder.

    ``package=True``: write a BioImage Model Zoo package ``out_dir`` (a .zip) instead;
    ``run_dir`` may then be a run or a bundle (`aestudio export --format bioimageio`).

    The export runs in a child process (`aestudio export`): done in the app's own
    process, the exporter's ~500k short-lived objects set off garbage-collection
    pauses of 130-300 ms that froze the GUI thread too (measured by bench
    gui_stalls). The calling worker thread only waits on the child, which
    :func:`cancel_exports` can end. Raises :class:`ExportFailed` with the child's
    own error output as ``details``.
    """
    import subprocess
    import time

    from aestudio._child import aestudio_command

    out = Path(out_dir if out_dir is not None else run_bundle_dir(run_dir))
    cmd = aestudio_command("export", str(run_dir), "-o", str(out), *(("--format", "bioimageio") if package else ()))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    job = _Export(Path(run_dir), out, proc, time.monotonic())
    with _exports_lock:
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
    import subprocess
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
    info: Any  # aestudio.inference.bundle.ModelInfo
    predictor: Any  # OrtPredictor: predict / encode / decode / run_image / segment
    runtime: str  # e.g. "ONNX Runtime (CPUExecutionProvider)"
    source: Path | None = None  # the run folder it came from, if any

    @property
    def name(self) -> str:
        return getattr(self.info, "name", None) or self.path.name


def load_model(path: Path) -> LoadedModel:
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
            bundle = export_run(path, bundle)
        path = bundle
    kind = ""
    if is_package(path):  # a BioImage Model Zoo package: its rdf.yaml says the task
        predictor = _attr("aestudio.inference.bioimageio_predictor", "PackagePredictor")(path, profile="interactive")
        kind = ", BioImage Model Zoo package"
    else:
        predictor = _attr("aestudio.inference.ort", "OrtPredictor")(path, profile="interactive")
    provider = getattr(predictor, "provider", "CPUExecutionProvider")
    return LoadedModel(path=path, info=predictor.info, predictor=predictor,
                       runtime=f"ONNX Runtime ({provider}{kind})", source=source)


def is_package(path: Path) -> bool:
    """A BioImage Model Zoo package (a .zip with an rdf.yaml)."""
    return Path(path).suffix.lower() == ".zip" and bool(_attr("aestudio.inference.bioimageio_package", "is_package")(path))


def _stale(bundle: Path, run_dir: Path) -> bool:
    """True when the run's weights are newer than its bundle (training went on)."""
    try:
        weights = max(p.stat().st_mtime for p in run_dir.glob("*.safetensors"))
        return weights > (bundle / "model.onnx").stat().st_mtime
    except (ValueError, OSError):
        return False


# ------------------------------------------------------------------ training


def train(net_name: str, net_cfg: Any, data_spec: str, cfg: Any, run_dir: Path, *,
          stop: threading.Event, pause: threading.Event) -> Iterator[Any]:
    fn = _attr("aestudio.training", "train")
    return fn(net_name, net_cfg, data_spec, cfg, run_dir, stop=stop, pause=pause)


def resume(run_dir: Path, *, stop: threading.Event, pause: threading.Event,
           epochs: int | None = None, time_limit_minutes: float | None = None) -> Iterator[Any]:
    fn = _attr("aestudio.training", "resume")
    return fn(run_dir, stop=stop, pause=pause, epochs=epochs, time_limit_minutes=time_limit_minutes)


# ------------------------------------------------------------------ data as arrays (for the panels)


@dataclass(frozen=True)
class DataArrays:
    """A slice of a data set as plain numpy, for browsing, maps and metrics in the panels."""

    spec: str
    split: str  # "val" or "train"
    images: Any  # float32 [N, C, H, W] in [0, 1]
    labels: Any = None  # int64 [N] class labels (-1: none), or None when the data has no labels
    masks: Any = None  # int64 [N, H, W] ground-truth masks for segmentation data, else None
    label_names: tuple[str, ...] = ()  # names of the labels (digits: "0".."9")
    class_names: tuple[str, ...] = ()  # segmentation classes
    class_colors: tuple[tuple[int, int, int], ...] = ()
    indices: Any = None  # int64 [N]: the item index in the split of each row
    factors: Any = None  # float32 [N, 5] generative factors (shapes), else None


def data_arrays(spec: str, *, split: str = "val", limit: int = 2000, seed: int = 0,
                image_size: int | None = None, channels: int | None = None) -> DataArrays:
    """Up to ``limit`` items of ``spec``'s split as arrays (evenly spaced over the split).

    Slow for folders (decodes files): call it from a worker thread. ``image_size``
    and ``channels`` ask the data for a size/channel count (e.g. the model's).
    """
    import numpy as np

    kwargs: dict[str, Any] = {"seed": seed}
    if image_size is not None:
        kwargs["image_size"] = image_size
    if channels is not None:
        kwargs["channels"] = channels
    data = open_data(spec, **kwargs)
    items = data.val if split == "val" and len(data.val) else data.train
    used_split = "val" if items is data.val else "train"
    n = len(items)
    if n == 0:
        raise ValueError(f"{spec} has no images in its {split} split")
    idx = np.unique(np.linspace(0, n - 1, num=min(limit, n)).round().astype(np.int64))
    images, targets = [], []
    for i in idx:
        image, target = items[int(i)]
        images.append(np.asarray(image.numpy() if hasattr(image, "numpy") else image, dtype=np.float32))
        targets.append(target.numpy() if hasattr(target, "numpy") else target)
    kind = str(getattr(getattr(data, "kind", "images"), "value", getattr(data, "kind", "images")))
    labels = masks = None
    if kind == "segmentation":
        masks = np.stack([np.asarray(t, dtype=np.int64) for t in targets])
    elif kind == "labels":
        labels = np.asarray(targets, dtype=np.int64)
    factors = None
    f = getattr(data, "factors", None)
    if f is not None:
        table = f.val if used_split == "val" else f.train
        factors = np.asarray(table, dtype=np.float32)[idx]
    return DataArrays(
        spec=spec, split=used_split, images=np.stack(images), labels=labels, masks=masks,
        label_names=tuple(getattr(data, "label_names", None) or ()),
        class_names=tuple(getattr(data, "class_names", None) or ()),
        class_colors=tuple(tuple(c) for c in (getattr(data, "class_colors", None) or ())),
        indices=idx, factors=factors)


# ------------------------------------------------------------------ zoo (shipped models, sample images)


def zoo_models() -> list[Any]:
    """The shipped zoo (``aestudio.zoo.catalog.ZooModel`` items: name, path, task, summary); [] without it."""
    try:
        return list(_attr("aestudio.zoo.catalog", "list_models")())
    except EngineUnavailable as exc:
        logger.warning("%s", exc)
        return []


def zoo_default_model() -> Path | None:
    """The bundle a first run opens with, or None when no zoo is installed."""
    try:
        model = _attr("aestudio.zoo.catalog", "default_model")()
    except EngineUnavailable:
        return None
    return None if model is None else Path(model.path)


def zoo_model_for_task(task: str) -> Any | None:
    """The zoo model suggested for a task (``ZooModel``), or None."""
    try:
        return _attr("aestudio.zoo.catalog", "model_for_task")(str(getattr(task, "value", task)))
    except EngineUnavailable:
        return None


def is_zoo_path(path: Path) -> bool:
    """True for a bundle folder of the shipped zoo."""
    try:
        return any(Path(m.path).resolve() == Path(path).resolve() for m in zoo_models())
    except OSError:
        return False


def sample_images() -> list[Path]:
    """The shipped sample images (resources/samples or the installed package); [] without them."""
    try:
        return list(_attr("aestudio.zoo.catalog", "sample_images")())
    except EngineUnavailable:
        return []
