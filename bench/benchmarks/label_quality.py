"""Labelling quality from a few strokes: the live U-Net vs an ilastik-style random forest vs full masks.

This module is also its own probe: ``python -m bench.benchmarks.label_quality --budget 420`` makes the
set, trains each contender for the budget and prints one JSON line.
"""

from __future__ import annotations

import logging
import os
import sys

from bench.harness import Context, Row, SkipBenchmark, Status, run_probe

log = logging.getLogger(__name__)

ORDER = 49
TITLE = "Label tab quality: a U-Net from strokes vs a random forest vs full masks"
SIZE = 128
N_IMAGES, N_TEST = 240, 60
PAINTED_SHARE = 6  # one image in this many is painted
BUDGET_S = 420  # per contender (issue 13: 7 minutes); env AESTUDIO_BENCH_LABEL_BUDGET

ABOUT = f"""
**What.** Mean IoU on {N_TEST} held-out {SIZE} x {SIZE} `shapes-seg` scenes (4 classes: background,
circle, square, triangle) after training on a labelling project of {N_IMAGES} such scenes of which
one in {PAINTED_SHARE} is painted by a script with a few short strokes inside objects and on the
background (about 3% of their pixels; the rest of the masks, and every other image, 255 =
unlabelled). Contenders, each given the same budget:

- *random forest*: ilastik's recipe, scikit-image `multiscale_basic_features` (intensity, edges,
  texture at sigmas 1-16) per pixel and scikit-learn's `RandomForestClassifier` (100 trees) on the
  painted pixels; it finishes well within the budget;
- *U-Net on strokes*: the Label tab's `LiveTrainer` (U-Net depth 3, 16 channels, 128-pixel crops
  centred on painted pixels, flips, loss on painted pixels only), stopped at the budget;
- *U-Net on full masks*: the same trainer given the complete masks of the same painted images (what
  a person who draws full masks would give it).

**Budget.** `--budget` seconds per contender (default {BUDGET_S} s;
`AESTUDIO_BENCH_LABEL_BUDGET` overrides it), `--threads` torch threads.

**Target (issue 13).** The U-Net on strokes reaches at least twice the forest's mIoU. Not met yet
is expected: closing the gap to full masks from strokes (using the unlabelled images, pre-training,
regularisers) is the open part of the issue.
"""

FINDINGS = """
- 2026-12-07, **shared machine** (load average ~10 on 2 cores), so short runs: 120 s per U-Net on 1
  torch thread (~80 steps of 8 crops; the issue's budget is 7 minutes on 2 idle cores), 240 images
  with 40 painted (3.0% of their pixels, 19,509 pixels). Two runs: forest 0.308 / 0.308 mIoU (36-49 s
  including features), U-Net on the strokes 0.112 / 0.107, U-Net on the full masks of the same 40
  images 0.214 / 0.217; with the encoder pre-trained for 40 s on all 240 images (second run only)
  0.069: at this budget the pre-training only takes steps away from the strokes (47 instead of 79),
  so the Label tab keeps it as an opt-in check box. The U-Net has barely started here (the full-mask
  U-Net is below the forest too); **the 2x-forest target is far from met**. Closing it (longer budgets,
  using the 200 unlabelled images better: consistency or pseudo-labels, a pre-training that pays
  back) is the open part of issue 13.
"""


def _budget(ctx: Context) -> float:
    env = os.environ.get("AESTUDIO_BENCH_LABEL_BUDGET")
    return float(env) if env else float(ctx.pick(BUDGET_S, 10))


def run(ctx: Context) -> list[Row]:
    try:
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise SkipBenchmark(f"a part is missing: {exc}") from exc
    budget = _budget(ctx)
    threads = int(os.environ.get("AESTUDIO_BENCH_LABEL_THREADS", 2))
    n, n_test = ctx.pick(N_IMAGES, 24), ctx.pick(N_TEST, 6)
    res = run_probe("bench.benchmarks.label_quality",
                    ["--budget", str(budget), "--threads", str(threads), "--images", str(n), "--test", str(n_test)],
                    timeout=int(budget * 3 + 900))
    log.info("label_quality: %s", res)
    forest = res["forest"]["miou"]
    rows = [
        Row("random forest on the strokes", {"mIoU": round(forest, 3), "train s": round(res["forest"]["seconds"], 1),
                                             "pixels": res["painted_pixels"]}, target="reported", status=Status.INFO),
        Row("U-Net on the strokes", {"mIoU": round(res["strokes"]["miou"], 3), "steps": res["strokes"]["steps"],
                                     "train s": round(res["strokes"]["seconds"], 1)},
            target=">= 2x the forest", status=Row.verdict(res["strokes"]["miou"] >= 2 * forest)),
        Row("U-Net on the strokes, encoder pre-trained on all images (1/3 of the budget)",
            {"mIoU": round(res["pretrained"]["miou"], 3), "steps": res["pretrained"]["steps"],
             "train s": round(res["pretrained"]["seconds"], 1)},
            target=">= 2x the forest", status=Row.verdict(res["pretrained"]["miou"] >= 2 * forest)),
        Row("U-Net on the full masks of the same images", {"mIoU": round(res["full"]["miou"], 3),
                                                           "steps": res["full"]["steps"],
                                                           "train s": round(res["full"]["seconds"], 1)},
            target="reported", status=Status.INFO),
    ]
    ctx.note(f"Budget {budget:g} s per contender, {threads} torch thread(s); {res['painted_images']} painted images, "
             f"{100 * res['painted_fraction']:.1f}% of their pixels; machine load (1-minute average) "
             f"{res['load_before']:.1f} before and {res['load_after']:.1f} after, on {res['cores']} cores.")
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


