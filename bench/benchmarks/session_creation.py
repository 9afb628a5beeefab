"""How long opening a bundle takes: ONNX Runtime session creation per bundle and profile."""

from __future__ import annotations

import logging
import statistics
import time

from bench.fixtures import bundle_for, speed_run_kwargs
from bench.harness import Context, Row, SkipBenchmark, Status, fmt_ms
from bench.sessions import Profile, predictor, raw_session

log = logging.getLogger(__name__)

ORDER = 30
TITLE = "ONNX Runtime session creation"
TARGET_S = 1.0  # opening a model from the GUI should feel immediate; a second is the limit of "immediate"

ABOUT = f"""
**What.** Time to open each registered net's bundle: `OrtPredictor(bundle, profile=...)`
(reads `model.json` and creates the sessions it creates up front) for both profiles, and a
bare `onnxruntime.InferenceSession` on `model.onnx` alone. Median of several openings after
one warm-up (the first opening also pays for loading the ONNX Runtime library).

**Target.** Opening a bundle with the interactive profile takes under {TARGET_S:g} s (it happens
on a worker thread in the GUI, but the user waits for it).
"""


def _median_time(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up: first-use costs (library load, file cache) are not per-bundle costs
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(ctx: Context) -> list[Row]:
    from aestudio.nets import list_nets

    repeats = ctx.pick(7, 2)
    rows: list[Row] = []
    if not list_nets():
        raise SkipBenchmark("no nets are registered yet (aestudio.nets imports no family)")
    for name in list_nets():
        try:
            bundle = bundle_for(ctx, f"speed-{name}", name, **speed_run_kwargs(ctx, name))
        except Exception as exc:  # noqa: BLE001
            rows.append(Row(name, status=Status.ERROR, note=f"{type(exc).__name__}: {exc}"[:200]))
            continue
        size_kib = sum(p.stat().st_size for p in bundle.glob("*.onnx")) / 1024
        bare = _median_time(lambda b=bundle: raw_session(b / "model.onnx", Profile.BATCH), repeats)
        inter = _median_time(lambda b=bundle: predictor(b, Profile.INTERACTIVE), repeats)
        batch = _median_time(lambda b=bundle: predictor(b, Profile.BATCH), repeats)
        rows.append(Row(
            name,
            {
                "onnx files KiB": round(size_kib),
                "InferenceSession ms": fmt_ms(bare),
                "OrtPredictor interactive ms": fmt_ms(inter),
                "OrtPredictor batch ms": fmt_ms(batch),
            },
            target=f"interactive < {TARGET_S * 1e3:g} ms",
            status=Row.verdict(inter < TARGET_S),
        ))
    return rows
