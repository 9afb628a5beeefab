"""Probe: launch to the first visible window of the app, and what loads in the background after.

``python -m bench.probes.launch --t0 EPOCH_SECONDS`` starts the app the way ``aestudio``
does (``aestudio.gui.app.application`` and ``create_window``, with the user's settings in
``XDG_CONFIG_HOME``), and reports, in seconds after ``--t0`` (the parent's clock just
before it started this process, so interpreter start-up and every import count):

* ``first_paint_s``: the main window receives its first paint event (it is on screen);
* ``cpu_at_paint_s``: the CPU time the process had used by then (on a shared, loaded
  machine the wall time stretches with the load; the CPU time is close to what an idle
  machine's wall time would be, as the start-up is one thread);
* ``usable_s``: the event loop is free again after that paint (a click would be handled);
* ``core_ready_s``: the Train panel has its families and devices (torch loaded, in the
  background, after the first paint);
* ``data_ready_s``: the data panel has opened its data set (also in the background);
* ``all_built_s``: the tabs not shown at start-up and the Train tab's plots are built
  (after the paint, once the background loads are done);
* ``stall_after_paint_s``: the longest the event loop could not run a 20 ms timer from the
  first paint until all of the above (the GIL taken by the background imports and the tabs
  built after the paint delay a click by that much at worst).

``loaded_at_paint`` lists the heavy modules already imported when the window was painted
(the goal: none of torch, torchvision, onnxruntime, sklearn; pyqtgraph and superqt only
when the tab shown at start-up plots). Prints one JSON line.
Runs with ``QT_QPA_PLATFORM=offscreen`` unless a platform is set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# The heavy modules, and the plotting libraries only the tabs built after the first paint need.
POLL_S = 0.02
HEAVY = ("torch", "torchvision", "onnxruntime", "sklearn", "scipy", "onnx", "pyqtgraph", "superqt")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--t0", type=float, required=True, help="time.time() when the parent launched this process")
    ap.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the background loads")
    args = ap.parse_args()
    marks: dict[str, float] = {}
    loaded_at_paint: list[str] = []

    from PySide6.QtCore import QEvent, QObject, QTimer

    from aestudio.gui import app as gui_app

    qapp = gui_app.application()
    window_ref: list[object] = []

    class FirstPaint(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
            if "first_paint_s" not in marks and event.type() == QEvent.Type.Paint and window_ref and obj is window_ref[0]:
                marks["first_paint_s"] = time.time() - args.t0
                marks["cpu_at_paint_s"] = time.process_time()  # this process's CPU time: robust to a loaded machine
                loaded_at_paint.extend(m for m in HEAVY if m in sys.modules)
                QTimer.singleShot(0, lambda: marks.setdefault("usable_s", time.time() - args.t0))
            return False

    spy = FirstPaint()
    qapp.installEventFilter(spy)
    window = gui_app.create_window([])
    window_ref.append(window)
    deadline = time.monotonic() + args.wait

    last_tick = [time.monotonic()]
    stall = [0.0]

    def poll() -> None:
        now = time.time() - args.t0
        tick = time.monotonic()
        if "first_paint_s" in marks:
            stall[0] = max(stall[0], tick - last_tick[0] - POLL_S)  # the loop could not run this timer sooner
            marks["stall_after_paint_s"] = stall[0]
        last_tick[0] = tick
        panel = window.train_panel  # (an older build has no core_ready: its families are there at once)
        if getattr(panel, "core_ready", panel.family_box.count() > 0):
            marks.setdefault("core_ready_s", now)
        if window.data_panel.summary is not None:
            marks.setdefault("data_ready_s", now)
        if getattr(window, "deferred_built", True):  # (an older build has nothing deferred)
            marks.setdefault("all_built_s", now)
        done = all(k in marks for k in ("usable_s", "core_ready_s", "data_ready_s", "all_built_s"))
        waited = time.monotonic() > deadline  # --wait 0: only the window
        if done or (waited and "usable_s" in marks) or time.monotonic() > deadline + 120:
            qapp.quit()

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(int(POLL_S * 1000))
    qapp.exec()
    window.close()
    print(json.dumps({**{k: round(v, 3) for k, v in marks.items()}, "loaded_at_paint": loaded_at_paint}))


if __name__ == "__main__":
    main()
