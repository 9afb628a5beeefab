"""Probe: time and peak memory of one large image through ``OrtPredictor`` (tiled path).

``python -m bench.probes.tiled BUNDLE {denoise,segment} SIZE`` prints one JSON line.
It runs in its own process so that the resident-memory figures are this call's
alone: the baseline is taken after the predictor and the input image exist, and
the peak is sampled by a thread while the call runs (psutil), alongside the
peak of numpy/Python allocations seen by tracemalloc.
"""

from __future__ import annotations

import argparse
import gc
import json
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

MIB = 2**20


class PeakRss:
    """Samples this process's RSS every ``interval`` seconds on a thread; keeps the max."""

    def __init__(self, interval: float = 0.002) -> None:
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self._interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def test_image(size: int, channels: int, seed: int = 0) -> np.ndarray:
    """A float32 [H, W, C] image in [0, 1]: smooth gradients plus grain (content does not change speed)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    img = np.empty((size, size, channels), dtype=np.float32)
    for c in range(channels):
        img[..., c] = 0.5 * (ramp[:, None] if c % 2 else ramp[None, :])
    img += rng.random(img.shape, dtype=np.float32) * 0.5
    return img


def main() -> None:
    import psutil

    from aestudio.inference.ort import OrtPredictor

    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=Path)
    ap.add_argument("mode", choices=["denoise", "segment"])
    ap.add_argument("size", type=int)
    ap.add_argument("--profile", default="batch")
    args = ap.parse_args()

    pred = OrtPredictor(args.bundle, profile=args.profile)
    channels = int(getattr(pred.info, "in_channels", 3) or 3)
    call = pred.segment if args.mode == "segment" else pred.run_image
    call(test_image(64, channels, seed=1))  # warm-up: sessions and first-run allocations are not per-image costs
    image = test_image(args.size, channels)
    gc.collect()
    proc = psutil.Process()
    rss_before = proc.memory_info().rss
    tracemalloc.start()
    with PeakRss() as peak:
        t0 = time.perf_counter()
        out = call(image)
        seconds = time.perf_counter() - t0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result = out[0] if isinstance(out, tuple) else out
    out_bytes = sum(a.nbytes for a in (out if isinstance(out, tuple) else (out,)))
    print(json.dumps({
        "seconds": seconds,
        "megapixels_per_s": args.size * args.size / 1e6 / seconds,
        "image_mib": image.nbytes / MIB,
        "out_mib": out_bytes / MIB,  # every returned array (segment: the mask and the probabilities)
        "rss_before_mib": rss_before / MIB,
        "rss_peak_delta_mib": (peak.peak - rss_before) / MIB,
        "traced_peak_mib": traced_peak / MIB,
        "out_shape": list(np.shape(result)),
        "out_dtype": str(np.asarray(result).dtype),
        "provider": getattr(pred, "provider", "?"),
    }))


if __name__ == "__main__":
    main()
