"""Quality of the shipped zoo against classical baselines: denoiser vs NLM and BM3D, U-Net vs a random forest."""

from __future__ import annotations

import logging
import time

import numpy as np

from bench.harness import Context, Row, SkipBenchmark, Status

log = logging.getLogger(__name__)

ORDER = 60
TITLE = "Shipped zoo quality: photo denoiser vs NLM / BM3D, shapes-seg U-Net vs an ilastik-style forest"
SIGMA = 25 / 255
SEED = 0
RF_TRAIN_IMAGES = 120  # training images the forest learns from (pixels subsampled)
RF_PIXELS_PER_IMAGE = 400
RF_TREES = 30
SEG_VAL_IMAGES = 100

ABOUT = f"""
**What.** The shipped bundles in `models/` (built by `python -m aestudio.zoo.build NAME` from
`models/recipes/NAME.json`), run through ONNX Runtime (`OrtPredictor`, batch profile), against
classical methods on data none of them trained on.

- *Denoising.* Gaussian noise of sigma 25/255 (seed {SEED}, clipped to [0, 1] by
  `aestudio.data.noise.gaussian`) on the natural grey photos held out of the denoiser's training
  set (`aestudio.zoo.photos.HELD_OUT_PHOTOS`: camera, astronaut, coffee, coins, moon, grey,
  top-left 512 x 512 at most). `photo-denoiser` against scikit-image's non-local means
  (`denoise_nl_means(h=0.8*sigma, sigma=sigma, fast_mode=True, patch_size=5, patch_distance=6)`,
  the true sigma given) and BM3D (`bm3d.bm3d(noisy, sigma_psd=sigma)`, the strongest classical
  reference). Mean PSNR (dB, peak 1) over the photos; time per 512 x 512 image (camera, median
  of 3, one process on a machine shared with other jobs).
- *Segmentation.* {SEG_VAL_IMAGES} held-out `shapes-seg` images (the validation split of seed 0,
  which the U-Net never trained on): `shapes-seg-unet` against an ilastik-style pixel classifier:
  scikit-image `feature.multiscale_basic_features` (intensity, edges, texture; sigma 1-16, per
  channel) + scikit-learn `RandomForestClassifier({RF_TREES} trees)` trained on
  {RF_PIXELS_PER_IMAGE} random pixels from each of {RF_TRAIN_IMAGES} training images of the same
  split. Mean IoU over classes present in truth or prediction, pixels pooled over the set.

- *Issue 14's target.* The same photos at sigma 15, 25 and 50 of 255 (the noise of each drawn as
  at 25), `photo-denoiser` against BM3D given the true sigma (and, on a CPU with native bfloat16, the same
  weights through the bfloat16 runtime `aestudio denoise` takes there, its PSNR beside); and the speed ratio of the two timings
  above (one process, one after the other).

**Targets.** Denoiser PSNR >= NLM's; issue 14: PSNR >= BM3D's at each sigma, >= 50x faster.
U-Net mIoU clearly above the forest's (by 0.05 or more).
"""


FINDINGS = """
- 2026-12-07 23:05-23:08 UTC, a quiet machine (load 1.6-1.8; the long run stopped, bench lock held), after
  re-shipping `photo-denoiser` from the long run's step 50,438 (+500 settle steps at lr 1e-4; `python -m
  aestudio.zoo.build photo-denoiser photo-denoiser-rgb --from-run zoo-training/photo-denoiser-v2/run`):
  **33.04 / 31.06 / 28.33 dB at sigma 15 / 25 / 50, BM3D -0.42 / +0.07 / +0.87: sigma 25 and 50 pass**,
  sigma 15 still FAIL (+0.35 / +0.36 / +0.47 over the step-18,782 ship: 32.69 / 30.70 / 27.86).
- Speed: the ONNX Runtime float32 graph takes 183 ms per 512^2 (40.4x BM3D's 7.4 s: FAIL); it already runs
  near this CPU's float32 peak (~35 GFLOP in ~175 ms on two cores). The same weights in bfloat16 through
  torch (`aestudio.export.bf16_runtime`, what `aestudio denoise` and the app's batch work take by default on
  a CPU with native bfloat16, here AVX512-BF16) take 117 ms: **63.1x, pass**, for 33.03 / 31.05 / 28.31 dB
  (-0.01 / -0.01 / -0.02 against float32; sigma 25 and 50 still pass). On a CPU without native bfloat16 the
  float32 graph runs, at ~40x.
- History: the 47k-parameter DnCNN-style net shipped before 2026-12-07 scored 32.26 / 30.00 / 26.43 dB; the
  48 x 13 FFDNet-style net from step 8,798 32.38 / 30.38 / 27.36; from 18,782 32.69 / 30.70 / 27.86. About
  +0.35-0.4 dB per doubling of steps at sigma 15; the run's plan (lr 1e-4 from ~80k to ~101k steps) goes on
  (`zoo-training/photo-denoiser-v2/RESUME.md`). Figures and loads: docs/DESIGN-notes.md, "Shipped
  photo-denoiser vs BM3D".
"""


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12)))


