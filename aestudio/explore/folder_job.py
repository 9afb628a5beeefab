"""The one folder job: every image of a folder through a model, its results written beside each other.

``aestudio segment``, ``aestudio denoise`` and ``aestudio reconstruct``, and the
Segment panel's folder run, all call :func:`run_folder`; only the per-image work
(:class:`FolderWork`) differs. The rules are the same for all of them:

* inputs and output names come from :func:`aestudio.explore.batch.plan_outputs`
  (``OUT/sub/a_photo<suffix>``, sub-folders mirrored, an input never written);
* an image whose outputs already exist is skipped (``report.skipped``) unless
  ``overwrite``: a result the program did not write in this job is never replaced
  without asking;
* a file that cannot be read, run or written is named with the reason
  (``report.bad``) and the job goes on with the next one; an output that would
  land outside the output folder or on an input (a planted link) stops the job
  (:class:`aestudio.explore.batch.OutputPlanError`);
* ``progress(report, name)`` after every image; ``cancel`` is honoured between two.

Qt-free and torch-free: the CLI runs it in its own thread, the GUI on a thread of
its own (:class:`aestudio.gui.panels.folder_job.FolderJob`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aestudio.data.io import write_image, write_mask
from aestudio.data.levels import Levels, read_stretched, write_levelled
from aestudio.explore.batch import OutputPlanError, output_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexMask:
    """A class-index result, written as a palette PNG (not as an image)."""

    mask: np.ndarray  # int [H, W]
    palette: list[tuple[int, int, int]]


@dataclass(frozen=True)
class LevelledImage:
    """An image result in [0, 1] of an input read at its own range (:mod:`aestudio.data.levels`):
    written back in the input's range and bit depth."""

    image: np.ndarray  # float [H, W, C] in [0, 1]
    levels: Levels


Result = np.ndarray | IndexMask | LevelledImage  # an image float [H, W, C] in [0, 1], a mask, or a levelled image


@dataclass(frozen=True)
class FolderWork:
    """What the job does to each image, and how its report speaks of it.

    ``compute`` gets the image as the models see it (:func:`aestudio.data.levels.read_stretched`: a
    16-bit image at its own range, as ``folder:``/``pairs:`` training read it). A work that needs the file itself
    (``aestudio denoise``: 16-bit images at their own range, noise drawn per file name) gives
    ``compute_file(path, name)`` instead, and ``suffixes_for(path)`` when the output names depend
    on the file (16-bit results are TIFFs)."""

    verb: str  # the summary's first word: "Segmented", "Denoised", "Reconstructed"
    noun: str  # what failed when the job itself fails: "segmentation"
    suffixes: tuple[str, ...]  # every file one image gets; the first is its result (counted as written)
    compute: Callable[[np.ndarray], Mapping[str, Result]] | None = None  # image [H, W, C] -> {suffix: result}, in write order
    compute_file: Callable[[Path, str], Mapping[str, Result]] | None = None  # (file, its name in the report) -> results
    suffixes_for: Callable[[Path], tuple[str, ...]] | None = None  # a file's own suffixes (default: ``suffixes``)

    def suffixes_of(self, path: Path) -> tuple[str, ...]:
        return self.suffixes_for(path) if self.suffixes_for is not None else self.suffixes

    def results(self, path: Path, name: str) -> Mapping[str, Result]:
        if self.compute_file is not None:
            return self.compute_file(path, name)
        assert self.compute is not None, "a FolderWork needs compute or compute_file"
        return self.compute(read_stretched(path))


