"""Training under torchrun: 1 vs 2 CPU processes on the same data, and the communication share per step.

Each case is one ``torchrun`` launch of this module's worker (``--worker``), which trains
through the project's own engine (``aestudio.training.train``: DDP, synchronised BatchNorm,
the per-step loss reduction) and prints one JSON line from rank 0. Launches of the
contenders are interleaved in rounds, so background load hits them alike.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ORDER = 80
TITLE = "Distributed training: 1 vs 2 CPU processes"
SEED = 0
WARMUP_STEPS = 6  # first steps pay for allocator growth and DataLoader start-up
VAL_FRACTION = 0.05  # the run validates once at the end (outside the timed window): keep it short
# (label, data spec, model, image size, global batch, steps); conv_ae has BatchNorm (synchronised
# over the processes), dense_ae has none and little compute per step: the worst case for comm.
CASES = [("conv_ae, shapes 32x32", "shapes", "conv_ae", 32, 64, 30), ("dense_ae, digits 8x8", "digits", "dense_ae", 8, 64, 60)]
# (processes, torch threads per process): the same 2 cores used three ways.
LAYOUTS = [(1, 1), (1, 2), (2, 1)]

ABOUT = f"""
**What.** Training throughput (images/s over steps {WARMUP_STEPS + 1}.. of one run, global
batch the same for every layout, no epoch end inside the window) of 1 process with 1 or 2
torch threads against 2 processes of 1 thread each, launched by `torch.distributed.run` on
127.0.0.1 (Gloo), through the project's engine (`aestudio.training.train`, so DDP, the
synchronised BatchNorm and the per-step loss reduction are all in the figure). Per step of
the 2-process run, the **communication share** = (a + b) / step time, with (a) the gradient
all-reduce, timed as the median forward+backward with DDP's gradient sync minus the same
under `no_sync()`, the ranks aligned by a barrier before each timed pass; (b) the engine's
other collectives (synchronised BatchNorm statistics, the loss/stop reduction): their count
per step (counted by wrapping `torch.distributed.all_reduce` during training) times the
median latency of one such small all-reduce with the ranks aligned. Apart from that,
**waiting** is the time the ranks spent blocked in those collectives during training beyond
(b): one rank waiting for the other, which on a loaded shared machine is where most of the
distributed overhead goes.

