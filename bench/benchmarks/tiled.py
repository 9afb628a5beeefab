"""Large images through the tiled path: 4096 x 4096 RGB denoise and segment, time and peak memory."""

from __future__ import annotations

import logging

from bench.fixtures import bundle_for, speed_run_kwargs
from bench.harness import Context, Row, Status, run_probe

log = logging.getLogger(__name__)

ORDER = 40
TITLE = "Tiled 4096 x 4096 RGB denoise and segment"
SIZE = 4096
# An untiled pass of either net at 4096^2 needs several GiB for one feature map
# stack (16 channels x 4096^2 x 4 bytes = 1 GiB per map); tiling must keep the
# extra memory well under that. The input alone is 192 MiB (float32 RGB).
TARGET_EXTRA_MIB = 1024

ABOUT = f"""
**What.** One {SIZE} x {SIZE} RGB float32 image through `OrtPredictor.run_image` with a
3-channel `denoising_ae` bundle, and through `OrtPredictor.segment` with a 3-channel `unet`
bundle (which returns the mask and the class probabilities), with the *batch* profile.

**How.** Each call runs in a fresh subprocess (`bench/probes/tiled.py`) after a warm-up on a
small image. Peak memory is measured two ways during the call: the peak resident set size
above the baseline (psutil, sampled every 2 ms on a thread; the baseline already holds the
predictor and the input image), and the peak of Python/numpy allocations (tracemalloc).
The weights come from a 2-step run: they do not change time or memory.

**Target.** Bounded memory: peak extra RSS under {TARGET_EXTRA_MIB} MiB (an untiled pass would
need several GiB). Time is reported, without a target.
"""

CASES = (
    ("denoise", "denoising_ae"),
    ("segment", "unet"),
)


FINDINGS = """
- Tiling works (an untiled 4096^2 pass would need several GiB per feature map stack) and takes
  ~10-12 s per image on 2 cores.
- Peak extra RSS was 1.3-1.4 GiB with batches of 4 tiles: 768 MiB of numpy arrays (four
  full-size float32 copies of the image: `prepare_image` converts then makes a contiguous CHW
  copy; `run_image` clips and makes an HWC copy besides the tile accumulator) plus ~530 MiB of
  ONNX Runtime's CPU memory arena grown by the tile batches. With one tile per call (now the
  default, `tiling.DEFAULT_TILE_BATCH`) it is 771-902 MiB at the same speed. Turning the arena
  off gave 829 MiB but 18 % slower. Still to do: drop one or two of the full-image copies
  (clip in place, write tiles straight into an HWC output).
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
        rows.append(Row(
            f"{mode} ({net}) {size}x{size}",
            {
                "seconds": round(res["seconds"], 2),
                "MP/s": round(res["megapixels_per_s"], 2),
                "input MiB": round(res["image_mib"]),
                "peak extra RSS MiB": round(extra),
                "tracemalloc peak MiB": round(res["traced_peak_mib"]),
                "output": "x".join(map(str, res["out_shape"])) + f" {res['out_dtype']}",
            },
            target=f"extra RSS < {TARGET_EXTRA_MIB} MiB",
            status=Row.verdict(extra < TARGET_EXTRA_MIB),
        ))
    return rows
