"""Label tab, the live loop: training speed with the on-screen prediction refreshing, and GUI stalls.

This module is also its own probe: ``python -m bench.benchmarks.label_live --size 1024 --seconds 60``
opens the real Label tab offscreen and prints one JSON line.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from pathlib import Path

from bench.harness import Context, Row, SkipBenchmark, Status, run_probe

log = logging.getLogger(__name__)

ORDER = 48
TITLE = "Label tab: live training while the prediction refreshes"
SIZE = 1024
SECONDS = 40
SPEED_TARGET = 0.85
STALL_P99_MS = 50.0
REFRESH_MEDIAN_S = 4.0  # "every few seconds"

ABOUT = f"""
**What.** While the Label tab trains its U-Net on a few painted strokes, the prediction over the
{SIZE} x {SIZE} image on screen is redrawn from the trainer's latest weights (on the panel's
prediction thread, in torch bfloat16 where the CPU has it natively (this one), else ONNX Runtime, as
often as the panel's refresh schedule allows: predictions may
run the share of the wall time ("duty") that keeps the training at 90% of its speed, measured from the
trainer's per-step log (the rate over all recent steps over the rate of the steps no prediction
overlapped), within 0.05-0.45 and 0.12 until measured; at least 2 s apart; the training's steps run on
one thread while a prediction runs), and
the person may keep painting. Three questions: how often does the prediction
on screen refresh (seconds between consecutive redraws of the whole view; the stroke's-neighbourhood
refreshes that come first after a stroke are not counted), does the refresh starve the training
(crops trained per second, refresh on vs refresh off), and does the GUI stay responsive (lateness
of a 10 ms timer in the GUI thread)?

**How.** A subprocess with `QT_QPA_PLATFORM=offscreen` opens the real `LabelPanel` on a project
with one {SIZE} x {SIZE} RGB image and a few strokes per class, and trains {SECONDS} s twice
(blocks alternate so machine load hits both alike): with the model layer hidden ("Hide model layer": no
prediction is computed), and as the app runs by default (prediction shown). Training speed is crops per second over each block, from the trainer's
step count; a `StallMeter` records the GUI timer's lateness during the refreshing blocks. In every
block a scripted stroke is painted every 3 s (as a person would: saved, sent to the trainer), so
the refresh after strokes is included and the strokes' own cost falls on both sides.

