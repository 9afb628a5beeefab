"""The Latent panel's slider (issue 5): move-to-pixels latency, and training speed while dragging."""

from __future__ import annotations

import logging
import os

from bench.fixtures import bundle_for
from bench.harness import Context, Row, SkipBenchmark, Status, run_probe

log = logging.getLogger(__name__)

ORDER = 60
TITLE = "Latent slider: move to pixels, and training while dragging"
P95_MS = 8.0
MIN_RATIO = 0.85
SCENARIOS = (  # (label, data, image size): a 28 x 28 VAE, and shapes' 32 x 32
    ("vae 28x28 (digits)", "digits", 28),
    ("vae 32x32 (shapes)", "shapes", 32),
)
SHIPPED = ("shapes-vae", "shapes")  # the shipped 32 x 32 VAE (models/; 28 x 28 before 2026-11-22 15:27), used when present

ABOUT = f"""
**What.** (1) Slider move to pixels on screen in the Latent panel: the time from setting the
most important latent slider's value to the end of the paint of the new decoded image.
(2) A training run's throughput while someone drags a latent slider, against the same run
alone.

**How.** `bench/probes/latent_slider.py` runs in its own process with
`QT_QPA_PLATFORM=offscreen`. It builds the real `LatentPanel` with a VAE bundle (the shipped
`models/shapes-vae`, 32 x 32 (28 x 28 in runs before 2026-11-22 15:27), when present; else one trained for 2 steps by the engine and
exported with `export_run`: weights do not change speed), lets it
encode the data for its map, then (1) moves the slider with `setValue` as a drag does, runs
the event loop until the decoded pane holds a new image and has painted it, and waits
8 ms before the next move (300 moves after 20 warm-up moves); `decode only` is
`predictor.decode` at batch 1 on the same interactive session, for reference. (2) In the same
process, the digits preset (`conv_ae`, batch 64) trains through the GUI's own `TrainWorker`
thread; blocks of 3 s alternate *alone* and *drag* (a 60 Hz timer moves the slider
continuously, every move decoding through the panel's `LatestRunner` and interactive ONNX
Runtime session: one thread, no spinning); images/s per block are counted in the training
thread from the step-to-step intervals inside each block (pooled per phase: images / time);
ratio = dragging / alone. `GUI CPU ms/move` is the GUI thread's own CPU time per measured
move (`time.thread_time`), which scheduling delays on a loaded machine do not inflate.

**Targets (issue 5, 2 cores).** (1) p95 < {P95_MS:g} ms for a 28 x 28 or 32 x 32 VAE.
(2) drag / alone >= {MIN_RATIO:.0%}.
"""


FINDINGS = """
- Measured on 2 cores shared with other work (load average 2-17 across the runs); `decode only`
  (0.2-0.3 ms median) alone reached 0.3-8 ms at p95, so the tail is mostly the machine's
  scheduling. Six full runs, p95 of slider move to pixels: 28 x 28 19.4 ms (before the fixes
  below, load 15), then 5.5, 7.6, 4.6, 6.9, 2.5 ms; 32 x 32 / shipped 28 x 28 shapes-vae 20.4,
  6.8, 6.2, 2.6, 8.1, 7.7 ms; medians 1.7-3.7 ms.
- Two fixes bought most of it. (1) The decoded image is built as an RGB32 `QImage` on the decode
  thread: Qt draws an 8-bit grey image scaled 28 -> 256 px ~7x slower (0.45 vs 0.07 ms), on the GUI
  thread. (2) The canvas is opaque and painted at once: before, each move also repainted the
  panel, splitter and pane behind it. GUI-thread CPU per move is now ~1.1-1.6 ms, most of it the
  superqt labelled slider updating its label and repainting itself.
- The map's current-code cross follows the sliders only once a drag pauses (150 ms): a pyqtgraph
  repaint of 1,437 points is 10-20 ms of Python in `paint()`, GIL held; throttled at 40 ms it took
  half the GUI thread during a drag.
- Training while dragging: ratio 0.91, 0.80, 0.87, 0.83, 0.83, 0.84 in six full runs: at the target
  or just under it. Three more on an idle machine on 2026-11-22 (load below 1.4): 0.815, 0.867, 0.834,
  with training alone at 416, 254 and ~400 images/s in the same probe: the spread between runs
  is larger than the effect measured. A fourth, on a slow run of the VM, 0.691.
- Since 2026-11-22 17:30 the panel decodes at most every 33 ms while a training run is going
  (superqt `qthrottled`, first and last move always): frames shown drop from 62 to 29 per second
  and the slider's new frame arrives at p50 18 ms / p95 34 ms instead of 3 / 5 ms, while the
  drag's decode-and-paint work on the cores halves. First run with it: ratio 0.923 (433 -> 399
  images/s). Without training nothing changes: every move decodes at once (p95 above). Training alone ran at only 88-509 images/s in the probe (the machine was
  shared), so each figure is noisy. A 60 Hz drag costs ~1.5 ms of GUI CPU plus ~0.3 ms of
  decode per move (~110 ms/s), and that Python competes for the GIL with the training thread's
  Python and for the cores with torch's two threads. Left to try: coalesce decodes to the
  screen's refresh while a training run is going, and a lighter slider label than superqt's.
- The benchmark's own waits block in `processEvents(WaitForMoreEvents)`; a first version polled
  and took the GIL from the threads it measured.
"""


