""""Learn this noise": a self-supervised denoiser trained on a few noisy images a person dropped.

The app's Noise lab (and any other front end) calls :func:`stage_images` to copy
the images into a folder of their own (the originals are only read), then
:func:`learn` for the event generator its training worker drives, and
:func:`latest_net` every few seconds for the weights to preview. Stopping
leaves a resumable run whose best checkpoint exports as a bundle.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from aestudio.config import SelfSupervised, TrainConfig
from aestudio.training.events import Event

log = logging.getLogger(__name__)

NET = "denoising_ae"
CROP = 64  # training crops (px); smaller images shrink it (aestudio.data.noisy)
# Long enough to keep improving until stopped; checkpoints every few steps feed the live preview.
LEARN_CONFIG = TrainConfig(epochs=10_000, batch_size=16, lr=1e-3, device="cpu", seed=0, preview_count=1,
                           self_supervised=SelfSupervised.NE2NE, checkpoint_every_steps=3)


def stage_images(paths: Sequence[Path], folder: Path) -> Path:
    """Copy ``paths`` into ``folder`` (created; must be new or empty) and return it.

    Copies, never links: training must never write over, or depend on, the
    originals (which may be renamed or deleted while training goes on)."""
    from aestudio.data.io import is_supported_file

    files = [Path(p) for p in paths if Path(p).is_file() and is_supported_file(Path(p))]
    if not files:
        raise ValueError("no noisy images to learn from: drop or open PNG, TIFF, JPEG or BMP images first")
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise ValueError(f"{folder} is not empty; pick a new folder for the images to learn from")
    for i, path in enumerate(files):
        shutil.copy2(path, folder / f"{i:03d}-{path.name}")  # numbered: two 'img.png' from two folders both stay
    return folder


def learn(images: Path, run_dir: Path, *, stop: threading.Event, pause: threading.Event | None = None,
          cfg: TrainConfig = LEARN_CONFIG, crop: int = CROP) -> Iterator[Event]:
    """Train a denoiser on the noisy images in ``images`` alone (Neighbor2Neighbor); the event generator."""
    from aestudio.training.runner import train

    return train(NET, None, f"folder:{images}", cfg, run_dir, stop=stop, pause=pause, image_size=crop)


def latest_net(run_dir: Path, which: str = "last") -> tuple[Any, Any]:
    """(net in eval mode, RunInfo) from the run's newest (or best) checkpoint, for a live preview."""
    from aestudio.training.runs import load_net

    return load_net(run_dir, which=which)
