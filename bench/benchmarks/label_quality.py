"""Labelling quality from a few strokes: the live U-Net vs an ilastik-style random forest vs full masks.

This module is also its own probe: ``python -m bench.benchmarks.label_quality --budget 840`` makes the
set, trains the U-Net contenders side by side (one process and one torch thread each, each stopped
after ``--budget`` seconds of its own CPU time) while the forest trains, and prints one JSON line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import replace

from bench.harness import Context, Row, SkipBenchmark, Status, run_probe

log = logging.getLogger(__name__)

ORDER = 49
TITLE = "Label tab quality: a U-Net from strokes vs a random forest vs full masks"
SIZE = 128
N_IMAGES, N_TEST = 240, 60
PAINTED_SHARE = 6  # one image in this many is painted
BUDGET_S = 840  # CPU seconds per contender (issue 13: 7 minutes on 2 cores); env AESTUDIO_BENCH_LABEL_BUDGET
TARGET_SET = "photo-shapes"  # the set: real-photo textures
SETS = ("photo-shapes", "shapes-seg")
DEFAULT_CONTENDERS = ("photo-shapes:app@0", "photo-shapes:app@1", "photo-shapes:app@2", "photo-shapes:strokes",
                      "photo-shapes:full", "shapes-seg:app")

ABOUT = f"""
**What.** Mean IoU on {N_TEST} held-out {SIZE} x {SIZE} scenes (4 classes: background, circle, square,
triangle) after training on a labelling project of {N_IMAGES} such scenes of which one in
{PAINTED_SHARE} is painted by a script with a few short strokes inside objects and on the background
(about 3% of their pixels; the rest of the masks, and every other image, 255 = unlabelled). Two sets:

- **`photo-shapes`, the issue's set** (`bench/photo_scenes.py`, "a segmentation set of your own making
  with real-photo textures"): the background and each of the 2-5 objects is a random crop of one of
  the 16 natural photos that install offline with scikit-image and scikit-learn (`aestudio.zoo.photos`;
  no segmentation model of ours trains on them), scaled 0.5-2x, turned, mirrored, its brightness and
  contrast varied, drawn from the same distribution whatever it fills: only the outline tells a
  class. The target is held on this set;
- **`shapes-seg`** (`aestudio.data.procedural.render_seg`, reported beside it; the set of the earlier
  runs): flat-coloured shapes on gradients, blotches or stripes, where colour already tells an
  object from its background, so a pixel forest does well (0.31 here vs the issue's outside 0.15).

Contenders, each given the same budget:

- *random forest*: ilastik's recipe, scikit-image `multiscale_basic_features` (intensity, edges,
  texture at sigmas 1-16) per pixel and scikit-learn's `RandomForestClassifier` (100 trees) on the
  painted pixels; it finishes well within the budget;
- *U-Net, the Label tab's trainer*: `LiveTrainer` with its defaults, as the Train button runs it
  (`LiveConfig`: U-Net depth 3, 16 channels, 128-pixel crops centred on labelled pixels, flips,
  90-degree turns, brightness/contrast jitter; the strokes grown to Felzenszwalb superpixels,
  `aestudio.data.regions`, grown pixels at weight 0.5, painted ones 1; the weights it publishes, and
  the figure measures, are a moving average of the trained ones, `ema` 0.99; the column "trained
  weights" is the same run's last trained weights, i.e. the trainer without the average; the project's
  200 unpainted images are given to it too, used only by the `pseudo` option, off; see the findings for
  `input_stride`, `balance`, `pseudo`);
- *U-Net on the strokes alone*: the same trainer with growing, turns and jitter off (the trainer
  before this work: loss on painted pixels only, flips);
- *U-Net on full masks*: the Label tab's trainer given the complete masks of the same painted images
  (what a person who draws full masks would give it);
- *background everywhere*: the floor (about 82% of the pixels are background).

**Seeds.** A contender `SET:KEY@SEED` paints its strokes from a stream seeded with SEED (0: the strokes
of every run before seeds existed), and the trainer and the forest take the same seed; every seed's
U-Net is held against the forest trained on that seed's strokes, and the target is met only if every
seed meets it.

Which U-Nets run is `AESTUDIO_BENCH_LABEL_CONTENDERS` (`SET:KEY[@SEED],...`, default
`{",".join(DEFAULT_CONTENDERS)}`); the forest and the floor are computed for every set and seed named there.
`AESTUDIO_BENCH_LABEL_RESULT=FILE` keeps the probe's result in FILE, and when FILE exists rewrites the
section from it without training again.

