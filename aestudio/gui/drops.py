"""Classify dropped or command-line paths: images, folders, runs, bundles, unsupported.

Pure path logic with no Qt, so the window, ``aestudio PATH...`` and the tests all
share one answer to "what is this?". Run and bundle folders are recognised before
plain folders, so dropping a run loads a model rather than a dataset.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aestudio.gui import engine


class DropKind(str, enum.Enum):
    IMAGE = "image"  # goes to the active panel
    FOLDER = "folder"  # becomes the dataset folder:DIR
    RUN = "run"  # loads as the active model (exported first if needed)
    BUNDLE = "bundle"  # loads as the active model
    ONNX = "onnx"  # a foreign single-input ONNX image model
    PACKAGE = "package"  # a BioImage Model Zoo package (.zip with rdf.yaml): loads as the active model
    UNSUPPORTED = "unsupported"  # a file type we cannot use
    MISSING = "missing"  # does not exist (stale recent item, typo on the command line)


@dataclass(frozen=True)
class DropItem:
    path: Path
    kind: DropKind

    @property
    def reason(self) -> str:
        """For unusable items: a message naming the file and what would work."""
        if self.kind is DropKind.MISSING:
            return f"{self.path} does not exist"
        if self.kind is DropKind.UNSUPPORTED:
            suffixes = ", ".join(sorted(engine.image_suffixes()))
            return (f"{self.path.name}: not an image, folder, run or model bundle "
                    f"(images: {suffixes}; models: a bundle folder, a run folder, a .onnx file "
                    "or a BioImage Model Zoo package .zip)")
        return ""


def classify(path: Path) -> DropItem:
    path = Path(path)
    if not path.exists():
        return DropItem(path, DropKind.MISSING)
    if path.is_dir():
        if engine.is_bundle(path):
            return DropItem(path, DropKind.BUNDLE)
        if engine.is_run_dir(path):
            return DropItem(path, DropKind.RUN)
        return DropItem(path, DropKind.FOLDER)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return DropItem(path, DropKind.ONNX)
    if suffix == ".zip" and engine.is_package(path):
        return DropItem(path, DropKind.PACKAGE)
    if path.name == "model.json" and engine.is_bundle(path.parent):
        return DropItem(path.parent, DropKind.BUNDLE)
    if path.name == "run.json" and engine.is_run_dir(path.parent):
        return DropItem(path.parent, DropKind.RUN)
    if suffix in engine.image_suffixes():
        return DropItem(path, DropKind.IMAGE)
    return DropItem(path, DropKind.UNSUPPORTED)


def classify_all(paths: Iterable[Path]) -> dict[DropKind, list[DropItem]]:
    """Group items by kind, keeping the user's order inside each group."""
    groups: dict[DropKind, list[DropItem]] = {kind: [] for kind in DropKind}
    for p in paths:
        item = classify(Path(p))
        groups[item.kind].append(item)
    return groups