**Expectation, stated honestly.** This machine has 2 cores. Two processes cannot beat one
process using both cores: they do the same arithmetic plus the communication. The figure
shows the **overhead** of the distributed path, not a speed-up; scaling comes from adding
GPUs or machines, where each process brings its own compute (docs/DISTRIBUTED.md).
No pass/fail target.
"""


# ------------------------------------------------------------------ the benchmark (parent side)


def run(ctx: Any) -> list[Any]:
    from bench.harness import Row, SkipBenchmark, Status

    try:
        import torch.distributed as dist
    except ImportError as exc:  # pragma: no cover - torch without distributed
        raise SkipBenchmark(f"torch.distributed is not available: {exc}") from None
    if not dist.is_available() or not dist.is_gloo_available():
        raise SkipBenchmark("this torch build has no Gloo backend")
    import os

    rounds = ctx.pick(2, 1)
    cases = CASES if not ctx.quick else CASES[1:]
    rows: list[Row] = []
    load_before = os.getloadavg()[0]
    for label, data, model, size, batch, full_steps in cases:
        steps = ctx.pick(full_steps, WARMUP_STEPS + 4)
        results: dict[tuple[int, int], list[dict[str, Any]]] = {lay: [] for lay in LAYOUTS}
        for r in range(rounds):
            for nproc, threads in LAYOUTS if r % 2 == 0 else LAYOUTS[::-1]:
                out = Path(tempfile.mkdtemp(prefix=f"dist-{model}-{nproc}x{threads}-", dir=ctx.work_dir))
                results[(nproc, threads)].append(_launch(nproc, threads, model, data, size, batch, steps, out))
        base = statistics.median(x["images_per_s"] for x in results[(1, 1)])
        for (nproc, threads), got in results.items():
            ips = statistics.median(x["images_per_s"] for x in got)
            figures: dict[str, Any] = {
                "processes x threads": f"{nproc} x {threads}",
                "global batch": batch,
                "images/s": round(ips),
                "vs 1 x 1": f"{ips / base:.2f}x",
                "ms/step": round(1e3 * statistics.median(x["step_s"] for x in got), 1),
            }
            if nproc > 1:
                def med(key: str, got: list[dict[str, Any]] = got) -> float:
                    return statistics.median(x[key] for x in got)

                figures["grad all-reduce ms"] = round(1e3 * med("grad_allreduce_s"), 2)
                figures["other collectives/step"] = round(med("other_calls"))
                figures["other collectives ms"] = round(1e3 * med("other_collectives_s"), 2)
                figures["comm share"] = f"{100 * med('comm_share'):.0f} %"
                figures["waiting ms"] = round(1e3 * med("waiting_s"), 1)
            rows.append(Row(f"{label}, {nproc} x {threads}", figures, target="none (2 cores: overhead, not speed-up)",
                            status=Status.INFO))
    load_after = os.getloadavg()[0]
    ctx.note(f"Figures are medians over {rounds} round(s) of launches. `comm share` = (gradient all-reduce "
             "+ other collectives, ranks aligned) / step time; `waiting` = time per step blocked in "
             "collectives beyond that (one rank waiting for the other). 1-minute load average of the "
             f"machine (2 cores, shared with other work): {load_before:.1f} before, {load_after:.1f} after.")
    return rows


def _launch(nproc: int, threads: int, model: str, data: str, size: int, batch: int, steps: int, out: Path) -> dict[str, Any]:
    import socket

    from bench.harness import run_probe

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [f"--nproc_per_node={nproc}", "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={port}",
            "-m", "bench.benchmarks.distributed", "--worker", "--model", model, "--data", data,
            "--image-size", str(size), "--batch", str(batch), "--steps", str(steps), "--threads", str(threads),
            "--out", str(out / "run")]
    env = {"OMP_NUM_THREADS": str(threads), "AESTUDIO_DIST_TIMEOUT": "300"}
    if Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"
    return run_probe("torch.distributed.run", args, env=env, timeout=900)


# ------------------------------------------------------------------ the worker (one per rank, under torchrun)


def _worker(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="bench.benchmarks.distributed --worker")
    p.add_argument("--worker", action="store_true")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--image-size", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)

    import torch
    import torch.distributed as tdist

    torch.set_num_threads(a.threads)
    from aestudio.config import TrainConfig
    from aestudio.nets import default_config
    from aestudio.training import distributed, train
    from aestudio.training.events import StepEnded, TrainFinished

    ctx = distributed.init_from_env()
    collective = {"s": 0.0, "n": 0}
    real_all_reduce = tdist.all_reduce

    def timed_all_reduce(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return real_all_reduce(*args, **kwargs)
        finally:
            collective["s"] += time.perf_counter() - t0
            collective["n"] += 1

    tdist.all_reduce = timed_all_reduce  # the engine's own collectives (BatchNorm sync, loss reduction)
    cfg = TrainConfig(batch_size=a.batch, device="cpu", epochs=1000, max_steps=a.steps, seed=SEED, preview_count=1,
                      val_fraction=VAL_FRACTION)
    net_cfg = default_config(a.model, image_size=a.image_size)
    marks: list[tuple[float, float, int]] = []  # (time, collective seconds, calls so far) at each step end
    finished = None
    for ev in train(a.model, net_cfg, a.data, cfg, a.out, image_size=a.image_size):
        if isinstance(ev, StepEnded):
            marks.append((time.perf_counter(), collective["s"], collective["n"]))
        elif isinstance(ev, TrainFinished):
            finished = ev
    assert finished is not None and finished.reason.value == "done", finished and finished.message
    tdist.all_reduce = real_all_reduce
    window = marks[WARMUP_STEPS:]
    n_steps = len(window) - 1
    if n_steps < 1:
        raise SystemExit(f"need more than {WARMUP_STEPS + 1} steps")
    step_s = (window[-1][0] - window[0][0]) / n_steps
    blocked_s = (window[-1][1] - window[0][1]) / n_steps
    calls = (window[-1][2] - window[0][2]) / n_steps
    result: dict[str, Any] = {"processes": ctx.world_size if ctx else 1, "threads": a.threads,
                              "images_per_s": a.batch / step_s, "step_s": step_s}
    if ctx is not None:
        grad_s = _grad_allreduce_seconds(ctx, a.batch // ctx.world_size, a.image_size)
        other_s = calls * _small_allreduce_seconds(ctx)
        result.update(grad_allreduce_s=grad_s, other_calls=calls, other_collectives_s=other_s,
                      comm_share=min(1.0, (grad_s + other_s) / step_s), waiting_s=max(0.0, blocked_s - other_s))
    if ctx is None or ctx.is_main:
        print(json.dumps(result), flush=True)
    distributed.shutdown()


def _grad_allreduce_seconds(ctx: Any, per_rank: int, size: int, repeats: int = 15) -> float:
    """Median forward+backward with DDP's gradient sync minus the same under ``no_sync()``."""
    import contextlib

    import torch

    ddp = ctx.ddp
    net = ddp.module.net
    net.train()
    x = torch.rand(per_rank, 1, size, size, generator=torch.Generator().manual_seed(ctx.rank))

    def once(sync: bool) -> float:
        ctx.barrier()  # align the ranks so the sync pass does not also time the other's lag
        t0 = time.perf_counter()
        with contextlib.nullcontext() if sync else ddp.no_sync():
            out = ddp(x)
            ((out["output"] - x) ** 2).mean().backward()
        dt = time.perf_counter() - t0
        net.zero_grad(set_to_none=True)
        return dt

    once(True)
    once(False)
    with_sync, without = [], []
    for _ in range(repeats):
        with_sync.append(once(True))
        without.append(once(False))
    return max(0.0, statistics.median(with_sync) - statistics.median(without))


def _small_allreduce_seconds(ctx: Any, repeats: int = 40) -> float:
    """Median latency of one small all-reduce (like BatchNorm's statistics) with the ranks aligned."""
    import torch
    import torch.distributed as tdist

    buf = torch.zeros(33)
    times = []
    for _ in range(repeats):
        ctx.barrier()
        t0 = time.perf_counter()
        tdist.all_reduce(buf)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


if __name__ == "__main__":
    if "--worker" in sys.argv[1:]:
        logging.basicConfig(level=logging.WARNING)
        _worker(sys.argv[1:])