**Budget.** `--budget` seconds of CPU time per contender (default {BUDGET_S} s = 7 minutes on 2
cores; `AESTUDIO_BENCH_LABEL_BUDGET` overrides it), everything included (superpixels, crops, steps).
Each U-Net contender runs in its own process on one torch thread, all at once: CPU time rather than
wall time, because on a shared machine a wall budget shrinks with the others' load, and one thread
because two OpenMP threads on contended cores spend most of their CPU spinning (measured: 2.1
CPU-s a step on 2 threads vs 0.45 on one at load ~5).

**Target (issue 13).** On `photo-shapes`, the Label tab's U-Net on strokes reaches at least twice the
forest's mIoU, for every seed of the strokes.
"""

FINDINGS = """
- **Every seed, with the weight average (2026-12-07 13:05-13:50 UTC, shared machine: 1-minute load 10.8
  before, 8.2 after; other engineers' tests and benchmarks ran throughout).**
  `AESTUDIO_BENCH_LABEL_CONTENDERS=photo-shapes:app@0,photo-shapes:app@1,photo-shapes:app@2
  AESTUDIO_BENCH_LABEL_RESULT=/tmp/lq/full.json python -m bench --only label_quality`: 840 CPU-s per
  contender, the three side by side on one thread each (~0.32 of a core each, ~2,640 s wall). Each seed
  paints its own strokes (seed 0: the strokes of every earlier run) and trains its own forest on them.
  **Forests 0.266 / 0.263 / 0.253; the Label tab's trainer 0.597 / 0.638 / 0.593 = 2.24x / 2.43x / 2.34x:
  every seed meets 2x** (the closest, seed 0, by 0.065 mIoU). The same runs' last trained weights, i.e. the
  trainer without the average: 0.606 / 0.618 / 0.568 (2.28x / 2.35x / 2.24x); averaging the 4 mirror
  images on top: 0.613 / 0.658 / 0.634. 1,499-1,658 steps.
- What changed for it: the trainer publishes (and the Label tab shows, saves and exports) an exponential
  moving average of its weights, `LiveConfig.ema` = 0.99 (decay ramped as (1+n)/(10+n), BatchNorm
  statistics averaged too, the ramp restarted by new strokes so the screen follows them). Training
  itself is unchanged, so a run's "trained weights" column is the trainer before this change on the
  same trajectory: the average added -0.009 / +0.020 / +0.025 at 840 CPU-s, and +0.042 / 0.000 (240
  CPU-s) and -0.018 / +0.048 (200 CPU-s) in the probes below. It takes out the last steps' noise
  (the moment a run stops); it does not take out the spread between seeds, which is mostly in the
  trajectory: the earlier 1.94x run (seed-0 strokes, trainer seed 1: 0.516) came from the trained
  weights, and at 200-240 CPU-s the same setting ranged 0.33-0.51 across seeds.
- Probes for this change (this module, `--no-forest` or with forests, 200-240 CPU-s per contender, six
  side by side on one thread each at load 12-16, `--variants` JSON as named; two seeds each, figures
  "seed a / seed b", the weight average on in all): the average alone 0.421 / 0.329 (240 CPU-s, trainer
  seeds 0 / 1 on the seed-0 strokes), 0.329 / 0.506 (200 CPU-s, seeds 0 / 1 with their own strokes);
  FixMatch-style pseudo-labels on the unlabelled pixels of the painted crops (`pseudo` 1, teacher the
  average in eval mode on the un-jittered crop, threshold 0.9): 0.318 / 0.295 (240 CPU-s), worse, as on
  `shapes-seg` before: at these budgets the teacher's sure pixels are still often wrong and the extra
  forward pass costs 16% of the steps; plus half of each batch from the 200 unpainted images
  (`unlabelled_share` 0.5): 0.224 / 0.263, worse still (half the labelled crops per step). Depth 4
  (16 channels): 0.264 / 0.394; brightness/contrast jitter 0.25 instead of 0.1: 0.281 / 0.397 (200 CPU-s;
  both worse). So `pseudo` and `unlabelled_share` stay options, off (tested), and depth and jitter keep
  their values. Pseudo-labels at the full budget, or switched on only once the average is past ~0.5 mIoU,
  were not measured.
- **The set changed (2026-12-07 ~09:30 UTC).** Issue 13 specifies "a segmentation set of your own making
  with real-photo textures"; the figures before that were measured on `shapes-seg`, whose
  flat-coloured shapes on smooth gradients let a per-pixel forest tell object from background by
  colour (0.308 here vs the issue's outside figure of 0.15). The target is now held on `photo-shapes`
  (`bench/photo_scenes.py`: background and objects all random crops of the 16 offline photos, one
  distribution for every class, so only outlines tell classes). Same sizes (128 px, 240 images, 60
  held out, one in six painted by the same `_strokes` script, 3.1% of their pixels). The generator's
  settings were chosen once, before anything was measured on it, and not changed after; the forest
  keeps ilastik's recipe exactly. `shapes-seg` is still run and reported beside it, and its earlier
  figures are kept below.
- 2026-12-07 10:04-10:58 UTC, **shared machine** (1-minute load 7.4 before, 8.1 after; other engineers'
  tests and probes ran throughout), `python -m bench --only label_quality` at the issue's budget, 840
  CPU-s per U-Net contender, four side by side on one thread each (~25% of a core each, so ~3,180 s
  wall; the CPU-time budget makes the figures independent of that). **`photo-shapes`: forest 0.266,
  the Label tab's trainer on the strokes 0.582 = 2.19x the forest (target 0.533: met)**, 0.604 with
  predictions averaged over the 4 mirror images; strokes alone 0.296 (1.11x); full masks 0.749;
  background everywhere 0.204. `shapes-seg` beside it: forest 0.308, the Label tab's trainer 0.274
  (0.314 in the idle run below: like runs at this budget differ by up to 0.04 there), background 0.207.
  One run: the margin over 2x is 0.05, so a repeat would be worth having; the same trainer had 0.290
  after 150 CPU-s (probe below), so most of its gain comes between 150 and 840 CPU-s.
- **The repeat (2026-12-07 11:07-11:32 UTC, shared machine, load 7.7 before, 3.5 after):** the Label
  tab's trainer alone on `photo-shapes` with a different seed, `python -m bench.benchmarks.label_quality
  --budget 840 --contenders photo-shapes:app --config '{"seed": 1}'`: **0.516 = 1.94x the forest (0.266,
  the same forest), below the 2x target**; 0.549 = 2.06x with the 4 mirror images averaged; 1,676 steps.
  So over the two runs the trainer is at 0.516-0.582 (mean 0.549 = 2.06x): the target is met on
  average but not in every run; the seed alone moves the figure by 0.07. Not met reliably then (before
  the weight average; see the first finding for the seeds since).
- Why the issue's set is harder for the forest and easier for the U-Net than `shapes-seg`: the forest's
  per-pixel features (intensity, gradients, texture statistics at sigmas 1-16) are drawn from one
  distribution for every class, so they say little about the class; but every object is a different
  photo crop from its surroundings, so its outline is a sharp texture edge, and outlines are what the
  U-Net learns. In `shapes-seg` half the shapes take a colour close to the background's, so many
  outlines are faint, while colour still gives the forest "object" vs "background". Growing strokes to
  superpixels works on both (3.1% painted -> 56% labelled at 96.5% right on `photo-shapes`; 63% at 98.4%
  on `shapes-seg`); with turns and jitter it makes the difference here: 0.582 vs 0.296 for the strokes alone.
- Learning faster per CPU-second (probes: this module with `--budget 150 --contenders
  photo-shapes:app,photo-shapes:app=s2,photo-shapes:app=s2b,shapes-seg:app=s2 --variants
  '{"s2":{"input_stride":2},"s2b":{"input_stride":2,"balance":0.5}}'`, load ~11, four side by side in
  one session, 1,470 s wall; +-0.02 between like runs): the defaults 0.290 (301 steps, 0.5 CPU-s a
  step); the U-Net at half resolution (`LiveConfig.input_stride=2`: 2x2-averaged input, logits
  upsampled) 0.274 with 3.7x the steps (1,115); plus class-balanced cross-entropy (`balance=0.5`)
  0.262; `shapes-seg` at half resolution 0.263. Neither beat the defaults, so **the shipped defaults
  are unchanged**; both stay as options (tested, off). Averaging the predictions over the 4 mirror
  images (`predict_probs(flips=True)`) gained +0.008 to +0.025 in all 8 contenders measured, at 4x the
  prediction's cost: not in the Label tab's live refresh. The U-Net already has BatchNorm throughout.
- Scheduling: Linux shares the CPU between sessions first (autogroup), so the first probe's four
  contenders, started from one session, split one session's share (~10% of a core each at load ~11);
  the contenders now start in sessions of their own. The same rule makes `nice` inside a session
  meaningless to other sessions: a niced job's session still takes a full session's share.
- **On `shapes-seg`, before the set changed** (the trainer's defaults the same as today):
  - 2026-12-07 08:48-09:10 UTC, **idle machine** (load 0.7 before; only this bench ran),
    `python -m bench --only label_quality` at the issue's budget, 840 CPU-s per U-Net contender (the
    three side by side, one thread each, 1,261-1,281 s wall): forest 0.308, the Label tab's trainer
    on the strokes 0.314 (1,728 steps), strokes alone 0.227, full masks 0.507 (the issue's outside
    figure for full masks was 0.49). Growing the strokes to superpixels now puts the U-Net level with
    the forest (+0.09 over strokes alone); the 2x-forest target (0.62) is above what full masks reach
    in this budget, and is not met.
  - 2026-12-07 ~08:00 UTC, **shared machine** (1-minute load 7-8 on 2 cores: three contenders and another
    engineer's benchmark), `AESTUDIO_BENCH_LABEL_BUDGET=420 python -m bench --only label_quality`:
    420 CPU-s per U-Net contender, half the issue's 840 (7 min on 2 cores), because at this load 840
    would have taken an hour of wall time. 40 painted images, 19,509 painted pixels (3.0%).
    **Forest 0.308** (94 s); **the Label tab's trainer 0.266** (882 steps, 1,499 s wall); the same
    trainer with growing, turns and jitter off (the trainer before this work) **0.157** (861 steps);
    full masks **0.347** (849 steps). Growing the strokes to superpixels plus the augmentation lifts the
    U-Net from strokes by 70% and closes 57% of its gap to full masks, but it stays below the forest.
  - Scale of the figures: predicting background everywhere scores **0.207** here (82.8% of the test
    pixels are background), so the forest's 0.308 is +0.10 over nothing and the target, 2x the forest,
    is 0.62. Even full masks pass the forest only narrowly (0.347 here, 0.29-0.31 in the probes): the
    U-Net **underfits** (after 60 CPU-s on full masks, IoU background 0.76, circle 0.07, square 0.02,
    triangle 0.00, and no better on its own training images, 0.26), so the budget, not the labels, is
    what holds every U-Net back here.
  - What the probes measured (`python -m bench.probes.label_strokes`, one torch thread, CPU-time budget,
    64-px crops x 16, load 4-8; mIoU on the same 60 held-out scenes; +-0.02 between like runs):
    - one torch thread, not two: at load ~5 a step of 8 x 128^2 crops cost 2.1 CPU-s (3.9 s wall) on 2
      threads and 0.45 CPU-s (0.8 s wall) on one; OpenMP threads spin while waiting for a contended core
      (with `OMP_WAIT_POLICY=PASSIVE`, 2 threads: 0.56 CPU-s, 2.0 s wall, at load 9). The earlier 120 s
      runs on a loaded machine got ~80 steps; 420 CPU-s on one thread is ~900-1800 steps;
    - strokes grown to superpixels (`aestudio.data.regions`: 3.0% of the pixels painted -> 63% labelled
      at 98.4% right; grown pixels weigh 0.5): 0.155 -> 0.234 at 120 CPU-s, the largest single gain;
      weight 1.0 gave 0.225, 0.5 is kept;
    - 90-degree turns + brightness/contrast jitter 0.1: 0.220 -> 0.244 (with growing, 120 CPU-s);
    - learning rate 2e-3 / 3e-3 / 5e-3, constant or one-cycle: within the noise (0.234-0.251);
      64-px crops x 16 vs 128-px x 8: 0.206 vs 0.199 (150 CPU-s); a thinner, deeper U-Net (8 channels,
      depth 4, twice the steps): 0.178, worse;
    - a FixMatch-style term on the 200 unpainted images (pseudo-labels where the eval-mode net is >= 90%
      sure on a crop, trained on a colour-jittered + noisy view, weight 1, 8 crops a step): 0.181 vs
      0.244 at 120 CPU-s (it halves the steps), 0.266 vs 0.260 at 400 CPU-s: no gain worth its cost at
      these budgets, so it is not in the product; it may pay back once the net is past the underfitting
      stage (longer budgets, not measured);
    - full masks: 0.313 (120 CPU-s, one-cycle), 0.289 (400 CPU-s, constant lr): no better with 3x the
      budget, in line with the underfitting above.
  - What ships: the Label tab's Train button (`LiveTrainer` defaults) grows the strokes to superpixels and
    turns/jitters the crops; the CLI has `--grow-strokes`. **The 2x-forest target was not met on `shapes-seg`**; what
    would close it is a net that learns shapes from ~40 scenes within minutes of CPU (the shape
    classes are barely learnt even from full masks), not more label tricks. The Label tab's
    encoder pre-training stays an opt-in check box (0.069 vs 0.107 without it in the earlier 120 s runs).
  - Earlier (2026-12-07 morning, load ~10, 120 s wall per contender on 1 thread, ~80 steps): forest 0.308,
    U-Net on strokes 0.11, on full masks 0.21, with the encoder pre-trained for 40 s 0.07.
"""


def _budget(ctx: Context) -> float:
    env = os.environ.get("AESTUDIO_BENCH_LABEL_BUDGET")
    return float(env) if env else float(ctx.pick(BUDGET_S, 10))


CASES = {
    "app": "U-Net on the strokes, the Label tab's trainer",
    "strokes": "U-Net on the strokes alone (no growing, flips only)",
    "full": "U-Net on the full masks of the same images (the Label tab's trainer)",
}


def run(ctx: Context) -> list[Row]:
    try:
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise SkipBenchmark(f"a part is missing: {exc}") from exc
    budget = _budget(ctx)
    n, n_test = ctx.pick(N_IMAGES, 24), ctx.pick(N_TEST, 6)
    contenders = os.environ.get("AESTUDIO_BENCH_LABEL_CONTENDERS", ",".join(DEFAULT_CONTENDERS))
    saved = os.environ.get("AESTUDIO_BENCH_LABEL_RESULT")  # a probe result kept: rewrite the section without retraining
    reused = bool(saved and os.path.exists(saved))
    if reused:
        with open(saved, encoding="utf-8") as f:
            res = json.load(f)
    else:
        res = run_probe("bench.benchmarks.label_quality",
                        ["--budget", str(budget), "--images", str(n), "--test", str(n_test), "--contenders", contenders],
                        timeout=int(budget * 12 + 1800))
        if saved:
            with open(saved, "w", encoding="utf-8") as f:
                json.dump(res, f)
    contenders = ",".join(res.get("contenders", [contenders]))
    budget = float(res.get("budget", budget))
    log.info("label_quality: %s", res)
    rows = []
    for set_name in SETS:
        if set_name not in res:
            continue
        ratios = []
        for seed, r in sorted(res[set_name]["seeds"].items(), key=lambda kv: int(kv[0])):
            forest = r["forest"]["miou"]
            tag = f"[{set_name}, strokes seed {seed}] "
            rows.append(Row(tag + "random forest on the strokes",
                            {"mIoU": round(forest, 3), "train s": round(r["forest"]["seconds"], 1),
                             "pixels": r["painted_pixels"]}, target="reported", status=Status.INFO))
            for key, case in CASES.items():
                if key not in r:
                    continue
                c = r[key]
                raw = c.get("miou_raw")
                figures = {"mIoU": round(c["miou"], 3), "x forest": round(c["miou"] / max(forest, 1e-9), 2),
                           "mIoU, 4 mirror images averaged": round(c["miou_flips"], 3),
                           "mIoU, trained weights (not averaged)": None if raw is None else round(raw, 3),
                           "steps": c["steps"], "CPU s": round(c["cpu"], 1), "wall s": round(c["seconds"], 1)}
                if key == "app" and set_name == TARGET_SET:
                    ratios.append(c["miou"] / max(forest, 1e-9))
                    rows.append(Row(tag + case, figures, target=">= 2x the forest",
                                    status=Row.verdict(c["miou"] >= 2 * forest)))
                else:
                    rows.append(Row(tag + case, figures, target="reported", status=Status.INFO))
        rows.append(Row(f"[{set_name}] background everywhere (the floor)", {"mIoU": round(res[set_name]["floor"], 3)},
                        target="reported", status=Status.INFO))
        if ratios:
            rows.append(Row(f"[{set_name}] the Label tab's trainer, every seed", {
                "seeds": len(ratios), "x forest, lowest": round(min(ratios), 2),
                "x forest, mean": round(sum(ratios) / len(ratios), 2)},
                target=">= 2x the forest in every seed", status=Row.verdict(min(ratios) >= 2.0)))
    first = next(res[s] for s in SETS if s in res)
    seed0 = next(iter(first["seeds"].values()))
    ctx.note(f"Budget {budget:g} CPU seconds per U-Net contender (one process, one torch thread each, all run "
             f"side by side: {contenders}); {seed0['painted_images']} painted images per set, "
             f"{100 * seed0['painted_fraction']:.1f}% of their pixels; "
             f"machine load (1-minute average) {res['load_before']:.1f} before and {res['load_after']:.1f} after, "
             f"on {res['cores']} cores; {res['seconds']:.0f} s wall in all."
             + (" (This section was rewritten from that run's kept result, `AESTUDIO_BENCH_LABEL_RESULT`: "
                "the date and time above are the rewrite's.)" if reused else ""))
    return rows


# ---------------------------------------------------------------- the probe (subprocess)


def _strokes(truth, rng, per_class: int = 3, length: int = 14, radius: float = 2.0):
    """A sparse mask: a few short strokes well inside each class present (255 elsewhere)."""
    import numpy as np
    from scipy.ndimage import binary_erosion

    sparse = np.full(truth.shape, 255, np.uint8)
    yy, xx = np.mgrid[0 : truth.shape[0], 0 : truth.shape[1]]
    for cls in np.unique(truth):
        inside = np.argwhere(binary_erosion(truth == cls, iterations=3))
        for _ in range(per_class if len(inside) else 0):
            y0, x0 = inside[rng.integers(len(inside))]
            angle = rng.uniform(0, np.pi)
            for t in np.linspace(0, length, 8):
                y, x = y0 + t * np.sin(angle), x0 + t * np.cos(angle)
                disc = (yy - y) ** 2 + (xx - x) ** 2 <= radius**2
                sparse[disc & (truth == cls)] = cls  # never paint across an edge
    return sparse


def _features(image):
    from skimage.feature import multiscale_basic_features

    return multiscale_basic_features(image, channel_axis=-1, sigma_min=1, sigma_max=16)


def _miou(preds, truths, classes: int = 4) -> float:
    import numpy as np

    conf = np.zeros((classes, classes), np.int64)
    for p, t in zip(preds, truths, strict=True):
        conf += np.bincount(t.ravel().astype(np.int64) * classes + p.ravel(), minlength=classes * classes).reshape(
            classes, classes)
    tp = np.diag(conf).astype(float)
    denom = conf.sum(0) + conf.sum(1) - tp
    return float(np.mean([tp[c] / denom[c] for c in range(classes) if denom[c] > 0]))


def _render(set_name: str, index: int):
    if set_name == "photo-shapes":
        from bench.photo_scenes import render

        return render(index, SIZE)
    from aestudio.data.procedural import render_seg

    return render_seg(index, SIZE)


def _scenes(set_name: str, n_images: int, n_test: int, cache: str | None = None, seed: int = 0):
    """(painted [(name, image, truth, strokes)], unpainted images, test images, test truths): fixed content.

    Items 200,000 + i are the project's scenes and 300,000 + i the held-out ones, in both sets; the
    strokes come from one stream seeded with ``seed`` (0: the strokes of every run before seeds).
    ``cache`` (an .npz the parent process wrote) saves the contenders from rendering the same scenes again."""
    import numpy as np

    if cache and os.path.exists(cache):
        d = np.load(cache)
        imgs, truths, sparse, timgs, ttruths = (d[k] for k in ("imgs", "truths", "sparse", "timgs", "ttruths"))
    else:
        rng = np.random.default_rng(seed)
        imgs, truths, sparse = [], [], []
        for i in range(n_images):
            img, truth = _render(set_name, 200_000 + i)
            imgs.append(img)
            truths.append(truth)
            sparse.append(_strokes(truth, rng) if i % PAINTED_SHARE == 0 else np.full_like(truth, 255))
        test = [_render(set_name, 300_000 + i) for i in range(n_test)]
        imgs, truths, sparse = np.stack(imgs), np.stack(truths), np.stack(sparse)
        timgs, ttruths = np.stack([a for a, _ in test]), np.stack([b for _, b in test])
        if cache:
            np.savez(cache, imgs=imgs, truths=truths, sparse=sparse, timgs=timgs, ttruths=ttruths)
    painted, unpainted = [], []
    for i in range(len(imgs)):
        img = imgs[i].astype(np.float32) / 255.0
        if i % PAINTED_SHARE == 0:
            painted.append((f"p{i}", img, truths[i], sparse[i]))
        else:
            unpainted.append(img)
    return painted, unpainted, [t.astype(np.float32) / 255.0 for t in timgs], list(ttruths)


def _contender(key: str, budget: float, set_name: str, n_images: int, n_test: int, cache: str | None,
               overrides: dict | None = None, seed: int = 0) -> dict:
    """Train one U-Net contender for ``budget`` seconds of this process's CPU time; its mIoU and steps."""
    import threading
    import time

    import numpy as np
    import torch

    from aestudio.training.live import LiveConfig, LiveTrainer, net_from_snapshot, predict_probs

    torch.set_num_threads(1)
    painted, unpainted, test_images, test_truth = _scenes(set_name, n_images, n_test, cache, seed)
    cfg = LiveConfig(seed=seed)
    if key == "strokes":  # the trainer before issue 13's label work: painted pixels only, flips only
        cfg = replace(cfg, regions=0.0, rotate=False, jitter=0.0)
    cfg = replace(cfg, **(overrides or {}))
    trainer = LiveTrainer(3, 4, cfg)
    for name, image, truth, sparse in painted:
        trainer.set_example(name, image, truth if key == "full" else sparse)
    for j, image in enumerate(unpainted):  # the project's unpainted images, as the Label tab gives them
        trainer.set_example(f"u{j}", image, np.full(image.shape[:2], 255, np.uint8))
    stop = threading.Event()
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in trainer.events(stop):
        if time.process_time() - c0 >= budget:
            stop.set()
    cpu, seconds = time.process_time() - c0, time.perf_counter() - t0
    net = net_from_snapshot(3, 4, trainer.snapshot()[1], trainer.cfg)
    preds = [predict_probs(net, img).argmax(0) for img in test_images]
    flipped = [predict_probs(net, img, flips=True).argmax(0) for img in test_images]
    raw = None
    if cfg.ema > 0:  # the trained weights themselves, to show what the average adds
        trained = net_from_snapshot(3, 4, {k: v.detach().clone() for k, v in trainer.net.state_dict().items()}, cfg)
        raw = _miou([predict_probs(trained, img).argmax(0) for img in test_images], test_truth)
    return {"miou": _miou(preds, test_truth), "miou_flips": _miou(flipped, test_truth), "miou_raw": raw,
            "steps": trainer.step,
            "cpu": cpu, "seconds": seconds,
            "config": {k: v for k, v in vars(cfg).items() if k != "max_steps"}}


def _forest(painted, test_images, test_truth, seed: int = 0) -> dict:
    """ilastik's recipe: multiscale pixel features and a 100-tree random forest on the painted pixels."""
    import time

    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    t0 = time.perf_counter()
    xs, ys = [], []
    for _, img, _, sparse in painted:
        f = _features(img)
        keep = sparse != 255
        xs.append(f[keep])
        ys.append(sparse[keep])
    forest = RandomForestClassifier(n_estimators=100, n_jobs=1, random_state=seed)
    forest.fit(np.concatenate(xs), np.concatenate(ys))
    seconds = time.perf_counter() - t0
    preds = [forest.predict(_features(img).reshape(-1, len(forest.feature_importances_))).reshape(SIZE, SIZE)
             for img in test_images]
    return {"miou": _miou([p.astype(np.int64) for p in preds], test_truth), "seconds": seconds}


def _parse(contender: str) -> tuple[str, str, str, int]:
    """``SET:KEY[=TAG][@SEED]`` -> (set, key, tag, seed); the seed picks the strokes, the forest's and
    the trainer's random streams (0 when left out)."""
    set_name, _, rest = contender.partition(":")
    rest, _, seed = rest.partition("@")
    key, _, tag = rest.partition("=")
    return set_name, key, tag, int(seed or 0)


def _probe(argv: list[str]) -> None:
    import argparse
    import shutil
    import subprocess
    import tempfile
    import time

    import numpy as np

    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=BUDGET_S, help="CPU seconds per U-Net contender")
    ap.add_argument("--images", type=int, default=N_IMAGES)
    ap.add_argument("--test", type=int, default=N_TEST)
    ap.add_argument("--contenders", default=",".join(DEFAULT_CONTENDERS),
                    help="SET:KEY[@SEED],... (KEY app|strokes|full; SEED the strokes' and trainer's seed, 0 when "
                         "left out; a probe may add =TAG to name a variant: SET:KEY=TAG@SEED)")
    ap.add_argument("--config", default="{}", help="JSON of LiveConfig fields for every contender (probes)")
    ap.add_argument("--variants", default="{}",
                    help='probes: JSON {TAG: {LiveConfig fields}} for contenders named SET:KEY=TAG (over --config)')
    ap.add_argument("--no-forest", action="store_true", help="probes: skip the forest")
    ap.add_argument("--contender", help="(internal) train this SET:KEY[=TAG][@SEED] and print its JSON")
    ap.add_argument("--cache", help="(internal) the scenes' .npz")
    args = ap.parse_args(argv)
    overrides = json.loads(args.config)
    if args.contender:
        set_name, key, tag, seed = _parse(args.contender)
        overrides = {**overrides, **json.loads(args.variants).get(tag, {})}
        print(json.dumps(_contender(key, args.budget, set_name, args.images, args.test, args.cache, overrides, seed)))
        return
    load_before, w0 = os.getloadavg()[0], time.perf_counter()
    wanted = [c.strip() for c in args.contenders.split(",") if c.strip()]
    sets = [s for s in SETS if any(_parse(c)[0] == s for c in wanted)]
    groups = sorted({(_parse(c)[0], _parse(c)[3]) for c in wanted}, key=lambda g: (SETS.index(g[0]), g[1]))
    tmp = tempfile.mkdtemp(prefix="aestudio-label-quality-")
    caches = {}
    for set_name, seed in groups:  # rendered once here, read by every contender
        caches[set_name, seed] = os.path.join(tmp, f"{set_name}-{seed}-{args.images}-{args.test}.npz")
        _scenes(set_name, args.images, args.test, caches[set_name, seed], seed)
    # The U-Nets train side by side, one process and one thread each (OMP_NUM_THREADS=1 from the start).
    # Each in a session of its own: Linux's scheduler (autogroup) shares the CPU between sessions first,
    # so contenders in this one session would split one session's share between them and take N times
    # longer in wall time; their CPU-time budgets, hence the figures, do not depend on it.
    procs = {c: subprocess.Popen([sys.executable, "-m", "bench.benchmarks.label_quality", "--contender", c,
                                  "--budget", str(args.budget), "--images", str(args.images), "--test", str(args.test),
                                  "--cache", caches[_parse(c)[0], _parse(c)[3]], "--config", args.config,
                                  "--variants", args.variants],
                                 stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                                 start_new_session=True)
             for c in wanted}
    out: dict = {s: {"seeds": {}} for s in sets}
    for set_name, seed in groups:
        painted, _, test_images, test_truth = _scenes(set_name, args.images, args.test, caches[set_name, seed], seed)
        labelled = sum(int((s != 255).sum()) for *_, s in painted)
        out[set_name]["floor"] = _miou([np.zeros_like(t, np.int64) for t in test_truth], test_truth)
        group = out[set_name]["seeds"][str(seed)] = {
            "painted_images": len(painted), "painted_pixels": labelled,
            "painted_fraction": labelled / (len(painted) * SIZE * SIZE)}
        if not args.no_forest:
            group["forest"] = _forest(painted, test_images, test_truth, seed)
    for c, proc in procs.items():
        stdout, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"contender {c} exited with code {proc.returncode}")
        set_name, key, tag, seed = _parse(c)
        out[set_name]["seeds"][str(seed)][f"{key}={tag}" if tag else key] = json.loads(stdout.strip().splitlines()[-1])
    shutil.rmtree(tmp, ignore_errors=True)
    out.update(load_before=load_before, load_after=os.getloadavg()[0], cores=os.cpu_count(), budget=args.budget,
               seconds=time.perf_counter() - w0, contenders=wanted)
    print(json.dumps(out))


if __name__ == "__main__":
    _probe(sys.argv[1:])
