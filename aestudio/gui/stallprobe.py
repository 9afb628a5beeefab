"""Probe: event-loop stalls of the real window while it trains; prints one JSON line.

``python -m aestudio.gui.stallprobe [--seconds 20] [--data digits]`` opens the window
offscreen in a throwaway workspace, starts the data's preset run on the CPU, measures
how late a 10 ms timer fires for ``--seconds`` (curves, previews and metrics updating
all the while), stops, and prints ``{"p50_ms", "p99_ms", "max_ms", "over_100ms", "ticks",
"images_per_s"}``. Meant for ``bench`` (``harness.run_probe``), which runs it in its own
process so a crash cannot take the runner down. Targets on 2 cores: p99 < 50 ms, none > 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def _wait(app, cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    return bool(cond())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure GUI event-loop stalls during training.")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--data", default="digits")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = Path(tempfile.mkdtemp(prefix="aestudio-stalls-"))
    os.environ["AESTUDIO_HOME"] = str(home / "workspace")

    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from aestudio.gui.app import application, create_window
    from aestudio.gui.stallmeter import StallMeter

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(home / "config"))
    app = application()
    window = create_window()
    window.data_panel.open_spec(args.data)
    if not _wait(app, lambda: window.data_panel.spec == args.data, 120):
        print(json.dumps({"error": f"could not open {args.data}"}))
        return 1
    panel = window.train_panel
    panel.set_device("cpu")
    panel.start()
    if not _wait(app, lambda: panel._last_step is not None, 120):  # noqa: SLF001 - the probe reads the panel's state
        print(json.dumps({"error": "training did not start"}))
        return 1
    meter = StallMeter()
    meter.start()
    loop = QEventLoop()  # the real event loop, as a user would have it
    QTimer.singleShot(int(args.seconds * 1000), loop.quit)
    loop.exec()
    stats = meter.stop()
    rate = panel._last_step.images_per_s  # noqa: SLF001
    window.close()  # stops the run; no export on close
    print(json.dumps({"p50_ms": stats.p50_ms, "p99_ms": stats.p99_ms, "max_ms": stats.max_ms,
                      "over_100ms": stats.over_100ms, "ticks": stats.ticks, "images_per_s": rate}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
