"""A labelling project: images, painted index masks (255 = unlabelled), classes, edit history.

On disk a project is a folder laid out like a ``pairs:`` data spec, so any
project is also training data for ``aestudio train``::

    PROJECT/
      aestudio-project.json   format, version, the trained model (paths relative to PROJECT)
      images/                 the images, copied in as they were (any size, grey/colour, 8/16-bit)
      masks/<stem>.png        one index PNG per image; 255 where nothing was painted
      masks/classes.json      class names and colours (see aestudio.data.classes)

Masks are written atomically (:mod:`aestudio._fs`); the caller decides when
(the app saves after every stroke, on a worker thread, from :meth:`mask_copy`).
Edits go through :class:`Stroke` (brush dabs), :meth:`LabelProject.fill` and
:meth:`LabelProject.accept`; each becomes one undoable :class:`Diff` on the
image's own undo/redo stacks (kept in memory for the session).

Bad input never costs painted labels: a mask whose size or values do not fit
is left untouched on disk and its image is marked with a :class:`Problem`
(read-only) naming the file and the fix.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aestudio._fs import atomic_write, atomic_write_text
from aestudio.data.classes import (
    MAX_CLASSES,
    UNLABELLED,
    ClassesError,
    ClassTable,
    read_classes,
    write_classes,
)
from aestudio.data.io import (
    ImageLoadError,
    iter_image_files,
    probe_image,
    read_image,
    read_mask,
    write_mask,
)
from aestudio.data.levels import Levels, read_levelled
from aestudio.errors import AestudioError
from aestudio.palette import default_palette

log = logging.getLogger(__name__)

PROJECT_FILE = "aestudio-project.json"
FORMAT = "aestudio-label-project"
VERSION = 1
UNLABELLED_COLOR = (128, 128, 128)  # how 255 looks when a mask PNG is opened in another viewer
MAX_HISTORY = 200  # undo steps kept per image


class ProjectError(AestudioError, ValueError):
    """A project folder cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class Diff:
    """One undoable edit: the pixels of ``rect`` = (top, left, bottom, right) before and after."""

    rect: tuple[int, int, int, int]
    before: np.ndarray
    after: np.ndarray


@dataclass
class Problem:
    """Why an image cannot be edited, and the fix."""

    path: Path
    message: str


@dataclass
class ImageItem:
    name: str  # file name inside images/
    image_path: Path
    mask_path: Path
    height: int = 0
    width: int = 0
    problem: Problem | None = None
    undo: list[Diff] = field(default_factory=list)
    redo: list[Diff] = field(default_factory=list)
    dirty: bool = False  # the mask in memory differs from the file


@dataclass
class AddReport:
    added: list[str] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def project_palette(n: int) -> list[tuple[int, int, int]]:
    """Colours for painted classes: background gets a visible blue (black strokes vanish on dark images)."""
    return [(0, 130, 200)] + [c for c in default_palette(n + 4)[1:] if c != (0, 130, 200)][: max(0, n - 1)]


def _copy_into(src: Path, fh: Any) -> None:
    with open(src, "rb") as source:
        shutil.copyfileobj(source, fh)


def is_project(folder: Path | str) -> bool:
    return (Path(folder) / PROJECT_FILE).is_file()


