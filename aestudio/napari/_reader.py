"""napari reader: a dropped aestudio bundle, run folder or BioImage Model Zoo package opens its sample.

Returns the sample image and the model's output on it as two layers. No Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aestudio.napari._logic import model_path_kind, read_model_sample

LayerData = tuple[Any, dict[str, Any], str]


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """npe2 reader contribution: a reader function for paths aestudio knows, else None (napari asks others)."""
    if isinstance(path, list):
        if not path or not all(model_path_kind(p) for p in path):
            return None
    elif model_path_kind(path) is None:
        return None
    return _read


def _read(path: str | list[str]) -> list[LayerData]:
    paths = path if isinstance(path, list) else [path]
    layers: list[LayerData] = []
    for p in paths:
        layers += read_model_sample(p)
    return layers
