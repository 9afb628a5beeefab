"""Probe: issue 14's second target for any denoiser bundle or training run, side by side with BM3D.

``python -m bench.probes.photo_denoiser_vs_bm3d [--bm3d-cache FILE] [--no-timing] [--threads 1,2]
[--int8-calibration TILES [--int8-float-nodes 6,7]] BUNDLE_OR_RUN ...``

For each argument (a bundle folder, a zoo name such as ``photo-denoiser``, or a run folder, which is
exported first with ``aestudio export RUN -o TMP``, its best checkpoint, or with ``--which last`` its last), prints the mean PSNR (dB, peak 1)
over the held-out grey photos (``aestudio.zoo.photos.held_out_gray``, top-left 512 x 512) at Gaussian
sigma 15, 25 and 50 of 255, against BM3D given the true sigma (``bm3d.bm3d(noisy, sigma_psd=sigma)``).
The noise is bench ``zoo_quality``'s: ``aestudio.data.noise.gaussian`` with one ``default_rng(0)`` per
sigma drawn over the photos in order, so sigma 25 is that benchmark's figure. BM3D's PSNRs are the
same every time and cached in ``--bm3d-cache`` (JSON). Timing: the ``camera`` photo (512 x 512) in ONNX
Runtime (``OrtPredictor``, batch profile, median of 5) and BM3D once, in the same process, so the ratio
holds on a shared machine better than either time. An int8 bundle (``aestudio export --int8``) is a
bundle like any other here; ``--int8-calibration TILES`` also makes an int8 copy of every float32 model
(``aestudio.export.quantize``, the CLI's settings) calibrated on 64 of the training tiles in TILES with the
model's own training noise (never the held-out photos) and scores it beside its source, ``NAME int8``;
``--threads 1,2`` times each model with one ORT thread (the interactive profile) and with all cores (the
batch profile; 2 here), interleaved. Figures: docs/DESIGN-notes.md ("Shipped
photo-denoiser vs BM3D").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

SIGMAS = (15, 25, 50)
SEED = 0


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12)))


def noisy_sets(photos: dict[str, np.ndarray]) -> dict[int, dict[str, np.ndarray]]:
    from aestudio.data.noise import gaussian

    out = {}
    for s in SIGMAS:
        rng = np.random.default_rng(SEED)
        out[s] = {k: gaussian(v, s / 255, rng) for k, v in photos.items()}
    return out


def _bundle(arg: str, tmp: Path, which: str = "best") -> Path:
    from aestudio._child import aestudio_command
    from aestudio.zoo.catalog import resolve_model

    path = Path(arg)
    if (path / "run.json").is_file():
        out = tmp / f"{path.name}-{which}"
        subprocess.run([*aestudio_command(), "export", str(path), "-o", str(out), "--which", which], check=True,
                       stdout=subprocess.DEVNULL)
        return out
    return resolve_model(arg)


def int8_copy(bundle: Path, tiles: Path, out: Path, float_nodes: tuple[int, ...] = ()) -> Path:
    """``bundle`` quantized like ``aestudio export --int8``, calibrated on training tiles with its training noise."""
    from aestudio.config import NoiseConfig
    from aestudio.data.io import read_image
    from aestudio.data.noise import apply_noise
    from aestudio.export.quantize import (
        CALIBRATION_IMAGES,
        CHECK_IMAGES,
        Int8Options,
        quantize_bundle,
    )
    from aestudio.inference.bundle import read_bundle

    info = read_bundle(bundle)
    noise = NoiseConfig(**{k: v for k, v in (info.training.get("noise") or {}).items() if k in NoiseConfig.__dataclass_fields__})
    files = sorted(p for p in tiles.iterdir() if p.suffix.lower() in (".png", ".jpg", ".tif", ".tiff"))
    rng = np.random.default_rng(SEED)
    images = []
    for i in rng.choice(len(files), CALIBRATION_IMAGES + CHECK_IMAGES, replace=False):
        x = read_image(files[int(i)]).mean(axis=2, keepdims=True).transpose(2, 0, 1)[None].astype(np.float32)
        images.append(np.asarray(apply_noise(x, noise, rng), np.float32))
    quantize_bundle(bundle, out, images[:CALIBRATION_IMAGES], check=images[CALIBRATION_IMAGES:],
                    options=Int8Options(float_nodes=float_nodes), source=f"{CALIBRATION_IMAGES} tiles of {tiles}")
    return out


def _threads(pred: object, n: int) -> object:
    """``pred`` on ``n`` intra-op threads: 1 = the interactive profile, the machine's cores = the batch profile."""
    from aestudio.inference.ort import SessionProfile, available_cores

    if n == 1:
        return pred.with_profile(SessionProfile.INTERACTIVE)  # type: ignore[attr-defined]
    if n != available_cores():
        raise SystemExit(f"--threads {n}: this probe times 1 thread and this machine's {available_cores()} cores")
    return pred.with_profile(SessionProfile.BATCH)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> None:
    import bm3d

    from aestudio.inference.ort import OrtPredictor
    from aestudio.zoo.photos import held_out_gray

    parser = argparse.ArgumentParser(prog="python -m bench.probes.photo_denoiser_vs_bm3d")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--bm3d-cache", type=Path, default=Path(tempfile.gettempdir()) / "aestudio-bm3d-psnr.json")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--bm3d-repeats", type=int, choices=(1, 2), default=1,
                        help="BM3D timings (median), between the nets' rounds (default 1: ~10-25 s each)")
    parser.add_argument("--which", choices=("best", "last"), default="best",
                        help="a run's checkpoint to export: its best (default) or its last weights")
    parser.add_argument("--int8-calibration", type=Path, default=None, metavar="TILES",
                        help="also score an int8 copy of each float32 model, calibrated on these training tiles")
    parser.add_argument("--int8-float-nodes", default="", metavar="I,J",
                        help="with --int8-calibration: Conv nodes (graph order) left in float32, e.g. 6,7,8")
    parser.add_argument("--threads", default="", metavar="1,2",
                        help="also time each model at these ORT intra-op thread counts")
    args = parser.parse_args(argv)
    photos = held_out_gray(512)
    noisy = noisy_sets(photos)
    cache = json.loads(args.bm3d_cache.read_text()) if args.bm3d_cache.is_file() else {}
    for s in SIGMAS:
        for k, x in noisy[s].items():
            key = f"{s}/{k}"
            if key not in cache:
                cache[key] = _psnr(np.clip(np.asarray(bm3d.bm3d(x, sigma_psd=s / 255), np.float32), 0, 1), photos[k])
                args.bm3d_cache.write_text(json.dumps(cache, indent=1))
    bm3d_mean = {s: float(np.mean([cache[f"{s}/{k}"] for k in photos])) for s in SIGMAS}
    print("BM3D          " + "  ".join(f"sigma {s}: {bm3d_mean[s]:.2f}" for s in SIGMAS), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        preds = {arg: OrtPredictor(_bundle(arg, Path(tmp), args.which), profile="batch") for arg in args.models}
        if args.int8_calibration is not None:
            nodes = tuple(int(v) for v in args.int8_float_nodes.split(",") if v.strip())
            for arg, pred in list(preds.items()):
                if pred.info.precision == "float32":
                    out = int8_copy(pred.path, args.int8_calibration, Path(tmp) / f"int8-{len(preds)}", nodes)
                    preds[f"{arg} int8"] = OrtPredictor(out, profile="batch")
        for arg, pred in preds.items():
            means = {}
            for s in SIGMAS:
                means[s] = float(np.mean([_psnr(np.clip(pred.run_image(x)[..., 0], 0, 1), photos[k])
                                          for k, x in noisy[s].items()]))
            print(f"{arg}: " + "  ".join(f"sigma {s}: {means[s]:.2f} ({means[s] - bm3d_mean[s]:+.2f})"
                                         for s in SIGMAS), flush=True)
        if args.no_timing:
            return
        x = noisy[25]["camera"]
        # Wall and process CPU seconds (ORT's batch profile runs one thread per core without spinning, so its
        # CPU seconds are work done; on a shared machine the CPU ratio moves less than the wall ratio).
        times: dict[str, list[float]] = {arg: [] for arg in preds}
        cpus: dict[str, list[float]] = {arg: [] for arg in preds}
        for pred in preds.values():
            pred.run_image(x)  # warm-up
        bm3d_wall: list[float] = []
        bm3d_cpu: list[float] = []
        for round_ in range(5):
            for arg, pred in preds.items():
                t0, c0 = time.perf_counter(), time.process_time()
                pred.run_image(x)
                times[arg].append(time.perf_counter() - t0)
                cpus[arg].append(time.process_time() - c0)
            if round_ in ({2} if args.bm3d_repeats == 1 else {1, 3}):
                t0, c0 = time.perf_counter(), time.process_time()
                bm3d.bm3d(x, sigma_psd=25 / 255)
                bm3d_wall.append(time.perf_counter() - t0)
                bm3d_cpu.append(time.process_time() - c0)
        bm3d_s, bm3d_c = float(np.median(bm3d_wall)), float(np.median(bm3d_cpu))
        for arg in times:
            ms, cpu_ms = float(np.median(times[arg])) * 1e3, float(np.median(cpus[arg])) * 1e3
            print(f"{arg}: {ms:.1f} ms per 512x512, BM3D {bm3d_s * 1e3:.0f} ms: {bm3d_s * 1e3 / ms:.1f}x faster; "
                  f"CPU {cpu_ms:.1f} ms vs BM3D {bm3d_c * 1e3:.0f} ms: {bm3d_c * 1e3 / cpu_ms:.1f}x less", flush=True)
        counts = [int(v) for v in args.threads.split(",") if v.strip()]
        if counts:
            by = {(arg, n): _threads(pred, n) for arg, pred in preds.items() for n in counts}
            per: dict[tuple[str, int], list[float]] = {key: [] for key in by}
            for p in by.values():
                p.run_image(x)  # type: ignore[attr-defined]
            for _ in range(5):
                for key, p in by.items():
                    t0 = time.perf_counter()
                    p.run_image(x)  # type: ignore[attr-defined]
                    per[key].append(time.perf_counter() - t0)
            for (arg, n), ts in per.items():
                ms = float(np.median(ts)) * 1e3
                print(f"{arg}: {n} thread{'s' if n > 1 else ''} {ms:.1f} ms per 512x512 "
                      f"({bm3d_s * 1e3 / ms:.1f}x BM3D's wall time above)", flush=True)


if __name__ == "__main__":
    main()
