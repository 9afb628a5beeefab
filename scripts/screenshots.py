"""Regenerate the README's screenshots of the studio (docs/screenshots/*.png).

Opens the real window offscreen (or on $DISPLAY with --display, e.g. under Xvfb),
trains a short comparison run on digits, then the digits preset with that run
overlaid, grabs the window while it trains (curves, previews, metrics), stops,
and waits for the automatic export. It also reports event-loop stalls measured
during training.

It then shows each exploration panel with a shipped model from models/ and a
sample image from resources/samples (reconstruct.png, noise-lab.png,
segment.png, latent.png). ``--panels`` takes only those (no training).

    python scripts/screenshots.py [--out docs/screenshots] [--epochs 4] [--panels]
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
    parser.add_argument("--panels", action="store_true", help="only the exploration panels (no training)")
    parser.add_argument("--label", action="store_true", help="only the Label tab (scripted strokes, 90 s of live training)")
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
    if args.label:
        label_shot(window, args.out, home)
        window.close()
        app.processEvents()
        return 0
    if args.panels:
        panel_shots(window, args.out)
        label_shot(window, args.out, home)
        window.close()
        app.processEvents()
        return 0
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
    panel.set_data("digits", window.data_panel.summary.image_size)  # re-applies the digits preset
    panel.compare.set_checked(first_run.name)
    meter = StallMeter()
    meter.start()
    panel.start()
    wait_until(lambda: len(panel.curves.live.epoch_x) >= args.epochs, 900, f"{args.epochs} epochs")
    stalls = meter.stop()
    shot = args.out / "training.png"
    # The comparison run's export notice floats over the sample strip for a while: the shot is of the
    # training, so it is logged and dismissed, not pictured half over the strip.
    for msg in window.messages.visible_messages():
        log.info("dismissed before the shot: %s", msg.text)
    window.messages.clear()
    app.processEvents()
    window.grab().save(str(shot))
    log.info("wrote %s", shot)
    log.info("event loop while training: %s", stalls)

    panel.stop()
    wait_until(lambda: len(finished) == 2, 120, "the run to stop")
    wait_until(lambda: window.active_model is not None and window.active_model.source == finished[1].run_dir,
               300, "the automatic export")
    window.tabs.setCurrentIndex(0)
    panel_shots(window, args.out)
    window.close()
    app.processEvents()
    print(f"stalls: {stalls}")
    return 0


# (tab title, shipped model, data spec, sample image stem or None, output file)
PANEL_SHOTS = [
    ("Reconstruct", "digits-conv-ae", "digits", None, "reconstruct.png"),
    ("Noise lab", "photo-denoiser", "digits", "photo-camera", "noise-lab.png"),
    ("Segment", "shapes-seg-unet", "shapes-seg", "shapes-seg-1", "segment.png"),
    ("Latent", "shapes-vae", "shapes", "shapes-1", "latent.png"),
]


def panel_shots(window, out: Path, settle: float = 12.0) -> None:
    """Each exploration tab with a shipped model, its data and a sample image dropped on it."""
    from aestudio.zoo import catalog as zoo

    samples = {p.stem: p for p in zoo.sample_images()}
    tabs = {window.tabs.tabText(i): i for i in range(window.tabs.count())}
    for title, model, spec, sample, name in PANEL_SHOTS:
        try:
            path = zoo.find_model(model).path
        except zoo.ZooError as exc:
            log.warning("skipping %s: %s", name, exc)
            continue
        window.tabs.setCurrentIndex(tabs[title])
        if window.data_panel.spec != spec:
            window.data_panel.open_spec(spec)
            wait_until(lambda s=spec: window.data_panel.summary is not None
                       and window.data_panel.summary.spec == s, 120, spec)
        window.load_model(path)
        wait_until(lambda p=path: window.active_model is not None and window.active_model.path == p, 120, model)
        if sample and sample in samples:
            window.open_paths([samples[sample]])
        deadline = time.monotonic() + settle
        wait_until(lambda d=deadline: time.monotonic() > d, settle + 5, "the panel to settle")
        shot = out / name
        window.grab().save(str(shot))
        log.info("wrote %s", shot)


def label_shot(window, out: Path, home: Path, train_seconds: float = 90.0) -> None:
    """The Label tab: a shapes scene with a few scripted strokes per class, after live training."""
    import numpy as np
    from scipy.ndimage import binary_erosion

    from aestudio.data.io import write_image
    from aestudio.data.procedural import SEG_CLASS_NAMES, render_seg

    image, truth = render_seg(7, 256)
    src = home / "label-src" / "scene.png"
    src.parent.mkdir(parents=True, exist_ok=True)
    write_image(src, image.astype(np.float32) / 255.0)
    tabs = {window.tabs.tabText(i): i for i in range(window.tabs.count())}
    window.tabs.setCurrentIndex(tabs["Label"])
    panel = window.current_explore_panel()
    panel.create_project(home / "label-project", tuple(SEG_CLASS_NAMES))
    panel.on_images([src])
    wait_until(lambda: panel.image is not None, 60, "the image in the Label tab")
    rng = np.random.default_rng(0)
    project = panel.project
    for cls in range(len(SEG_CLASS_NAMES)):  # two short strokes inside each class, as a person would
        inside = np.argwhere(binary_erosion(truth == cls, iterations=6))
        for _ in range(2 if len(inside) else 0):
            y, x = inside[rng.integers(len(inside))]
            stroke = project.stroke(0, cls)
            stroke.dab(y, x, 3)
            stroke.dab(y + rng.integers(-8, 9), x + rng.integers(-8, 9), 3)
            stroke.end()
    panel.canvas.set_labels(project.mask(0))
    panel._after_edit()
    panel.start_training()
    deadline = time.monotonic() + train_seconds
    wait_until(lambda: time.monotonic() > deadline, train_seconds + 5, "live training")
    panel.stop_training()
    wait_until(lambda: not panel.worker.running, 60, "training to stop")
    panel.refresh_prediction()
    wait_until(lambda: panel.prediction is not None and panel.prediction.step == panel.trainer.step, 60,
               "the prediction")
    shot = out / "label.png"
    window.grab().save(str(shot))
    log.info("wrote %s (step %d)", shot, panel.trainer.step)


if __name__ == "__main__":
    sys.exit(main())
