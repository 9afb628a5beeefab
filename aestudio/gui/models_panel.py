"""The models side: runs and bundles in the workspace, shipped models, recent items.

Lists what is on disk and offers load, rename, delete (with confirmation),
export and resume. Loading and exporting are requested by signal; the window
does the work on its worker pool, so this widget holds no model and never blocks.
"""

from __future__ import annotations

import enum
import logging
import shutil
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from aestudio.gui import engine
from aestudio.gui.messages import Level
from aestudio.gui.workspace import bundles_dir, runs_dir

logger = logging.getLogger(__name__)

PATH_ROLE = Qt.ItemDataRole.UserRole
KIND_ROLE = Qt.ItemDataRole.UserRole + 1
# The Details column gets its text's width up to this share of the tree; beyond, it elides. A run's
# "4 ep · stopped · ONNX" at its whole width left the names ~130 px in the 330 px side column, so
# even shipped names showed as "photo…oiser".
DETAILS_SHARE = 0.4


class _ModelsTree(QTreeWidget):
    """The tree whose Details column is as wide as its text, but at most DETAILS_SHARE of the view."""

    def fit_columns(self) -> None:
        self.header().resizeSection(1, min(self.sizeHintForColumn(1), int(self.viewport().width() * DETAILS_SHARE)))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self.fit_columns()


class EntryKind(str, enum.Enum):
    RUN = "run"
    BUNDLE = "bundle"


class Group(str, enum.Enum):
    RUNS = "Runs"
    BUNDLES = "Bundles"
    SHIPPED = "Shipped models"
    RECENT = "Recent"


def run_summary(path: Path) -> str:
    try:
        record = engine.read_record(path)  # run.json only: listing runs never loads torch
    except Exception as exc:  # noqa: BLE001 - a half-written run still gets listed
        return f"unreadable: {exc}"
    # Short: the folder name already says family and data; the tooltip has the path.
    parts = [f"{record['epoch']} ep"]
    if record["status"]:
        parts.append(str(record["status"]))
    if engine.is_bundle(engine.run_bundle_dir(path)):
        parts.append("ONNX")
    return " · ".join(parts)


def bundle_summary(path: Path) -> str:
    try:
        info = engine.read_bundle(path)
    except Exception as exc:  # noqa: BLE001
        return f"unreadable: {exc}"
    # The task only: the column is narrow and "denoising_ae · denoise" was cut to "denoisi…denoise";
    # the family is in the tooltip (bundle_tooltip).
    return info.task.value


def bundle_tooltip(path: Path) -> str:
    try:
        info = engine.read_bundle(path)
    except Exception as exc:  # noqa: BLE001
        return f"unreadable: {exc}"
    parts = [info.name or path.name, info.net or "", info.task.value]
    if info.precision != "float32":
        parts.append(f"{info.precision} graph")
    text = " · ".join(p for p in parts if p) + f"\n{path}"
    from aestudio.inference.precision import record_ok

    if info.bfloat16 and record_ok(info) is None:  # the export measured bfloat16 close enough (File menu)
        text += f"\nbfloat16 allowed for whole images and folders: {info.bfloat16['psnr_vs_float32_db']} dB PSNR from float32"
    return text


