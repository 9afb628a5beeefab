"""The training loop: :func:`fit`, a generator of typed events.

Contract (see docs/DESIGN-notes.md, "training"):

* Argument errors (unknown or unavailable device, empty training set, bad
  numbers) raise from the call to :func:`fit` itself, before any event; the
  returned generator then never raises for ordinary exceptions inside
  training: it yields ``TrainFinished(reason=FAILED)`` with the message and the
  traceback in ``details``. It always yields ``RunStarted`` first and
  ``TrainFinished`` last.
* ``stop`` is polled before every step; a stop writes a checkpoint at the
  exact position (mid-epoch included) so :func:`aestudio.training.resume`
  continues bit for bit. ``pause`` is polled at the same points.
* Exact resume: each epoch's order is a permutation drawn from a seeded
  sampler generator whose state at the epoch start is saved, with the number
  of samples already consumed; the torch and numpy RNG states are saved too.
  Validation and previews run under ``torch.random.fork_rng`` so they never
  shift the training random stream.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from aestudio._malloc import keep_freed_memory
from aestudio.config import FinishReason, SelfSupervised, Task, TrainConfig
from aestudio.data.base import DataKind
from aestudio.training.device import device_name, resolve_device
from aestudio.training.distributed import Dist, Share, Solo, for_this_process, split_batches
from aestudio.training.ema import update_average
from aestudio.training.events import (
    BatchSizeReduced,
    CheckpointSaved,
    EpochEnded,
    Event,
    Paused,
    RunStarted,
    StepEnded,
    TrainFinished,
)
from aestudio.training.losses import batch_loss, kl_scale, noisy_copy
from aestudio.training.metrics import evaluate, is_better, main_metric
from aestudio.training.orphans import bounded_workers, worker_init
from aestudio.training.preview import PreviewMaker
from aestudio.training.runs import RunFolder, RunStatus
from aestudio.training.selfsup import SELECTION_METRIC
from aestudio.training.selfsup import batch_objective as selfsup_objective
from aestudio.training.selfsup import validation_loss as selfsup_validation

log = logging.getLogger(__name__)

_PAUSE_POLL_S = 0.05
_MAX_STEPS = object()  # _one_epoch's outcome when cfg.max_steps ends the run mid-epoch
_THROUGHPUT_SMOOTHING = 0.9  # EMA weight of the past; steadies img/s and ETA readouts


def _monotonic() -> float:
    """The clock of ``cfg.time_limit_minutes`` (module-level so tests can drive time)."""
    return time.monotonic()


@dataclass
class StartState:
    """Where a resumed run continues; built by :func:`aestudio.training.resume`."""

    epoch: int  # completed epochs (= index of the current epoch)
    step: int  # optimizer steps taken
    epoch_pos: int  # samples of the current epoch already consumed
    batch_size: int  # may be below cfg.batch_size after out-of-memory halving
    optimizer: dict[str, Any]
    torch_rng: torch.Tensor
    sampler_epoch_start: torch.Tensor
    numpy_rng: dict[str, Any]
    cuda_rng: list[torch.Tensor] = field(default_factory=list)
    scaler: dict[str, Any] = field(default_factory=dict)
    best: dict[str, Any] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    epoch_loss_sum: float = 0.0  # running train-loss sum of the current epoch
    epoch_loss_count: int = 0
    epoch_seconds: float = 0.0
    ema: dict[str, torch.Tensor] | None = None  # the moving average of the weights (TrainConfig.ema), if any
    ema_updates: int = 0
    anchor: dict[str, torch.Tensor] | None = None  # a fine-tuning run's starting weights (TrainConfig.anchor_clipped)


class _Finish(Exception):
    """Internal: ends the loop with a reason (raised from deep inside a step)."""

    def __init__(self, reason: FinishReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def train_step(trainer: _Trainer, x_in: torch.Tensor, target: torch.Tensor, kl_weight: float) -> tuple[float, dict[str, float]]:
    """One optimizer step; module-level so tests can inject faults (e.g. out of memory).

    Returns the loss and its terms; a non-finite loss is returned without
    touching the weights (no backward, no step)."""
    return trainer.step_once(x_in, target, kl_weight)


def fit(
    net: nn.Module,
    data: Any,
    cfg: TrainConfig,
    stop: threading.Event | None = None,
    *,
    run: RunFolder | None = None,
    pause: threading.Event | None = None,
    start: StartState | None = None,
    task: Task | None = None,
    budget_start: float | None = None,
) -> Iterator[Event]:
    """Train ``net`` on ``data`` (a DataBundle); returns the event generator.

    ``cfg.time_limit_minutes`` counts from ``budget_start`` (a :func:`_monotonic` time:
    ``runner.train`` / ``resume`` pass their own start, so opening the data is part of the
    budget), else from this call.

    ``task`` picks the objective (segmentation or image reconstruction); by
    default it is the registered task of the net named in ``run``, else
    ``SEGMENT`` for segmentation data and ``RECONSTRUCT`` otherwise (so an
    autoencoder can pre-train on the images of a segmentation set).
    Validates eagerly (raises ``ValueError``/``DeviceError``), then trains lazily
    as the generator is consumed."""
    ranks = for_this_process()  # the torchrun job, or a stand-in for the one process of an ordinary run
    device = ranks.place(resolve_device(cfg.device))  # under torchrun: this rank's device
    ranks.check_batch(start.batch_size if start else cfg.batch_size)  # and a batch that splits over the ranks
    ranks.check_same_data(len(data.train), device)
    if cfg.batch_size < 1 or cfg.epochs < 0 or cfg.lr <= 0:
        raise ValueError(f"batch_size must be >= 1, epochs >= 0 and lr > 0 (got {cfg.batch_size}, {cfg.epochs}, {cfg.lr})")
    if cfg.time_limit_minutes is not None and not cfg.time_limit_minutes > 0:
        raise ValueError(f"the time limit must be > 0 minutes (got {cfg.time_limit_minutes})")
    if len(data.train) == 0:
        raise ValueError(f"data {data.spec!r} has no training images; check the path or spec")
    if cfg.bf16 and device.type == "cpu" and not cpu_has_bf16():
        raise ValueError("bf16: this CPU has no native bfloat16 (AVX-512 BF16 or AMX), where bfloat16 training is "
                         "slower than float32; train without bf16")
    if task is None:
        task = _default_task(data, run)
    if task is Task.SEGMENT and data.kind is not DataKind.SEGMENTATION:
        raise ValueError(f"a segmentation net needs images with masks; {data.spec!r} has none (use shapes-seg or pairs:IMAGES,MASKS)")
    trainer = _Trainer(net, data, cfg, device, stop or threading.Event(), pause, run, start, task, ranks)
    trainer.budget_start = _monotonic() if budget_start is None else budget_start
    return trainer.events()


def cpu_has_bf16() -> bool:
    """Whether oneDNN has native bfloat16 kernels on this CPU (AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without oneDNN
        return False


def _default_task(data: Any, run: RunFolder | None) -> Task:
    if run is not None and run.record.get("task"):
        return Task(run.record["task"])
    return Task.SEGMENT if data.kind is DataKind.SEGMENTATION else Task.RECONSTRUCT


class _Trainer:
    def __init__(self, net: nn.Module, data: Any, cfg: TrainConfig, device: torch.device,
                 stop: threading.Event, pause: threading.Event | None, run: RunFolder | None,
                 start: StartState | None, task: Task, ranks: Dist | Solo) -> None:
        # Every question about the other processes goes to ``ranks``: a Dist under torchrun
        # (synchronised BatchNorm + DDP wrapper), else a Solo answering for one process.
        self.ranks = ranks
        # bfloat16 on the CPU (opt-in): autocast runs convs and matmuls in bfloat16 (parameters, optimizer
        # and loss stay float32) with channels-last memory, which oneDNN's bf16 kernels want. 48x13 FFDNet
        # at 32 x 64 px: 0.81 -> 0.33 CPU-s a step on an AVX-512 BF16 CPU (docs/DESIGN-notes.md).
        self.bf16 = cfg.bf16 and device.type == "cpu"
        if self.bf16:
            net = net.to(memory_format=torch.channels_last)
        # cfg.anchor_clipped (self-supervised fine-tuning): a frozen copy of the starting weights gives the target
        # where clipping biases the noisy one (selfsup.anchored_ne2ne_loss); a resume reloads them from the run.
        self.anchor: nn.Module | None = None
        if cfg.anchor_clipped and cfg.self_supervised is not SelfSupervised.NONE:
            self.anchor = copy.deepcopy(net).to(device).eval().requires_grad_(False)
            if start is not None and start.anchor is not None:
                self.anchor.load_state_dict(start.anchor, strict=True)
        self.net = net = ranks.prepare(net.to(device), device)
        # cfg.freeze_norm (self-supervised fine-tuning): BatchNorm normalises with the starting weights'
        # running statistics and keeps them; its scale and shift still learn.
        self.frozen_norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)] \
            if cfg.freeze_norm else []
        self.share: Share | None = None  # this rank's part of the current global batch
        self.stop_agreed = False  # a stop every rank saw in the last step's reduction (see _stop_requested)
        self.data = data
        self.cfg = cfg
        self.device = device
        self.stop = stop
        self.pause = pause
        self.run = run
        self.start = start
        self.task = task
        self.segment = task is Task.SEGMENT
        self.metric_name, self.metric_mode = main_metric(self.task)
        # Self-supervised: the batches are the noisy images themselves, the loss masks or sub-samples them.
        self.selfsup = cfg.self_supervised if not self.segment else SelfSupervised.NONE
        if self.selfsup is not SelfSupervised.NONE:
            self.metric_name = SELECTION_METRIC  # no clean images: SURE's estimate of the error against them
        self.noise = cfg.noise if cfg.noise.kind != "none" and not self.segment and self.selfsup is SelfSupervised.NONE else None
        self.n_train = len(data.train)
        self.optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.amp = cfg.amp and device.type == "cuda"  # float16 autocast only pays (and is only tested) on CUDA
        self.autocast_dtype = torch.bfloat16 if self.bf16 else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.sampler = torch.Generator()
        self.np_rng = np.random.default_rng(cfg.seed)
        s = start
        self.epoch = s.epoch if s else 0
        self.step = s.step if s else 0
        self.epoch_pos = s.epoch_pos if s else 0
        self.batch_size = s.batch_size if s else cfg.batch_size
        self.best: dict[str, Any] | None = s.best if s else None
        self.metrics: dict[str, float] = dict(s.metrics) if s else {}
        self.loss_sum = s.epoch_loss_sum if s else 0.0
        self.loss_count = s.epoch_loss_count if s else 0
        self.epoch_seconds = s.epoch_seconds if s else 0.0
        self.sampler_epoch_start = s.sampler_epoch_start if s else None
        if s:
            self.optimizer.load_state_dict(s.optimizer)
            for group in self.optimizer.param_groups:  # a resume may set a new rate (after a divergence)
                group["lr"] = cfg.lr
            if s.scaler and self.amp:
                self.scaler.load_state_dict(s.scaler)
        # TrainConfig.ema: what is validated, previewed and saved is a moving average of the
        # trained weights (the Label tab's live trainer does the same), which keeps training.
        self.ema_net: nn.Module | None = None
        self.ema_updates = s.ema_updates if s else 0
        if cfg.ema > 0 and s is not None and s.ema is not None:
            self.ema_net = copy.deepcopy(net).eval().requires_grad_(False)
            self.ema_net.load_state_dict(s.ema, strict=True)
        self.ips: float | None = None
        self.sec_per_step: float | None = None
        self.deadline: float | None = None  # set when training starts (see events())
        self.budget_start: float | None = None  # when the time limit's clock started (fit sets it)
        self.preview = PreviewMaker(data.val, cfg.preview_count, self.noise, cfg.seed, self.segment)

    # ------------------------------------------------------------- the generator

    def events(self) -> Iterator[Event]:
        reason, message, details = FinishReason.DONE, "", ""
        # glibc otherwise maps and zeroes each step's large blocks afresh: the photo-denoiser's recipe step took
        # 9-17 thousand minor page faults and 2-3 % longer (0.379 -> 0.370, 0.410 -> 0.403 s, one thread, bf16).
        keep_freed_memory()
        try:
            self._seed()
            if self.cfg.time_limit_minutes is not None:
                # The budget counts from the start of this invocation, opening the data included
                # (a person budgets wall time; a resume gets a fresh budget).
                began = _monotonic() if self.budget_start is None else self.budget_start
                self.deadline = began + 60.0 * self.cfg.time_limit_minutes
            yield self._started()
            if self.run:
                launch = self.ranks.record_fields(self.run.record, self.step, self.batch_size, self.device)
                self.run.update(status=RunStatus.RUNNING.value, message="", **launch)
            reason, message = yield from self._epochs()
        except _Finish as fin:
            reason, message = fin.reason, fin.message
        except GeneratorExit:
            # The consumer dropped us at a yield (a consistent step boundary): keep the work.
            self._safe_checkpoint(RunStatus.STOPPED, "closed by the caller")
            if self.run:
                self.run.release()
            raise
        except Exception as exc:  # reported, not raised: the contract of the generator
            reason, message, details = FinishReason.FAILED, f"{type(exc).__name__}: {exc}", traceback.format_exc()
            log.error("training failed: %s", message)
        if self.run and reason in (FinishReason.FAILED, FinishReason.DIVERGED):
            # The files keep the last good checkpoint; only the status says what happened.
            self._safe_update(status=reason.value, message=message)
        if self.run:
            self.run.release()  # the folder may be resumed now (by this process too)
        yield TrainFinished(reason=reason, message=message, run_dir=self.run.path if self.run else None,
                            epoch=self.epoch, step=self.step, metrics=dict(self.metrics), details=details)

    def _diverged_fix(self) -> str:
        """What is true after a divergence: whether a checkpoint exists to resume from."""
        if self.run is None:
            return "lower the learning rate and train again"
        if self.run.model_file.is_file():
            return (f"the run folder keeps the last good checkpoint (step {self.run.record.get('step', 0)}); resume it with "
                    f"a lower rate (aestudio train --resume --out {self.run.path} --lr {self.cfg.lr / 10:g}) or train again")
        return "no checkpoint was saved before it; train again with a lower --lr (e.g. " + f"{self.cfg.lr / 10:g})"

    def _seed(self) -> None:
        s = self.start
        if s is None:
            torch.manual_seed(self.cfg.seed)
            self.sampler.manual_seed(self.cfg.seed)
        else:
            self.sampler.set_state(s.sampler_epoch_start)
            torch.set_rng_state(s.torch_rng)
            if s.cuda_rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(s.cuda_rng[: torch.cuda.device_count()])
            self.np_rng.bit_generator.state = s.numpy_rng
        self.ranks.seed_rank(self.cfg.seed, self.step)  # ranks > 0 reseed torch; rank 0 keeps the saved stream

    def _started(self) -> RunStarted:
        notes: list[str] = []
        if self.run and self.run.record.get("init_encoder"):
            ie = self.run.record["init_encoder"]
            notes.append(f"encoder initialised from {ie['run']}: {ie['copied']} tensors copied")
        bad = len(getattr(self.data, "bad_files", []) or [])
        if bad:
            notes.append(f"{bad} unreadable files skipped")
        if getattr(self.data, "notes", ""):
            # How the images are read ("crops of 40 px, not 64: ...", "16-bit images stretched ...").
            notes.append(str(self.data.notes))
        notes.append(self.ranks.batch_note(self.batch_size, self.device))
        name = self.run.record["net"]["name"] if self.run else getattr(self.net, "name", type(self.net).__name__)
        return RunStarted(
            run_dir=self.run.path if self.run else None, device=str(self.device), device_name=device_name(self.device),
            net_name=name, num_params=sum(p.numel() for p in self.net.parameters()), train_size=self.n_train,
            val_size=len(self.data.val), batch_size=self.batch_size, epochs=self.cfg.epochs,
            steps_per_epoch=math.ceil(self.n_train / self.batch_size), start_epoch=self.epoch,
            start_step=self.step, notes=tuple(n for n in notes if n),
        )

    def _epochs(self) -> Iterator[Event]:
        cfg = self.cfg
        if self.start is None and self.run is not None and self.run.record.get("init_weights"):
            yield from self._score_start()
        while self.epoch < cfg.epochs:
            # On resume _seed() rewound the sampler to the saved epoch start, so this
            # draws the same permutation the interrupted run was working through.
            self.sampler_epoch_start = self.sampler.get_state()
            perm = torch.randperm(self.n_train, generator=self.sampler)
            outcome = yield from self._one_epoch(perm)
            if outcome is _MAX_STEPS:
                # Stopped by max_steps inside an epoch: validate and save the exact position.
                self._agree()
                self.metrics = self._validate()
                best = self._update_best()
                if self.run:  # not on ranks > 0 under torchrun (nor without a folder)
                    yield self._checkpoint(RunStatus.DONE, best=best)
                return FinishReason.DONE, f"reached max_steps={cfg.max_steps}"
            if outcome is not None:
                return outcome
            yield from self._end_epoch()
            if self._max_steps_reached():
                break
        if self.run:
            self.run.update(status=RunStatus.DONE.value, message="")
        return FinishReason.DONE, "finished" if self.epoch >= cfg.epochs else f"reached max_steps={cfg.max_steps}"

    def _max_steps_reached(self) -> bool:
        return self.cfg.max_steps is not None and self.step >= self.cfg.max_steps

    def _one_epoch(self, perm: torch.Tensor) -> Iterator[Event]:
        loader = self._loader(perm)
        t_epoch = time.perf_counter() - self.epoch_seconds
        oom_retries = 0
        while self.epoch_pos < self.n_train:
            if self._stop_requested():
                return (yield from self._stopped(time.perf_counter() - t_epoch))
            if self.pause is not None and self.pause.is_set():
                yield Paused(True)
                while self.pause.is_set() and not self.stop.is_set():
                    time.sleep(_PAUSE_POLL_S)
                yield Paused(False)
                if self.stop.is_set():
                    return (yield from self._stopped(time.perf_counter() - t_epoch))
            if self._max_steps_reached():
                self.epoch_seconds = time.perf_counter() - t_epoch
                return _MAX_STEPS
            t0 = time.perf_counter()
            (x, target), self.share = next(loader)
            x_in, tgt = self._inputs(x, target)
            weight = kl_scale(self.epoch + self.epoch_pos / self.n_train, self.cfg.kl_warmup_epochs)
            try:
                loss, terms = train_step(self, x_in, tgt, weight)
            except torch.OutOfMemoryError:
                self.optimizer.zero_grad(set_to_none=True)
                refusal = self.ranks.oom_refusal(self.batch_size)  # under torchrun: every rank keeps its batch size
                if refusal:
                    raise _Finish(FinishReason.FAILED, refusal) from None
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                oom_retries += 1
                if oom_retries > self.cfg.max_oom_retries or self.batch_size == 1:
                    raise _Finish(FinishReason.FAILED, (
                        f"out of memory at batch size {self.batch_size} after {oom_retries - 1} halvings; "
                        "use a smaller --batch-size or --image-size, or --device cpu")) from None
                old, self.batch_size = self.batch_size, max(1, self.batch_size // 2)
                log.warning("out of memory: batch size %d -> %d", old, self.batch_size)
                yield BatchSizeReduced(old=old, new=self.batch_size, reason="CUDA out of memory")
                loader = self._loader(perm)  # the same samples again, in smaller batches
                continue
            if not math.isfinite(loss):
                raise _Finish(FinishReason.DIVERGED, (
                    f"loss became {loss} at step {self.step + 1} (epoch {self.epoch + 1}); " + self._diverged_fix()))
            n = self.share.n_global  # positions count global samples (resumable on any number of processes)
            self.step += 1
            if self.cfg.ema > 0:
                self._update_ema()
            self.epoch_pos += n
            self.loss_sum += loss * n
            self.loss_count += n
            yield self._step_event(loss, terms, n, time.perf_counter() - t0)
            every = self.cfg.checkpoint_every_steps
            if every and self.step % every == 0 and self.epoch_pos < self.n_train:
                self.epoch_seconds = time.perf_counter() - t_epoch
                self._agree()
                if self.run:  # not on ranks > 0 under torchrun (nor without a folder)
                    yield self._checkpoint(RunStatus.RUNNING)
        self.epoch_seconds = time.perf_counter() - t_epoch
        return None

    def _update_ema(self) -> None:
        """Move the averaged weights towards the trained ones after a step, exactly as
        ``training.live.LiveTrainer`` does: the first step copies them, then the decay ramps as
        ``(1 + n) / (10 + n)`` up to ``cfg.ema``; BatchNorm's statistics are averaged too."""
        if self.ema_net is None:
            self.ema_net = copy.deepcopy(self.net).eval().requires_grad_(False)
            self.ema_updates = 0
            return
        self.ema_updates += 1
        update_average(self.ema_net, self.net, self.ema_updates, self.cfg.ema)

    def _published(self) -> nn.Module:
        """The weights that are validated, previewed and saved: the average once there is one."""
        return self.ema_net if self.ema_net is not None else self.net

    def _loader(self, perm: torch.Tensor) -> Iterator[Any]:
        """Batches of the epoch's permutation from the current position on."""
        order = perm[self.epoch_pos:].tolist()
        # Under torchrun: this rank's strided share of each global batch (one process: the batches).
        shares = split_batches(order, self.batch_size, self.ranks.rank, self.ranks.world_size)
        seed = self.cfg.seed * 100_003 + self.epoch
        # Its own generator: a DataLoader otherwise draws its worker base seed from the
        # global torch RNG each time an iterator is made, and a resume makes one at a
        # different moment than the uninterrupted run did, shifting the training stream.
        workers_seed = torch.Generator().manual_seed(self.ranks.loader_seed(seed))
        loader = torch.utils.data.DataLoader(self.data.train, batch_sampler=[s.indices for s in shares],
                                             num_workers=bounded_workers(self.cfg.num_workers),
                                             worker_init_fn=worker_init() if self.cfg.num_workers else None,
                                             collate_fn=getattr(self.data.train, "collate_fn", None),
                                             pin_memory=self.device.type == "cuda", generator=workers_seed)
        return zip(iter(loader), shares, strict=True)

    def _inputs(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.segment:
            return x.to(self.device, non_blocking=True), target.to(self.device, non_blocking=True)
        clean = x.to(self.device, non_blocking=True)
        if not self.noise:
            return clean, clean
        x_in = noisy_copy(x, self.noise, self.ranks.noise_rng(self.np_rng)).to(self.device, non_blocking=True)
        return x_in, clean

    def step_once(self, x_in: torch.Tensor, target: torch.Tensor, kl_weight: float) -> tuple[float, dict[str, float]]:
        self.net.train()
        for norm in self.frozen_norms:
            norm.eval()
        self.optimizer.zero_grad(set_to_none=True)
        if self.selfsup is not SelfSupervised.NONE:
            with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype, enabled=self.amp or self.bf16):
                loss, terms = selfsup_objective(self._forward, x_in, self.selfsup, anchor=self.anchor)
        else:
            with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype, enabled=self.amp or self.bf16):
                out = self.ranks.forward_train(x_in, self.share.weight)
            loss, terms = batch_loss(self.net, out, x_in, target, segmentation=self.segment,
                                     recon=self.cfg.recon_loss, kl_weight=kl_weight)
        return self._reduce_and_step(loss, terms)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """The net's output through ``ranks``: under torchrun the DDP wrapper, whose forward is what makes
        the backward all-reduce the gradients (the self-supervised objectives call the net on masked or
        sub-sampled inputs, so they get this instead of the module itself)."""
        assert self.share is not None
        return self.ranks.forward_train(x, self.share.weight)["output"]

    def _reduce_and_step(self, loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> tuple[float, dict[str, float]]:
        # One reduction makes every rank agree on the global loss (so all skip a non-finite
        # one together) and on a stop request; the weight makes DDP's gradient mean the
        # global-batch mean even when ranks hold different numbers of samples. One process
        # "reduces" to its own values, and its weight is exactly 1.0 (no rounding).
        assert self.share is not None
        wants_stop = self.stop.is_set() or self._time_up()
        value, reduced, self.stop_agreed = self.ranks.reduce_step(loss, terms, self.share, wants_stop, self.step + 1)
        if not math.isfinite(value):
            return value, {}
        self.scaler.scale(loss * self.share.weight).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return value, reduced

    def _stop_requested(self) -> bool:
        # Under torchrun only the flag agreed in the last reduction counts; one process polls its own.
        return self.ranks.stop_seen(self.stop_agreed, self.stop.is_set() or self._time_up())

    def _time_up(self) -> bool:
        return self.deadline is not None and _monotonic() >= self.deadline

    def _step_event(self, loss: float, terms: dict[str, float], n: int, dt: float) -> StepEnded:
        a = _THROUGHPUT_SMOOTHING
        ips = n / max(dt, 1e-9)
        self.ips = ips if self.ips is None else a * self.ips + (1 - a) * ips
        self.sec_per_step = dt if self.sec_per_step is None else a * self.sec_per_step + (1 - a) * dt
        total = self._total_steps()
        return StepEnded(epoch=self.epoch, step=self.step, total_steps=total, loss=loss, terms=terms,
                         images_per_s=self.ips, eta_s=max(0, total - self.step) * self.sec_per_step,
                         lr=float(self.optimizer.param_groups[0]["lr"]))

    def _total_steps(self) -> int:
        per_epoch = math.ceil(self.n_train / self.batch_size)
        left_this = math.ceil((self.n_train - self.epoch_pos) / self.batch_size)
        total = self.step + left_this + per_epoch * max(0, self.cfg.epochs - self.epoch - 1)
        return min(total, self.cfg.max_steps) if self.cfg.max_steps is not None else total

    # ------------------------------------------------------------- epoch end / checkpoints

    def _validate(self) -> dict[str, float]:
        if len(self.data.val) == 0 or not self.ranks.is_main:
            return {}  # rank 0 validates the whole set: metrics match a 1-process run exactly
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            if self.selfsup is not SelfSupervised.NONE:
                return selfsup_validation(self._published(), self.data.val, self.selfsup, device=self.device,
                                          batch_size=self.batch_size, seed=self.cfg.seed)
            return evaluate(self._published(), self.data.val, task=self.task, device=self.device, batch_size=self.batch_size,
                            noise=self.noise, seed=self.cfg.seed, num_classes=getattr(self.data, "num_classes", None),
                            class_names=getattr(self.data, "class_names", None))

    def _score_start(self) -> Iterator[Event]:
        """A run that starts from trained weights (``init_weights``: fine-tuning, "Learn this noise") scores them
        before the first step and keeps them as the best checkpoint, so the best model so far is never worse,
        by the run's own metric, than the one the user started from."""
        self.metrics = self._validate()
        if self._update_best():
            yield self._checkpoint(RunStatus.RUNNING, best=True)

    def _update_best(self) -> bool:
        value = self.metrics.get(self.metric_name)
        if value is None or not is_better(value, self.best["value"] if self.best else None, self.metric_mode):
            return False
        self.best = {"metric": self.metric_name, "mode": self.metric_mode.value, "value": value,
                     "epoch": self.epoch, "step": self.step, "metrics": dict(self.metrics)}
        return True

    def _end_epoch(self) -> Iterator[Event]:
        self._agree()
        self.metrics = self._validate()
        train_loss = self.loss_sum / max(self.loss_count, 1)
        seconds = self.epoch_seconds
        ended = self.epoch
        self.epoch += 1
        self.epoch_pos = 0
        self.sampler_epoch_start = self.sampler.get_state()  # a resume from here starts the next epoch
        self.loss_sum, self.loss_count, self.epoch_seconds = 0.0, 0, 0.0
        improved = self._update_best()
        preview = self.preview.make(self._published(), self.device) if self.ranks.is_main else None
        saved = None
        if self.run:
            self._check_weights()
            self.run.append_metrics({"epoch": self.epoch, "step": self.step, "train_loss": train_loss,
                                     "seconds": round(seconds, 3), "batch_size": self.batch_size, **self.metrics})
            saved = self._checkpoint(RunStatus.RUNNING, best=improved)
        yield EpochEnded(epoch=ended, step=self.step, train_loss=train_loss, metrics=dict(self.metrics),
                         seconds=seconds, preview=preview)
        if saved:
            yield saved

    def _stopped(self, seconds: float) -> Iterator[Event]:
        self.epoch_seconds = seconds
        if self.stop.is_set() or self.deadline is None:
            message = f"stopped at step {self.step} (epoch {self.epoch + 1}); resume to continue"
        else:  # the time budget ran out; run.json says so, so `aestudio info` and the app can tell why
            message = (f"time limit of {self.cfg.time_limit_minutes:.3g} min reached at step {self.step} "
                       f"(epoch {self.epoch + 1}); resume to continue")
            if self.step == (self.start.step if self.start else 0):  # not one step in this invocation
                message += " with a longer time limit: opening the data took all of this one"
        self._agree()
        best = False
        if self.selfsup is not SelfSupervised.NONE:
            # Self-supervised runs ("Learn this noise") are stopped at any moment, often between two
            # validations: score the weights being stopped on, so "the best model so far" includes them.
            self.metrics = self._validate()
            best = self._update_best()
        if self.run:
            yield self._checkpoint(RunStatus.STOPPED, best=best, message=message)
        return FinishReason.STOPPED, message

    def _agree(self) -> None:
        """Called by every rank where rank 0 is about to save: the weights it saves must be every rank's."""
        self.ranks.check_weights_agree(self.net, self.step)

    def _check_weights(self) -> None:
        nets = [self.net] + ([self.ema_net] if self.ema_net is not None else [])
        for name, p in ((n, p) for net in nets for n, p in net.state_dict().items()):
            if p.is_floating_point() and not bool(torch.isfinite(p).all()):
                raise _Finish(FinishReason.DIVERGED, (
                    f"weights became non-finite ({name}) by step {self.step}; the run folder keeps the last good "
                    "checkpoint; lower --lr and resume or train again"))

    def _checkpoint(self, status: RunStatus, *, best: bool = False, message: str = "") -> CheckpointSaved:
        from aestudio.training.checkpoint import TrainingState, save_training_state, save_weights

        assert self.run is not None
        self._check_weights()
        state = self._published().state_dict()  # with cfg.ema the average: what export, eval and the app load
        save_weights(self.run.model_file, state, step=self.step, epoch=self.epoch)
        if best:
            save_weights(self.run.best_file, state, step=self.step, epoch=self.epoch)
        save_training_state(self.run.state_file, TrainingState(
            optimizer=self.optimizer.state_dict(), torch_rng=torch.get_rng_state(),
            sampler_rng=self.sampler.get_state(),
            sampler_epoch_start=self.sampler_epoch_start if self.sampler_epoch_start is not None else self.sampler.get_state(),
            numpy_rng=self.np_rng.bit_generator.state,
            cuda_rng=list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
            scaler=self.scaler.state_dict() if self.amp else {}, step=self.step, epoch=self.epoch,
            net=self.net.state_dict() if self.ema_net is not None else None, ema_updates=self.ema_updates))
        # run.json last: it is the commit point that names this checkpoint.
        self.run.update(
            epoch=self.epoch, step=self.step, status=status.value, message=message,
            position={"epoch_pos": self.epoch_pos, "batch_size": self.batch_size,
                      "epoch_loss_sum": self.loss_sum, "epoch_loss_count": self.loss_count,
                      "epoch_seconds": round(self.epoch_seconds, 3)},
            metrics=self.metrics, best=self.best, bad_files=len(getattr(self.data, "bad_files", []) or []),
        )
        return CheckpointSaved(path=self.run.path, epoch=self.epoch, step=self.step, best=best)

    def _safe_checkpoint(self, status: RunStatus, message: str) -> None:
        if not self.run:
            return
        try:
            self._checkpoint(status)
            self._safe_update(message=message)
        except Exception:  # noqa: BLE001 - shutting down; never mask the original exit
            log.exception("could not write the final checkpoint to %s", self.run.path)

    def _safe_update(self, **fields: Any) -> None:
        try:
            assert self.run is not None
            self.run.update(**fields)
        except Exception:  # noqa: BLE001
            log.exception("could not update %s", self.run.path if self.run else "?")
