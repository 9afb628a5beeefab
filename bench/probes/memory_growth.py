"""Probe: resident memory after each of many short epochs of a real run (with its run folder).

``python -m bench.probes.memory_growth WORK_DIR [--epochs E]`` prints one JSON line: the RSS
after every epoch and the least-squares slope over the second half (the first epochs
warm caches and allocator pools). A leak of even a few objects per step shows as a
steady slope over dozens of epochs; hours-long runs are many such epochs.
"""

from __future__ import annotations

import argparse
import gc
import json
from pathlib import Path

MIB = 2**20


def slope(values: list[float]) -> float:
    """Least-squares slope of ``values`` against their index."""
    n = len(values)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(values) / n
    return sum((i - mx) * (v - my) for i, v in enumerate(values)) / sum((i - mx) ** 2 for i in range(n))


def main() -> None:
    import psutil
    import torch

    from aestudio.config import TrainConfig
    from aestudio.nets import default_config
    from aestudio.training import train
    from aestudio.training.events import EpochEnded, TrainFinished

    ap = argparse.ArgumentParser()
    ap.add_argument("work", type=Path)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--data", default="digits")
    ap.add_argument("--net", default="conv_ae", choices=("conv_ae", "dense_ae"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    proc = psutil.Process()
    cfg = TrainConfig(epochs=args.epochs, batch_size=64, device="cpu", preview_count=8)
    rss: list[float] = []
    reason = None
    params = {"conv_ae": {"latent_dim": 8, "base_channels": 8}, "dense_ae": {"latent_dim": 4, "hidden": 16}}[args.net]
    gen = train(args.net, default_config(args.net, **params), args.data, cfg, args.work / "run", image_size=16)
    for ev in gen:
        if isinstance(ev, EpochEnded):
            gc.collect()
            rss.append(proc.memory_info().rss / MIB)
        elif isinstance(ev, TrainFinished):
            reason = ev.reason.value
    half = rss[len(rss) // 2:]
    print(json.dumps({"epochs": len(rss), "reason": reason, "rss_mib": [round(v, 1) for v in rss],
                      "first_mib": round(rss[0], 1), "last_mib": round(rss[-1], 1),
                      "slope_mib_per_epoch": round(slope(half), 3),
                      "growth_second_half_mib": round(half[-1] - half[0], 1)}))


if __name__ == "__main__":
    main()
