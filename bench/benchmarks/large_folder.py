"""A folder of 100,000 small images: opening it, training an epoch, and the memory that takes."""

from __future__ import annotations

import io
import time
from pathlib import Path

from bench.harness import Context, Row, run_probe

ORDER = 90
TITLE = "Large folder: 100,000 images"
IMAGE_SIZE = 32  # items are resized 8 -> 32, so holding them all would cost N x 4 KiB
TARGET_GROWTH_FRACTION = 0.25  # the epoch's memory growth must stay well under the decoded set

ABOUT = f"""
**What.** A `folder:` data set of 100,000 8 x 8 grey PNGs (in 100 sub-folders), opened with
`open_data` and trained for one epoch of `dense_ae` at {IMAGE_SIZE} x {IMAGE_SIZE} (batch 256, CPU, one
thread). The files are written by the benchmark (256 distinct encoded images, written round-robin).

**How.** `bench/probes/large_folder.py` in a fresh process: RSS after the imports, after opening
(the data set keeps paths only), and the peak during the epoch (psutil, sampled every 10 ms), set
against the size of every item decoded at once (float32, {IMAGE_SIZE} x {IMAGE_SIZE}).

**Target.** The epoch's RSS growth stays under {TARGET_GROWTH_FRACTION:.0%} of the decoded set: items are
decoded per batch and dropped, never cached. Times are reported without a target.
"""


def make_folder(root: Path, n: int, per_folder: int = 1000) -> float:
    """Write ``n`` tiny PNGs under ``root`` (sharded); returns the seconds it took."""
    import numpy as np
    from PIL import Image

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(256):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(buf, format="PNG")
        blobs.append(buf.getvalue())
    for i in range(n):
        folder = root / f"{i // per_folder:03d}"
        if i % per_folder == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"img{i:06d}.png").write_bytes(blobs[i % 256])
    return time.perf_counter() - t0


def run(ctx: Context) -> list[Row]:
    n = ctx.pick(100_000, 2_000)
    root = ctx.work_dir / f"large-folder-{n}"
    gen_s = make_folder(root, n) if not root.exists() else 0.0
    res = run_probe("bench.probes.large_folder", [str(root), "--image-size", str(IMAGE_SIZE)], timeout=3600)
    ok = res["reason"] == "done" and res["epoch_growth_mib"] < TARGET_GROWTH_FRACTION * res["decoded_mib"]
    return [Row(
        f"{res['files']:,} files, {IMAGE_SIZE}x{IMAGE_SIZE}",
        {"write files s": round(gen_s, 1), "open s": res["open_s"], "epoch s": res["epoch_s"],
         "images/s": res["images_per_s"], "RSS after open MiB": res["rss_open_mib"],
         "peak RSS MiB": res["peak_mib"], "epoch growth MiB": res["epoch_growth_mib"],
         "all decoded MiB": res["decoded_mib"]},
        target=f"growth < {TARGET_GROWTH_FRACTION:.0%} of all decoded",
        status=Row.verdict(ok),
        note="" if res["reason"] == "done" else f"training ended {res['reason']}",
    )]