def _timed(fn, repeats: int) -> tuple[object, float]:  # type: ignore[no-untyped-def]
    out, times = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times))


def _zoo(name: str):  # type: ignore[no-untyped-def]
    from aestudio.zoo.catalog import ZooError, find_model

    try:
        return find_model(name)
    except ZooError as exc:
        raise SkipBenchmark(f"{name} is not built ({exc}); run `python -m aestudio.zoo.build {name}`") from None


def _denoise_rows(ctx: Context) -> list[Row]:
    from skimage.restoration import denoise_nl_means

    from aestudio.data.noise import gaussian
    from aestudio.inference.ort import OrtPredictor
    from aestudio.zoo.photos import held_out_gray

    model = _zoo("photo-denoiser")
    pred = OrtPredictor(model.path, profile="batch")
    photos = held_out_gray(ctx.pick(512, 128))
    if ctx.quick:
        photos = dict(list(photos.items())[:1])
    rng = np.random.default_rng(SEED)
    noisy = {k: gaussian(v, SIGMA, rng) for k, v in photos.items()}

    def ours(x: np.ndarray) -> np.ndarray:
        return pred.run_image(x)[..., 0]

    def nlm(x: np.ndarray) -> np.ndarray:
        return denoise_nl_means(x, h=0.8 * SIGMA, sigma=SIGMA, fast_mode=True, patch_size=5, patch_distance=6)

    methods = {"photo-denoiser (ONNX Runtime)": ours, "non-local means (skimage)": nlm}
    fast = _bf16_twin(ctx, pred)
    if fast is not None:  # the bfloat16 runtime `aestudio denoise` picks on this CPU (--precision auto)
        methods[BF16] = lambda x: fast.run_image(x)[..., 0]
    try:
        import bm3d

        methods["BM3D (bm3d package)"] = lambda x, sigma=SIGMA: np.asarray(bm3d.bm3d(x, sigma_psd=sigma), dtype=np.float32)
    except ImportError:
        ctx.note("BM3D skipped: the `bm3d` package is not installed (`pip install -e .[bench]`).")
    timing_key = "camera" if "camera" in noisy else next(iter(noisy))
    psnrs: dict[str, dict[str, float]] = {}
    secs: dict[str, float] = {}
    for name, fn in methods.items():
        psnrs[name] = {}
        for key, x in noisy.items():
            if key == timing_key:
                out, secs[name] = _timed(lambda fn=fn, x=x: fn(x), ctx.pick(3, 1))
            else:
                out = fn(x)
            psnrs[name][key] = _psnr(np.clip(np.asarray(out, dtype=np.float32), 0, 1), photos[key])
        log.info("%s: %s", name, psnrs[name])
    noisy_psnr = float(np.mean([_psnr(noisy[k], photos[k]) for k in photos]))
    side = noisy[timing_key].shape
    rows = [Row("noisy input", {"mean PSNR dB": round(noisy_psnr, 2)}, status=Status.INFO)]
    nlm_mean = float(np.mean(list(psnrs["non-local means (skimage)"].values())))
    for name in methods:
        mean = float(np.mean(list(psnrs[name].values())))
        figures = {"mean PSNR dB": round(mean, 2),
                   f"ms per {side[0]}x{side[1]}": round(secs[name] * 1e3, 1)}
        if name.startswith("photo-denoiser"):
            rows.append(Row(name, figures, target="PSNR >= NLM", status=Row.verdict(mean >= nlm_mean)))
        else:
            rows.append(Row(name, figures, status=Status.INFO))
    table = " | ".join(["photo", *photos])
    lines = [f"| method | {table.split(' | ', 1)[1]} |", "|---" * (len(photos) + 1) + "|"]
    for name in methods:
        lines.append(f"| {name} | " + " | ".join(f"{psnrs[name][k]:.2f}" for k in photos) + " |")
    ctx.note("PSNR (dB) per held-out photo at sigma 25/255:\n\n" + "\n".join(lines))
    if "BM3D (bm3d package)" in methods:
        rows += _bm3d_target_rows(ctx, ours, methods["BM3D (bm3d package)"], photos, psnrs, secs, methods.get(BF16))
    return rows


