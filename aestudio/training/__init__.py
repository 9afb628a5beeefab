"""Training engine: the fit() generator, losses, metrics, run folders.

The public names are loaded on first use (PEP 562) so that importing a light
submodule such as ``aestudio.training.events`` or ``.runs`` does not pull in
the whole engine.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "fit": "aestudio.training.loop",
    "StartState": "aestudio.training.loop",
    "train": "aestudio.training.runner",
    "resume": "aestudio.training.runner",
    "evaluate": "aestudio.training.metrics",
    "RunError": "aestudio.training.runs",
    "RunFolder": "aestudio.training.runs",
    "RunInfo": "aestudio.training.runs",
    "RunStatus": "aestudio.training.runs",
    "read_run": "aestudio.training.runs",
    "is_run_dir": "aestudio.training.runs",
    "load_net": "aestudio.training.runs",
    "history": "aestudio.training.runs",
    "load_legacy_pt": "aestudio.training.checkpoint",
    "resolve_device": "aestudio.training.device",
    "DeviceError": "aestudio.training.device",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aestudio.training' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
