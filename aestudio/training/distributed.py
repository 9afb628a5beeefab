"""Training under ``torchrun``: one process per device, DistributedDataParallel, one run folder.

What :func:`aestudio.training.fit` needs to run as one of N processes, kept out of
the loop so the loop reads the same with or without it:

* **Launcher detection** from the environment ``torchrun`` sets (``RANK``,
  ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``): :func:`detect_launch`.
  A world of one is an ordinary run (no process group, no DDP).
* **Process group** set up and torn down by the CLI (:func:`init_from_env`,
  :func:`shutdown`) with a timeout, so a lost peer ends a collective with an
  error instead of a hang: Gloo for CPU tensors, NCCL for CUDA tensors (one
  group ``cpu:gloo,cuda:nccl`` when CUDA is there). The training core asks
  :func:`for_this_process` and never receives a callback; the GUI never calls
  :func:`init_from_env`, so for it that is always a :class:`Solo`, the one
  process of an ordinary run behind :class:`Dist`'s interface.
* **The sampler split.** Every rank draws the same epoch permutation from the
  run's seeded sampler (saved in the checkpoint) and cuts the same global
  batches of ``cfg.batch_size`` indices from it; each rank loads its strided
  share ``batch[rank::world]`` (:func:`split_batches`). Positions are counted
  in global samples, so a checkpoint written by 4 processes resumes on 1 and
  the reverse. Only indices are split: datasets stay lazy (``folder:`` decodes
  files in ``__getitem__``), each rank decodes only its own files.
* **Exact gradients.** Each rank's loss is weighted by ``n_rank * world / n``
  so DDP's mean of the rank gradients is the gradient of the mean loss over
  the whole global batch, also when the batch does not divide evenly.
  BatchNorm layers become synchronised (``nn.SyncBatchNorm`` on CUDA,
  :class:`CpuSyncBatchNorm` here on CPU, which ``nn.SyncBatchNorm`` refuses),
  so batch statistics are those of the global batch: the arithmetic of a
  2-process run is the 1-process run's, up to float rounding.
* **One reduction per step** (:meth:`Dist.reduce_step`): the loss and its
  terms (sums over ranks, so the loss is the global-batch mean), plus a stop
  flag, so every rank stops, diverges or goes on at the same step.
* **Validation, previews and every file are rank 0's.** The others wait for
  it in their next collective.

Random streams: rank 0 keeps the single-process streams (its state is the one
saved); other ranks derive theirs from (seed, rank, start step), and noise is
drawn per rank from a key taken from the shared numpy stream. A resumed
multi-process run therefore continues the sample order, weights and optimizer
exactly, but the random draws of ranks > 0 (VAE sampling, random crops, noise)
are fresh ones after a resume.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from aestudio.errors import AestudioError

log = logging.getLogger(__name__)

TIMEOUT_ENV = "AESTUDIO_DIST_TIMEOUT"  # seconds any collective may wait for the slowest rank
DEFAULT_TIMEOUT_S = 900.0  # must cover rank 0's validation and checkpoint at an epoch end
# TEST-ONLY fault injection: "RANK:STEP" makes that rank raise at that optimizer step
# (tests/distributed). Never set in production; read only by _test_fault().
TEST_FAULT_ENV = "AESTUDIO_TEST_FAIL_RANK_AT_STEP"


class DistributedError(AestudioError, RuntimeError):
    """The process group could not be formed or used; the message names the rank."""


@dataclass(frozen=True)
class LaunchInfo:
    """What the launcher told this process about itself."""

    rank: int  # global rank, 0 .. world_size - 1
    world_size: int  # processes in the job, all nodes
    local_rank: int  # rank on this node: picks the GPU
    local_world_size: int  # processes on this node


def detect_launch(environ: Mapping[str, str] | None = None) -> LaunchInfo | None:
    """The torchrun (or SLURM-through-torchrun) launch this process is part of, or None."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return None
    try:
        world = int(env["WORLD_SIZE"])
        rank = int(env["RANK"])
        local_rank = int(env.get("LOCAL_RANK", rank))
        local_world = int(env.get("LOCAL_WORLD_SIZE", world))
    except ValueError:
        raise DistributedError(f"bad launcher environment RANK={env.get('RANK')!r} WORLD_SIZE={env.get('WORLD_SIZE')!r}; "
                               "start the job with torchrun") from None
    if world < 1 or not 0 <= rank < world:
        raise DistributedError(f"bad launcher environment: RANK={rank} WORLD_SIZE={world}")
    return LaunchInfo(rank=rank, world_size=world, local_rank=local_rank, local_world_size=local_world)