BF16 = "photo-denoiser (bfloat16, torch)"


def _bf16_twin(ctx: Context, pred):  # type: ignore[no-untyped-def]
    """The bundle's bfloat16 twin where `aestudio denoise --precision auto` would take it, else None (noted)."""
    from aestudio.export.bf16_runtime import choose_bf16

    twin, why = choose_bf16(pred, "auto")
    if twin is pred:
        ctx.note(f"photo-denoiser in bfloat16 not measured: {why}")
        return None
    return twin


def _bm3d_target_rows(ctx: Context, ours, bm3d_fn, photos: dict[str, np.ndarray],  # type: ignore[no-untyped-def]
                      psnrs: dict[str, dict[str, float]], secs: dict[str, float], fast=None) -> list[Row]:
    """Issue 14's second target: at least BM3D's PSNR at sigma 15, 25 and 50, at least 50x faster per image.

    The noise of each sigma is drawn as at 25 (one ``default_rng(SEED)`` over the photos in order), the
    rule of ``bench.probes.photo_denoiser_vs_bm3d``; sigma 25 reuses the figures above. The speed ratio
    is the two timings above, measured in this process one after the other (a shared machine moves both).
    """
    from aestudio.data.noise import gaussian

    rows = []
    for s in (15, 25, 50):
        if s == 25:
            a = float(np.mean(list(psnrs["photo-denoiser (ONNX Runtime)"].values())))
            b = float(np.mean(list(psnrs["BM3D (bm3d package)"].values())))
            f = float(np.mean(list(psnrs[BF16].values()))) if fast is not None else None
        else:
            rng = np.random.default_rng(SEED)
            noisy = {k: gaussian(v, s / 255, rng) for k, v in photos.items()}
            a = float(np.mean([_psnr(np.clip(ours(x), 0, 1), photos[k]) for k, x in noisy.items()]))
            b = float(np.mean([_psnr(np.clip(np.asarray(bm3d_fn(x, s / 255), np.float32), 0, 1), photos[k])
                               for k, x in noisy.items()]))
            f = (float(np.mean([_psnr(np.clip(fast(x), 0, 1), photos[k]) for k, x in noisy.items()]))
                 if fast is not None else None)
        figures = {"photo-denoiser dB": round(a, 2), "BM3D dB": round(b, 2), "difference dB": f"{a - b:+.2f}"}
        if f is not None:  # the verdict is the exact graph's; bfloat16's figure beside it
            figures["in bfloat16 dB"] = round(f, 2)
        rows.append(Row(f"photo-denoiser vs BM3D at sigma {s}/255", figures,
                        target="PSNR >= BM3D (issue 14)", status=Row.verdict(a >= b)))
    for name, label in (("photo-denoiser (ONNX Runtime)", "float32, ONNX Runtime"), (BF16, "bfloat16, torch")):
        if name in secs:
            ratio = secs["BM3D (bm3d package)"] / secs[name]
            rows.append(Row(f"photo-denoiser speed vs BM3D ({label})", {"times faster": round(ratio, 1)},
                            target=">= 50x (issue 14)", status=Row.verdict(ratio >= 50)))
    return rows


def _miou(truth: np.ndarray, pred: np.ndarray, k: int) -> float:
    ious = []
    for c in range(k):
        t, p = truth == c, pred == c
        union = np.logical_or(t, p).sum()
        if union:
            ious.append(np.logical_and(t, p).sum() / union)
    return float(np.mean(ious))