class LabelProject:
    """A project folder in memory (see the module docstring). Not thread-safe: one owner edits it."""

    def __init__(self, root: Path, classes: ClassTable, record: dict[str, Any]) -> None:
        self.root = root
        self.classes = classes
        self.record = record
        self.items: list[ImageItem] = []
        self._masks: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------- folders

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def masks_dir(self) -> Path:
        return self.root / "masks"

    @property
    def project_file(self) -> Path:
        return self.root / PROJECT_FILE

    def data_spec(self) -> str:
        """The project as training data: ``pairs:PROJECT/images,PROJECT/masks``."""
        return f"pairs:{self.images_dir},{self.masks_dir}"

    @classmethod
    def create(cls, folder: Path | str, class_names: Iterable[str] = ("background", "foreground")) -> LabelProject:
        """A new project in ``folder`` (missing or empty)."""
        root = Path(folder).expanduser()
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise ProjectError(f"{root}: not an empty folder; choose a new or empty folder for a project "
                               "(or open the project that is there)")
        names = tuple(class_names)
        if not 1 <= len(names) <= MAX_CLASSES:
            raise ProjectError(f"a project needs 1..{MAX_CLASSES} classes, got {len(names)}")
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(exist_ok=True)
        table = ClassTable(names, tuple(project_palette(len(names))))
        write_classes(root / "masks", table)
        project = cls(root, table, {"format": FORMAT, "version": VERSION, "model": None})
        project._write_record()
        return project

    @classmethod
    def open(cls, folder: Path | str) -> LabelProject:
        root = Path(folder).expanduser()
        path = root / PROJECT_FILE
        if not path.is_file():
            raise ProjectError(f"{root}: no {PROJECT_FILE} here; open a project folder or create a new project")
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProjectError(f"{path}: cannot be read ({exc}); restore it or write "
                               f'{{"format": "{FORMAT}", "version": {VERSION}, "model": null}} into it') from None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise ProjectError(f"{path}: not an aestudio label project (format {record.get('format') if isinstance(record, dict) else record!r}); "
                               f'set "format": "{FORMAT}"')
        if not isinstance(record.get("version"), int) or record["version"] > VERSION:
            raise ProjectError(f"{path}: version {record.get('version')!r} is not one this aestudio reads "
                               f"(<= {VERSION}); update aestudio or fix the version")
        model = record.get("model")
        if model is not None and not isinstance(model, dict):
            raise ProjectError(f"{path}: \"model\" must be an object or null, not {model!r}; set it to null to "
                               "train a new model")
        try:
            table = read_classes(root / "masks")
        except ClassesError as exc:
            raise ProjectError(str(exc)) from None
        if table is None:
            raise ProjectError(f"{root / 'masks' / 'classes.json'}: missing; the project's classes live there "
                               '(e.g. {"classes": [{"name": "background", "color": [0, 0, 0]}]})')
        project = cls(root, table, record)
        project._scan()
        return project

    def _scan(self) -> None:
        (self.images_dir).mkdir(exist_ok=True)
        (self.masks_dir).mkdir(exist_ok=True)
        for path in iter_image_files(self.images_dir, recursive=False):
            item = ImageItem(path.name, path, self.masks_dir / f"{path.stem}.png")
            self.items.append(item)
            self._check(len(self.items) - 1)

    def _check(self, index: int) -> None:
        """Read the image header and the mask; mark the item with a problem instead of raising."""
        item = self.items[index]
        try:
            info = probe_image(item.image_path)
            item.height, item.width = info.height, info.width
        except (ImageLoadError, OSError, ValueError) as exc:
            item.problem = Problem(item.image_path, f"{exc}; replace the image or remove it from {self.images_dir}")
            return
        if not item.mask_path.exists():
            return  # never painted: an all-unlabelled mask is made on first use
        try:
            mask = read_mask(item.mask_path)
        except (ImageLoadError, OSError, ValueError) as exc:
            item.problem = Problem(item.mask_path, f"{exc}; fix the mask or move it away (its image then starts unlabelled)")
            return
        if mask.shape != (item.height, item.width):
            item.problem = Problem(item.mask_path, (
                f"{item.mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {item.name} is "
                f"{item.width}x{item.height}; resize the mask to match or move it away (nothing was changed)"))
            return
        labelled = mask[mask != UNLABELLED]
        top = int(labelled.max(initial=0))
        if top >= len(self.classes):
            item.problem = Problem(item.mask_path, (
                f"{item.mask_path}: holds class value {top} but the project has {len(self.classes)} classes "
                f"(0..{len(self.classes) - 1}, 255 = unlabelled); add classes up to {top + 1} or fix the mask"))

    def _write_record(self) -> None:
        atomic_write_text(self.project_file, json.dumps(self.record, indent=2) + "\n")

    # ------------------------------------------------------------- images

    def __len__(self) -> int:
        return len(self.items)

    def index_of(self, name: str) -> int:
        return next(i for i, it in enumerate(self.items) if it.name == name)

    def add_images(self, paths: Iterable[Path | str]) -> AddReport:
        """Copy images in (files or folders); unreadable ones are reported, not copied."""
        report = AddReport()
        files: list[Path] = []
        for p in paths:
            try:
                files.extend(iter_image_files(p))
            except FileNotFoundError as exc:
                report.failed.append((Path(p), str(exc)))
        for src in files:
            try:
                info = probe_image(src)
                read_image(src)  # decode once: a truncated file is refused now, not at training time
            except (ImageLoadError, OSError, ValueError) as exc:
                report.failed.append((src, str(exc)))
                continue
            dest = self._free_name(src)
            atomic_write(dest, lambda fh, s=src: _copy_into(s, fh), overwrite=False)
            item = ImageItem(dest.name, dest, self.masks_dir / f"{dest.stem}.png", info.height, info.width)
            self.items.append(item)
            # An all-unlabelled mask at once: the folder stays a complete pairs: set.
            write_mask(item.mask_path, np.full((info.height, info.width), UNLABELLED, np.uint8), self.palette(),
                       overwrite=True)
            report.added.append(dest.name)
        return report

    def _free_name(self, src: Path) -> Path:
        taken = {it.image_path.stem.lower() for it in self.items}
        taken |= {p.stem.lower() for p in self.masks_dir.glob("*.png")}
        stem, n = src.stem, 1
        while stem.lower() in taken or (self.images_dir / f"{stem}{src.suffix}").exists():
            n += 1
            stem = f"{src.stem}-{n}"
        return self.images_dir / f"{stem}{src.suffix.lower()}"

    def image(self, index: int, channels: int | None = None) -> np.ndarray:
        """float32 [H, W, C] in [0, 1]; a 16-bit image stretched by its own range, as ``pairs:``
        training and segmentation read it (:func:`aestudio.data.levels.read_stretched`)."""
        return self.image_levelled(index, channels)[0]

    def image_levelled(self, index: int, channels: int | None = None) -> tuple[np.ndarray, Levels]:
        """:meth:`image` and how it was stretched (the Label tab names a stretched image's range)."""
        return read_levelled(self.items[index].image_path, channels=channels)

    def editable(self, index: int) -> bool:
        return self.items[index].problem is None

    def mask(self, index: int) -> np.ndarray:
        """The live uint8 [H, W] mask (edit only through the methods below)."""
        item = self.items[index]
        if item.problem is not None:
            raise ProjectError(item.problem.message)
        mask = self._masks.get(index)
        if mask is None:
            if item.mask_path.exists():
                mask = read_mask(item.mask_path).astype(np.uint8)  # checked by _check at open
            else:
                mask = np.full((item.height, item.width), UNLABELLED, np.uint8)
                item.dirty = True
            self._masks[index] = mask
        return mask

    def mask_copy(self, index: int) -> np.ndarray:
        return self.mask(index).copy()

    def labelled_fraction(self, index: int) -> float:
        if self.items[index].problem is not None:
            return 0.0
        m = self.mask(index)
        return float(np.count_nonzero(m != UNLABELLED)) / max(m.size, 1)

    def save(self, index: int, mask: np.ndarray | None = None) -> Path:
        """Write the mask (or a copy taken earlier) atomically as an index PNG."""
        item = self.items[index]
        data = self.mask(index) if mask is None else mask
        write_mask(item.mask_path, data, self.palette(), overwrite=True)
        if mask is None or np.array_equal(mask, self._masks.get(index)):
            item.dirty = False
        return item.mask_path

    def save_all(self) -> None:
        for i, item in enumerate(self.items):
            if item.dirty and item.problem is None:
                self.save(i)

    def palette(self) -> list[tuple[int, int, int]]:
        colors = list(self.classes.colors) + [(0, 0, 0)] * (255 - len(self.classes))
        return colors[:255] + [UNLABELLED_COLOR]

    # ------------------------------------------------------------- edits

    def stroke(self, index: int, value: int) -> Stroke:
        """Start a brush stroke painting ``value`` (a class, or 255 to erase)."""
        self._check_value(value)
        return Stroke(self, index, value)

    def accept_stroke(self, index: int, prediction: np.ndarray) -> Stroke:
        """A brush that copies ``prediction`` into the unlabelled pixels it passes over (one undo step)."""
        mask = self.mask(index)
        pred = np.asarray(prediction)
        if pred.shape != mask.shape:
            raise ValueError(f"prediction is {pred.shape[1]}x{pred.shape[0]} but {self.items[index].name} is "
                             f"{mask.shape[1]}x{mask.shape[0]}; predict on this image again")
        source = np.where((pred >= 0) & (pred < len(self.classes)), pred, UNLABELLED).astype(np.uint8)
        return Stroke(self, index, UNLABELLED, source=source)

    def fill(self, index: int, y: int, x: int, value: int) -> tuple[int, int, int, int] | None:
        """Flood-fill the 4-connected region of ``(y, x)``'s value with ``value``; returns the changed rect."""
        from skimage.segmentation import flood

        self._check_value(value)
        mask = self.mask(index)
        if not (0 <= y < mask.shape[0] and 0 <= x < mask.shape[1]) or mask[y, x] == value:
            return None
        region = flood(mask, (int(y), int(x)), connectivity=1)
        ys, xs = np.nonzero(region)
        rect = (int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1)
        t, left, b, r = rect
        before = mask[t:b, left:r].copy()
        mask[t:b, left:r][region[t:b, left:r]] = value
        self._record(index, Diff(rect, before, mask[t:b, left:r].copy()))
        return rect

    def accept(self, index: int, prediction: np.ndarray, only_class: int | None = None,
               region: np.ndarray | None = None) -> tuple[int, int, int, int] | None:
        """Copy a predicted mask into the unlabelled pixels (painted ones are kept).

        ``only_class``: only the pixels predicted as that class. ``region``: a bool
        [H, W] limiting where (e.g. under a brush)."""
        mask = self.mask(index)
        pred = np.asarray(prediction)
        if pred.shape != mask.shape:
            raise ValueError(f"prediction is {pred.shape[1]}x{pred.shape[0]} but {self.items[index].name} is "
                             f"{mask.shape[1]}x{mask.shape[0]}; predict on this image again")
        take = (mask == UNLABELLED) & (pred >= 0) & (pred < len(self.classes))
        if only_class is not None:
            take &= pred == only_class
        if region is not None:
            take &= region
        if not take.any():
            return None
        ys, xs = np.nonzero(take)
        t, left, b, r = int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1
        before = mask[t:b, left:r].copy()
        mask[t:b, left:r][take[t:b, left:r]] = pred[t:b, left:r][take[t:b, left:r]].astype(np.uint8)
        self._record(index, Diff((t, left, b, r), before, mask[t:b, left:r].copy()))
        return t, left, b, r

    def _check_value(self, value: int) -> None:
        if value != UNLABELLED and not 0 <= value < len(self.classes):
            raise ValueError(f"class {value} does not exist (the project has {len(self.classes)}); add it first")

    def _record(self, index: int, diff: Diff) -> None:
        item = self.items[index]
        item.undo.append(diff)
        del item.undo[:-MAX_HISTORY]
        item.redo.clear()
        item.dirty = True

    def undo(self, index: int) -> tuple[int, int, int, int] | None:
        return self._step(index, self.items[index].undo, self.items[index].redo, "before")

    def redo(self, index: int) -> tuple[int, int, int, int] | None:
        return self._step(index, self.items[index].redo, self.items[index].undo, "after")

    def _step(self, index: int, source: list[Diff], target: list[Diff], side: str) -> tuple[int, int, int, int] | None:
        if not source:
            return None
        diff = source.pop()
        t, left, b, r = diff.rect
        self.mask(index)[t:b, left:r] = getattr(diff, side)
        target.append(diff)
        self.items[index].dirty = True
        return diff.rect

    # ------------------------------------------------------------- classes and model

    def add_class(self, name: str, color: tuple[int, int, int] | None = None) -> int:
        names = list(self.classes.names)
        if len(names) >= MAX_CLASSES:
            raise ProjectError(f"at most {MAX_CLASSES} classes fit in an index PNG (255 = unlabelled)")
        name = self._free_class_name(name)
        color = color or project_palette(len(names) + 1)[-1]
        self._set_classes(ClassTable((*names, name), (*self.classes.colors, tuple(color))))
        return len(names)

    def rename_class(self, index: int, name: str) -> None:
        name = name.strip()
        if not name:
            raise ValueError("a class needs a name")
        if name in self.classes.names and self.classes.names.index(name) != index:
            raise ValueError(f"another class is already called {name!r}; choose another name")
        names = list(self.classes.names)
        names[index] = name
        self._set_classes(ClassTable(tuple(names), self.classes.colors))

    def recolor_class(self, index: int, color: tuple[int, int, int]) -> None:
        colors = list(self.classes.colors)
        colors[index] = (int(color[0]), int(color[1]), int(color[2]))
        self._set_classes(ClassTable(self.classes.names, tuple(colors)))

    def _free_class_name(self, name: str) -> str:
        name = name.strip() or f"class {len(self.classes)}"
        base, n = name, 1
        while name in self.classes.names:
            n += 1
            name = f"{base} {n}"
        return name

    def _set_classes(self, table: ClassTable) -> None:
        write_classes(self.masks_dir, table)
        self.classes = table
        for i, item in enumerate(self.items):  # an image blocked by a value beyond the classes may fit now
            if item.problem is not None and "add classes" in item.problem.message:
                item.problem = None
                self._check(i)

    @property
    def model(self) -> dict[str, Any] | None:
        """The trained model's record, paths relative to the project folder."""
        return self.record.get("model")

    def model_path(self, key: str) -> Path | None:
        model = self.model or {}
        value = model.get(key)
        return self.root / value if isinstance(value, str) else None

    def set_model(self, model: dict[str, Any] | None) -> None:
        self.record["model"] = model
        self._write_record()