**Target (issue 13).** The prediction refreshes "every few seconds": median interval at most
{REFRESH_MEDIAN_S:g} s; training at least {SPEED_TARGET:.0%} of its speed without the refresh;
GUI timer p99 lateness under {STALL_P99_MS:g} ms. All three from the same run, side by side. Where this CPU
predicts in bfloat16, the bench runs a second time with the prediction forced to ONNX Runtime float32
(`--fp32`; rows prefixed so): what a CPU without native bfloat16, most laptops, gets.
"""

FINDINGS = """
- 2026-12-07 19:40-19:46 UTC, **the repeat, busier** (load 3.3 before, 4.2 after; the other engineer's work
  beside it; the training ran 14-17 crops/s alone where the run below had 20-21), same code, `LABEL_LIVE_DUMP=F
  flock /work/bench.lock python -m bench --only label_live -v --no-write` (not written to the table): **bfloat16
  3.60 s (pass)**, p90 5.3 s, 0.56 CPU-s, training **0.89** (14.1 vs 15.9), GUI p99 7.3 ms; **float32 8.73 s
  (FAIL)**, p90 13.1 s, 8 intervals, 0.87 CPU-s a prediction but 1.6-2.2 s of wall time each (the process no longer
  had a core to spare), duty 0.13-0.24, training **0.88** (14.7 vs 16.7), GUI p99 5.5 ms. Here the trainer's log
  read high (0.91 over each block, 0.94-0.95 at the ends, against the blocks' 0.86-0.89), as the earlier rounds
  saw under load. So float32 meets 4 s on a quiet-ish machine (load ~3) and not at load ~4: its refresh costs 0.87
  CPU-s, and under load that is ~2 s of wall time, which at the duty the training allows is 8-9 s between
  refreshes. Seen in the dumps, not fixed: each refreshing block starts with the log's window still holding the
  hidden-layer block's steps, where predictions ran a small share of the time, so its first cost estimates are
  noisy (the duty fell 0.24 -> 0.13 at the start of one block while the log read 0.955 kept): a floor on that share
  before the cost is re-estimated would steady it; with few refreshes a block (5 here) the duty, rising x1.5 per
  refresh, does not climb back within the block.
- 2026-12-07 19:31-19:37 UTC, **the full run after this round's changes** (another engineer's benchmark had
  held the lock until 19:31; load 2.8 before, 3.1 after; the niced photo-denoiser run on), `LABEL_LIVE_DUMP=F
  flock /work/bench.lock python -m bench --only label_live -v`: **bfloat16 median refresh 2.11 s** (p90 3.13 s, 30
  intervals; 3.70 before), 0.56 CPU-s a prediction, training **0.93** of its speed (18.8 vs 20.3 crops/s), GUI
  p99 4.6 ms; **ONNX Runtime float32 (forced): 3.33 s (pass; 6.09 before)**, p90 4.17 s, 22 intervals, **0.88
  CPU-s a prediction** (1.06), training **0.98** (20.3 vs 20.7), GUI p99 3.9 ms (max 44 ms): all six rows pass.
  What changed: the shared ORT arena (float32's CPU), the training's page faults gone (glibc thresholds), the duty
  rising x1.5 per refresh instead of x1.25 (it ended at 0.32 / 0.25-0.35 here; the first block no longer spends
  ~20 s at 0.12-0.2). Block by block (bench ratio against the hidden-layer blocks beside it / the trainer's log over
  the block): bfloat16 0.955 / 0.92 and 0.91 / 0.93 (the gap now both ways, within +-0.04); float32 0.96 / 0.91
  and 0.99 / 0.90: there the refreshing blocks' clean steps still ran 4-10% faster than the hidden-layer blocks'
  (0.34-0.36 s vs 0.38-0.39), a residual the malloc fix did not remove (not isolated: ORT's own threads and arena
  are the float32 path's difference). The log errs low there, so the training keeps more than the 0.9 it aims at,
  never less; the duty is what it gives away. One run on a quiet-ish machine: under load 4-6.5 the earlier rounds
  saw the log read high and 4 s missed (below), not re-measured this round.
- 2026-12-07 18:19-18:37 UTC, **why the trainer's log read ~0.04-0.1 under the blocks on a quiet machine** (issue
  13's fifth round): three float32 probes with the new `--dump` (each block's steps, their thread counts, the
  predictions' spans from the trainer's sharing flag, the strokes, the schedule's decisions), `flock
  /work/bench.lock python -m bench.benchmarks.label_live --size 1024 --seconds 40 --fp32 --dump F`, load 1.7-3.5
  (another engineer working, the niced photo-denoiser run on): per refreshing block the bench's ratio against the
  hidden-layer blocks beside it / the in-process measure: 0.66 / 0.92 (load rising 1.7 -> 3.5), 1.01 / 0.91,
  1.005 / 0.89, 0.99 / 0.92, 0.99 / 0.93, 0.915 / 0.87 (that block ran at duty ~0.4). Where the load held, 5 of 5
  read low by 0.06-0.1. Not the measure: the steps a prediction touched were 1.3-1.6x slower than the others
  (0.48-0.56 s vs 0.35-0.40), and a local reading (each touched step against the median of the 3-6 clean steps just
  before it) gave 0.90-0.95 too; the time-weighted share of steps outside the predictions (+0-0.8 s after each)
  0.91-0.95. What differed was the hidden-layer blocks: their steps took 0.40-0.45 s where the refreshing blocks'
  clean steps took 0.35-0.40, so the training beside the refreshes made up what the refreshes cost it. The cause:
  glibc's malloc. The trainer alone took 11-16 thousand minor page faults a step (its large blocks mapped afresh
  and unmapped again; ~50 MB zeroed by the kernel a step) and 1.60-1.87 steps/s; with 8-12 MB arrays freed beside
  it every second, as a prediction's are (they raise glibc's dynamic mmap threshold), 7 thousand and 1.79-1.86; with
  the thresholds fixed (environment variables), 16 a step and 1.93-2.00 (one process each, 15 s windows, load
  ~3.5; speeds under load 4 later swung too much to compare). `aestudio/_malloc.keep_freed_memory` now sets them
  when the live trainer starts (mmap 32 MB, trim 128 MB, top pad 64 MB: set while running, the thresholds alone
  left 6-9 thousand faults, the pad 0-23). Also measured on the way: each snapshot's ONNX Runtime session now draws
  on one process-wide arena (0.89 vs 0.96 CPU-s a 1024^2 float32 prediction, alternating in one process; the
  bench's CPU per prediction 1.06-1.10 -> 0.88-0.91); one 1024^2 tile instead of 2 x 2 of 528 was slower (1.13 vs
  1.02 CPU-s); the per-tile ORT runs are ~0.22 CPU-s each, at the core's float32 peak, so float32 has little else to
  give. With the arena (before the malloc fix), the float32 probes' medians were 5.85 s (load rising to 3.5), 4.83 s
  and 3.04 s.
- 2026-12-07 16:19-16:22 UTC, **the repeat** (the machine was busy in the run below), same command and
  method, load 3.2 before and **6.5 after** (another engineer's work started during it): median refresh
  **7.3 s (FAIL)** (p90 12.2 s, 9 intervals), 0.61 CPU-s a prediction, training **0.85** of its speed (10.80
  vs 12.70 crops/s, at the floor), GUI p99 9.5 ms (max 76 ms); the table above is this run's. As the load
  rose the steps a prediction touched took 1.09 and 0.85 s against 0.66 for the others (0.67-0.73 in the
  run below) and the first step after a prediction 0.85 / 0.77 s against 0.64, so the trainer's log read
  0.86 / 0.89 kept and the schedule held the duty at 0.15-0.24 (the bench agreed: 0.85): it spent the
  refresh rate to keep the training's speed, as it should. So **4 s is met at load ~4-5 (3.4 s, below) and
  not at 5.6-6.5 (7.3 s)**: a 1024^2 refresh still costs 0.6 CPU-s of the process's share of 2 shared
  cores, and at that load a refresh every 4 s would cost the training more than 15%.
- 2026-12-07 16:13-16:16 UTC, **shared machine** (load 4.2 before, 5.2 after: other engineers' niced
  trainings and zoo builds beside it), `python -m bench --only label_live -v`, this round's method (below):
  median refresh **3.38 s** (p90 7.6 s, 17 intervals), 0.60 CPU-s a 1024^2 prediction, the duty at its 0.45
  cap in both refreshing blocks, training **0.92** of its speed (9.80 vs 10.70 crops/s), GUI p99 10.0 ms
  (max 62 ms): **all three targets met** (the table of that run; the repeat above replaced it). Block by block the refreshing blocks ran 10.0 and
  9.6 crops/s beside hidden-layer blocks of 10.4 and 11.0 (0.96 / 0.87 against the block before), while the
  trainer's own log read 0.96 / 0.96: in the second refreshing block the steps no prediction touched were
  ~8-12% slower than in the hidden-layer block before it at the same load (0.81 vs 0.72 s; the first one
  after a prediction 0.90 s), a cost outside the predictions' own steps that the in-process measure does
  not see. Hence its target of 0.9 for the bench's 0.85.
  What changed. (1) **A refresh costs 0.60 CPU-s instead of 1.08.** Profile of the old path (1024^2, one
  thread, quiet): ONNX Runtime's runs 0.88 CPU-s (3 x 3 tiles of 368 at 97 ms; the U-Net's ~35 k
  multiply-adds per pixel ran at ~93 GFLOP/s, the core's float32 peak, so no session option had anything
  left to give: graph optimisation is already ORT_ENABLE_ALL, NCHWc, arena on), tiling and softmax ~0.08,
  the snapshot's load (fold, weight write, session) ~0.03, argmax and entropy ~0.01, the two layers ~0.05
  (RGBA then premultiplied). Now: the layers from lookup tables (~4 ms); 2 x 2 tiles of 528 (1.11 M pixels
  instead of 1.22 M: ORT 0.95 -> 0.84 CPU-s); and, on this CPU (AVX512-BF16), the snapshot's folded net in
  torch bfloat16 channels-last (`live_session.Bf16Snapshot`): 0.55-0.6 CPU-s for the probabilities, 0.61
  vs 1.02 CPU-s for the whole `predict_image` side by side at load 3.5 (torch float32 channels-last 1.1,
  contiguous 1.5); 99.99% of the pixels' classes as float32's, probabilities within 0.004 (a U-Net trained
  60 steps on strokes). (2) **The slowdown measured per step**: the trainer logs each step's period and
  whether a prediction overlapped it (`training/steptimes.py`); kept = the rate over the last 30 s of steps
  over the rate of the steps neither touched by a prediction nor right after one; cost per unit of duty =
  (1 - kept) / the share of the steps' time predictions ran; duty for 0.9, 0.05-0.45, rising x1.25 per
  refresh. Runs on the way (30 s blocks x 2 per mode unless full; load 3.5-7.7 throughout, never quiet):
  ORT, cap 0.35: median 10.3 s, ratio 0.80, in-process 0.94 / 0.86 (load 5.4 -> 7.7) and 7.3 s, 0.86,
  in-process 0.91 / 0.95; bfloat16, cap 0.35: 7.2 s, **0.70** (14.7 / 10.4 / 14.1 / 9.9 crops/s, off / on
  alternating, load 3.5 -> 5.4) where the in-process measure said 0.95 / 0.92, not explained; 6.3 s, 0.81
  (load drifting 4.7 -> 6.1; 0.86 / 0.88 against the block before), in-process 0.93 / 0.88; 4.6 s, 1.03,
  in-process 0.99 / 0.89; the full bench, 4.50 s (FAIL), 0.90, in-process 0.92 / 1.00 with the duty at the
  cap, so the cap went to 0.45; a Stop and Train between blocks read as cost then (the duty fell 0.32 ->
  0.16 at kept 0.95 in a probe): busy is now the share of the steps' own time; cap 0.45: 3.8 s, 1.13, then
  the full run above. Reading: the refresh meets 4 s here at load 4-5 because a refresh got cheaper (0.6
  CPU-s) and the duty may rise where the training keeps its speed; the bench's own ratio swings by +-0.15
  between such runs (one of these eight read 0.70), so the 0.85 floor is met in this run, not with a wide margin.
  The zoomed-in view's fixes (its edge faded into the older prediction; Accept of the whole image) are not
  exercised here (the whole image is in view).
- 2026-12-07 14:37-14:40 UTC, **quiet machine** (load 1.8 before, 3.0 after; only the niced photo-denoiser
  run beside it), the schedule as it shipped then (ONNX Runtime, duty capped at 0.15): median refresh **7.6 s** (p90 11.3 s, 9 intervals), 1.08
  CPU-s a 1024^2 prediction, the duty at its 0.15 cap, training **0.94** of its speed (16.3 vs 17.4
  crops/s), GUI p99 4.8 ms. So on a quiet machine too the cap, not the training's speed, holds the
  refresh above 4 s: at 0.94 the training has room for a duty near 0.3 (~4 s) here, but under load 7
  a duty of 0.21 kept only 0.79, and the in-process measure that should tell the two apart is not yet
  trustworthy (above). The 4 s target stays failed rather than raising the cap on one quiet run.
- 2026-12-07 13:27-14:11 UTC, **shared machine** (load 6-13: labelq's label_quality contenders, photodn's
  probes), `python -m bench --only label_live`, after this round's changes: the refresh schedule
  (`label_schedule.RefreshSchedule`, replacing `PREDICT_CPU_SHARE`), the training on one thread while a
  prediction runs (`LiveTrainer.sharing`), the trainer's thread count chosen by timing
  (`training/threads.py`), the stroke's neighbourhood predicted first (not counted here), view-only
  prediction when zoomed in (not exercised here: the whole image is in view). Runs in order:
  load 10-12, target 0.9, prior duty 0.2: median 10.1 s, ratio 0.75; load 6.2-7.6, target 0.9: median
  12.8 s, ratio 0.79 (duty 0.21, measured rho 0.52-0.54); target 0.95: 8.0 s, 0.90 (duty 0.11-0.13,
  probe run) and 9.1 s, 0.63 (rho measured 1.02 in one block: duty 0.5, then 0.23; the thread chooser
  also switched to 1 thread); with the duty capped at 0.15 and prior 0.12: 6.7 s, 0.79 (the chooser
  switched a refresh block to 1 thread: 5.2 vs 7.6 crops/s) and, with the chooser's margin at 25%,
  **what ships: median 7.4 s (p90 7.7), ratio 0.89 (7.1 vs 8.0 crops/s), GUI p99 12 ms, max 75 ms at
  load 6.5-6.9** (the table above). Reading: the training kept about 1 - duty of its speed whatever
  rho the schedule measured in-process (0.5-1.0), so the cost lies partly outside the prediction's own
  window and a few cycles' step counts are too noisy to trust: the duty is capped at 0.15 and starts at
  0.12; a 40 s block never gathered the 8 steps between predictions the measurement needs at this load.
  **The 4 s target is not met on this loaded machine**: one 1024^2 refresh costs ~1 CPU-s (0.72 CPU-s
  per megapixel in ORT on one thread, measured; post-processing ~0.05), and at load 7 its wall time was
  ~1.5-2 s (9 s at load 12), so a refresh every 4 s needs a duty of 0.4-0.5, which cost the training
  ~40%. On a quiet machine the old 12% budget refreshed every 6.1 s at ratio 1.07; the schedule's 0.15
  cap gives ~7 s there (not re-measured: the machine was never quiet this session). Under load 10-12
  the trainer's two threads ran 0.09-0.15 steps/s and one 0.33-0.54 (the chooser takes 1 there).
  Start-up (the first batch of a 1024^2 image): 38 CPU-s -> 2.2 (strokes grown once per batch, not once
  per crop, and Felzenszwalb on the image shrunk to <= 512^2).
- 2026-12-07 11:52-11:55 UTC, **quieter machine** (load 1.9 before, 2.9 after: only a niced one-thread
  training ran beside it), `python -m bench --only label_live`: median refresh **6.1 s** (p90 6.4 s, 12
  intervals), 1.06 CPU-s per 1024^2 prediction, training 1.07 of its speed with the refresh (18.6 vs
  17.4 crops/s), GUI p99 4.5 ms. The 12% budget is the limit: the speed ratio has room (>= 0.85), so
  a larger share or a cheaper prediction (the visible viewport only) would bring it under 4 s.
- 2026-12-07, shared 2-core machine (1-minute load average 6.5-11 from other engineers' work), 40 s
  blocks. First version (a refresh every 2 s, the prediction on 2 torch threads): ratio 0.49, GUI p99
  29 ms. With predictions held to 15% of the wall time (the next refresh waits 5.7x the last one's
  cost) and run on 1 torch thread while training (torch's OpenMP setting is per thread, so the
  training keeps 2): ratio 0.72 in two runs (0.57 in one run in between, before the strokes were
  painted in both modes), GUI p99 22-26 ms, max 230-500 ms (the GUI thread waiting for a core at load
  ~10). **The 85% target is not met here**; under this load the figure swings by +-0.15 between runs.
  Not yet measured on an idle machine.
- A later probe run (`python -m bench.benchmarks.label_live --size 1024 --seconds 40`, load 8.9-11,
  after the layers moved off the GUI thread and examples to float16): ratio 0.95 (5.6 vs 5.9 crops/s),
  GUI p99 22 ms, max 213 ms, but only 2 refreshes in 80 s: under such load one 1024^2 prediction on
  one thread takes several seconds, and the 15% duty cycle then spaces refreshes tens of seconds
  apart. The duty cycle trades refresh rate for training speed; "every few seconds" holds only
  on a machine that is not loaded by others (not measured here).
- 2026-12-07 ~07:40 UTC, shared machine (load 4.6-5.1 on 2 cores), two probe runs back to back
  (`python -m bench.benchmarks.label_live --size 1024 --seconds 30 --blocks 2`, the second with
  `OMP_WAIT_POLICY=PASSIVE`): ratio 1.03 (8.80 vs 8.53 crops/s) and 0.97 (8.53 vs 8.80), GUI p99
  5 ms (max 41 / 75 ms), 4 refreshes in the 60 s of refreshing blocks each. **The 85% target holds at
  this load** with the 1-thread, 15%-duty-cycle prediction already in the panel, and OpenMP's passive
  wait changed nothing measurable here, so it is not set. The price is the refresh rate: one 1024^2
  prediction on one thread every ~15 s under this load, not "every few seconds".
- 2026-12-07 ~09:40-11:17 UTC, shared machine (load 6-12; other engineers' benchmarks), the refresh
  interval measured (seconds between consecutive redraws within a refreshing block). **Before**
  (main at c321ccf: torch, tiled at 512 px, 15% of the wall time; load 10-12.5): 3 refreshes in
  60 s, one interval of 12.0 s, ratio 1.02 (6.79 vs 6.66 crops/s). Why so slow: one 1024^2
  prediction cost 3.2 CPU-s on one torch thread (fixed-step 512-px tiles computed 2.25x the pixels),
  its wall time swelled with the load, and the next refresh waited 5.7x that wall time.
  **ONNX Runtime** with the snapshot's weights written into a graph exported once (in a child
  process), 3 x 3 tiles of 368 px: 0.9-1.2 CPU-s per prediction (0.92 vs 3.2 side by side with
  torch, one thread each). Budgets tried with it, each one full run (40 s blocks x 2 per mode):
  12.5% of the machine's cores (load 10-12): median 3.9 s, p90 9.8 s, ratio 0.68; 12.5% of the
  process's CPU time (load 8-10.7 and 7.6-7.8): median 9.0 / 6.1 s, ratio 0.63 / 0.65; 6% of the
  process's CPU time (load 5.8-6.3): **median 4.9 s, p90 19.6 s, ratio 0.87 (7.5 vs
  8.6 crops/s), GUI p99 10 ms, max 97 ms**, but see the fix below.
- The predictions cost the training more than the CPU they take. In one process (training alone vs
  beside predictions at the same rule, 15 s blocks x 3-4): at equal CPU, ORT and torch cost the same
  (0.72 each, load ~10); ORT without its memory arena kept 0.65 of the training's speed, with it 0.83
  (load ~8), so the arena is on. What is left of the excess (cache and memory bandwidth on 2 shared
  cores are the likely cause; not isolated) is why the share is 6% and not 12.5%. The prediction's
  CPU comes out of the training's: the training uses both cores, and Linux's autogroup scheduler (on
  here) shares the CPU per session, so under load our threads split our session's share; hence a
  budget in the process's CPU time, not the machine's.
- Fixed after those runs: while one prediction ran, the 2 s timer queued the next (the budget was
  set only when a result arrived), so predictions ran in back-to-back pairs: the 4.9 s median at 6%
  was short intervals inside pairs between long gaps (6 refreshes in 80 s). With the fix, same
  command: **12% of the process's CPU time, what ships** (load 3.3-4.1): median 10.6 s, p90 13.3 s,
  ratio **0.93** (9.0 vs 9.7 crops/s), GUI p99 8.7 ms, max 138 ms (the table above); 20% (load
  2.9-5.2): median 8.5 s, p90 10.9 s, ratio 0.85, at the edge, so not taken. The process got ~0.8
  of a core at load 4 (10.6 s = 1.04 CPU-s / (0.12 x r)); with both cores (an idle 2-core machine)
  the rule gives ~4.3 s.
- Honest reading: "every few seconds" for a 1024^2 image is not met on this loaded machine (10.6 s
  at load 4, from 12-15 s before, with the training at 0.93 instead of ~1.0); the 4 s target is
  not. A prediction costs ~1 CPU-s and, on a shared machine, comes out of the training's CPU. The first run's first refresh also waits
  for the graph's export child (~30 s under load, once per net shape and machine; torch meanwhile).
  GUI stalls: importing `onnx` in the app held the GIL 2.3 s (GUI max lateness 2.2 s in one run);
  the export moved to a child, max 97-183 ms since.
"""


def run(ctx: Context) -> list[Row]:
    try:
        import PySide6  # noqa: F401

        import aestudio.gui.panels.label  # noqa: F401
    except ImportError as exc:
        raise SkipBenchmark(f"the GUI cannot be imported here: {exc}") from exc
    size = ctx.pick(SIZE, 256)
    seconds = ctx.pick(SECONDS, 6)
    dump = os.environ.get("LABEL_LIVE_DUMP")  # a path stem: each probe's blocks, steps and spans (see --dump)
    res = run_probe("bench.benchmarks.label_live", ["--size", str(size), "--seconds", str(seconds),
                                                    *(["--dump", f"{dump}-main.json"] if dump else [])],
                    env={"QT_QPA_PLATFORM": "offscreen"}, timeout=int(seconds * 4 + 300))
    log.info("label_live: %s", res)
    rows = _rows(ctx, res, size, "")
    if res.get("bf16"):  # this CPU predicts in bfloat16: also measure the path of CPUs without it (most laptops)
        fp32 = run_probe("bench.benchmarks.label_live", ["--size", str(size), "--seconds", str(seconds), "--fp32",
                                                         *(["--dump", f"{dump}-fp32.json"] if dump else [])],
                         env={"QT_QPA_PLATFORM": "offscreen"}, timeout=int(seconds * 4 + 300))
        log.info("label_live --fp32: %s", fp32)
        rows += _rows(ctx, fp32, size, FP32_PREFIX)
    return rows


FP32_PREFIX = "ONNX Runtime float32 (CPUs without native bfloat16): "


def _rows(ctx: Context, res: dict, size: int, prefix: str) -> list[Row]:
    ratio = res["with_refresh_cps"] / max(res["without_refresh_cps"], 1e-9)
    stall = res["stall"]
    median, p90 = res["interval_median_s"], res["interval_p90_s"]
    rows = [
        Row(f"prediction refresh interval while training, {size}x{size}",
            {"median s": round(median, 2), "p90 s": round(p90, 2), "intervals": res["intervals"],
             "CPU s per prediction": round(res["predict_cpu_s"], 2),
             "duty (end)": round(res["duty"][-1][0], 2) if res.get("duty") else "–",
             "kept, in-process (end)": round(res["duty"][-1][1], 2) if res.get("duty") and res["duty"][-1][1] else "–"},
            target=f"median <= {REFRESH_MEDIAN_S:g} s", status=Row.verdict(median <= REFRESH_MEDIAN_S)),
        Row(f"training speed, {size}x{size}, refresh on / off",
            {"crops/s on": round(res["with_refresh_cps"], 2), "crops/s off": round(res["without_refresh_cps"], 2),
             "ratio": round(ratio, 2), "refreshes": res["refreshes"]},
            target=f">= {SPEED_TARGET:g}", status=Row.verdict(ratio >= SPEED_TARGET)),
        Row("GUI timer lateness while training and refreshing",
            {"ticks": stall["ticks"], "p50 ms": round(stall["p50_ms"], 1), "p99 ms": round(stall["p99_ms"], 1),
             "max ms": round(stall["max_ms"], 1)},
            target=f"p99 < {STALL_P99_MS:g} ms", status=Row.verdict(stall["p99_ms"] < STALL_P99_MS)),
    ]
    rows = [dataclasses.replace(r, case=prefix + r.case) for r in rows]
    path = "ONNX Runtime float32 (forced, --fp32)" if prefix else ("bfloat16" if res.get("bf16") else "ONNX Runtime float32")
    ctx.note(f"{path}: machine load (1-minute average) {res['load_before']:.1f} before and {res['load_after']:.1f} "
             f"after, on {res['cores']} cores; torch threads {res['threads']}.")
    return rows + ([Row(prefix + "note", {}, target="", status=Status.INFO, note=res["note"])] if res.get("note") else [])


# ---------------------------------------------------------------- the probe (subprocess)


def _probe(argv: list[str]) -> None:
    import argparse
    import json
    import tempfile
    import time

    import numpy as np
    import torch

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=SIZE)
    ap.add_argument("--seconds", type=float, default=SECONDS)
    ap.add_argument("--blocks", type=int, default=2, help="alternating blocks per mode")
    ap.add_argument("--fp32", action="store_true", help="predict with ONNX Runtime float32, as a CPU without bf16")
    ap.add_argument("--dump", type=Path, default=None,
                    help="write each block's step log, prediction spans and strokes here (JSON), to check the "
                         "in-process measure against the blocks")
    args = ap.parse_args(argv)

    from aestudio.data.io import write_image
    from aestudio.gui.app import application
    from aestudio.gui.panels.label import LabelPanel
    from aestudio.gui.stallmeter import StallMeter
    from aestudio.gui.workers import TaskRunner

    load_before = os.getloadavg()[0]
    app = application()
    tmp = Path(tempfile.mkdtemp(prefix="aestudio-label-live-"))
    rng = np.random.default_rng(0)
    n = args.size
    yy, xx = np.mgrid[0:n, 0:n] / n
    img = np.stack([0.3 + 0.2 * np.sin(9 * xx), 0.35 + 0.2 * np.cos(7 * yy), 0.4 + 0.1 * xx], axis=2)
    blobs = ((xx * 6) % 1 - 0.5) ** 2 + ((yy * 6) % 1 - 0.5) ** 2 < 0.06
    img[blobs] += 0.35
    img += rng.normal(0, 0.03, img.shape)
    write_image(tmp / "scene.png", np.clip(img, 0, 1).astype(np.float32))
    tasks = TaskRunner()
    panel = LabelPanel(tasks)
    if args.fp32:
        panel.nets.bf16 = False
    panel.resize(1280, 800)
    panel.show()
    panel.create_project(tmp / "project")
    panel.on_images([tmp / "scene.png"])

    def wait(cond, timeout: float) -> None:
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.005)

    wait(lambda: panel.image is not None, 120)
    project = panel.project
    inside = np.argwhere(blobs)
    outside = np.argwhere(~blobs)

    strokes: list[float] = []  # when each scripted stroke was painted (time.monotonic, as the step log)
    shares: list[tuple[str, float]] = []  # ("set" | "clear", time.monotonic()) of the trainer's sharing flag

    def hook_sharing() -> None:  # every prediction (scheduled or not) sets it while it runs
        flag = panel.trainer.sharing
        if getattr(flag, "_bench_hooked", False):
            return
        set_, clear = flag.set, flag.clear

        def logged_set() -> None:
            shares.append(("set", time.monotonic()))
            set_()

        def logged_clear() -> None:
            shares.append(("clear", time.monotonic()))
            clear()

        flag.set, flag.clear, flag._bench_hooked = logged_set, logged_clear, True

    def paint(k: int) -> None:
        strokes.append(time.monotonic())
        for value, pts in ((1, inside), (0, outside)):
            y, x = pts[(k * 7919 + value * 104729) % len(pts)]
            stroke = project.stroke(0, value)
            stroke.dab(y, x, 4)
            stroke.dab(y + 3, x + 3, 4)
            stroke.end()
        panel.canvas.set_labels(project.mask(0))
        panel._after_edit()

    for k in range(6):
        paint(k)
    speeds: dict[bool, list[float]] = {True: [], False: []}
    meter = StallMeter(10)
    late: list[float] = []
    refreshes = 0
    blocks: list[dict] = []  # per block: mode, speed, the trainer's thread count at its end, load
    duties: list[tuple[float, float | None]] = []  # the refresh schedule's duty and measured speed kept per block
    shown: list[float] = []  # when each prediction reached the screen (the panel's result callback)
    intervals: list[float] = []  # between consecutive ones within a refreshing block
    cpu: list[float] = []  # each prediction's CPU seconds on its thread
    on_result = panel._predicted  # looked up at every submit, so wrapping the attribute sees them all

    def predicted(prediction) -> None:
        shown.append(time.perf_counter())
        cpu.append(float(getattr(prediction, "cpu_s", float("nan"))))
        on_result(prediction)

    panel._predicted = predicted
    dumps: list[dict] = []
    decisions: list[list] = []  # after each refresh: (time, duty, kept, cost) as the schedule decided
    finished = panel.schedule.finished

    def decided(now, *rest):  # noqa: ANN001, ANN202 - as RefreshSchedule.finished
        out = finished(now, *rest)
        decisions.append([now, panel.schedule.duty, panel.schedule.kept, panel.schedule.cost])
        return out

    panel.schedule.finished = decided
    for block in range(2 * args.blocks):
        refresh = block % 2 == 1
        panel.layer_box.setCurrentIndex(0 if refresh else 2)  # "Hide model layer" computes no prediction
        made = panel.predictions_made
        panel.start_training()
        wait(lambda: panel.trainer is not None and panel.trainer.step >= 2, 120)  # past the start-up
        hook_sharing()
        step0, t0, m0 = panel.trainer.step, time.perf_counter(), time.monotonic()
        first_shown = len(shown)
        if refresh:
            meter.start()
        next_stroke = t0 + 3.0
        while time.perf_counter() - t0 < args.seconds:
            app.processEvents()
            time.sleep(0.002)
            if time.perf_counter() > next_stroke:  # both modes: the strokes' own cost is not the refresh's
                paint(100 + block * 50 + int(next_stroke))
                next_stroke += 3.0
        steps = panel.trainer.step - step0
        dt = time.perf_counter() - t0
        m1 = time.monotonic()
        logged = panel.trainer.step_log.steps(since=m1 - dt)
        if args.dump is not None:
            dumps.append({"refresh": refresh, "t0": m0, "t1": m1, "steps_counted": steps,
                          "steps": [[s.end - s.seconds, s.end, s.shared, s.threads] for s in logged],
                          "spans": _spans(shares, m0, m1), "scheduled": [list(x) for x in panel.schedule._spans
                                                                         if x[1] >= m0],
                          "strokes": [t for t in strokes if m0 <= t <= m1],
                          "duty": panel.schedule.duty, "kept": panel.schedule.kept,
                          "decisions": [d for d in decisions if m0 <= d[0] <= m1]})
        periods = {k: [s.seconds for s in logged if s.shared == k] for k in (False, True)}
        # the first untouched step after a prediction vs the later ones: an after-effect the measure would miss
        after = [b.seconds for a, b in zip(logged, logged[1:], strict=False) if a.shared and not b.shared]
        later = [b.seconds for a, b in zip(logged, logged[1:], strict=False) if not a.shared and not b.shared]
        if refresh:
            duties.append((panel.schedule.duty, panel.schedule.kept))
            log.info("schedule: duty %.3f kept %s cost %s", panel.schedule.duty, panel.schedule.kept, panel.schedule.cost)
            meter.stop()
            late.extend(meter.late_ms)
            refreshes += panel.predictions_made - made
            times = [t for t in shown[first_shown:] if t <= t0 + dt]
            intervals.extend(np.diff(times).tolist())
        panel.stop_training()
        wait(lambda: not panel.worker.running, 120)
        speeds[refresh].append(steps * panel.trainer.cfg.batch_size / dt)
        chooser = panel.trainer._threads
        blocks.append({"refresh": refresh, "crops_s": round(speeds[refresh][-1], 2),
                       "threads": chooser.current if chooser is not None else None,
                       "load": round(os.getloadavg()[0], 1),
                       # the trainer's own step log: mean period of the steps no prediction touched / of the others
                       "clean_s": round(float(np.mean(periods[False])), 3) if periods[False] else None,
                       "shared_s": round(float(np.mean(periods[True])), 3) if periods[True] else None,
                       "shared_steps": len(periods[True]), "clean_steps": len(periods[False]),
                       "clean_first_after_s": round(float(np.mean(after)), 3) if after else None,
                       "clean_later_s": round(float(np.mean(later)), 3) if later else None})
    if args.dump is not None:
        args.dump.write_text(json.dumps(dumps))
    a = np.asarray(late or [0.0])
    panel.shutdown()
    tasks.shutdown()
    print(json.dumps({
        "with_refresh_cps": float(np.mean(speeds[True])), "without_refresh_cps": float(np.mean(speeds[False])),
        "refreshes": refreshes,
        "interval_median_s": float(np.median(intervals)) if intervals else float("nan"),
        "interval_p90_s": float(np.percentile(intervals, 90)) if intervals else float("nan"),
        "intervals": len(intervals), "predict_cpu_s": float(np.nanmedian(cpu)) if cpu else float("nan"),
        "stall": {"ticks": len(late), "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
                  "max_ms": float(a.max())},
        "load_before": load_before, "load_after": os.getloadavg()[0], "cores": os.cpu_count(),
        "threads": torch.get_num_threads(), "duty": duties, "blocks": blocks, "bf16": bool(panel.nets.bf16),
    }))


def _spans(marks: list[tuple[str, float]], t0: float, t1: float) -> list[list[float]]:
    """The (start, end) of each prediction from the sharing flag's set / clear marks, clipped to [t0, t1]."""
    out: list[list[float]] = []
    start: float | None = None
    for kind, t in list(marks):
        if kind == "set":
            start = t
        elif start is not None:
            if t >= t0 and start <= t1:
                out.append([max(start, t0), min(t, t1)])
            start = None
    return out


if __name__ == "__main__":
    _probe(sys.argv[1:])
