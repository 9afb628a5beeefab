"""ONNX Runtime vs torch eager, per registered net, at batch 1 and 64, plus the decoders."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.fixtures import bundle_for, speed_run_kwargs
from bench.harness import Context, Row, SkipBenchmark, Status, fmt_ms, measure_side_by_side
from bench.sessions import Profile, session

log = logging.getLogger(__name__)

ORDER = 20
TITLE = "ONNX Runtime vs torch eager"
FULLY_CONV_SIZE = 128  # the U-Net target is at 128 x 128; the denoiser is held to the same size
DECODER_NETS = ("conv_ae", "vae")  # the slider path: decode(z) on every slider move
BATCHES = (1, 64)

ABOUT = f"""
**What.** Time of one forward pass of every registered net (input `image`, the exported
output) and of the decoder alone for {", ".join(f"`{n}`" for n in DECODER_NETS)} (input `z`:
the slider path), in torch eager and in ONNX Runtime, at batch 1 and batch 64.

**How.** Each net is trained for 2 steps by the engine (weights do not change speed),
exported with `export_run`, and loaded back with `load_net` for torch. ONNX Runtime runs
the bundle's sessions as `OrtPredictor` creates them: the *interactive* profile at batch 1,
the *batch* profile at batch 64 (CPU provider). Torch runs under `torch.inference_mode()`
with its default thread count (all cores). Only the model call is timed (no
pre/post-processing). Fixed-size nets run at their configured size; fully convolutional
nets at {FULLY_CONV_SIZE} x {FULLY_CONV_SIZE}. The two sides are interleaved in short blocks
after warm-up; figures are medians over all calls. ratio = torch time / ORT time.
`max abs diff` checks that both computed the same thing. At batch 1, where the interactive
profile gives ORT one thread against torch's two, two context figures are added: ORT with the
batch profile (all cores; same interleaved pass) and torch limited to one thread (a second pass).
The verdict uses the profile the product uses (`ratio`).

**Targets (issue 3, 2 CPU cores).** Batch 1: ratio >= 3 for the conv autoencoder and VAE
decoders; >= 2 for the U-Net at 128 x 128. Every row: ratio >= 1 (ORT never slower).
"""


@dataclass(frozen=True)
class Case:
    label: str
    net_name: str
    part: str  # "model" or "decoder"
    batch: int
    target: float  # minimum ratio


FINDINGS = """
- The exported graphs are not the problem: with equal threads ORT is faster for every net
  (ratio 1 thread >= 1.2, ratio all cores >= 1.5 at batch 1), and 1.06-3.2x at batch 64.
- The three misses at batch 1 are a thread mismatch by design: the interactive profile gives
  ORT one thread, torch eager uses both cores. For the compute-bound fully convolutional nets
  at 128 x 128 (`unet`, `denoising_ae`) one ORT thread barely matches two torch threads (0.8-1.15x
  over runs); with all cores ORT is ~1.5x faster. Recommendation (inference/GUI owners): use the
  interactive profile for small latency-bound graphs (decoders, 28 x 28 nets) and while a
  training run is going; run whole images through fully convolutional nets with the batch
  profile when nothing trains (a drop of a photo is a one-off wait, not a slider).
- Even so the U-Net reaches ~1.5x, not the 2x of the target: the graph has no removable
  overhead (Conv 15, ConvTranspose 3, MaxPool 3, Concat 3; BatchNorm folded); `ORT_ENABLE_ALL`
  is the best level (BASIC is 1.4x slower). The target needs a lighter U-Net (fewer
  channels at full resolution), not a different export.
- VAE / conv AE decoders at batch 1: ORT needs 0.225 ms (kernel time ~0.26 ms in ORT's profiler:
  3x3 Conv 0.175, ConvTranspose 0.05, NCHWc reorders 0.02); BASIC/EXTENDED optimisation are
  1.3x slower than ALL, and named outputs or removing the crop Slice change nothing measurable. Torch eager at batch 1 is
  bimodal on this machine: 0.55-0.6 ms when its second OpenMP thread is awake, ~1.45 ms when it
  has to be woken for every op (the decoder rows of one run show either). So the decoder ratio is
  2.5-6.5x depending on torch's state; against torch's best (one thread) it is ~2.6x, below 3x.
  Reaching 3x against the best torch needs a lighter decoder (its 3x3 convs are two thirds of
  the kernel time), a change to `blocks.ConvDecoder`, not to the export.
