"""Which ONNX Runtime session a job runs on: a training run in this process gets the cores.

DESIGN.md "Inference": sliders and previews use the interactive profile (one
thread); a whole large image or a folder, while nothing trains, uses the same
model's "batch" profile (every core). Training front ends count their live runs
here (:func:`count_run`), so the check is one integer read (it runs on every
slider move), not a scan of the process's threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar

P = TypeVar("P", bound=Any)  # a predictor (OrtPredictor, or a test double with the same methods)

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


Profile = Literal["interactive", "batch"]  # aestudio.inference.ort.SessionProfile values (no ORT import here)


def profile_for(*, heavy: bool) -> Profile:
    """The one choice of session profile, for every front end.

    ``heavy`` work (a whole image that will be tiled, a folder, a drop in the Segment panel)
    gets every core ("batch") unless a training run goes on in this process; everything
    else (sliders, previews, small images) keeps one thread ("interactive").
    """
    return "batch" if heavy and not training_active() else "interactive"


_batch_runtime: Callable[[Any], Any] | None = None  # a front end's choice for batch work (see set_batch_runtime)


def set_batch_runtime(choose: Callable[[Any], Any] | None) -> None:
    """Let a front end pick the runtime of batch work: ``choose(batch_predictor)`` returns it or a twin
    (the app: the bundle's bfloat16 twin, ``aestudio.export.bf16_runtime``, which imports torch, so the
    choice is injected here rather than imported). None: the ONNX Runtime batch predictor as it is."""
    global _batch_runtime
    _batch_runtime = choose


def for_work(predictor: P, *, heavy: bool) -> P:
    """``predictor`` or its twin on the profile :func:`profile_for` picks (same model, own sessions);
    batch work goes through the front end's runtime choice (:func:`set_batch_runtime`)."""
    if profile_for(heavy=heavy) == "batch" and hasattr(predictor, "with_profile"):
        batch = predictor.with_profile("batch")
        choose = _batch_runtime
        return choose(batch) if choose is not None else batch
    return predictor


def whole_image_predictor(predictor: P, image_shape: tuple[int, ...]) -> P:
    """The predictor to run one image with: every core for one that will be tiled, while nothing trains."""
    tiling = getattr(predictor, "tiling", None)
    return for_work(predictor, heavy=tiling is not None and max(image_shape[:2]) > tiling.tile)
