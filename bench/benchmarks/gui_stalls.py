"""Event-loop stalls of the desktop app while it trains (issue 4), measured in a subprocess."""

from __future__ import annotations

import logging

from bench.harness import Context, Row, SkipBenchmark, Status, run_probe

log = logging.getLogger(__name__)

ORDER = 50
TITLE = "GUI event-loop stalls while training"
P99_MS = 50.0
MAX_MS = 100.0
SCENARIOS = (  # (data spec, seconds of steady training): the one-click default, and larger images
    ("digits", 20.0),
    ("shapes", 20.0),
)

ABOUT = f"""
**What.** How late a 5 ms `QTimer` (`Qt.PreciseTimer`) fires in the real main window while
it trains: lateness = actual interval - 5 ms, as p50 / p99 / max.

**How.** `bench/probes/gui_stalls.py` runs in its own process with
`QT_QPA_PLATFORM=offscreen`: it opens the window with `aestudio.gui.app.create_window`,
chooses the data (its preset picks the family and settings, as a user's one click would),
presses the Train panel's Start button, so training runs through the GUI's own
`TrainWorker` with live curves, progress and previews, lets it train for a fixed time, then
presses Stop and waits until the run is exported and loaded as the active model. Ticks are
split into phases: *idle* (window open, nothing running: the timer's own noise), *start*
(click to the first step shown), *training* (steady state), *finish* (Stop to the bundle
loaded).

**Target (issue 4, 2 cores).** p99 < {P99_MS:g} ms and none over {MAX_MS:g} ms, for every phase
from the click on (the idle phase is reported for reference).
"""


FINDINGS = """
- While training, the window stays smooth (p99 15-17 ms, max 22-30 ms, none over 50 ms), and
  training keeps ~510 images/s with live curves and previews.
- The finish phase (the run is exported to a bundle and loaded) used to miss: 4-6 stalls of
  130-300 ms while the exporter (`torch.onnx` dynamo + onnxscript) ran in the GUI's process; its
  allocation burst set off full garbage collections of ~500,000 objects (190-250 ms each) that
  stopped every thread, the GUI's included (found with `--diagnose`, which samples every thread's
  stack during stalls). Fix: `aestudio.gui.engine.export_run` now runs `aestudio export` in a
  child process and the worker thread only waits on it; the finish phase is now max 23-41 ms.
"""


def run(ctx: Context) -> list[Row]:
    try:
        import PySide6  # noqa: F401

        import aestudio.gui.app  # noqa: F401
    except ImportError as exc:
        raise SkipBenchmark(f"the GUI cannot be imported here: {exc}") from exc
    scenarios = SCENARIOS[:1] if ctx.quick else SCENARIOS
    rows: list[Row] = []
    for data, seconds in scenarios:
        secs = ctx.pick(seconds, 3.0)
        try:
            res = run_probe(
                "bench.probes.gui_stalls",
                ["--data", data, "--seconds", str(secs)],
                env={"QT_QPA_PLATFORM": "offscreen"},
                timeout=600,
            )
        except Exception as exc:  # noqa: BLE001 - a crashed GUI is a result, reported as a row
            rows.append(Row(f"{data}", status=Status.ERROR, note=str(exc).splitlines()[0][:200]))
            log.error("%s", exc)
            continue
        log.info("gui_stalls %s: %s", data, res)
        label = f"{data} ({res['net']})"
        for phase, stats in res["phases"].items():
            if not stats.get("ticks"):
                rows.append(Row(f"{label}: {phase}", status=Status.FAIL if phase == "training" else Status.INFO,
                                note="no ticks in this phase"))
                continue
            judged = phase != "idle"
            ok = stats["p99_ms"] < P99_MS and stats["max_ms"] <= MAX_MS
            rows.append(Row(
                f"{label}: {phase}",
                {
                    "ticks": stats["ticks"],
                    "p50 ms": round(stats["p50_ms"], 2),
                    "p99 ms": round(stats["p99_ms"], 1),
                    "max ms": round(stats["max_ms"], 1),
                    "> 100 ms": stats["over_100ms"],
                },
                target=f"p99 < {P99_MS:g}, max <= {MAX_MS:g}" if judged else "",
                status=Row.verdict(ok) if judged else Status.INFO,
            ))
        ctx.note(
            f"`{data}`: {res['steps']} steps, {res['epochs']} epochs in the measured run, "
            f"{res['images_per_s']:.0f} images/s at the end, torch threads {res['torch_threads']}; "
            f"run finished as `{res['finished']}`, bundle loaded: {res['bundle_loaded']}; "
            f"phase marks (s after the click): {res['seconds']}."
        )
    return rows
