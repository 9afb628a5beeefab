"""Drop-to-mask: a 1024 x 1024 RGB photo dropped on the Segment panel until its mask is on screen.

This module is also its own probe: ``python -m bench.benchmarks.drop_to_mask BUNDLE
--size 1024 --drops 5`` opens the real Segment panel offscreen, loads the bundle as
the window would (``aestudio.gui.engine.load_model``: the *interactive* ONNX Runtime
profile), and prints one JSON line.
"""

from __future__ import annotations

import logging
import os
import sys

from bench.fixtures import bundle_for, speed_run_kwargs
from bench.harness import Context, Row, SkipBenchmark, Status, run_probe

log = logging.getLogger(__name__)

ORDER = 45
TITLE = "Segment panel: drop-to-mask for a 1024 x 1024 photo"
SIZE = 1024
DROPS = 5
TARGET_S = 1.0
STALL_MAX_MS = 100.0
INTERVAL_MS = 5

ABOUT = f"""
**What.** The time from handing the Segment panel a {SIZE} x {SIZE} RGB PNG
(`SegmentPanel.add_images`, what the window calls on a drop) until the mask is drawn over
it (the panel's `shown` signal): reading the file, `segment` (tiled: the image is larger
than the 512 px tile), the overlay, pixel shares and the QImage. The model is the small
`unet` (depth 3, 16 base channels, 0.48 M parameters, 3 input channels, 4 classes of
shapes-seg; weights from a 2-step run, which do not change speed), loaded as the window
loads models. With no training running (as here) the panel segments drops with its own
all-cores ONNX Runtime session ("batch" profile) of the bundle, and sizes the tiles so a
large image needs as few as possible (1024 px: 2 x 2 tiles of 544 px instead of 3 x 3 of
512); while a run trains it uses the window's one-thread interactive session.

**How.** `bench/benchmarks/drop_to_mask.py` runs itself as a probe in a subprocess with
`QT_QPA_PLATFORM=offscreen`: the panel in a shown widget, a first (cold) drop, then
{DROPS} drops of different files (no cached probabilities), each awaited in the Qt event
loop. Meanwhile a {INTERVAL_MS} ms `Qt.PreciseTimer` (`aestudio.gui.stallmeter.StallMeter`)
records how late the GUI thread serves it.

**Target (issue 5, 2 cores).** Median warm drop-to-mask under {TARGET_S:g} s, and the GUI
responsive meanwhile: no timer tick later than {STALL_MAX_MS:g} ms.
"""

FINDINGS = """
- Idle machine (load average below 1.5), 2026-11-22, three runs of the median of 5 warm drops:
  1.05 s (FAIL; run straight after `tiled`, which had just allocated ~1.5 GiB), 0.69 s and 0.57 s
  (pass). The model here is a default-width U-Net trained 2 steps (speed does not depend on the
  weights): 4 tiles of 544 px at ~120 ms each on 2 threads; the shipped base-8 U-Net takes ~65 ms
  a tile. Run-to-run spread on this machine is wider than the margin to the target.
- Earlier, measured only on a shared machine (other engineers' training runs and tests): at a 1-minute load
  average of ~7 on 2 cores, 1.5-1.8 s per warm drop of a 1024^2 photo (median 1.70 s, FAIL), for
  1.00 s of CPU per drop for the whole process (both ONNX Runtime threads, reading, overlay). On an
  idle 2-core machine that is roughly 0.5-0.6 s of wall time, inside the 1 s target, but that has
  not been measured here: re-run on an idle machine before quoting it. At load ~15 the same drop
  took 5-10 s.
- Tiling was the big lever: the predictor's default 512 px tiles with 64 px overlap cut a
  1024^2 image into 3 x 3 tiles (2.25x its pixels); 544 px tiles need 2 x 2 (1.13x). Thread CPU
  time of one interactive-profile `segment` call: 1.8-2.0 s (3 x 3) -> 0.95-1.05 s (2 x 2) ->
  0.85-0.9 s untiled. The panel asks for the fewer-tiles layout on a copy of the predictor and
  uses an all-cores session when no training runs. Composing the overlay went from 90 to 27 ms
  (uint16 blend) and the argmax mask is kept from inference (it cost 30 ms per slider move).
- GUI timer at load ~7: p50 0.1 ms, p99 4-21 ms, max 20-37 ms during the drops (pass). At load ~15
  the maximum reached 90-230 ms: the GUI thread waits for a core, not for the panel (painting the
  1024^2 result costs ~1 ms; inference and composition run off the GUI thread).
"""


