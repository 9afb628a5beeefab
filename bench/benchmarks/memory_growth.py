"""Long runs: resident memory after each of many short epochs must not grow."""

from __future__ import annotations

from bench.harness import Context, Row, run_probe

ORDER = 95
TITLE = "Memory over many epochs"
TARGET_MIB_PER_EPOCH = 0.25  # 1,000 epochs (a long night of small ones) would add < 250 MiB

ABOUT = f"""
**What.** A real run (`aestudio.training.train`, `conv_ae` on digits at 16 x 16, batch 64, run
folder with a checkpoint, metrics line and preview every epoch) for 60 short epochs; RSS after
each epoch (after `gc.collect()`).

**How.** `bench/probes/memory_growth.py` in a fresh process; the slope is a least-squares fit
over the second half of the epochs (the first ones warm caches and allocator pools).

**Target.** Slope under {TARGET_MIB_PER_EPOCH} MiB per epoch.
"""


def run(ctx: Context) -> list[Row]:
    epochs = ctx.pick(60, 6)
    res = run_probe("bench.probes.memory_growth", [str(ctx.work_dir / "memory-growth"), "--epochs", str(epochs)],
                    timeout=3600)
    ok = res["reason"] == "done" and res["slope_mib_per_epoch"] < TARGET_MIB_PER_EPOCH
    return [Row(
        f"conv_ae digits, {res['epochs']} epochs",
        {"RSS epoch 1 MiB": res["first_mib"], "RSS last MiB": res["last_mib"],
         "growth 2nd half MiB": res["growth_second_half_mib"], "slope MiB/epoch": res["slope_mib_per_epoch"]},
        target=f"slope < {TARGET_MIB_PER_EPOCH} MiB/epoch",
        status=Row.verdict(ok),
    )]
