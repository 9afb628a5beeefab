"""Large images through the tiled path: 4096 x 4096 RGB denoise and segment, time and peak memory."""

from __future__ import annotations

import logging
import os

from bench.fixtures import bundle_for, speed_run_kwargs
from bench.harness import Context, Row, Status, run_probe

log = logging.getLogger(__name__)

ORDER = 40
TITLE = "Tiled 4096 x 4096 RGB denoise and segment"
SIZE = 4096
# An untiled pass of either net at 4096^2 needs several GiB for one feature map
# stack (16 channels x 4096^2 x 4 bytes = 1 GiB per map). The caller asks for the
# result, so it is not overhead; everything else (tiles, ONNX Runtime's working
# memory for one tile, temporaries) must stay under the input's own float32 size.
TARGET_OVERHEAD_OF_INPUT = 1.0

ABOUT = f"""
**What.** One {SIZE} x {SIZE} RGB float32 image through `OrtPredictor.run_image` with a
3-channel `denoising_ae` bundle, and through `OrtPredictor.segment` with a 3-channel `unet`
bundle (which returns the mask and the class probabilities), with the *batch* profile.

**How.** Each call runs in a fresh subprocess (`bench/probes/tiled.py`) after a warm-up on a
small image. Peak memory is measured two ways during the call: the peak resident set size
above the baseline (psutil, sampled every 2 ms on a thread; the baseline already holds the
predictor and the input image), and the peak of Python/numpy allocations (tracemalloc).
The weights come from a 2-step run: they do not change time or memory.

**Target.** Bounded memory: peak extra RSS minus the returned arrays (the image, or the
mask and the class probabilities) under {TARGET_OVERHEAD_OF_INPUT:g} x the input's float32 size
(192 MiB at 4096 x 4096 RGB): no full-size copies besides the result. Time is reported, without a target.
"""

CASES = (
    ("denoise", "denoising_ae"),
    ("segment", "unet"),
)


FINDINGS = """
- Tiling works (an untiled 4096^2 pass would need several GiB per feature map stack); time is
  ~10-12 s per image on 2 idle cores (this run's load average is noted below the table; under
  a load of ~14 the same calls take 60-150 s and the times say nothing about the code). The
  numpy side (reading, blending, clipping) costs ~0.8 s of that, as before.
- Peak extra RSS went 1298/1440 MiB (4 tiles per call) -> 902/771 MiB (1 tile per call) ->
  331/520 MiB now (denoise/segment; 903/773 for the old code measured the same day under the
  same load). Beyond the returned arrays that is 711/389 -> 139/136 MiB. The 768 MiB of
  full-size copies are gone: tiles are read from the caller's [H, W, C] array
  (uint8, uint16 or float; channel and range conversion and the reflect padding per tile,
  `imageops.fill_chw` + `pad_indices`), blended with pre-normalised separable weights straight
  into the result in its final layout ([H, W, C] for images, [K, H, W] for logits), clipped in
  place; `segment` turns the logits into probabilities in place and takes the argmax in row
  chunks. What remains: the result itself (192 MiB image; 128 MiB int64 mask + 4 x 64 MiB
  probabilities for the 4-class U-Net) and ~140 MiB of ONNX Runtime working memory for one 512 x 512 tile (32-channel
  feature maps of 32 MiB each; tracemalloc sees only ~7 MiB of numpy tiles). That part scales
  with the tile area: 384 px tiles need ~60 MiB but cost ~15 % more compute in the overlaps;
  turning ORT's arena off does not lower the peak (139 vs 151 MiB at 512 px), it only returns
  the memory after the call, at 18 % more time.
"""


def run(ctx: Context) -> list[Row]:
    size = ctx.pick(SIZE, 512)
    rows: list[Row] = []
    for mode, net in CASES:
        key = f"tiled-{net}-rgb"
        overrides = {"image_size": 64} if not ctx.quick else {"image_size": 32}
        bundle = bundle_for(
            ctx, key, net,
            net_overrides={"in_channels": 3},
            channels=3,
            **speed_run_kwargs(ctx, net),
            **overrides,
        )
        try:
            res = run_probe("bench.probes.tiled", [str(bundle), mode, str(size)], timeout=900)
        except Exception as exc:  # noqa: BLE001 - report the probe's failure as a row
            rows.append(Row(f"{mode} ({net})", status=Status.ERROR, note=str(exc).splitlines()[0][:200]))
            log.error("%s", exc)
            continue
        extra = res["rss_peak_delta_mib"]
        overhead = extra - res["out_mib"]
        limit = TARGET_OVERHEAD_OF_INPUT * res["image_mib"]
        rows.append(Row(
            f"{mode} ({net}) {size}x{size}",
            {
                "seconds": round(res["seconds"], 2),
                "MP/s": round(res["megapixels_per_s"], 2),
                "input MiB": round(res["image_mib"]),
                "peak extra RSS MiB": round(extra),
                "returned MiB": round(res["out_mib"]),
                "overhead MiB": round(overhead),
                "tracemalloc peak MiB": round(res["traced_peak_mib"]),
                "output": "x".join(map(str, res["out_shape"])) + f" {res['out_dtype']}",
            },
            target=f"extra RSS - returned < {limit:.0f} MiB",
            status=Row.verdict(overhead < limit),
        ))
    ctx.note("Load average at the end of this benchmark (1 / 5 / 15 min): "
             + " / ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} logical cores.")
    return rows