def run(ctx: Context) -> list[Row]:
    try:
        import PySide6  # noqa: F401

        import aestudio.gui.panels.segment  # noqa: F401
    except ImportError as exc:
        raise SkipBenchmark(f"the GUI cannot be imported here: {exc}") from exc
    # Same key and settings as bench tiled's U-Net: one training run serves both.
    bundle = bundle_for(ctx, "tiled-unet-rgb", "unet", net_overrides={"in_channels": 3}, channels=3,
                        image_size=ctx.pick(64, 32), **speed_run_kwargs(ctx, "unet"))
    size = ctx.pick(SIZE, 256)
    drops = ctx.pick(DROPS, 2)
    res = run_probe("bench.benchmarks.drop_to_mask", [str(bundle), "--size", str(size), "--drops", str(drops)],
                    env={"QT_QPA_PLATFORM": "offscreen"}, timeout=600)
    log.info("drop_to_mask: %s", res)
    warm = res["warm_s"]
    stall = res["stall_warm"]
    rows = [
        Row(f"first drop (cold session), {size}x{size}",
            {"seconds": round(res["cold_s"], 3), "timer max late ms": round(res["stall_cold"]["max_ms"], 1),
             "timer p99 late ms": round(res["stall_cold"]["p99_ms"], 1)},
            target="reported", status=Status.INFO,
            note="includes ONNX Runtime's first-run allocations for the tile shape"),
        Row(f"drop-to-mask, {size}x{size}, median of {len(warm)}",
            {"seconds": round(res["warm_median_s"], 3), "min s": round(min(warm), 3), "max s": round(max(warm), 3),
             "read + segment s": round(res["inference_median_s"], 3), "CPU s": round(res["cpu_median_s"], 3),
             "predictor": res["predictor"]},
            target=f"< {TARGET_S:g} s", status=Row.verdict(res["warm_median_s"] < TARGET_S)),
        Row(f"GUI timer lateness during the {len(warm)} drops",
            {"ticks": stall["ticks"], "p50 ms": round(stall["p50_ms"], 1), "p99 ms": round(stall["p99_ms"], 1),
             "max ms": round(stall["max_ms"], 1)},
            target=f"max < {STALL_MAX_MS:g} ms", status=Row.verdict(stall["max_ms"] < STALL_MAX_MS)),
    ]
    ctx.note(
        f"Machine load while measuring: 1-minute load average {res['load_before']:.1f} before and "
        f"{res['load_after']:.1f} after, on {res['cores']} cores. *CPU s* is the process's CPU time per "
        "drop (all threads), which does not grow with other processes' load: on an idle machine the "
        f"drop takes about CPU s / {min(2, res['cores'] or 1)} (both cores busy) plus reading the file."
    )
    return rows


# ---------------------------------------------------------------- the probe (subprocess)


def _photo(path, size: int, seed: int) -> None:
    """A photo-like RGB PNG: smooth shading, a few soft blobs, grain (content does not change speed)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.stack([0.3 + 0.4 * xx, 0.35 + 0.3 * yy, 0.5 - 0.2 * xx * yy], axis=2)
    for _ in range(6):
        cy, cx, r = rng.random(3) * [1, 1, 0.15] + [0, 0, 0.05]
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
        img = img * (1 - blob) + rng.random(3) * blob
    img += rng.normal(0, 0.03, img.shape)
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path)


def _probe(argv: list[str]) -> None:
    import argparse
    import json
    import statistics
    import tempfile
    import time
    from pathlib import Path

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--size", type=int, default=SIZE)
    ap.add_argument("--drops", type=int, default=DROPS)
    args = ap.parse_args(argv)

    from PySide6.QtCore import QEventLoop, QTimer

    from aestudio.gui import engine
    from aestudio.gui.app import application
    from aestudio.gui.panels.segment import SegmentPanel
    from aestudio.gui.stallmeter import StallMeter
    from aestudio.gui.workers import TaskRunner

    app = application()
    tmp = Path(tempfile.mkdtemp(prefix="aestudio-drop-bench-"))
    files = [tmp / f"photo{i}.png" for i in range(args.drops + 1)]
    for i, f in enumerate(files):
        _photo(f, args.size, i)
    model = engine.load_model(args.bundle)
    tasks = TaskRunner()
    panel = SegmentPanel(tasks)
    panel.resize(1280, 800)
    panel.show()
    panel.set_model(model)
    app.processEvents()
    errors: list[str] = []
    panel.notify.connect(lambda level, text, details: errors.append(text))

    def drop(path: Path) -> tuple[float, list[float]]:
        loop = QEventLoop()
        panel.shown.connect(loop.quit)
        guard = QTimer()
        guard.setSingleShot(True)
        guard.timeout.connect(loop.quit)
        guard.start(120_000)
        meter = StallMeter(INTERVAL_MS)
        meter.start()
        c0, t0 = time.process_time(), time.perf_counter()
        panel.add_images([path])
        loop.exec()
        seconds = time.perf_counter() - t0
        cpu.append(time.process_time() - c0)
        meter.stop()
        panel.shown.disconnect(loop.quit)
        if panel.mask is None or panel.mask.shape != (args.size, args.size) or panel.current.path != path:
            raise RuntimeError(f"no mask for {path.name} after {seconds:.1f} s: {errors[-1:] or 'timeout'}")
        return seconds, list(meter.late_ms)

    def stats(late: list[float]) -> dict[str, float]:
        import numpy as np

        a = np.asarray(late or [0.0])
        return {"ticks": len(late), "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
                "max_ms": float(a.max())}

    cpu: list[float] = []  # CPU seconds of the whole process per drop (all threads): the work, whatever the load
    load_before = os.getloadavg()[0]
    cold_s, cold_late = drop(files[0])
    warm, late, infer = [], [], []
    for f in files[1:]:
        s, lt = drop(f)
        warm.append(s)
        late += lt
        entry = panel._cache[panel.current.key]
        infer.append(entry.seconds)
    panel.shutdown()
    tasks.shutdown()
    print(json.dumps({"cold_s": cold_s, "warm_s": warm, "warm_median_s": statistics.median(warm),
                      "inference_median_s": statistics.median(infer), "predictor": entry.how,
                      "cpu_median_s": statistics.median(cpu[1:]), "cores": os.cpu_count(),
                      "load_before": load_before, "load_after": os.getloadavg()[0],
                      "stall_cold": stats(cold_late), "stall_warm": stats(late), "provider": model.runtime}))


if __name__ == "__main__":
    _probe(sys.argv[1:])
