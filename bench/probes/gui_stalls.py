"""Probe: event-loop stalls of the real main window while it trains a model.

``python -m bench.probes.gui_stalls --data digits --seconds 20`` opens the app's
window offscreen (``aestudio.gui.app.create_window``), chooses the data, presses the
Train panel's Start button (so training runs through the GUI's own ``TrainWorker``,
curves, previews and all), and measures how late a 5 ms ``Qt.PreciseTimer`` fires.
Lateness = actual interval - 5 ms; every tick is kept with its time so the report
can split the phases:

* ``idle``: the window open, nothing running (the timer's own noise);
* ``start``: from the click to the first training step shown in the window;
* ``training``: steady training, until Stop is pressed;
* ``finish``: from Stop until the run has finished and its bundle is exported and
  loaded as the active model (or a time limit).

Prints one JSON line. Must run with ``QT_QPA_PLATFORM=offscreen`` (set here if unset).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

INTERVAL_MS = 5


def _stats(late: list[float]) -> dict[str, float]:
    import numpy as np

    if not late:
        return {"ticks": 0}
    a = np.asarray(late)
    return {
        "ticks": int(a.size),
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
        "over_50ms": int((a > 50).sum()),
        "over_100ms": int((a > 100).sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="digits")
    ap.add_argument("--net", default=None, help="family to train (default: the data's preset)")
    ap.add_argument("--seconds", type=float, default=20.0, help="steady training time to measure")
    ap.add_argument("--idle", type=float, default=2.0)
    ap.add_argument("--finish-timeout", type=float, default=60.0)
    ap.add_argument("--diagnose", action="store_true",
                    help="sample every thread's stack during stalls and print them to stderr")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="aestudio-gui-bench-"))
    # Keep the probe's settings and workspace out of the user's folders.
    os.environ["AESTUDIO_HOME"] = str(home)
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_DATA_HOME"] = str(home / "data")

    from PySide6.QtCore import QElapsedTimer, QSettings, Qt, QTimer

    from aestudio.gui.app import application, create_window
    from aestudio.training.events import EpochEnded, StepEnded

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(home / "config"))
    app = application()
    window = create_window()
    window.data_panel.open_spec(args.data)  # the data panel's own route, on its worker pool
    panel = window.train_panel

    ticks: list[tuple[float, float]] = []  # (seconds since start, lateness ms)
    clock = QElapsedTimer()
    clock.start()
    last = [0]

    def tick() -> None:
        now = clock.nsecsElapsed()
        ticks.append((now / 1e9, max(0.0, (now - last[0]) / 1e6 - INTERVAL_MS)))
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(INTERVAL_MS)
    timer.timeout.connect(tick)

    marks: dict[str, float] = {}
    counts = {"steps": 0, "epochs": 0, "images_per_s": 0.0, "last_step": 0}
    state = {"finished": None, "loaded": False}

    def now_s() -> float:
        return clock.nsecsElapsed() / 1e9

    def on_events(batch: list) -> None:
        for ev in batch:
            if isinstance(ev, StepEnded):
                counts["steps"] += 1
                counts["last_step"] = ev.step
                counts["images_per_s"] = ev.images_per_s
                marks.setdefault("first_step", now_s())
            elif isinstance(ev, EpochEnded):
                counts["epochs"] += 1

    def on_finished(ev: object) -> None:
        state["finished"] = getattr(getattr(ev, "reason", None), "value", str(ev))
        marks["finished"] = now_s()

    def press_start() -> None:
        if panel.data_spec != args.data:  # the data panel normally hands its spec over
            panel.set_data(args.data)
        if args.net:
            panel.family_box.setCurrentText(args.net)
        panel.set_device("cpu")
        marks["start"] = now_s()
        panel.start_button.click()
        if panel.worker is None:
            raise SystemExit("pressing Start did not start a worker (see the window's messages)")
        panel.worker.events.connect(on_events)
        panel.run_finished.connect(on_finished)

    def press_stop() -> None:
        marks["stop"] = now_s()
        panel.stop_button.click()

    def watchdog() -> None:
        t = now_s()
        if "start" not in marks:
            # Start once the data panel has opened the data (as a user would wait for it).
            if t >= args.idle and (window.data_panel.spec == args.data or t > args.idle + 120):
                press_start()
        elif "first_step" in marks and "stop" not in marks and t >= marks["first_step"] + args.seconds:
            press_stop()
        elif "start" in marks and "first_step" not in marks and t > marks["start"] + 120:
            marks["stop"] = t  # never trained: give up, reported below
            app.quit()
        elif "stop" in marks:
            loaded = window.active_model is not None
            if state["finished"] and (loaded or t > marks["finished"] + args.finish_timeout):
                state["loaded"] = loaded
                marks["end"] = t
                app.quit()
            elif t > marks["stop"] + args.finish_timeout + 30:
                marks["end"] = t
                app.quit()

    guard = QTimer()
    guard.setInterval(50)
    guard.timeout.connect(watchdog)
    if args.diagnose:
        _start_stack_sampler(lambda: last[0], clock)
    last[0] = clock.nsecsElapsed()
    timer.start()
    guard.start()
    app.exec()
    timer.stop()
    panel.shutdown(5.0)

    def phase(a: str, b: str) -> list[float]:
        lo, hi = marks.get(a), marks.get(b)
        if lo is None or hi is None:
            return []
        return [late for t, late in ticks if lo < t <= hi]

    idle = [late for t, late in ticks if t <= marks.get("start", 0.0)]
    result = {
        "data": args.data,
        "net": panel.family_box.currentText(),
        "interval_ms": INTERVAL_MS,
        "phases": {
            "idle": _stats(idle),
            "start": _stats(phase("start", "first_step")),
            "training": _stats(phase("first_step", "stop")),
            "finish": _stats(phase("stop", "end")),
        },
        "seconds": {k: round(v - marks.get("start", 0.0), 3) for k, v in marks.items()},
        "steps": counts["last_step"],
        "epochs": counts["epochs"],
        "images_per_s": counts["images_per_s"],
        "finished": state["finished"],
        "bundle_loaded": state["loaded"],
        "torch_threads": _torch_threads(),
        "stalls_over_50ms": [  # (seconds after the click, lateness ms): where the long ones fall
            (round(t - marks.get("start", 0.0), 3), round(late, 1)) for t, late in ticks if late > 50
        ],
    }
    print(json.dumps(result))


def _start_stack_sampler(last_tick_ns, clock, threshold_ms: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Diagnosis only: while the GUI thread is late, print what every thread is doing."""
    import sys
    import threading
    import traceback

    main_id = threading.main_thread().ident

    def loop() -> None:
        while True:
            time.sleep(0.02)
            late = (clock.nsecsElapsed() - last_tick_ns()) / 1e6
            if late < threshold_ms:
                continue
            frames = sys._current_frames()
            lines = [f"--- GUI thread {late:.0f} ms late"]
            for ident, frame in frames.items():
                name = next((t.name for t in threading.enumerate() if t.ident == ident), str(ident))
                stack = traceback.extract_stack(frame)[-6:]
                where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack))
                lines.append(f"  [{'GUI' if ident == main_id else name}] {where}")
            print("\n".join(lines), file=sys.stderr, flush=True)

    threading.Thread(target=loop, name="stack-sampler", daemon=True).start()


def _torch_threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:
        return None


if __name__ == "__main__":
    main()