@dataclass
class FolderReport:
    in_dir: Path  # names in the report are relative to it (when inside)
    out_dir: Path
    verb: str = "Processed"
    noun: str = "job"  # "Folder job failed: ..." until the work is known
    total: int = 0
    done: int = 0  # files looked at (good, bad or skipped)
    written: list[Path] = field(default_factory=list)  # each image's result file (the work's first suffix)
    bad: list[tuple[str, str]] = field(default_factory=list)  # (relative name, reason)
    skipped: list[str] = field(default_factory=list)  # outputs already there: never overwritten
    cancelled: bool = False
    seconds: float = 0.0
    profile: str = ""  # which predictor ran it
    error: str = ""  # the job itself failed (no model, unreadable folder...)

    @classmethod
    def for_work(cls, work: FolderWork, in_dir: Path, out_dir: Path, total: int = 0) -> FolderReport:
        return cls(in_dir=Path(in_dir), out_dir=Path(out_dir), verb=work.verb, noun=work.noun, total=total)

    def summary(self) -> str:
        if self.error:
            return f"Folder {self.noun} failed: {self.error}"
        head = "Cancelled" if self.cancelled else self.verb
        text = (f"{head}: {len(self.written)} of {self.total} image(s) from {self.in_dir.name or self.in_dir} "
                f"into {self.out_dir} in {self.seconds:.1f} s")
        if self.skipped:
            text += f"; {len(self.skipped)} skipped (outputs already there)"
        if self.bad:
            names = ", ".join(name for name, _ in self.bad[:3]) + (" …" if len(self.bad) > 3 else "")
            text += f"; {len(self.bad)} unreadable: {names}"
        return text + "."

    def details(self) -> str:
        lines = [f"{name}: {why}" for name, why in self.bad]
        lines += [f"{name}: skipped, its output exists" for name in self.skipped]
        return "\n".join(lines)


def _write(path: Path, result: Result, overwrite: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(result, IndexMask):
        write_mask(path, result.mask, result.palette, overwrite=overwrite)
    elif isinstance(result, LevelledImage):
        write_levelled(path, result.image, result.levels, overwrite=overwrite)
    else:
        write_image(path, result, overwrite=overwrite)


def _reason(exc: BaseException, path: Path) -> str:
    """The error's first line, with the full path shortened to the file name (the report names the file)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.replace(str(path), path.name)


def _name(path: Path, in_dir: Path) -> str:
    """How the report names a file: relative to the job's folder when inside it, else as given."""
    try:
        return str(path.absolute().relative_to(Path(in_dir).absolute()))
    except ValueError:
        return str(path)


def input_root(inputs: list[Path]) -> Path:
    """The folder the report names files from: the deepest one holding every input (files and folders)."""
    return Path(os.path.commonpath([str(p.absolute() if p.is_dir() else p.absolute().parent) for p in inputs]))


def run_folder(pairs: list[tuple[Path, Path]], report: FolderReport, work: FolderWork, cancel: threading.Event,
               progress: Callable[[FolderReport, str], None], *, overwrite: bool = False) -> FolderReport:
    """Run ``work`` on each (input, output stem) of :func:`aestudio.explore.batch.plan_outputs`.

    Existing outputs are skipped unless ``overwrite``; an input is never written.
    A file that cannot be read, run or written goes to ``report.bad`` with the reason.
    """
    inputs = {f.resolve() for f, _ in pairs}
    for path, stem in pairs:
        if cancel.is_set():
            report.cancelled = True
            break
        name = _name(path, report.in_dir)
        try:
            suffixes = work.suffixes_of(path)
            targets = {suffix: output_path(stem, suffix, report.out_dir, inputs) for suffix in suffixes}
            if not overwrite and any(t.exists() or t.is_symlink() for t in targets.values()):
                report.skipped.append(name)
            else:
                for suffix, result in work.results(path, name).items():
                    _write(targets[suffix], result, overwrite)
                report.written.append(targets[suffixes[0]])
        except OutputPlanError:
            raise  # an output would land outside the folder or on an input (a planted link): stop the whole job
        # ImageLoadError is a ValueError, a full disk an OSError, an ONNX Runtime failure a RuntimeError
        except (ValueError, OSError, RuntimeError) as exc:
            report.bad.append((name, _reason(exc, path)))
            logger.info("%s folder: %s skipped: %s", report.noun, path, exc)
        report.done += 1
        progress(report, name)
    return report
