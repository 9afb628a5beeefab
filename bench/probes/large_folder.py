"""Probe: open a large ``folder:`` data set and train one epoch on it; time and memory.

``python -m bench.probes.large_folder FOLDER [--image-size S] [--batch-size B]`` prints one
JSON line. In its own process so the resident-memory figures are this run's alone:
RSS after the imports, after opening the folder (paths only), and the peak while
training an epoch (sampled on a thread), against what the decoded images would take
if they were all held in memory.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

MIB = 2**20


def main() -> None:
    import psutil
    import torch

    from aestudio.config import TrainConfig
    from aestudio.data.specs import open_data
    from aestudio.nets import build_net, default_config
    from aestudio.training.events import EpochEnded, StepEnded, TrainFinished
    from aestudio.training.loop import fit
    from bench.probes.tiled import PeakRss

    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(1)
    proc = psutil.Process()
    rss_imports = proc.memory_info().rss
    t0 = time.perf_counter()
    data = open_data(f"folder:{args.folder}", image_size=args.image_size, channels=1)
    open_s = time.perf_counter() - t0
    rss_open = proc.memory_info().rss
    n = len(data.train) + len(data.val)
    cfg = default_config("dense_ae", image_size=args.image_size, in_channels=1, latent_dim=8, hidden=64)
    net = build_net("dense_ae", cfg)
    tc = TrainConfig(epochs=1, batch_size=args.batch_size, device="cpu", preview_count=4)
    steps, epoch_s, reason = 0, None, None
    t1 = time.perf_counter()
    with PeakRss(interval=0.01) as peak:
        for ev in fit(net, data, tc):
            if isinstance(ev, StepEnded):
                steps += 1
            elif isinstance(ev, EpochEnded):
                epoch_s = ev.seconds
            elif isinstance(ev, TrainFinished):
                reason = ev.reason.value
    total_s = time.perf_counter() - t1
    decoded = n * args.image_size**2 * 4  # float32 items, one channel
    print(json.dumps({
        "files": n, "train": len(data.train), "val": len(data.val), "open_s": round(open_s, 2),
        "epoch_s": round(epoch_s or total_s, 1), "total_s": round(total_s, 1), "steps": steps, "reason": reason,
        "images_per_s": round(len(data.train) / (epoch_s or total_s)),
        "rss_imports_mib": round(rss_imports / MIB), "rss_open_mib": round(rss_open / MIB),
        "peak_mib": round(peak.peak / MIB), "epoch_growth_mib": round((peak.peak - rss_open) / MIB, 1),
        "decoded_mib": round(decoded / MIB, 1), "bad_files": len(data.bad_files),
    }))


if __name__ == "__main__":
    main()
