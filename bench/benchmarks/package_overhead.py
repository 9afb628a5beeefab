"""What running a model as a BioImage Model Zoo package costs beyond running its bundle."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np

from bench.harness import Context, Row, SkipBenchmark, measure_side_by_side

ORDER = 46
TITLE = "BioImage Model Zoo package vs bundle"
MAX_RATIO = 1.10  # the numpy pre/post-processing and layout wrapping should be noise next to the net

ABOUT = f"""
**What.** The shipped photo denoiser run on one uint8 image, whole-image `run_image` (tiled
above 512 px), once from its bundle (`OrtPredictor`) and once from the package
`aestudio export photo-denoiser --format bioimageio` writes (`PackagePredictor`: the
rdf's `scale_range` over the whole image first, then per tile the layout, padding and
`clip`). Batch profile, calls interleaved (`measure_side_by_side`).

**Target.** The package takes at most {MAX_RATIO:.2f}x the bundle's time.
"""


def run(ctx: Context) -> list[Row]:
    try:
        import bioimageio.spec  # noqa: F401
    except ImportError:
        raise SkipBenchmark("bioimageio.spec is not installed (pip install 'aestudio[bioimageio]')") from None
    from aestudio.export.bioimageio import write_package
    from aestudio.inference.bioimageio_predictor import PackagePredictor
    from aestudio.inference.ort import OrtPredictor
    from aestudio.zoo.catalog import find_model

    bundle = find_model("photo-denoiser").path
    rows = []
    with tempfile.TemporaryDirectory(dir=ctx.work_dir) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pkg = write_package(bundle, Path(tmp) / "photo-denoiser.zip")
        ours, theirs = OrtPredictor(bundle, profile="batch"), PackagePredictor(pkg, profile="batch")
        for side in ctx.pick((256, 1024), (64,)):
            img = (np.random.default_rng(0).random((side, side)) * 255).astype(np.uint8)
            t = measure_side_by_side({"bundle": lambda img=img: ours.run_image(img), "package": lambda img=img: theirs.run_image(img)},
                                     warmup=1, rounds=ctx.pick(5, 1), block_s=0.0, max_block=1)
            ratio = t["package"].median_s / t["bundle"].median_s
            rows.append(Row(f"{side} x {side} uint8", {"bundle ms": round(t["bundle"].median_ms, 1),
                                                      "package ms": round(t["package"].median_ms, 1),
                                                      "ratio": round(ratio, 3)},
                            target=f"ratio <= {MAX_RATIO:.2f}", status=Row.verdict(ratio <= MAX_RATIO)))
    return rows
