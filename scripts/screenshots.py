"""Regenerate the README's screenshots of the studio (docs/screenshots/*.png).

Opens the real window offscreen (or on $DISPLAY with --display, e.g. under Xvfb),
trains a short comparison run on digits, then the digits preset with that run
overlaid, grabs the window while it trains (curves, previews, metrics), stops,
waits for the automatic export and grabs the window with the model loaded. It
also reports event-loop stalls measured during training.

    python scripts/screenshots.py [--out docs/screenshots] [--epochs 4]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("screenshots")


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    """Run the real event loop until ``cond`` holds (so stall measurements stay honest)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    deadline = time.monotonic() + timeout
    poll = QTimer()
    poll.setInterval(50)
    poll.timeout.connect(lambda: loop.quit() if cond() or time.monotonic() > deadline else None)
    poll.start()
    if not cond():
        loop.exec()
    poll.stop()
    if not cond():
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "screenshots")
    parser.add_argument("--epochs", type=int, default=4, help="epochs to watch before the training shot")
    parser.add_argument("--display", action="store_true", help="use $DISPLAY instead of the offscreen platform")
    parser.add_argument("--size", default="1440x900", help="window size WxH")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.display:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    home = Path(tempfile.mkdtemp(prefix="aestudio-shots-"))
    os.environ["AESTUDIO_HOME"] = str(home / "workspace")  # a clean workspace, not the user's
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")

    from PySide6.QtCore import QSettings

    from aestudio.gui.app import application, create_window
    from aestudio.gui.stallmeter import StallMeter

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(home / "config"))
    app = application()
    window = create_window()
    w, h = (int(v) for v in args.size.split("x"))
    window.resize(w, h)
    panel = window.train_panel
    args.out.mkdir(parents=True, exist_ok=True)

    wait_until(lambda: window.data_panel.summary is not None, 60, "the digits data")
    panel.set_device("cpu")

    # 1. A short comparison run with a tiny code, to overlay on the main run's curves.
    panel.net_form.set_values({"latent_dim": 4})
    panel.train_form.set_values({"epochs": args.epochs})
    finished: list = []
    panel.run_finished.connect(finished.append)
    panel.start()
    wait_until(lambda: len(finished) == 1, 600, "the comparison run")
    first_run = finished[0].run_dir
    log.info("comparison run %s: %s", first_run.name, finished[0].reason.value)
    wait_until(lambda: window.active_model is not None, 300, "the first export")

    # 2. The digits preset (conv_ae, 16-value code, 30 epochs), the first run overlaid.
    panel.set_data("digits")  # re-applies the digits preset to the forms
    panel.compare.set_checked(first_run.name)
    meter = StallMeter()
    meter.start()
    panel.start()
    wait_until(lambda: len(panel.curves.live.epoch_x) >= args.epochs, 900, f"{args.epochs} epochs")
    stalls = meter.stop()
    shot = args.out / "training.png"
    window.grab().save(str(shot))
    log.info("wrote %s", shot)
    log.info("event loop while training: %s", stalls)

    panel.stop()
    wait_until(lambda: len(finished) == 2, 120, "the run to stop")
    wait_until(lambda: window.active_model is not None and window.active_model.source == finished[1].run_dir,
               300, "the automatic export")
    window.tabs.setCurrentIndex(1)
    wait_until(lambda: True, 1, "")
    shot = args.out / "model-loaded.png"
    window.grab().save(str(shot))
    log.info("wrote %s", shot)
    window.tabs.setCurrentIndex(0)
    window.close()
    app.processEvents()
    print(f"stalls: {stalls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