def _segment_rows(ctx: Context) -> list[Row]:
    from skimage.feature import multiscale_basic_features
    from sklearn.ensemble import RandomForestClassifier

    from aestudio.data.specs import open_data
    from aestudio.inference.ort import OrtPredictor

    model = _zoo("shapes-seg-unet")
    pred = OrtPredictor(model.path, profile="batch")
    data = open_data("shapes-seg", seed=SEED)
    k = int(data.num_classes)

    def arrays(ds, n: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
        items = [ds[i] for i in range(min(n, len(ds)))]
        images = np.stack([np.asarray(x.numpy()).transpose(1, 2, 0) for x, _ in items])
        masks = np.stack([np.asarray(m.numpy()) for _, m in items])
        return images, masks

    def features(img: np.ndarray) -> np.ndarray:
        return multiscale_basic_features(img, channel_axis=-1, sigma_min=1, sigma_max=16)

    train_x, train_y = arrays(data.train, ctx.pick(RF_TRAIN_IMAGES, 20))
    val_x, val_y = arrays(data.val, ctx.pick(SEG_VAL_IMAGES, 10))
    rng = np.random.default_rng(SEED)
    feats, labels = [], []
    t0 = time.perf_counter()
    for img, mask in zip(train_x, train_y, strict=True):
        f = features(img)
        f = f.reshape(-1, f.shape[-1])
        pick = rng.choice(f.shape[0], size=min(RF_PIXELS_PER_IMAGE, f.shape[0]), replace=False)
        feats.append(f[pick])
        labels.append(mask.reshape(-1)[pick])
    forest = RandomForestClassifier(n_estimators=ctx.pick(RF_TREES, 10), n_jobs=1, random_state=SEED)
    forest.fit(np.concatenate(feats), np.concatenate(labels))
    rf_train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rf_pred = np.stack([forest.predict(flat(features(img))).reshape(img.shape[:2]) for img in val_x])
    rf_s = (time.perf_counter() - t0) / len(val_x)
    t0 = time.perf_counter()
    unet_pred = np.stack([pred.segment(img)[0] for img in val_x])
    unet_s = (time.perf_counter() - t0) / len(val_x)
    rf_miou = _miou(val_y, rf_pred, k)
    unet_miou = _miou(val_y, unet_pred, k)
    side = f"{val_x.shape[1]}x{val_x.shape[2]}"
    ctx.note(f"The forest trained in {rf_train_s:.1f} s on {sum(len(f) for f in feats)} pixels "
             f"({feats[0].shape[-1]} features each) from {len(train_x)} training images; "
             f"both scored on {len(val_x)} validation images.")
    return [
        Row("random forest on multiscale features", {"mIoU": round(rf_miou, 3), f"ms per {side}": round(rf_s * 1e3, 1)},
            status=Status.INFO),
        Row("shapes-seg-unet (ONNX Runtime)", {"mIoU": round(unet_miou, 3), f"ms per {side}": round(unet_s * 1e3, 1)},
            target="mIoU >= forest + 0.05", status=Row.verdict(unet_miou >= rf_miou + 0.05)),
    ]


def flat(f: np.ndarray) -> np.ndarray:
    return f.reshape(-1, f.shape[-1])


def _recipes_note(ctx: Context) -> None:
    from aestudio.zoo.catalog import list_models

    lines = []
    for m in list_models():
        import json

        zoo = json.loads((m.path / "model.json").read_text()).get("training", {}).get("zoo", {})
        if zoo.get("derived_from"):
            lines.append(f"- `{m.name}`: `{zoo.get('build_command', '?')}`: no training; `{zoo['derived_from']}`'s "
                         "graph run per colour channel")
            continue
        cmd = zoo.get("train_command", "?")
        wall = zoo.get("train_wall_seconds")
        if zoo.get("stage_commands"):  # a staged recipe: every stage, and what this build itself trained
            shown = " -> ".join(f"`{c}`" for c in zoo["stage_commands"])
            ship = zoo.get("from_run") or {}
            lines.append(f"- `{m.name}`: `{zoo.get('build_command', '?')}` -> {shown}"
                         + (f"; shipped from the long run's state at step {ship.get('step')} (`{zoo.get('ship_command')}`:"
                            f" only the stages after it ran, {wall:.0f} s wall on a shared 2-core machine)"
                            if ship and wall else ""))
            continue
        lines.append(f"- `{m.name}`: `{zoo.get('build_command', '?')}` -> `{cmd}`"
                     + (f" (training {wall:.0f} s wall on a shared 2-core machine)" if wall else ""))
    if lines:
        ctx.note("**Recipes** (rebuild any model with its command; each card, `models/NAME/README.md`, "
                 "has the data spec, seed, epochs and metrics):\n\n" + "\n".join(lines))


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    for part in (_denoise_rows, _segment_rows):
        try:
            rows += part(ctx)
        except SkipBenchmark as exc:
            rows.append(Row(part.__name__.strip("_").replace("_rows", ""), status=Status.SKIP, note=str(exc)))
    _recipes_note(ctx)
    return rows