class ModelsPanel(QWidget):
    load_requested = Signal(object)  # Path of a run or bundle
    export_requested = Signal(object)  # Path of a run or bundle
    resume_requested = Signal(object)  # Path of a run
    notify = Signal(object, str, str)  # Level, text, details

    def __init__(self, workspace: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.recent: list[Path] = []
        self.protected: set[Path] = set()  # the running run and the active model: no delete/rename
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.where = QLabel()
        self.where.setObjectName("hint")
        self.where.setWordWrap(True)
        lay.addWidget(self.where)
        self.tree = _ModelsTree()
        self.tree.setObjectName("models")
        self.tree.setHeaderLabels(["Name", "Details"])
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # Details ("5 ep · running · ONNX", "denoise") show whole up to DETAILS_SHARE of the width;
        # names take the rest and elide in the middle (the full path is their tooltip).
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # run names differ at the end
        self.tree.setUniformRowHeights(True)
        self.tree.itemDoubleClicked.connect(lambda item, _c: self._request(self.load_requested, item))
        self.tree.itemClicked.connect(self._item_clicked)
        self.tree.currentItemChanged.connect(lambda *_: self._update_buttons())
        lay.addWidget(self.tree, 1)
        row = QGridLayout()  # two rows keep the side panel narrow
        self.buttons: dict[str, QPushButton] = {}
        for name, tip, slot in (
            ("Load", "Make it the active model (a run is exported first)", lambda: self._request(self.load_requested)),
            ("Resume", "Continue training this run", lambda: self._request(self.resume_requested)),
            ("Export", "Write an ONNX bundle to a folder", lambda: self._request(self.export_requested)),
            ("Rename", "Rename the folder", self._rename_clicked),
            ("Delete", "Delete the folder (asks first)", self._delete_clicked),
        ):
            b = QPushButton(name)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            row.addWidget(b, len(self.buttons) // 3, len(self.buttons) % 3)
            self.buttons[name] = b
        lay.addLayout(row)
        self.refresh()

    # -------------------------------------------------------------- listing

    def set_workspace(self, workspace: Path) -> None:
        self.workspace = workspace
        self.refresh()

    def set_recent(self, recent: list[Path]) -> None:
        self.recent = list(recent)
        self.refresh()

    def refresh(self) -> None:
        self.where.setText(f"Workspace: {self.workspace}")
        self.tree.clear()
        self._fill(Group.RUNS, self._subdirs(runs_dir(self.workspace)))
        self._fill(Group.BUNDLES, self._subdirs(bundles_dir(self.workspace)))
        self._fill_zoo()
        self._fill(Group.RECENT, [p for p in self.recent if p.exists()])
        self.tree.fit_columns()
        self._update_buttons()

    @staticmethod
    def _subdirs(folder: Path) -> list[Path]:
        if not folder.is_dir():
            return []
        return sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)

    def _fill(self, group: Group, paths: list[Path]) -> None:
        top = QTreeWidgetItem([group.value, f"{len(paths)}" if paths else "none"])
        top.setFlags(top.flags() & ~Qt.ItemFlag.ItemIsSelectable)
        self.tree.addTopLevelItem(top)
        for p in paths:
            if engine.is_run_dir(p):
                kind, details = EntryKind.RUN, run_summary(p)
            elif engine.is_bundle(p):
                kind, details = EntryKind.BUNDLE, bundle_summary(p)
            else:
                continue
            item = QTreeWidgetItem([p.name, details])
            item.setToolTip(0, str(p))
            item.setToolTip(1, bundle_tooltip(p) if kind is EntryKind.BUNDLE else details)
            item.setData(0, PATH_ROLE, str(p))
            item.setData(0, KIND_ROLE, kind.value)
            top.addChild(item)
        top.setExpanded(group is not Group.RECENT or bool(paths))

    def _fill_zoo(self) -> None:
        """The shipped model zoo (models/ or the installed package): one click loads a model."""
        zoo = engine.zoo_models()
        top = QTreeWidgetItem([Group.SHIPPED.value, f"{len(zoo)}" if zoo else "none"])
        top.setFlags(top.flags() & ~Qt.ItemFlag.ItemIsSelectable)
        top.setToolTip(0, "Models that come with aestudio, trained by its own recipes (models/recipes). Click one to load it.")
        self.tree.addTopLevelItem(top)
        for m in zoo:
            item = QTreeWidgetItem([m.name, m.task])  # short: the side panel is narrow
            tip = f"{m.title} ({m.net}, {m.task}): {m.summary}\n{m.path}\nClick to load."
            item.setToolTip(0, tip)
            item.setToolTip(1, tip)
            item.setData(0, PATH_ROLE, str(m.path))
            item.setData(0, KIND_ROLE, EntryKind.BUNDLE.value)
            top.addChild(item)
        top.setExpanded(True)

    def _item_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        parent = item.parent()
        if parent is not None and parent.text(0) == Group.SHIPPED.value:
            self._request(self.load_requested, item)  # shipped models are read-only: one click loads

    def entries(self, group: Group) -> list[Path]:
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top.text(0) == group.value:
                return [Path(top.child(j).data(0, PATH_ROLE)) for j in range(top.childCount())]
        return []

    def select(self, path: Path) -> bool:
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                if Path(top.child(j).data(0, PATH_ROLE)) == path:
                    self.tree.setCurrentItem(top.child(j))
                    return True
        return False

    # -------------------------------------------------------------- actions

    def current(self) -> tuple[Path, EntryKind] | None:
        item = self.tree.currentItem()
        if item is None or item.data(0, PATH_ROLE) is None:
            return None
        return Path(item.data(0, PATH_ROLE)), EntryKind(item.data(0, KIND_ROLE))

    def _update_buttons(self) -> None:
        cur = self.current()
        in_workspace = cur is not None and self.workspace in cur[0].parents
        for name, b in self.buttons.items():
            enabled = cur is not None
            if name == "Resume":
                enabled = enabled and cur[1] is EntryKind.RUN
            if name in ("Rename", "Delete"):
                enabled = enabled and in_workspace and cur[0] not in self.protected
            b.setEnabled(enabled)

    def _request(self, signal: Signal, item: QTreeWidgetItem | None = None) -> None:
        if item is not None:
            self.tree.setCurrentItem(item)
        cur = self.current()
        if cur is not None:
            signal.emit(cur[0])

    def _rename_clicked(self) -> None:
        cur = self.current()
        if cur is None:
            return
        name, ok = QInputDialog.getText(self, "Rename", f"New name for {cur[0].name}:", text=cur[0].name)
        if ok and name.strip() and name.strip() != cur[0].name:
            self.rename(cur[0], name.strip())

    def rename(self, path: Path, new_name: str) -> Path | None:
        if "/" in new_name or "\\" in new_name or new_name in (".", ".."):
            self.notify.emit(Level.WARNING, f"{new_name!r} is not a valid folder name; use letters, digits, - and _.", "")
            return None
        target = path.with_name(new_name)
        if target.exists():
            self.notify.emit(Level.WARNING, f"Cannot rename {path.name}: {target} already exists; pick another name.", "")
            return None
        if path in self.protected:
            self.notify.emit(Level.WARNING, f"{path.name} is in use (training or loaded); stop or unload it first.", "")
            return None
        try:
            path.rename(target)
        except OSError as exc:
            self.notify.emit(Level.ERROR, f"Cannot rename {path}: {exc.strerror or exc}", "")
            return None
        self.refresh()
        self.select(target)
        return target

    def _delete_clicked(self) -> None:
        cur = self.current()
        if cur is None:
            return
        answer = QMessageBox.question(
            self, "Delete", f"Delete {cur[0].name} and everything in it?\n{cur[0]}\n\nThis cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self.delete(cur[0])

    def delete(self, path: Path) -> bool:
        if path in self.protected:
            self.notify.emit(Level.WARNING, f"{path.name} is in use (training or loaded); stop or unload it first.", "")
            return False
        if self.workspace not in path.parents:
            self.notify.emit(Level.WARNING, f"Only folders inside the workspace can be deleted here ({path}).", "")
            return False
        try:
            shutil.rmtree(path)
        except OSError as exc:
            self.notify.emit(Level.ERROR, f"Cannot delete {path}: {exc.strerror or exc}", "")
            return False
        self.notify.emit(Level.INFO, f"Deleted {path.name}.", "")
        self.refresh()
        return True
