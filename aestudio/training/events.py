"""Typed events yielded by :func:`aestudio.training.fit`.

Small frozen dataclasses of plain data (numbers, strings, CPU numpy arrays):
safe to pass across threads and processes, and free of any UI type. The GUI
adapts the generator to a worker; the CLI feeds a progress bar from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aestudio.config import FinishReason


@dataclass(frozen=True)
class RunStarted:
    run_dir: Path | None
    device: str  # e.g. "cpu", "cuda:0"
    device_name: str  # human-readable, e.g. "NVIDIA A100 80GB" or "CPU (2 threads)"
    net_name: str
    num_params: int
    train_size: int
    val_size: int
    batch_size: int
    epochs: int  # the run's target epoch count
    steps_per_epoch: int
    start_epoch: int  # > 0 when resuming
    start_step: int
    notes: tuple[str, ...] = ()  # readable facts worth a log line, e.g. "copied 8 encoder tensors from RUN"


@dataclass(frozen=True)
class StepEnded:
    epoch: int  # 0-based epoch this step belongs to
    step: int  # global optimizer step count after this step (1-based)
    total_steps: int  # epochs * steps_per_epoch (or max_steps)
    loss: float
    terms: dict[str, float]  # loss terms, e.g. {"recon": .., "kl": ..}
    images_per_s: float  # smoothed throughput
    eta_s: float  # estimated seconds to the end of the run
    lr: float


@dataclass(frozen=True)
class Preview:
    """A few validation images for a preview grid, all float32 [N, C, H, W] in [0, 1]
    (``masks``/``targets`` are int64 [N, H, W] class indices for segmentation)."""

    inputs: np.ndarray  # what the net saw (noisy for denoising)
    outputs: np.ndarray | None = None  # reconstruction / denoised image
    clean: np.ndarray | None = None  # the clean target for denoising
    masks: np.ndarray | None = None  # predicted class indices
    targets: np.ndarray | None = None  # true class indices


@dataclass(frozen=True)
class EpochEnded:
    epoch: int  # 0-based index of the epoch that just ended
    step: int
    train_loss: float  # mean over the epoch
    metrics: dict[str, float]  # validation: mse, psnr, ssim, [nelbo], [miou, iou_<c>, dice_<c>]
    seconds: float
    preview: Preview | None = None


@dataclass(frozen=True)
class CheckpointSaved:
    path: Path
    epoch: int  # number of completed epochs in the checkpoint
    step: int
    best: bool = False  # also the best so far by the run's main validation metric


@dataclass(frozen=True)
class BatchSizeReduced:
    old: int
    new: int
    reason: str  # e.g. "CUDA out of memory"


@dataclass(frozen=True)
class Paused:
    paused: bool  # True when the run pauses, False when it continues


@dataclass(frozen=True)
class TrainFinished:
    reason: FinishReason
    message: str  # one readable line (the error for "failed"/"diverged")
    run_dir: Path | None
    epoch: int  # completed epochs
    step: int
    metrics: dict[str, float] = field(default_factory=dict)  # last validation metrics
    details: str = ""  # traceback text for "failed"


Event = RunStarted | StepEnded | EpochEnded | CheckpointSaved | BatchSizeReduced | Paused | TrainFinished