"""


def _target(part: str, batch: int, task: str) -> float:
    if batch == 1 and part == "decoder":
        return 3.0
    if batch == 1 and task == "segment":
        return 2.0
    return 1.0


def run(ctx: Context) -> list[Row]:
    import torch

    from aestudio.nets import get_spec, list_nets
    from aestudio.training.runs import load_net

    rows: list[Row] = []
    batches = ctx.pick(BATCHES, (1, 4))
    size_fc = ctx.pick(FULLY_CONV_SIZE, 32)
    rounds = ctx.pick(7, 2)
    rng = np.random.default_rng(0)
    ctx.note(f"torch threads: {torch.get_num_threads()}; ORT interactive: 1 intra-op thread, "
             f"batch: {os.cpu_count()} threads.")
    if not list_nets():
        raise SkipBenchmark("no nets are registered yet (aestudio.nets imports no family)")
    for name in list_nets():
        spec = get_spec(name)
        try:
            bundle = bundle_for(ctx, f"speed-{name}", name, **speed_run_kwargs(ctx, name))
            net, info = load_net(ctx.cache[f"run:speed-{name}"], which="last")
        except Exception as exc:  # noqa: BLE001 - one net failing to train/export is a row, not the end
            log.exception("could not prepare %s", name)
            rows.append(Row(name, status=Status.ERROR, note=f"{type(exc).__name__}: {exc}"[:200]))
            continue
        net.eval()
        cfg = info.net_cfg
        size = size_fc if spec.fully_convolutional else cfg.image_size
        parts = ["model"] + (["decoder"] if name in DECODER_NETS and spec.has_latent else [])
        for part in parts:
            for batch in batches:
                profile = Profile.INTERACTIVE if batch == 1 else Profile.BATCH
                if part == "model":
                    x = rng.random((batch, cfg.in_channels, size, size), dtype=np.float32)
                    feed_name, torch_fn = "image", net
                    label = f"{name} {size}x{size}"
                else:
                    x = rng.standard_normal((batch, net.latent_dim), dtype=np.float32)
                    feed_name, torch_fn = "z", net.decode
                    label = f"{name} decoder (z={net.latent_dim})"
                sess = session(bundle, part, profile)
                all_cores = session(bundle, part, Profile.BATCH) if batch == 1 else None
                rows.append(_measure(label, batch, profile, sess, feed_name, torch_fn, x,
                                     _target(part, batch, spec.task.value), rounds, all_cores))
    return rows


def _measure(label: str, batch: int, profile: str, sess: Any, feed: str, torch_fn: Any,
             x: np.ndarray, target: float, rounds: int, all_cores: Any = None) -> Row:
    """One row: torch (default threads) vs ORT with ``profile``, interleaved.

    At batch 1 two more figures put the ratio in context, because the interactive
    profile runs ORT on one thread while torch uses every core: ORT with the batch
    profile (all cores, measured in the same interleaved pass) and torch limited to
    one thread (a second pass, so changing torch's thread count cannot disturb the first).
    """
    import torch

    xt = torch.from_numpy(x)

    def run_torch() -> Any:
        with torch.inference_mode():
            return torch_fn(xt)

    def run_ort() -> Any:
        return sess.run(None, {feed: x})

    diff = float(np.max(np.abs(run_torch().numpy() - run_ort()[0])))
    contenders = {"torch": run_torch, "ort": run_ort}
    if all_cores is not None:
        contenders["ort_all"] = lambda: all_cores.run(None, {feed: x})
    t = measure_side_by_side(contenders, rounds=rounds)
    ratio = t["torch"].median_s / t["ort"].median_s
    figures: dict[str, Any] = {
        "profile": profile,
        "torch ms": fmt_ms(t["torch"].median_s),
        "ORT ms": fmt_ms(t["ort"].median_s),
        "ratio": round(ratio, 2),
    }
    if all_cores is not None:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            t1 = measure_side_by_side({"torch": run_torch, "ort": run_ort}, rounds=rounds)
        finally:
            torch.set_num_threads(threads)
        figures |= {
            "ORT all cores ms": fmt_ms(t["ort_all"].median_s),
            "ratio all cores": round(t["torch"].median_s / t["ort_all"].median_s, 2),
            "torch 1 thread ms": fmt_ms(t1["torch"].median_s),
            "ratio 1 thread": round(t1["torch"].median_s / t1["ort"].median_s, 2),
        }
    figures["max abs diff"] = float(f"{diff:.1e}")
    return Row(
        f"{label}, batch {batch}",
        figures,
        target=f"ratio >= {target:g}",
        status=Row.verdict(ratio >= target),
    )
