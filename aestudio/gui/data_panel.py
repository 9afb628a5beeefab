"""The data side: pick a built-in data spec or a folder, see thumbnails, counts and the split.

Opening data (which may generate sprites or scan thousands of files) runs on the
shared :class:`TaskRunner`; the panel shows "Loading…" meanwhile and emits
:attr:`DataPanel.data_changed` with the spec and the data's shape when ready.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QModelIndex, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from aestudio.gui import engine
from aestudio.gui.messages import Level
from aestudio.gui.thumbnails import THUMB, ThumbnailModel
from aestudio.gui.workers import TaskRunner

logger = logging.getLogger(__name__)

SAMPLE_THUMBS = 256  # in-memory data sets: how many samples to show (they are all alike)
FOLDER_PREFIX = "folder:"


@dataclass(frozen=True)
class DataSummary:
    """What the panel shows about opened data (built off the GUI thread)."""

    spec: str
    train_size: int
    val_size: int
    channels: int
    image_size: int | None
    kind: str
    class_names: list[str] = field(default_factory=list)
    bad_files: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # folder data: every image file
    samples: list[np.ndarray] = field(default_factory=list)  # in-memory data: a few images


def summarize(spec: str) -> DataSummary:
    """Open ``spec`` and collect counts and thumbnails' sources (slow: call from a worker)."""
    data = engine.open_data(spec)
    files: list[Path] = []
    samples: list[np.ndarray] = []
    if spec.startswith(FOLDER_PREFIX):
        files = engine.iter_image_files(Path(spec[len(FOLDER_PREFIX):]))
    else:
        for i in range(min(SAMPLE_THUMBS, len(data.train))):
            image = data.train[i][0]
            samples.append(np.asarray(image.numpy() if hasattr(image, "numpy") else image, dtype=np.float32))
    return DataSummary(
        spec=spec, train_size=len(data.train), val_size=len(data.val), channels=int(data.channels),
        image_size=getattr(data, "image_size", None), kind=data.kind.value,
        class_names=list(getattr(data, "class_names", None) or []),
        bad_files=[(str(p), str(r)) for p, r in (getattr(data, "bad_files", None) or [])],
        files=files, samples=samples)


def describe(summary: DataSummary) -> str:
    total = summary.train_size + summary.val_size
    val_pct = 100.0 * summary.val_size / total if total else 0.0
    shape = f"{summary.channels} × {summary.image_size} × {summary.image_size}" if summary.image_size else f"{summary.channels} channel(s), any size"
    noun = "image" if total == 1 else "images"
    lines = [f"<b>{total:,}</b> {noun} · {summary.train_size:,} train / {summary.val_size:,} validation ({val_pct:.0f}%)",
             f"{shape} · {summary.kind}"]
    if summary.class_names:
        lines.append("classes: " + ", ".join(summary.class_names[:8]) + (" …" if len(summary.class_names) > 8 else ""))
    if summary.bad_files:
        lines.append(f"<span style='color:#b04a4a'>{len(summary.bad_files)} unreadable file(s) skipped</span>")
    return "<br>".join(lines)


class DataPanel(QWidget):
    data_changed = Signal(object)  # DataSummary
    notify = Signal(object, str, str)  # Level, text, details
    image_activated = Signal(object)  # Path of a double-clicked file

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tasks = tasks
        self.spec = ""
        self.summary: DataSummary | None = None
        self._pending_spec = ""
        # The person picked this session's data (the menu, Folder…, a dropped or launch folder): a shipped
        # model loaded later must not swap it for its own training data (MainWindow._open_data_of_shipped).
        self.chosen_by_user = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.spec_box = QComboBox()
        self.spec_box.setObjectName("dataSpec")
        self.spec_box.setMinimumContentsLength(12)
        for name, description in engine.builtin_specs().items():
            self.spec_box.addItem(name, name)
            self.spec_box.setItemData(self.spec_box.count() - 1, description, Qt.ItemDataRole.ToolTipRole)
        self.spec_box.activated.connect(lambda i: self._user_opens(self.spec_box.itemData(i)))
        row.addWidget(self.spec_box, 1)
        folder = QPushButton("Folder…")
        folder.setToolTip("Use a folder of images as the data set (folder:DIR)")
        folder.clicked.connect(self._choose_folder)
        row.addWidget(folder)
        lay.addLayout(row)
        self.info = QLabel("Choose a data set, or drop a folder of images on the window.")
        self.info.setObjectName("hint")
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.info)
        self.model = ThumbnailModel(self)
        self.view = QListView()
        self.view.setObjectName("thumbnails")
        self.view.setModel(self.model)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setIconSize(QSize(THUMB, THUMB))
        self.view.setGridSize(QSize(THUMB + 14, THUMB + 22))
        self.view.setUniformItemSizes(True)  # lets the view lay out 10,000 items without asking each
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(200)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.view.doubleClicked.connect(self._activated)
        lay.addWidget(self.view, 1)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of images")
        if folder:
            self._user_opens(f"{FOLDER_PREFIX}{folder}")

    def _user_opens(self, spec: str | None) -> None:
        self.chosen_by_user = True
        self.open_spec(spec)

    @property
    def requested_spec(self) -> str:
        """The data last asked for (opening or open), "" before any."""
        return self._pending_spec

    def open_folder(self, folder: Path) -> None:
        """A folder the person opened (dropped, or given at launch)."""
        self._user_opens(f"{FOLDER_PREFIX}{folder}")

    def open_spec(self, spec: str | None) -> None:
        if not spec:
            return
        self._pending_spec = spec
        idx = self.spec_box.findData(spec)
        if idx < 0:
            label = f"folder: {Path(spec[len(FOLDER_PREFIX):]).name}" if spec.startswith(FOLDER_PREFIX) else spec
            self.spec_box.addItem(label, spec)
            idx = self.spec_box.count() - 1
        self.spec_box.setCurrentIndex(idx)
        self.info.setText(f"Loading {spec}…")
        self._tasks.submit(summarize, spec, on_result=self._loaded,
                           on_error=lambda exc, details, s=spec: self._failed(s, exc, details))

    def _loaded(self, summary: DataSummary) -> None:
        if summary.spec != self._pending_spec:
            return  # the user picked something else meanwhile
        self.spec, self.summary = summary.spec, summary
        self.info.setText(describe(summary))
        if summary.files:
            self.model.set_items(list(summary.files))
        else:
            self.model.set_items(list(summary.samples))
        if summary.bad_files:
            path, reason = summary.bad_files[0]
            more = f" and {len(summary.bad_files) - 1} more" if len(summary.bad_files) > 1 else ""
            self.notify.emit(Level.WARNING, f"Skipped unreadable {Path(path).name}{more}: {reason}",
                             "\n".join(f"{p}: {r}" for p, r in summary.bad_files))
        self.data_changed.emit(summary)

    def _failed(self, spec: str, exc: BaseException, details: str) -> None:
        if spec != self._pending_spec:
            return
        self.info.setText(f"<span style='color:#b04a4a'>Could not open {spec}</span>")
        self.notify.emit(Level.ERROR, f"Could not open data {spec}: {exc}", details)

    def _activated(self, index: QModelIndex) -> None:
        item = self.model.item(index.row())
        if isinstance(item, Path):
            self.image_activated.emit(item)