@dataclass(frozen=True)
class Share:
    """One rank's part of one global batch."""

    indices: list[int]  # dataset indices this rank loads (a stand-in sample when ``weight`` is 0)
    n_global: int  # samples in the whole global batch: what the position advances by
    weight: float  # loss factor: n_rank * world / n_global (0 for a stand-in)

    @property
    def n_local(self) -> int:
        return len(self.indices) if self.weight else 0


def split_batches(order: list[int], batch_size: int, rank: int = 0, world: int = 1) -> list[Share]:
    """Global batches of ``order`` and this rank's strided share of each.

    With ``world == 1`` these are the plain batches. A global batch with fewer
    samples than processes (an epoch's last one) leaves some ranks without a
    sample: they load the batch's first sample as a stand-in with weight 0, so
    every rank still joins the gradient all-reduce."""
    shares = []
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        mine = batch[rank::world]
        if mine:
            shares.append(Share(mine, len(batch), len(mine) * world / len(batch)))
        else:
            shares.append(Share(batch[:1], len(batch), 0.0))
    return shares


# A stand-in sample must not enter the synchronised BatchNorm statistics.
_STAND_IN: contextvars.ContextVar[bool] = contextvars.ContextVar("aestudio_stand_in", default=False)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward sums the gradients over ranks (each rank's output
    feeds every rank's loss). ``torch.distributed.nn.functional.all_reduce`` does this
    but is deprecated in torch 2.15."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.contiguous().clone()
        dist.all_reduce(out)
        return out


def _all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(tensor)


class CpuSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch, over Gloo.

    ``nn.SyncBatchNorm`` runs on GPUs only. This computes the mean and the
    (two-pass, so no cancellation) variance from all-reduced sums whose backward
    all-reduces the gradients (as ``nn.SyncBatchNorm`` does), which is
    the math of one BatchNorm over the whole batch. Eval mode, or a world of
    one, is plain BatchNorm; parameter and buffer names are BatchNorm's, so
    checkpoints are interchangeable."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        channels = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, channels] + [1] * (x.dim() - 2)
        keep = 0.0 if _STAND_IN.get() else 1.0
        count = torch.tensor([keep * (x.numel() // channels)], dtype=x.dtype, device=x.device)
        total = _all_reduce(torch.cat([x.sum(dims) * keep, count]))
        n = total[channels]
        mean = total[:channels] / n
        centred = x - mean.view(shape)
        var = _all_reduce((centred * centred).sum(dims) * keep) / n
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                unbiased = var * n / torch.clamp(n - 1, min=1)
                self.running_mean.mul_(1 - factor).add_(mean.detach() * factor)
                self.running_var.mul_(1 - factor).add_(unbiased.detach() * factor)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """``module`` with every BatchNorm replaced (parameters and buffers shared, not copied)."""
        out = module
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, cls):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
            if module.affine:
                out.weight = module.weight
                out.bias = module.bias
            out.running_mean = module.running_mean
            out.running_var = module.running_var
            out.num_batches_tracked = module.num_batches_tracked
            out.train(module.training)
        for name, child in module.named_children():
            out.add_module(name, cls.convert(child))
        return out


class _TrainForward(nn.Module):
    """DDP syncs gradients only through ``forward``; the loop trains through ``forward_train``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, stand_in: bool = False) -> Any:
        token = _STAND_IN.set(stand_in)
        try:
            return self.net.forward_train(x)
        finally:
            _STAND_IN.reset(token)


class Dist:
    """This process's place in the job; what the training loop asks of it."""

    def __init__(self, launch: LaunchInfo, backend: str, timeout_s: float) -> None:
        self.launch = launch
        self.backend = backend
        self.timeout_s = timeout_s
        self.ddp: nn.Module | None = None

    @property
    def rank(self) -> int:
        return self.launch.rank

    @property
    def world_size(self) -> int:
        return self.launch.world_size

    @property
    def is_main(self) -> bool:
        return self.launch.rank == 0

    def backend_for(self, device: torch.device) -> str:
        return "nccl" if device.type == "cuda" else "gloo"

    def place(self, device: torch.device) -> torch.device:
        """The device this rank trains on: ``cuda:LOCAL_RANK`` for CUDA, the CPU as asked."""
        from aestudio.training.device import DeviceError

        if device.type == "cpu":
            return device
        if device.type == "cuda":
            if "nccl" not in self.backend:
                raise DeviceError("CUDA was not available when the process group started; use --device cpu")
            index = self.launch.local_rank % torch.cuda.device_count()
            if device.index not in (None, index) and self.launch.local_world_size > 1:
                log.warning("rank %d: --device %s ignored; each process uses cuda:LOCAL_RANK (pick GPUs with "
                            "CUDA_VISIBLE_DEVICES)", self.rank, device)
            return torch.device("cuda", index)
        raise DeviceError(f"{device.type} cannot train under torchrun (no collective backend for it); use --device cpu or cuda")

    def check_batch(self, batch_size: int) -> None:
        if batch_size < self.world_size:
            raise ValueError(f"--batch-size {batch_size} is smaller than the {self.world_size} processes; "
                             f"the batch size is global (split over the processes): use at least {self.world_size}")

    def check_same_data(self, n_train: int, device: torch.device) -> None:
        """Every rank must see the same training set, or the shares would not tile the batches."""
        sizes = torch.tensor([n_train, -n_train], dtype=torch.float64, device=device)
        try:
            dist.all_reduce(sizes, op=dist.ReduceOp.MAX)
        except Exception as exc:  # noqa: BLE001
            raise DistributedError(peer_lost_message(self.rank, exc)) from exc
        high, low = int(sizes[0].item()), int(-sizes[1].item())
        if high != low:
            raise ValueError(f"rank {self.rank} sees {n_train} training images, but the processes see between {low} "
                             f"and {high}: the data must be identical (same path and files) on every node")

    def batch_note(self, batch_size: int, device: torch.device) -> str:
        per, extra = divmod(batch_size, self.world_size)
        first = "rank 0" if extra == 1 else f"ranks 0-{extra - 1}"
        split = (f"{per} per process" if not extra else
                 f"{per + 1} on {first} and {per} on the others (it does not divide evenly; "
                 "gradients are weighted so the step is still the global-batch mean)")
        return (f"distributed: {self.world_size} processes ({self.backend_for(device)}); global batch {batch_size} = {split}; "
                "validation and files on rank 0")

    def record(self, previous: Any, step: int, batch_size: int, device: torch.device) -> list[dict[str, Any]]:
        """run.json's ``distributed`` list with this launch appended (launches of one run)."""
        launches = list(previous) if isinstance(previous, list) else []
        launches.append({"world_size": self.world_size, "backend": self.backend_for(device), "start_step": step,
                         "global_batch": batch_size})
        return launches

    def record_fields(self, record: Mapping[str, Any], step: int, batch_size: int,
                      device: torch.device) -> dict[str, Any]:
        """The run.json fields this launch adds: its entry in the ``distributed`` list."""
        return {"distributed": self.record(record.get("distributed"), step, batch_size, device)}

    def stop_seen(self, agreed: bool, asked: bool) -> bool:
        """Whether to stop before the next step: only on the flag every rank saw in the last
        step's reduction (``agreed``); a rank acting alone on its own flag (``asked``) would
        leave the others waiting in a collective."""
        return agreed

    def oom_refusal(self, batch_size: int) -> str | None:
        """Out of memory: every rank must keep the same global batch, so no halving."""
        return (f"rank {self.rank}: out of memory at global batch size {batch_size}; "
                "use a smaller --batch-size or more processes")

    def prepare(self, net: nn.Module, device: torch.device) -> nn.Module:
        """Synchronise BatchNorm and wrap for DDP; returns ``net`` itself (possibly with new BN modules).

        The wrapper is kept in :attr:`ddp`; checkpoints save ``net``'s own
        state dict (no ``module.`` prefix), so a run opens anywhere."""
        if device.type == "cuda":
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        else:
            net = CpuSyncBatchNorm.convert(net)
        from torch.nn.parallel import DistributedDataParallel

        # No buffer broadcast per forward: synchronised BatchNorm already keeps the running
        # statistics identical on every rank (the name of that switch changed in torch 2.15).
        no_sync_buffers = ({"forward_sync_buffers": False} if "forward_sync_buffers" in _ddp_parameters()
                           else {"broadcast_buffers": False})
        self.ddp = DistributedDataParallel(_TrainForward(net), device_ids=[device.index] if device.type == "cuda" else None,
                                           **no_sync_buffers)
        return net

    def forward_train(self, x: torch.Tensor, weight: float) -> Any:
        assert self.ddp is not None, "prepare() first"
        return self.ddp(x, weight == 0)

    def reduce_step(self, loss: torch.Tensor, terms: Mapping[str, torch.Tensor], share: Share, stop: bool,
                    step: int) -> tuple[float, dict[str, float], bool]:
        """Global-batch mean of the loss and its terms, and whether any rank asked to stop."""
        _test_fault(self.rank, step)
        keys = sorted(terms)
        values = [loss.detach()] + [terms[k].detach() for k in keys]
        parts = torch.stack([v.double() * share.n_local if share.n_local else torch.zeros((), dtype=torch.float64,
                                                                                           device=v.device)
                             for v in values])
        buf = torch.cat([parts, torch.tensor([float(stop)], dtype=torch.float64, device=parts.device)])
        try:
            dist.all_reduce(buf)
        except Exception as exc:  # noqa: BLE001 - the backend's error types vary; re-raised with context
            raise DistributedError(peer_lost_message(self.rank, exc)) from exc
        out = (buf / share.n_global).tolist()
        return out[0], dict(zip(keys, out[1:-1], strict=True)), buf[-1].item() > 0

    def check_weights_agree(self, net: nn.Module, step: int) -> None:
        """Raise unless every rank holds the same weights (called by all ranks before rank 0 saves them).

        DDP keeps them equal only when each gradient comes through its wrapper; a training path that
        calls the module directly would let the ranks drift apart silently and rank 0 would save a model
        trained on its share alone. One all-reduce of two sums per tensor (max and -min over ranks)."""
        sums = torch.stack([t.detach().double().sum() for t in net.state_dict().values() if t.is_floating_point()])
        both = torch.cat([sums, -sums])
        try:
            dist.all_reduce(both, op=dist.ReduceOp.MAX)
        except Exception as exc:  # noqa: BLE001
            raise DistributedError(peer_lost_message(self.rank, exc)) from exc
        high, low = both[: len(sums)], -both[len(sums):]
        spread = float((high - low).abs().max())
        if spread > 1e-6 * (1.0 + float(high.abs().max())):
            raise DistributedError(f"the processes' weights differ at step {step} (by {spread:.3g}): their gradients "
                                   "were not all-reduced; this is a bug in aestudio, please report it")

    def rank_seed(self, seed: int, step: int) -> int:
        """Torch seed of a rank > 0 (rank 0 keeps the run's saved stream)."""
        return int(np.random.SeedSequence([seed, self.rank, step]).generate_state(1)[0])

    def seed_rank(self, seed: int, step: int) -> None:
        """Reseed torch on ranks > 0 (their draws differ from rank 0's); rank 0 keeps the saved stream."""
        if self.rank:
            torch.manual_seed(self.rank_seed(seed, step))

    def noise_rng(self, shared: np.random.Generator) -> np.random.Generator:
        """This step's noise generator: a key from the shared stream (same on every rank), split by rank."""
        key = int(shared.integers(2**63))
        return np.random.default_rng([key, self.rank])

    def loader_seed(self, base: int) -> int:
        return base + 7_919 * self.rank

    def barrier(self) -> None:
        try:
            dist.barrier()
        except Exception as exc:  # noqa: BLE001
            raise DistributedError(peer_lost_message(self.rank, exc)) from exc


class Solo:
    """The one process of an ordinary run, with :class:`Dist`'s interface.

    The training loop asks this stand-in what it asks :class:`Dist`, so it reads
    the same with one process or many: rank 0 of a world of one, which writes
    everything, trains the net itself, and whose "reductions" are its own values.
    Its answers keep a single-process run exactly what it was before torchrun
    support (same random streams, same loss arithmetic: its share weight is 1.0)."""

    rank = 0
    world_size = 1
    is_main = True

    def __init__(self) -> None:
        self.net: nn.Module | None = None

    def place(self, device: torch.device) -> torch.device:
        return device

    def check_batch(self, batch_size: int) -> None:
        """Any batch size >= 1 splits over one process (fit checks >= 1)."""

    def check_same_data(self, n_train: int, device: torch.device) -> None:
        """One process sees one training set."""

    def batch_note(self, batch_size: int, device: torch.device) -> str:
        return ""  # nothing to tell about a batch nobody shares

    def record_fields(self, record: Mapping[str, Any], step: int, batch_size: int,
                      device: torch.device) -> dict[str, Any]:
        return {}  # run.json lists torchrun launches only (an earlier one's list is kept)

    def stop_seen(self, agreed: bool, asked: bool) -> bool:
        """A single process polls its own flag before every step (a stop asked before the
        first step stops at once); it has no peers to agree with."""
        return asked

    def oom_refusal(self, batch_size: int) -> str | None:
        return None  # the loop may halve the batch and try again

    def prepare(self, net: nn.Module, device: torch.device) -> nn.Module:
        self.net = net
        return net

    def forward_train(self, x: torch.Tensor, weight: float) -> Any:
        assert self.net is not None, "prepare() first"
        return self.net.forward_train(x)

    def reduce_step(self, loss: torch.Tensor, terms: Mapping[str, torch.Tensor], share: Share, stop: bool,
                    step: int) -> tuple[float, dict[str, float], bool]:
        """This process's loss and terms as they are, and its own stop flag."""
        return float(loss.detach()), {k: float(v.detach()) for k, v in terms.items()}, stop

    def check_weights_agree(self, net: nn.Module, step: int) -> None:
        """One process agrees with itself."""

    def seed_rank(self, seed: int, step: int) -> None:
        """The one process keeps the run's saved torch stream."""

    def noise_rng(self, shared: np.random.Generator) -> np.random.Generator:
        return shared  # the run's own stream, as saved in the checkpoint

    def loader_seed(self, base: int) -> int:
        return base


def for_this_process() -> Dist | Solo:
    """What :func:`aestudio.training.fit` trains with: the torchrun job, else a fresh :class:`Solo`."""
    return _ACTIVE if _ACTIVE is not None else Solo()


def _ddp_parameters() -> set[str]:
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    return set(inspect.signature(DistributedDataParallel).parameters)


def peer_lost_message(rank: int, exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    first = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0]  # gloo: "[file.cc:561] Connection closed by peer ..."
    return (f"rank {rank} lost contact with the other processes ({first}); another rank probably failed first "
            "(look for its 'rank N failed' line) or the timeout passed")


def _test_fault(rank: int, step: int) -> None:
    """TEST-ONLY: raise on the rank and step named in ``AESTUDIO_TEST_FAIL_RANK_AT_STEP``."""
    spec = os.environ.get(TEST_FAULT_ENV)
    if not spec:
        return
    want_rank, _, want_step = spec.partition(":")
    if int(want_rank) == rank and int(want_step or 1) == step:
        raise RuntimeError(f"injected test failure at step {step} ({TEST_FAULT_ENV})")


_ACTIVE: Dist | None = None


def active() -> Dist | None:
    """The job this process is part of, or None (a single process: the GUI, plain CLI runs, tests)."""
    return _ACTIVE


def is_main() -> bool:
    """True on rank 0 and in every non-distributed process: the one that writes."""
    return _ACTIVE is None or _ACTIVE.is_main


def timeout_seconds(environ: Mapping[str, str] | None = None) -> float:
    env = os.environ if environ is None else environ
    text = env.get(TIMEOUT_ENV, "")
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        raise DistributedError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds") from None
    if value <= 0:
        raise DistributedError(f"{TIMEOUT_ENV} must be > 0 seconds")
    return value


def init_from_env(environ: Mapping[str, str] | None = None) -> Dist | None:
    """Join the torchrun job this process was launched in; None outside torchrun or with one process."""
    global _ACTIVE
    launch = detect_launch(environ)
    if launch is None or launch.world_size == 1:
        return None
    if _ACTIVE is not None:
        return _ACTIVE
    if not dist.is_available():
        raise DistributedError("this torch build has no torch.distributed; install a standard PyTorch build")
    timeout_s = timeout_seconds(environ)
    backend = "gloo"
    if torch.cuda.is_available() and dist.is_nccl_available():
        # A lost NCCL peer must end the job, not hang it: let the watchdog tear the process down.
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
        torch.cuda.set_device(launch.local_rank % torch.cuda.device_count())
        backend = "cpu:gloo,cuda:nccl"
    try:
        dist.init_process_group(backend=backend, init_method="env://", rank=launch.rank, world_size=launch.world_size,
                                timeout=datetime.timedelta(seconds=timeout_s))
    except Exception as exc:  # noqa: BLE001 - rendezvous errors come as several types
        raise DistributedError(f"rank {launch.rank} could not join the {launch.world_size}-process job: {exc}") from exc
    _ACTIVE = Dist(launch, backend, timeout_s)
    log.info("rank %d of %d joined (%s, timeout %.0f s)", launch.rank, launch.world_size, backend, timeout_s)
    return _ACTIVE


def shutdown() -> None:
    """Leave the process group (safe to call twice, or when never joined)."""
    global _ACTIVE
    _ACTIVE = None
    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first (it may repair or write the run folder); the others after it.

    When rank 0 fails inside the block it does not release the others: it
    exits, and the launcher stops them."""
    ctx = _ACTIVE
    if ctx is None:
        yield
        return
    if not ctx.is_main:
        ctx.barrier()
    yield
    if ctx.is_main:
        ctx.barrier()


class RankTag(logging.Filter):
    """Prefixes log records with the rank, so interleaved output says who spoke."""

    def __init__(self, rank: int) -> None:
        super().__init__()
        self.prefix = f"[rank {rank}] "

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self.prefix):
            record.msg = self.prefix + str(record.msg)
        return True


def tag_logging(rank: int) -> None:
    """Rank-prefixed log lines on every handler of the root logger."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RankTag) for f in handler.filters):
            handler.addFilter(RankTag(rank))
