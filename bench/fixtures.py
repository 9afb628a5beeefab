"""Runs and bundles the benchmarks share, made through the project's public API.

Speed and memory do not depend on the weights, so the speed benchmarks use runs
trained for a handful of steps; the quality benchmark (digits_pca) trains for
real. Everything is cached in the :class:`~bench.harness.Context` so that, for
example, ``session_creation`` reuses the bundles ``ort_vs_torch`` exported.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.harness import Context

log = logging.getLogger(__name__)

# The data each kind of net can be trained on for a few steps: segmentation nets need
# masks, everything else takes plain images.
_SEGMENT_DATA = "shapes-seg"
_IMAGE_DATA = "shapes"


def train_run(
    ctx: Context,
    key: str,
    net_name: str,
    *,
    data_spec: str | None = None,
    net_overrides: dict[str, Any] | None = None,
    train_overrides: dict[str, Any] | None = None,
    image_size: int | None = None,
    channels: int | None = None,
) -> Path:
    """Train ``net_name`` with :func:`aestudio.training.train` into ``work_dir/runs/key``.

    Raises RuntimeError when the run does not finish with reason ``done``.
    """
    cache_key = f"run:{key}"
    if cache_key in ctx.cache:
        return ctx.cache[cache_key]
    from aestudio.config import FinishReason, TrainConfig
    from aestudio.nets import default_config, get_spec
    from aestudio.training import train
    from aestudio.training.events import EpochEnded, TrainFinished

    spec = get_spec(net_name)
    if data_spec is None:
        data_spec = _SEGMENT_DATA if spec.task.value == "segment" else _IMAGE_DATA
    net_cfg = default_config(net_name, **(net_overrides or {}))
    cfg = TrainConfig(device="cpu", num_workers=0)
    cfg = replace(cfg, **(train_overrides or {}))
    run_dir = ctx.work_dir / "runs" / key
    log.info("training %s on %s -> %s", net_name, data_spec, run_dir)
    finished: TrainFinished | None = None
    history: list[EpochEnded] = []
    # The data decides the net's channels; ``channels`` asks the loader to convert.
    events = train(net_name, net_cfg, data_spec, cfg, run_dir, image_size=image_size, channels=channels)
    for event in events:
        if isinstance(event, EpochEnded):
            history.append(event)
            log.info("  %s epoch %d: loss %.5f %s", key, event.epoch, event.train_loss,
                     {k: round(v, 5) for k, v in event.metrics.items()})
        elif isinstance(event, TrainFinished):
            finished = event
    if finished is None or finished.reason != FinishReason.DONE:
        why = "no TrainFinished event" if finished is None else f"{finished.reason.value}: {finished.message}"
        raise RuntimeError(f"training {net_name} for the benchmark did not finish ({why})")
    ctx.cache[cache_key] = run_dir
    ctx.cache[f"history:{key}"] = history
    return run_dir


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch threads (None: leave as is), restoring the count after."""
    import torch

    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def bundle_for(ctx: Context, key: str, net_name: str, **train_kwargs: Any) -> Path:
    """A bundle exported with :func:`aestudio.export.exporter.export_run` from a cached run."""
    cache_key = f"bundle:{key}"
    if cache_key in ctx.cache:
        return ctx.cache[cache_key]
    from aestudio.export.exporter import export_run

    run_dir = train_run(ctx, key, net_name, **train_kwargs)
    out = Path(export_run(run_dir, ctx.work_dir / "bundles" / key))
    ctx.cache[cache_key] = out
    return out


def speed_run_kwargs(ctx: Context, net_name: str) -> dict[str, Any]:
    """A few optimizer steps: enough for a valid run folder, weights irrelevant to speed."""
    return {"train_overrides": {"epochs": 1, "max_steps": 2, "batch_size": 8}}
