"""Launch to the first visible window, cold and warm (issue 16: a usable window within 1.5 s)."""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import Context, Row, SkipBenchmark, run_probe

log = logging.getLogger(__name__)

ORDER = 5
TITLE = "Launch to the first window"
TARGET_S = 1.5
WARM_LAUNCHES = 3

ABOUT = f"""
**What.** Seconds from starting the process to the main window's first paint (on screen),
to the event loop being free after it (usable), and to the background loads that follow:
the Train panel's families and devices (torch) and the data panel's data set.

**How.** `bench/probes/launch.py` in a new process each time (`QT_QPA_PLATFORM=offscreen`),
started the way `aestudio` starts the app; the clock starts in the parent just before the
child is launched, so interpreter start-up and every import count. Three cases, in order:

- *Cold, empty bytecode cache* (the bench's first definition, kept): a first launch with
  `PYTHONPYCACHEPREFIX` set to a new folder, so every module is compiled, the standard
  library and every dependency included, and no settings (the first-run path, which also
  loads the shipped default model in the background). No user meets this: Python's
  installers compile the standard library and pip compiles what it installs.
- *First launch after `pip install -e .`* (the README's install): the same cache with this
  checkout's own modules removed from it, so the dependencies and the standard library have
  their bytecode (as pip and the Python installer leave them) and aestudio's own modules
  are compiled at this launch; the settings the first launch saved are kept (the window
  reopens where it was left).
- *Warm*: {WARM_LAUNCHES} more launches with the full cache and those settings; the
  median is shown.

The operating system's file cache is not dropped (that needs root and would slow every other
job on the machine), so *cold* here means a cold Python, not a cold disk.

*Longest stall* is the longest the event loop was busy at once from the first paint until
the background loads are done and the tabs not shown are built (the GIL held by the
background imports of torch, ONNX Runtime and the data set; building a tab): the worst
delay a click met in that time. *All tabs built*: the tabs not shown at start-up (and the
Train tab's plots), built after the paint once the background loads are done.

*CPU s at paint* is the process's CPU time by the first paint: start-up runs on one thread,
so on a machine shared with other jobs it is close to the wall time an idle machine would
show, while the wall time stretches with the load.

**Target (issue 16).** A usable window within {TARGET_S:g} s, cold and warm; torch must not
be imported before the window shows (`loaded at paint` lists the heavy modules that were).
"""

FINDINGS = """
- Before issue 16's start-up work the window built itself after importing torch (the data menu,
  the Train panel's families and devices, the Models panel's run list all loaded it in the GUI
  thread): side by side on the shared 2-core machine (load 4-6), launch to first paint was
  7.2-12.8 s warm with 4.0-4.8 CPU s (torch, torchvision, onnxruntime loaded at paint) against
  2.4-3.5 s warm with 1.1-1.4 CPU s after it (nothing heavy loaded at paint); cold 17.2 s vs 4.2 s.
- That build still made every tab before the first paint, each with its imports (pyqtgraph 0.6
  CPU s with an empty bytecode cache, superqt 0.4 s with qtpy and all its widgets, tifffile 0.2 s,
  and aestudio's own panels): on an idle machine, cold 2.17-2.28 s (2.2 CPU s), warm 1.10-1.14 s.
  Now only the tab shown at start-up is built before the paint (the Train tab on a first launch:
  its plots and the other tabs follow once the background loads are done), tifffile is imported
  when a TIFF is read, and the Train tab's "Advanced" section no longer imports superqt. The
  same probe on that old build and this one, one after the other (load 0.3-1): cold 2.17 s /
  2.22 CPU s -> 0.82-0.86 s / 0.87-0.91 CPU s; warm 1.10-1.11 s -> 0.77-0.82 s.
- The table above is the first of three full runs (load 1.9 rising to 5, then 5.0 and 5.6 at
  the start of the next two): usable at 0.99 / 1.15 / 1.33 s cold (0.98 / 1.07 / 1.21 CPU s),
  0.92 / 1.08 / 1.09 s on the first launch after install, 0.86 / 0.85 / 0.88 s warm; every run
  passes. What remains before the paint is PySide6 and shiboken (0.15-0.25 CPU s), numpy
  (0.1 s, 0.3 s uncompiled), Python itself, and the shown tab; a warm launch that reopens the
  Latent tab (as here: the first run switches to the default model's tab) loads pyqtgraph and
  superqt before its paint.
- The longest stall after the paint (0.55-0.67 s, up to 1.3-1.7 s at load 5) is mostly the GIL
  held by the background import of torch (C-extension loading holds it): the old build stalled
  0.56-0.59 s the same way. Building the hidden tabs right after the paint, while those imports
  ran, had made it 1.3 s warm and 4.3 s cold (a panel's import waited on a module lock the
  torch import held); they now wait until no background job is pending.
- "Cold" with an empty bytecode cache compiles the standard library and every dependency, which
  no user meets (Python's installers and pip compile them); the README's `pip install -e .`
  leaves only aestudio's modules to compile at the first launch: that row costs 0.05-0.1 CPU s
  more than warm.
"""


