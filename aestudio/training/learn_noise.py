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

import numpy as np

from aestudio.config import SelfSupervised, TrainConfig
from aestudio.training.events import Event

log = logging.getLogger(__name__)

NET = "denoising_ae"
MAX_IMAGES = 100  # images copied for one session; a few already carry the noise statistics
CROP = 64  # training crops (px); smaller images shrink it (aestudio.data.noisy)
# Long enough to keep improving until stopped; checkpoints every few steps feed the live preview.
LEARN_CONFIG = TrainConfig(epochs=10_000, batch_size=16, lr=1e-3, device="cpu", seed=0, preview_count=1,
                           self_supervised=SelfSupervised.NE2NE, checkpoint_every_steps=3)
FINE_TUNE_LR = 1e-4  # measured (bench selfsup_denoise): at 1e-3 the first steps undo a trained denoiser (-7 dB)


def usable_images(paths: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """(the image files training can use, one line per file left out naming it and why).

    Left out: files that are not images, cannot be read, or are smaller than the smallest
    training crop (:data:`aestudio.data.noisy.MIN_CROP`; images are never resized)."""
    from aestudio.data.io import is_supported_file, probe_image
    from aestudio.data.noisy import MIN_CROP

    good: list[Path] = []
    left_out: list[str] = []
    for path in (Path(p) for p in paths):
        if not (path.is_file() and is_supported_file(path)):
            continue  # not an image (a dropped text file, a folder): nothing to say about it here
        try:
            info = probe_image(path)
        except ValueError as exc:
            left_out.append(str(exc))
            continue
        if min(info.width, info.height) < MIN_CROP:
            left_out.append(f"{path}: {info.width}x{info.height} is too small to learn from (training crops need "
                            f"{MIN_CROP} pixels a side and images are never resized); drop larger images")
            continue
        good.append(path)
    return good, left_out


def session_name(paths: Sequence[Path]) -> str:
    """A name people recognise for a session's images (its folder, run and model are called so):
    ``micro12`` or ``micro12-and-3-more``, file-name safe."""
    import re

    first = re.sub(r"[^A-Za-z0-9_.]+", "-", Path(paths[0]).stem).strip("-.")[:40] if paths else ""
    more = f"-and-{len(paths) - 1}-more" if len(paths) > 1 else ""
    return (first or "images") + more


def stage_images(paths: Sequence[Path], folder: Path, max_images: int = MAX_IMAGES) -> Path:
    """Copy the usable ``paths`` (:func:`usable_images`; at most ``max_images``, evenly spaced) into ``folder``
    (new or empty) and return it.

    Copies, never links: training must never write over, or depend on, the
    originals (which may be renamed or deleted while training goes on)."""
    files, left_out = usable_images(paths)
    if len(files) > max_images:  # a whole browsed folder: a spread of it teaches the noise as well
        files = [files[int(i)] for i in np.linspace(0, len(files) - 1, max_images)]
    if not files:
        raise ValueError(left_out[0] if left_out else
                         "no noisy images to learn from: drop or open PNG, TIFF, JPEG or BMP images first")
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise ValueError(f"{folder} is not empty; pick a new folder for the images to learn from")
    for i, path in enumerate(files):
        shutil.copy2(path, folder / f"{i:03d}-{path.name}")  # numbered: two 'img.png' from two folders both stay
    return folder


def learn(images: Path, run_dir: Path, *, stop: threading.Event, pause: threading.Event | None = None,
          cfg: TrainConfig = LEARN_CONFIG, crop: int = CROP, init_from: Path | None = None) -> Iterator[Event]:
    """Train a denoiser on the noisy images in ``images`` alone (Neighbor2Neighbor); the event generator.

    ``init_from``: a run or bundle of a ``denoising_ae`` to fine-tune (its weights adapt to this noise)."""
    import dataclasses

    from aestudio.training.runner import train

    if init_from is not None:
        cfg = dataclasses.replace(cfg, lr=min(cfg.lr, FINE_TUNE_LR))
    return train(NET, None, f"folder:{images}", cfg, run_dir, stop=stop, pause=pause, image_size=crop,
                 init_weights=init_from)


def can_start_from(info: Any, images: Path) -> bool:
    """True if a bundle's model (``ModelInfo``) can be fine-tuned on ``images``: a denoising_ae with torch
    weights and the channel count the folder will be read with (any colour image makes it colour)."""
    from aestudio.data.io import iter_image_files, probe_image

    if getattr(info, "net", None) != NET or not (getattr(info, "files", None) or {}).get("weights"):
        return False
    channels = 1
    for path in iter_image_files(images):
        try:
            if probe_image(path).channels == 3:
                channels = 3
                break
        except ValueError:
            continue
    return int(getattr(info, "in_channels", 0)) == channels


def latest_net(run_dir: Path, which: str = "last") -> tuple[Any, Any]:
    """(net in eval mode, RunInfo) from the run's newest (or best) checkpoint, for a live preview."""
    from aestudio.training.runs import load_net

    return load_net(run_dir, which=which)
