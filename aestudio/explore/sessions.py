"""Which ONNX Runtime session a job runs on: a training run in this process gets the cores.

DESIGN.md "Inference": sliders and previews use the interactive profile (one
thread); a whole large image or a folder, while nothing trains, uses the same
model's "batch" profile (every core). Training front ends count their live runs
here (:func:`count_run`), so the check is one integer read (it runs on every
slider move), not a scan of the process's threads.
"""

from __future__ import annotations

import threading
from typing import Any

_live_runs = 0  # training generators running in this process (the GUI's TrainWorkers)
_live_lock = threading.Lock()


def training_active() -> bool:
    """True while a training run goes on in this process."""
    return _live_runs > 0


def count_run(delta: int) -> None:
    """+1 when a training run starts in this process, -1 when it ends."""
    global _live_runs
    with _live_lock:
        _live_runs += delta


def whole_image_predictor(predictor: Any, image_shape: tuple[int, ...]) -> Any:
    """The predictor to run one large image with: all cores when nothing trains.

    Sliders and small images keep the interactive session (one thread, so a training
    run keeps its cores: DESIGN.md "Inference"); an image that will be tiled, while no
    training runs, goes through the same model's "batch" profile (every core).
    """
    tiling = getattr(predictor, "tiling", None)
    large = tiling is not None and max(image_shape[:2]) > tiling.tile
    if large and hasattr(predictor, "with_profile") and not training_active():
        return predictor.with_profile("batch")
    return predictor
