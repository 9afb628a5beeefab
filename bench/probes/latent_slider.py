"""Probe: the Latent panel's slider, measured through the real panel (offscreen Qt).

``python -m bench.probes.latent_slider --bundle VAE_BUNDLE [--data digits] [--moves 300]
[--train-data digits --rounds 4 --block 4]`` prints one JSON line with:

* ``latency``: slider move -> new pixels painted. For each move: set the most
  important slider's value (``setValue``, as a drag does), then run the event
  loop until the decoded pane has a new image *and* has painted it; the time
  from ``setValue`` to the end of that paint is one sample. Moves are spaced
  ``--gap-ms`` apart so each one is measured on its own.
* ``training``: a training run in the same process, driven by the GUI's own
  ``TrainWorker`` (a Python thread, as in the app), measured in alternating
  blocks of ``--block`` seconds: *alone* (the window idle) and *drag* (a 60 Hz
  timer moves a latent slider continuously; every move decodes through the
  panel's interactive ONNX Runtime session). Images/s per block are counted in
  the training thread from the steps it finished.

Must run with ``QT_QPA_PLATFORM=offscreen`` (set here if unset).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

DRAG_HZ = 60  # a mouse drag delivers roughly one move per frame


def _percentiles(samples: list[float]) -> dict[str, float]:
    import numpy as np

    a = np.asarray(samples) * 1e3
    return {"n": int(a.size), "p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)),
            "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", required=True, help="a VAE (or any model with a code) bundle folder")
    ap.add_argument("--data", default="digits", help="data for the panel's map ('' for none)")
    ap.add_argument("--moves", type=int, default=300)
    ap.add_argument("--gap-ms", type=float, default=8.0)
    ap.add_argument("--train-data", default="digits", help="data of the training run ('' to skip)")
    ap.add_argument("--rounds", type=int, default=4, help="alone/drag block pairs")
    ap.add_argument("--block", type=float, default=4.0, help="seconds per block")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds of training before measuring")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="aestudio-latent-bench-"))
    os.environ["AESTUDIO_HOME"] = str(home)
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_DATA_HOME"] = str(home / "data")

    import numpy as np
    from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer

    from aestudio.gui import engine
    from aestudio.gui.app import application
    from aestudio.gui.panels.latent import LatentPanel
    from aestudio.gui.workers import TaskRunner

    app = application()
    tasks = TaskRunner()
    panel = LatentPanel(tasks)
    panel.resize(1200, 800)
    panel.show()
    model = engine.load_model(Path(args.bundle))
    model.predictor.warmup()
    if args.data:
        panel.set_data(SimpleNamespace(spec=args.data))
    panel.set_model(model)

    def spin_until(cond, timeout: float) -> bool:  # noqa: ANN001
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
            time.sleep(0.002)
        return cond()

    if args.data and not spin_until(lambda: panel.codes is not None, 300):
        raise SystemExit("the panel did not finish encoding the data")
    spin_until(lambda: not panel.live.busy, 10)
    canvas = panel.decoded.canvas
    slider = panel.sliders.row_slider(0)
    lo, hi = slider.minimum(), slider.maximum()

    # ------------------------------------------------------------ 1: move -> pixels
    class PaintWatch(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.painted_image = None

        def eventFilter(self, obj, event) -> bool:  # noqa: N802, ANN001 - Qt override
            if event.type() == QEvent.Type.Paint:
                self.painted_image = canvas._image
            return False

    watch = PaintWatch()
    canvas.installEventFilter(watch)
    # The loop below blocks in processEvents(WaitForMoreEvents) (a busy loop would take the GIL
    # and a core from the decode thread it measures); this timer bounds each wait.
    wake = QTimer()
    wake.start(50)
    latencies: list[float] = []
    decode_s: list[float] = []
    z0 = panel.sliders.code()
    gui_cpu = 0.0  # the GUI thread's own CPU time from each setValue to its new image painted
    for i in range(args.moves + 20):
        value = lo + (hi - lo) * (0.5 + 0.45 * np.sin(i * 0.37))
        before = canvas._image
        c0 = time.thread_time()
        t0 = time.perf_counter()
        slider.setValue(float(value))
        while True:
            app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
            img = canvas._image
            if img is not before and watch.painted_image is img:
                break
            if time.perf_counter() - t0 > 5:
                raise SystemExit("no new image painted within 5 s of a slider move")
        t1 = time.perf_counter()
        if i >= 20:  # warm-up moves are not counted
            latencies.append(t1 - t0)
            gui_cpu += time.thread_time() - c0
        end = time.perf_counter() + args.gap_ms / 1e3
        while time.perf_counter() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 2)
            time.sleep(0.001)
    gui_cpu_ms = gui_cpu * 1e3 / max(1, args.moves)
    wake.stop()
    for _ in range(200):
        z = z0[None].astype(np.float32)
        t0 = time.perf_counter()
        model.predictor.decode(z)
        decode_s.append(time.perf_counter() - t0)
    result: dict = {"load_average": [round(v, 1) for v in os.getloadavg()], "bundle": str(args.bundle), "net": model.info.net, "image_size": model.info.image_size,
                    "latent_dim": model.info.latent_dim, "latency": _percentiles(latencies),
                    "decode_only": _percentiles(decode_s), "gui_cpu_ms_per_move": gui_cpu_ms,
                    "dropped_jobs": panel.live.dropped}

    # ------------------------------------------------------------ 2: training throughput
    if args.train_data:
        result["training"] = _throughput(app, panel, args)
    print(json.dumps(result))
    panel.shutdown()
    tasks.shutdown()


def _throughput(app, panel, args) -> dict:  # noqa: ANN001
    """Alternate alone / drag blocks while one training run goes on in a TrainWorker thread."""
    import numpy as np
    from PySide6.QtCore import QEvent, QObject, Qt, QTimer

    from aestudio.config import TrainConfig
    from aestudio.gui import engine
    from aestudio.gui.presets import preset_for
    from aestudio.gui.workers import TrainWorker
    from aestudio.nets import default_config
    from aestudio.training.events import StepEnded

    preset = preset_for(args.train_data)
    net_cfg = default_config(preset.net, **preset.net_params)
    cfg = TrainConfig(device="cpu", num_workers=0, **{**preset.train_params, "epochs": 100000})
    run_dir = Path(tempfile.mkdtemp(prefix="aestudio-latent-bench-run-")) / "run"
    images: list[tuple[float, int]] = []  # (time a step ended, its images), appended in the training thread

    def source(stop: threading.Event, pause: threading.Event):  # noqa: ANN202
        for ev in engine.train(preset.net, net_cfg, args.train_data, cfg, run_dir, stop=stop, pause=pause):
            if isinstance(ev, StepEnded):
                images.append((time.perf_counter(), cfg.batch_size))
            yield ev

    worker = TrainWorker(source)
    slider = panel.sliders.row_slider(0)
    lo, hi = slider.minimum(), slider.maximum()
    drag = QTimer()
    drag.setTimerType(Qt.TimerType.PreciseTimer)
    drag.setInterval(int(1000 / DRAG_HZ))
    ticks = [0]
    shown_before = [panel.decoded.canvas._image]
    shown = [0]

    waiting: list[float] = []  # times of moves not yet followed by a new frame on screen
    lags: list[float] = []  # move -> the next new frame painted, while training (drag blocks)

    class Frames(QObject):
        def eventFilter(self, obj, event) -> bool:  # noqa: N802, ANN001 - Qt override
            if event.type() == QEvent.Type.Paint and panel.decoded.canvas._image is not shown_before[0]:
                shown_before[0] = panel.decoded.canvas._image
                shown[0] += 1
                now = time.perf_counter()
                lags.extend(now - t for t in waiting)
                waiting.clear()
            return False

    frames = Frames()
    panel.decoded.canvas.installEventFilter(frames)

    def move() -> None:
        ticks[0] += 1
        waiting.append(time.perf_counter())
        slider.setValue(float(lo + (hi - lo) * (0.5 + 0.45 * np.sin(ticks[0] * 0.21))))

    drag.timeout.connect(move)
    plan = ["warmup"] + ["alone", "drag"] * args.rounds
    blocks: list[dict] = []
    state = {"i": -1, "t0": 0.0, "ticks0": 0, "shown0": 0}

    def next_block() -> None:
        now = time.perf_counter()
        if state["i"] >= 0:
            name = plan[state["i"]]
            # Step-to-step intervals that lie inside the block: a block holds few steps when the
            # machine is loaded, and counting whole steps in a fixed window would quantise badly.
            ends = [t for t, _ in images if state["t0"] <= t < now]
            n = cfg.batch_size * max(0, len(ends) - 1)
            span = ends[-1] - ends[0] if len(ends) > 1 else 0.0
            blocks.append({"phase": name, "seconds": now - state["t0"], "images": n, "span": span,
                           "images_per_s": n / span if span > 0 else 0.0,
                           "moves": ticks[0] - state["ticks0"], "frames": shown[0] - state["shown0"]})
        drag.stop()
        waiting.clear()
        state["i"] += 1
        if state["i"] >= len(plan):
            worker.stop()
            app.quit()
            return
        state.update(t0=time.perf_counter(), ticks0=ticks[0], shown0=shown[0])
        if plan[state["i"]] == "drag":
            drag.start()
        QTimer.singleShot(int(1000 * (args.warmup if plan[state["i"]] == "warmup" else args.block)), next_block)

    def started() -> None:
        if images:
            next_block()
        else:
            QTimer.singleShot(100, started)

    worker.start()
    QTimer.singleShot(100, started)
    app.exec()
    worker.join(30)
    measured = [b for b in blocks if b["phase"] != "warmup"]
    def rate(phase: str) -> float:  # images over time, pooled over the phase's blocks
        bs = [b for b in measured if b["phase"] == phase]
        span = sum(b["span"] for b in bs)
        return sum(b["images"] for b in bs) / span if span > 0 else 0.0

    alone, dragged = rate("alone"), rate("drag")
    drag_blocks = [b for b in measured if b["phase"] == "drag"]
    return {
        "net": preset.net, "data": args.train_data, "batch_size": cfg.batch_size,
        "alone_images_per_s": alone, "drag_images_per_s": dragged,
        "ratio": dragged / alone if alone > 0 else 0.0,
        "moves_per_s": float(sum(b["moves"] for b in drag_blocks) / max(1e-9, sum(b["seconds"] for b in drag_blocks))),
        "frames_per_s": float(sum(b["frames"] for b in drag_blocks) / max(1e-9, sum(b["seconds"] for b in drag_blocks))),
        "lag_while_training": _percentiles(lags) if lags else {},
        "blocks": blocks,
    }


if __name__ == "__main__":
    main()