def _unet(examples, budget: float, test_images, pretrain_on=None) -> tuple[float, int, float, list]:
    import threading
    import time

    from aestudio.training.live import LiveConfig, LiveTrainer, net_from_snapshot, predict_probs

    trainer = LiveTrainer(3, 4, LiveConfig(crop=128, batch_size=8))
    for key, image, mask in examples:
        trainer.set_example(key, image, mask)
    t0 = time.perf_counter()
    if pretrain_on is not None:  # a third of the budget on all the project's images, the rest on the strokes
        trainer.pretrain_encoder(pretrain_on, budget / 3)
    stop = threading.Event()
    timer = threading.Timer(max(0.0, budget - (time.perf_counter() - t0)), stop.set)
    timer.start()
    for _ in trainer.events(stop):
        pass
    timer.cancel()
    seconds = time.perf_counter() - t0
    net = net_from_snapshot(3, 4, trainer.snapshot()[1], trainer.cfg)
    preds = [predict_probs(net, img).argmax(0) for img in test_images]
    return seconds, trainer.step, seconds, preds


def _probe(argv: list[str]) -> None:
    import argparse
    import json
    import time

    import numpy as np
    import torch

    from aestudio.data.procedural import render_seg

    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=BUDGET_S)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=N_IMAGES)
    ap.add_argument("--test", type=int, default=N_TEST)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    painted = []
    for i in range(0, args.images, PAINTED_SHARE):
        img, truth = render_seg(200_000 + i, SIZE)
        painted.append((f"p{i}", img.astype(np.float32) / 255.0, truth, _strokes(truth, rng)))
    test = [render_seg(300_000 + i, SIZE) for i in range(args.test)]
    test_images = [img.astype(np.float32) / 255.0 for img, _ in test]
    test_truth = [t for _, t in test]
    labelled = sum(int((s != 255).sum()) for *_, s in painted)
    out: dict = {"painted_images": len(painted), "painted_pixels": labelled,
                 "painted_fraction": labelled / (len(painted) * SIZE * SIZE)}

    from sklearn.ensemble import RandomForestClassifier

    t0 = time.perf_counter()
    xs, ys = [], []
    for _, img, _, sparse in painted:
        f = _features(img)
        keep = sparse != 255
        xs.append(f[keep])
        ys.append(sparse[keep])
    forest = RandomForestClassifier(n_estimators=100, n_jobs=args.threads, random_state=0)
    forest.fit(np.concatenate(xs), np.concatenate(ys))
    seconds = time.perf_counter() - t0
    preds = [forest.predict(_features(img).reshape(-1, len(forest.feature_importances_))).reshape(SIZE, SIZE)
             for img in test_images]
    out["forest"] = {"miou": _miou([p.astype(np.int64) for p in preds], test_truth), "seconds": seconds}

    everything = [img for _, img, _, _ in painted] + [
        render_seg(200_000 + i, SIZE)[0].astype(np.float32) / 255.0
        for i in range(args.images) if i % PAINTED_SHARE]  # the unlabelled images of the project
    for key, use_full, pre in (("strokes", False, None), ("full", True, None), ("pretrained", False, everything)):
        examples = [(name, img, truth.astype(np.uint8) if use_full else sparse) for name, img, truth, sparse in painted]
        seconds, steps, _, preds = _unet(examples, args.budget, test_images, pre)
        out[key] = {"miou": _miou(preds, test_truth), "steps": steps, "seconds": seconds}
    out.update(load_before=load_before, load_after=os.getloadavg()[0], cores=os.cpu_count(), budget=args.budget)
    print(json.dumps(out))


if __name__ == "__main__":
    _probe(sys.argv[1:])