def run(ctx: Context) -> list[Row]:
    try:
        import PySide6  # noqa: F401

        import aestudio.gui.panels.latent  # noqa: F401
    except ImportError as exc:
        raise SkipBenchmark(f"the GUI cannot be imported here: {exc}") from exc
    rows: list[Row] = []
    scenarios = SCENARIOS[:1] if ctx.quick else SCENARIOS
    for k, (label, data, size) in enumerate(scenarios):
        shipped = ctx.repo / "models" / SHIPPED[0]
        if k > 0 and (shipped / "model.json").is_file():
            import json

            side = json.loads((shipped / "model.json").read_text()).get("image_size")
            label, data, bundle = f"shipped {SHIPPED[0]} ({side}x{side})", SHIPPED[1], shipped
        else:
            bundle = bundle_for(ctx, f"latent-vae-{data}-{size}", "vae", data_spec=data, image_size=size,
                                train_overrides={"epochs": 1, "max_steps": 2, "batch_size": 8})
        train = k == 0  # the throughput pair once: it does not depend on the VAE being dragged
        args = ["--bundle", str(bundle), "--data", data, "--moves", str(ctx.pick(300, 40)),
                "--train-data", "digits" if train else "",
                "--rounds", str(ctx.pick(6, 1)), "--block", str(ctx.pick(3.0, 1.5)),
                "--warmup", str(ctx.pick(4.0, 1.5))]
        try:
            res = run_probe("bench.probes.latent_slider", args, env={"QT_QPA_PLATFORM": "offscreen"}, timeout=900)
        except Exception as exc:  # noqa: BLE001 - a crashed GUI is a result, reported as a row
            rows.append(Row(label, status=Status.ERROR, note=str(exc).splitlines()[-1][:200]))
            log.error("%s", exc)
            continue
        log.info("latent_slider %s: %s", label, {k2: v for k2, v in res.items() if k2 != "training"})
        lat, dec = res["latency"], res["decode_only"]
        ctx.note(f"{label}: load average {res.get('load_average')} (1, 5, 15 min) when the latency "
                 f"was measured on {os.cpu_count()} cores; `decode only` shows what the load alone does "
                 "to a 0.3 ms call.")
        rows.append(Row(
            f"{label}: slider move to pixels",
            {"moves": lat["n"], "p50 ms": round(lat["p50_ms"], 2), "p95 ms": round(lat["p95_ms"], 2),
             "max ms": round(lat["max_ms"], 1), "decode only p50 ms": round(dec["p50_ms"], 3),
             "decode only p95 ms": round(dec["p95_ms"], 3),
             "GUI CPU ms/move": round(res["gui_cpu_ms_per_move"], 2)},
            target=f"p95 < {P95_MS:g} ms",
            status=Row.verdict(lat["p95_ms"] < P95_MS),
        ))
        tr = res.get("training")
        if tr:
            ok = tr["ratio"] >= MIN_RATIO
            rows.append(Row(
                f"training {tr['net']} on {tr['data']} while dragging ({label} decoder)",
                {"alone img/s": round(tr["alone_images_per_s"]), "dragging img/s": round(tr["drag_images_per_s"]),
                 "ratio": round(tr["ratio"], 3), "moves/s": round(tr["moves_per_s"], 1),
                 "frames shown/s": round(tr["frames_per_s"], 1)},
                target=f"ratio >= {MIN_RATIO:g}",
                status=Row.verdict(ok),
            ))
            lag = tr.get("lag_while_training") or {}
            if lag:
                rows.append(Row(
                    f"{label}: slider move to the next new frame while training",
                    {"moves": lag["n"], "p50 ms": round(lag["p50_ms"], 2), "p95 ms": round(lag["p95_ms"], 2),
                     "max ms": round(lag["max_ms"], 1)},
                    note="60 Hz drag; a frame can show a later move than the one timed",
                ))
            blocks = ", ".join(f"{b['phase']} {b['images_per_s']:.0f}" for b in tr["blocks"] if b["phase"] != "warmup")
            ctx.note(f"Training blocks in order (images/s): {blocks}.")
    return rows