class Stroke:
    """A brush stroke: dabs paint discs into the mask; :meth:`end` records one undo step.

    Keeps a copy of the mask from before the stroke (a few MB at 2048 x 2048, copied
    once), so each dab costs only its own disc, and the undo step stores just the
    stroke's bounding rectangle."""

    def __init__(self, project: LabelProject, index: int, value: int, source: np.ndarray | None = None) -> None:
        self.project = project
        self.index = index
        self.value = np.uint8(value)
        self.source = source  # accept-brush: copy these values into unlabelled pixels instead of `value`
        self.mask = project.mask(index)
        self._before = self.mask.copy()
        self.rect: tuple[int, int, int, int] | None = None
        self._last: tuple[float, float] | None = None

    def dab(self, y: float, x: float, radius: float) -> tuple[int, int, int, int] | None:
        """Paint a disc, and the segment from the previous dab (fast drags leave no gaps)."""
        radius = max(0.5, float(radius))
        points = [(y, x)]
        if self._last is not None:
            ly, lx = self._last
            steps = int(np.hypot(y - ly, x - lx) / max(radius * 0.5, 0.5))
            points = [(ly + (y - ly) * k / (steps + 1), lx + (x - lx) * k / (steps + 1)) for k in range(1, steps + 2)]
        self._last = (y, x)
        h, w = self.mask.shape
        r = int(np.ceil(radius))
        ys = [p[0] for p in points]
        xs = [p[1] for p in points]
        t, left = max(0, int(np.floor(min(ys))) - r), max(0, int(np.floor(min(xs))) - r)
        b, rr = min(h, int(np.ceil(max(ys))) + r + 1), min(w, int(np.ceil(max(xs))) + r + 1)
        if t >= b or left >= rr:
            return None
        gy, gx = np.ogrid[t:b, left:rr]
        hit = np.zeros((b - t, rr - left), bool)
        for py, px in points:
            hit |= (gy - py) ** 2 + (gx - px) ** 2 <= radius * radius
        if self.source is None:
            self.mask[t:b, left:rr][hit] = self.value
        else:
            sub = self.mask[t:b, left:rr]
            take = hit & (sub == UNLABELLED)
            sub[take] = self.source[t:b, left:rr][take]
        rect = (t, left, b, rr)
        self.rect = rect if self.rect is None else (min(self.rect[0], t), min(self.rect[1], left),
                                                    max(self.rect[2], b), max(self.rect[3], rr))
        return rect

    def end(self) -> tuple[int, int, int, int] | None:
        """Record the stroke as one undo step (nothing if it changed nothing)."""
        if self.rect is None:
            return None
        t, left, b, r = self.rect
        before = self._before[t:b, left:r].copy()
        after = self.mask[t:b, left:r].copy()
        self._before = np.empty((0, 0), np.uint8)
        if np.array_equal(before, after):
            return None
        self.project._record(self.index, Diff(self.rect, before, after))
        return self.rect


class MaskSaver:
    """Writes mask snapshots on one background thread; the newest snapshot of an image wins.

    The app submits a copy after every stroke, so painting never waits on PNG
    encoding and a crash loses at most the stroke being drawn. Failures are kept
    in ``errors`` (path, message) for the caller to show; the mask stays dirty.
    """

    def __init__(self, project: LabelProject) -> None:
        import threading

        self.project = project
        self.errors: list[tuple[Path, str]] = []
        self._pending: dict[int, np.ndarray] = {}
        self._writing = False
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="aestudio-mask-saver", daemon=True)
        self._thread.start()

    def submit(self, index: int) -> None:
        snapshot = self.project.mask_copy(index)
        with self._cond:
            self._pending[index] = snapshot
            self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted snapshot is on disk (closing a project; tests)."""
        import time

        end = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._writing:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> bool:
        done = self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        return done

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                index, snapshot = self._pending.popitem()
                self._writing = True
            try:
                self.project.save(index, snapshot)
            except Exception as exc:  # noqa: BLE001 - reported to the person, the mask stays dirty
                path = self.project.items[index].mask_path
                self.errors.append((path, f"{exc}"))
                log.error("could not save %s: %s", path, exc)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