def _launch(env: dict[str, str]) -> dict:
    t0 = time.time()
    return run_probe("bench.probes.launch", ["--t0", repr(t0)], env=env, timeout=300)


def run(ctx: Context) -> list[Row]:
    try:
        import PySide6  # noqa: F401
    except ImportError as exc:
        raise SkipBenchmark(f"the GUI cannot be imported here: {exc}") from exc
    home = Path(tempfile.mkdtemp(prefix="aestudio-launch-", dir=ctx.work_dir))
    env = {
        "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
        "PYTHONPYCACHEPREFIX": str(home / "pycache"),  # empty: the first launch compiles everything
        "PYTHONDONTWRITEBYTECODE": "",  # (set on some machines) or warm launches would compile again too
        "XDG_CONFIG_HOME": str(home / "config"),  # no settings: the first-run path
        "AESTUDIO_HOME": str(home / "workspace"),
        "AESTUDIO_FIRST_RUN": "1",  # a scripted home, but the real first-run behaviour
    }
    cold = _launch(env)
    log.info("launch cold: %s", cold)
    # As after `pip install -e .`: every dependency compiled, this checkout's modules not yet.
    ours = Path(env["PYTHONPYCACHEPREFIX"] + str(Path(__file__).resolve().parents[2]))
    shutil.rmtree(ours, ignore_errors=True)
    installed = _launch(env)
    log.info("launch after install: %s", installed)
    warm = [_launch(env) for _ in range(ctx.pick(WARM_LAUNCHES, 1))]
    log.info("launch warm: %s", warm)
    rows = []
    for case, results in (("cold (first launch, empty bytecode cache: every module compiled)", [cold]),
                          ("first launch after pip install -e . (aestudio's modules compiled)", [installed]),
                          (f"warm (median of {len(warm)})", warm)):
        def med(key: str, results: list[dict] = results) -> float | str:
            values = [r[key] for r in results if key in r]
            return round(statistics.median(values), 2) if values else "-"

        usable = med("usable_s")
        heavy = sorted({m for r in results for m in r.get("loaded_at_paint", [])})
        ok = isinstance(usable, float) and usable <= TARGET_S and not {"torch", "torchvision"} & set(heavy)
        rows.append(Row(case, {
            "first paint s": med("first_paint_s"),
            "CPU s at paint": med("cpu_at_paint_s"),
            "usable s": usable,
            "longest stall after the paint s": med("stall_after_paint_s"),
            "families + devices s": med("core_ready_s"),
            "data set s": med("data_ready_s"),
            "all tabs built s": med("all_built_s"),
            "loaded at paint": ", ".join(heavy) or "none",
        }, target=f"usable <= {TARGET_S:g} s, no torch before the paint", status=Row.verdict(ok)))
    return rows
