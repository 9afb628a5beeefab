"""The ``train``, ``eval`` and ``info`` subcommands: drive the training engine from a terminal.

``train`` maps flags onto the family's config, runs :func:`aestudio.training.train`
(or ``resume``) with a tqdm progress bar fed by the event generator, and ends
with a one-screen summary. Ctrl-C sets the stop flag, so the engine writes a
resumable checkpoint; a second Ctrl-C aborts. Errors a user can cause raise
:class:`CliError` (one line, exit 2, see ``aestudio.cli``).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import logging
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aestudio.cli.common import CliError, as_flags, bounded_int
from aestudio.config import FinishReason
from aestudio.limits import MAX_BATCH

# CLI flag -> net config field; families without the field reject the flag.
FAMILY_FLAGS = {
    "latent_dim": "--latent-dim",
    "beta": "--beta",
    "sparsity": "--sparsity",
    "contractive": "--contractive",
    "base_channels": "--base-channels",
    "depth": "--depth",
}
# denoising_ae's shape: CLI option -> (config field, flag). `--channels` already means the
# images' channels, so the feature width is `--width`; `--layers N` means N undilated convs.
DENOISER_FLAGS = {
    "width": ("channels", "--width"),
    "layers": ("dilations", "--layers"),
    "unshuffle": ("unshuffle", "--unshuffle"),
}
# Flags that change how a run trains; a resume continues exactly, so they are refused there.
_NET_FLAGS = {**FAMILY_FLAGS, "num_classes": "--classes", "image_size": "--image-size",
              "in_channels": "--channels", "dilations": "--layers"}
_FIXED_ON_RESUME = ("model", "data", "batch_size", "latent_dim", "image_size", "channels", "beta",
                    "sparsity", "contractive", "base_channels", "depth", "noise", "classes", "seed", "init_encoder", "kl_warmup", "loss", "workers", "crop_size", "grow_strokes", "init_from",
                    "self_supervised", "width", "layers", "unshuffle", "checkpoint_every", "ema")
EXIT_TRAINING_FAILED = 1
DEFAULT_SELF_SUPERVISED = "ne2ne"  # chosen by measurement: docs/DESIGN-notes.md, "self-supervised denoising"
EXIT_INTERRUPTED = 130


def add_parsers(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train a model (or continue one with --resume)",
                       description="Train an autoencoder on a data spec; the run folder holds weights, config and metrics.")
    t.add_argument("--model", help="net family: dense_ae, conv_ae, denoising_ae, sparse_ae, contractive_ae, vae, unet")
    t.add_argument("--data", help="data spec: digits, shapes, shapes-seg, mnist:DIR, fashion-mnist:DIR, folder:DIR, pairs:IMAGES,MASKS")
    t.add_argument("--out", required=True, type=Path, help="run folder to create (or to continue with --resume)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    t.add_argument("--epochs", type=int, help="total epochs (default 10; with --resume: the new total)")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    t.add_argument("--latent-dim", type=int, help="code size (nets with a code)")
    t.add_argument("--base-channels", type=int, metavar="N",
                   help="conv nets: first-stage width, doubled per stage (default 16); smaller is faster and lighter")
    t.add_argument("--depth", type=int, metavar="N", help="conv nets: number of 2x downsamplings (default 3)")
    t.add_argument("--image-size", type=int,
                   help="resize images to this square side (default: the built-in data's own side, e.g. 32 for shapes; "
                        "28 for folders; a unet on pairs: data keeps the images' own scale unless this is given)")
    t.add_argument("--crop-size", type=int, metavar="N",
                   help="unet on pairs: data: side of the random training crops at the images' own scale (default 128); "
                        "images smaller than this train whole")
    t.add_argument("--grow-strokes", action="store_true", default=None,
                   help="unet on pairs: data with sparse masks (255 = unlabelled): grow each crop's strokes to the "
                        "regions of uniform colour they fall in (Felzenszwalb superpixels), so the net learns from "
                        "more than the painted pixels; painted values are kept (measured: docs/BENCHMARKS.md)")
    t.add_argument("--ema", type=float, metavar="DECAY",
                   help="save and export an exponential moving average of the weights with this decay (training "
                        "goes on from the trained ones); default 0.99 with --grow-strokes, as the Label tab's live "
                        "trainer (measured better there), else off")
    t.add_argument("--channels", type=int, choices=(1, 3), help="convert images to 1 or 3 channels")
    t.add_argument("--width", type=int, metavar="N", help="denoising_ae: features per conv layer (default 32)")
    t.add_argument("--layers", type=int, metavar="N",
                   help="denoising_ae: N plain 3x3 conv layers in the body instead of the default five dilated ones "
                        "(dilations 1,2,3,2,1)")
    t.add_argument("--unshuffle", type=int, choices=(1, 2),
                   help="denoising_ae: 2 = FFDNet-style, the convs run on 2x2 pixel blocks at half size "
                        "(4x fewer positions, a 2x wider view for the same time); default 1")
    t.add_argument("--beta", type=float, help="VAE: weight of the KL term")
    t.add_argument("--sparsity", type=float, help="sparse_ae: weight of the L1 penalty on the code")
    t.add_argument("--contractive", type=float, help="contractive_ae: weight of the Jacobian penalty")
    t.add_argument("--noise", help="input corruption, e.g. gaussian:0.1, gaussian:0-0.2, saltpepper:0.05, mask:0.3")
    t.add_argument("--self-supervised", nargs="?", const=DEFAULT_SELF_SUPERVISED, choices=("n2v2", "ne2ne"),
                   metavar="METHOD",
                   help="denoising_ae on folder:NOISY: learn from the noisy images alone, no clean copies and no --noise; "
                        f"METHOD n2v2 (blind spots) or ne2ne (Neighbor2Neighbor), default {DEFAULT_SELF_SUPERVISED} "
                        "(measured, docs/BENCHMARKS.md); crops of --image-size pixels (default 64), never resized")
    t.add_argument("--init-from", type=Path, metavar="RUN_OR_BUNDLE",
                   help="start from the weights of a trained run or bundle of the same net (fine-tuning), "
                        "e.g. --self-supervised from the shipped photo-denoiser's bundle folder; its shape (--width, "
                        "--layers, ...) is taken from there unless given")
    t.add_argument("--classes", type=int, help="unet: number of mask classes (default: from the data)")
    t.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    t.add_argument("--seed", type=int)
    t.add_argument("--init-encoder", type=Path, metavar="RUN_DIR", help="unet: start from this run's encoder")
    t.add_argument("--max-steps", type=int, help="stop after this many optimizer steps in total")
    t.add_argument("--time-limit", type=float, metavar="MINUTES",
                   help="stop this many minutes (wall clock) after the command started, loading the data "
                        "included, with a checkpoint; --resume continues it exactly (with a new --time-limit "
                        "if wanted)")
    t.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="CPU: train in bfloat16 autocast with channels-last convs (about 2.4x faster steps on CPUs "
                        "with AVX-512 BF16 or AMX; refused on others, where it would be slower); --resume may "
                        "switch it on or off (--no-bf16)")
    t.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                   help="also save a resumable checkpoint every STEPS steps within an epoch (long epochs on a busy "
                        "machine: a kill then loses at most STEPS steps); kept when resuming")
    t.add_argument("--kl-warmup", type=int, metavar="EPOCHS", help="VAE: ramp the KL weight from 0 over this many epochs")
    t.add_argument("--loss", choices=("mse", "bce"), help="reconstruction loss (default mse)")
    t.add_argument("--workers", type=int, metavar="N",
                   help="DataLoader worker processes decoding images (default 0; a few help large folder: data)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (logs and summary only)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="metrics of a trained run on a data spec")
    e.add_argument("run", type=Path, metavar="RUN_DIR")
    e.add_argument("--data", help="data spec (default: the run's own)")
    e.add_argument("--split", choices=("val", "train", "all"), default="val", help="which part of the data (default val)")
    e.add_argument("--which", choices=("best", "last"), default="best", help="which weights (default best)")
    e.add_argument("--batch-size", type=bounded_int(1, MAX_BATCH), default=64)
    e.add_argument("--device", default="auto")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=cmd_eval)

    i = sub.add_parser("info", help="describe a run: config, progress, best metrics, size")
    i.add_argument("run", type=Path, metavar="RUN_DIR")
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.set_defaults(func=cmd_info)


# ------------------------------------------------------------------ train


def _families_with(field: str) -> list[str]:
    from aestudio.nets.registry import get_spec, list_nets

    return [n for n in list_nets() if field in {f.name for f in dataclasses.fields(get_spec(n).config_cls)}]




def _native_size(model: str, data: str, channels: int | None) -> int | None:
    """Built-in data's own image side, for a fixed-size net given no --image-size.

    Without it the net's config default (28) would win and, say, the 32x32 ``shapes``
    sprites would be resized to 28 (the GUI's presets already use the data's size).
    None for fully convolutional nets (any size) and for folders (their sizes vary).
    Read from the data catalogue: the data set itself is opened once, by the training run.
    """
    from aestudio.data.catalog import native_size
    from aestudio.nets.registry import get_spec

    try:
        if get_spec(model).fully_convolutional:
            return None
    except KeyError:  # an unknown net (UnknownNetError is one): the real start reports it
        return None
    return native_size(data)


def _check_family(model: str, field: str, flag: str) -> None:
    """Refuse a net flag the chosen family has no field for, naming the families that have it."""
    families = _families_with(field)
    if model not in families:
        raise CliError(f"{flag} does not apply to {model}; it is for: {', '.join(families)}")


def _net_config(args: argparse.Namespace) -> Any:
    from aestudio.nets.registry import UnknownNetError, default_config

    overrides = {}
    for field, flag in FAMILY_FLAGS.items():
        value = getattr(args, field)
        if value is not None:
            _check_family(args.model, field, flag)
            overrides[field] = value
    if args.classes is not None:
        from aestudio.training.runner import class_field

        if class_field(default_config(args.model)) is None:
            raise CliError(f"--classes does not apply to {args.model}; it is for: unet")
    for option, (field, flag) in DENOISER_FLAGS.items():
        value = getattr(args, option)
        if value is None:
            continue
        _check_family(args.model, field, flag)
        if option == "layers" and value < 1:
            raise CliError("--layers must be at least 1")
        overrides[field] = (1,) * value if option == "layers" else value
    if args.image_size is not None:
        overrides["image_size"] = args.image_size
    try:
        return default_config(args.model, **overrides)
    except UnknownNetError as exc:
        raise CliError(str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise CliError(f"bad net option for {args.model}: {as_flags(str(exc), _NET_FLAGS)}") from None


def _train_config(args: argparse.Namespace, native: bool = False) -> Any:
    from aestudio.config import ReconLoss, SelfSupervised, TrainConfig, parse_noise
    from aestudio.training.runner import NATIVE_SEG_TRAIN

    # At the images' own scale the defaults differ (smaller batches of larger crops, a higher rate).
    values: dict[str, Any] = dict(NATIVE_SEG_TRAIN) if native else {}
    for name, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"), ("device", "device"),
                      ("seed", "seed"), ("max_steps", "max_steps"), ("kl_warmup", "kl_warmup_epochs"),
                      ("workers", "num_workers"), ("time_limit", "time_limit_minutes"),
                      ("checkpoint_every", "checkpoint_every_steps"), ("bf16", "bf16"), ("ema", "ema")):
        if getattr(args, name, None) is not None:
            values[key] = getattr(args, name)
    if getattr(args, "grow_strokes", False) and "ema" not in values:
        from aestudio.training.live import LiveConfig

        values["ema"] = LiveConfig.ema  # the sparse-label path publishes what the Label tab publishes
    if args.loss:
        values["recon_loss"] = ReconLoss(args.loss)
    if args.self_supervised:
        values["self_supervised"] = SelfSupervised(args.self_supervised)
    if args.noise:
        try:
            values["noise"] = parse_noise(args.noise)
        except ValueError as exc:
            raise CliError(f"--noise: {exc}") from None
    if "time_limit_minutes" in values and not values["time_limit_minutes"] > 0:
        raise CliError("--time-limit must be > 0 (minutes, e.g. 2 or 0.5)")
    check_workers(values.get("num_workers"))
    if values.get("epochs") == 0:
        raise CliError("--epochs must be at least 1 for a new run")
    try:
        return TrainConfig(**values)
    except ValueError as exc:  # aestudio.validate's bounds, worded with the flag the user typed
        raise CliError(as_flags(str(exc), _TRAIN_FLAGS)) from None


_TRAIN_FLAGS = {"num_workers": "--workers", "kl_warmup_epochs": "--kl-warmup", "batch_size": "--batch-size",
                "max_steps": "--max-steps", "epochs": "--epochs", "checkpoint_every_steps": "--checkpoint-every", "seed": "--seed", "lr": "--lr",
                "time_limit_minutes": "--time-limit", "bf16": "--bf16", "ema": "--ema"}


def check_workers(n: int | None) -> None:
    """``--workers``: each worker is a process with its own interpreter and torch (~400 MB);
    more than this machine's cores only add memory (10000 of them brought in the OOM killer)."""
    from aestudio.limits import max_workers

    if n is not None and n > max_workers():
        raise CliError(f"--workers {n}: this machine gives aestudio {max_workers()} cores; use at most --workers "
                       f"{max_workers()} (one DataLoader process per core)")


def _run_value(info: Any, key: str) -> Any:
    """The value a resumed run has for the train flag ``key`` (compared with what was given)."""
    from aestudio.training.runner import class_field

    cfg, net = info.train_cfg, info.net_cfg
    if key == "model":
        return info.net_name
    if key == "data":
        return info.data_spec
    if key in ("image_size", "channels"):
        # The option as given at the start, else what the data turned out to be.
        return info.data_options.get(key) or info.data_info.get(key) or getattr(
            net, "in_channels" if key == "channels" else key, None)
    if key == "classes":
        field = class_field(net)
        return None if field is None else getattr(net, field)
    if key == "init_encoder":  # recorded as {"run": RUN_DIR, "copied": N}
        return (info.extra.get("init_encoder") or {}).get("run")
    if key == "init_from":
        return (info.extra.get("init_weights") or {}).get("from")
    if key == "loss":
        return cfg.recon_loss.value
    if key == "noise":
        return cfg.noise
    if key == "grow_strokes":
        return bool((info.data_options.get("native") or {}).get("grow", False))
    if key == "width":
        return getattr(net, "channels", None)
    if key == "layers":  # N undilated layers, else the dilations themselves (never equal to an int)
        dilations = tuple(getattr(net, "dilations", ()) or ())
        return len(dilations) if dilations and set(dilations) == {1} else dilations or None
    train_key = {"kl_warmup": "kl_warmup_epochs", "workers": "num_workers",
                 "checkpoint_every": "checkpoint_every_steps"}.get(key, key)
    if hasattr(cfg, train_key):
        return getattr(cfg, train_key)
    return getattr(net, key, None)


def _same(key: str, given: Any, recorded: Any) -> bool:
    from aestudio.config import parse_noise

    if key == "noise":
        try:
            return parse_noise(given) == recorded
        except ValueError:
            return False
    if key in ("init_encoder", "init_from"):
        return recorded is not None and Path(given).resolve() == Path(recorded).resolve()
    if isinstance(given, float) and isinstance(recorded, (int, float)):
        return math.isclose(given, recorded, rel_tol=1e-9)
    return given == recorded


def _resume_changes(args: argparse.Namespace) -> list[str]:
    """The run-shaping flags given with --resume whose value differs from the run's.

    The command a person repeats from the shell history (the first command plus
    --resume) must be accepted; only a real change is refused.
    """
    from aestudio.training.runs import RunError, read_run

    given = {k: getattr(args, k) for k in _FIXED_ON_RESUME if getattr(args, k) not in (None, False)}
    if not given:
        return []
    try:
        info = read_run(args.out)
    except (RunError, OSError, ValueError):
        return []  # resume() reports the unreadable run with its own message
    changed = []
    for key, value in given.items():
        recorded = _run_value(info, key)
        if not _same(key, value, recorded):
            flag = f"--{key.replace('_', '-')}"
            shown = recorded.value if isinstance(recorded, enum.Enum) else recorded
            if key == "noise" and recorded is not None:
                from aestudio.config import noise_to_spec

                shown = noise_to_spec(recorded)
            changed.append(f"{flag} {value} differs from the run's {shown if shown is not None else 'unset'}")
    return changed


def _spent(args: argparse.Namespace) -> float:
    """Seconds since the command started (its imports): part of the --time-limit budget."""
    started = getattr(args, "started_at", None)
    return max(0.0, time.monotonic() - started) if started is not None else 0.0


def _start(args: argparse.Namespace, stop: threading.Event) -> Iterator[Any]:
    from aestudio.data.base import DataError
    from aestudio.nets.registry import UnknownNetError
    from aestudio.training import resume, train
    from aestudio.training.device import DeviceError
    from aestudio.training.runner import uses_native_scale

    try:
        if args.resume:
            changed = _resume_changes(args)
            if changed:
                raise CliError(f"{'; '.join(changed)}: these cannot change when resuming (the run continues "
                               "exactly); repeat the run's own values or leave them out. Only --epochs, "
                               "--max-steps, --time-limit, --lr, --device and --bf16 can change")
            return resume(args.out, stop=stop, epochs=args.epochs, max_steps=args.max_steps, device=args.device,
                          time_limit_minutes=args.time_limit, lr=args.lr, bf16=args.bf16,
                          budget_spent_s=_spent(args))
        if not args.model or not args.data:
            raise CliError("train needs --model and --data (or --resume to continue the run in --out)")
        if args.image_size is None:
            args.image_size = _native_size(args.model, args.data, args.channels)
        net_cfg = _net_config(args)
        shaped = any(getattr(args, f) is not None for f in (*FAMILY_FLAGS, *DENOISER_FLAGS, "classes"))
        if args.init_from is not None and not shaped:
            net_cfg = None  # the net the weights come from (its width, depth, ...); train() takes it from there
        native = uses_native_scale(args.model, args.data, args.image_size)
        if args.grow_strokes and not native:
            raise CliError("--grow-strokes applies to a unet on pairs: data without --image-size (sparse masks at "
                           "the images' own scale)")
        if args.crop_size is not None and not native:
            raise CliError("--crop-size applies to a unet on pairs: data without --image-size (training at the "
                           "images' own scale); drop it or drop --image-size")
        if args.crop_size is not None:
            from aestudio import limits

            limits.check_int("--crop-size", args.crop_size, 1, limits.MAX_NET_IMAGE_SIZE)
        cfg = _train_config(args, native)
        return train(args.model, net_cfg, args.data, cfg, args.out, stop=stop, init_encoder=args.init_encoder, init_weights=args.init_from,
                     image_size=args.image_size, channels=args.channels, num_classes=args.classes,
                     crop_size=args.crop_size, grow_strokes=bool(args.grow_strokes),
                     budget_spent_s=_spent(args))
    except (DeviceError, DataError, UnknownNetError) as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:  # config checks in the engine (bad sizes, classes, families)
        from aestudio.training.runs import RunError

        if isinstance(exc, RunError):
            raise
        raise CliError(as_flags(str(exc), {**_NET_FLAGS, **_TRAIN_FLAGS})) from None


class _CtrlC:
    """First Ctrl-C (or SIGTERM): ask the engine to stop (it saves a checkpoint). Second: abort.

    Under torchrun (``launched``) SIGTERM stops too, and repeats are ignored: the
    terminal's Ctrl-C reaches every worker and torchrun forwards it once more, so
    a second signal is no sign of impatience; torchrun kills the workers itself
    after its grace period. ``quiet``: ranks other than 0 say nothing."""

    def __init__(self, stop: threading.Event, *, launched: bool = False, quiet: bool = False) -> None:
        self.stop = stop
        self.launched = launched
        self.quiet = quiet
        self.old: dict[int, Any] = {}

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread():
            # SIGTERM is what a scheduler, systemctl or `kill` sends: it stops like Ctrl-C (with a
            # checkpoint and status "stopped"), where it used to kill the run mid-epoch.
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.stop.is_set():
            if self.launched:
                return
            raise KeyboardInterrupt
        self.stop.set()
        if self.quiet:
            return
        if self.launched:
            print("\nstop requested: every process stops after this step; rank 0 saves a checkpoint", file=sys.stderr)
        else:
            print("\nstopping after this step and saving a checkpoint (Ctrl-C again to abort)", file=sys.stderr)

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self.old.items():
            signal.signal(sig, old)


def cmd_train(args: argparse.Namespace) -> int:
    """``aestudio train``; under torchrun (several processes) one rank of a DDP job."""
    from aestudio.training import distributed

    try:
        ctx = distributed.init_from_env()
    except distributed.DistributedError as exc:
        raise CliError(str(exc)) from None
    if ctx is None:
        return _train(args, None)
    distributed.tag_logging(ctx.rank)
    code = EXIT_TRAINING_FAILED
    try:
        code = _train(args, ctx)
    except distributed.DistributedError as exc:  # a lost peer: the message names this rank
        print(f"aestudio: {exc}", file=sys.stderr)
    except (CliError, ValueError, OSError) as exc:  # user errors: one line that names the rank
        print(f"aestudio: error: rank {ctx.rank}: {exc}", file=sys.stderr)
        code = 2
    except Exception as exc:
        traceback.print_exc()
        print(f"aestudio: rank {ctx.rank} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        distributed.shutdown()
    # Every rank leaves without the interpreter's teardown. A failed rank so that its peers
    # learn it from the closed connections at once and torchrun stops the job, instead of
    # waiting seconds for the teardown. A finished rank because the teardown can abort it:
    # gloo's C++ threads still hold tensors while Python finalises, and about one 2-step
    # run in six ended in "terminate called without an active exception" (SIGABRT, exit
    # -6) after a good run (pytorch/pytorch#179291 describes the same crash). Everything
    # the run writes is already closed and renamed into place; flush what is buffered.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _train(args: argparse.Namespace, ctx: Any) -> int:
    from tqdm import tqdm

    from aestudio.training.events import (
        BatchSizeReduced,
        EpochEnded,
        RunStarted,
        StepEnded,
        TrainFinished,
    )

    stop = threading.Event()
    quiet = ctx is not None and not ctx.is_main  # only rank 0 prints, shows progress and writes
    events = _start(args, stop)
    t0 = time.perf_counter()
    bar: Any = None
    started: RunStarted | None = None
    finished: TrainFinished | None = None
    with _CtrlC(stop, launched=ctx is not None, quiet=quiet):
        try:
            for ev in events:
                if quiet and not isinstance(ev, TrainFinished):
                    continue
                if isinstance(ev, RunStarted):
                    started = ev
                    print(f"training {ev.net_name} ({ev.num_params:,} params) on {ev.device_name}; "
                          f"{ev.train_size} train / {ev.val_size} val images -> {ev.run_dir}", file=sys.stderr)
                    for note in ev.notes:
                        print(f"  {note}", file=sys.stderr)
                    bar = tqdm(total=None, initial=ev.start_step, unit="step", disable=args.no_progress,
                               dynamic_ncols=True, file=sys.stderr)
                elif isinstance(ev, StepEnded) and bar is not None:
                    bar.total = ev.total_steps
                    bar.update(ev.step - bar.n)
                    bar.set_postfix(epoch=ev.epoch + 1, loss=f"{ev.loss:.4g}", img_s=f"{ev.images_per_s:.0f}",
                                    eta=_duration(ev.eta_s), refresh=False)
                elif isinstance(ev, EpochEnded) and bar is not None:
                    bar.write(f"epoch {ev.epoch + 1}: train loss {ev.train_loss:.4g}  {_fmt_metrics(ev.metrics)}")
                elif isinstance(ev, BatchSizeReduced) and bar is not None:
                    bar.write(f"{ev.reason}: batch size {ev.old} -> {ev.new}")
                elif isinstance(ev, TrainFinished):
                    finished = ev
        finally:
            if bar is not None:
                bar.close()
    assert finished is not None
    if not quiet:
        _print_summary(args.out, started, finished, time.perf_counter() - t0)
    if ctx is not None and finished.reason is FinishReason.FAILED:
        print(f"aestudio: rank {ctx.rank} failed: {finished.message}", file=sys.stderr)
        return EXIT_TRAINING_FAILED
    if finished.reason in (FinishReason.FAILED, FinishReason.DIVERGED):
        if not quiet:
            print(f"aestudio: training {finished.reason.value}: {finished.message}", file=sys.stderr)
        return EXIT_TRAINING_FAILED
    if finished.reason is FinishReason.STOPPED and stop.is_set():
        return EXIT_INTERRUPTED
    return 0


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _fmt_metrics(metrics: dict[str, Any], limit: int = 6) -> str:
    keys = [k for k in ("mse", "psnr", "ssim", "nelbo", "miou", "pixel_acc") if k in metrics]
    keys += [k for k in metrics if k not in keys]
    parts = []
    for k in keys[:limit]:
        v = metrics[k]
        parts.append(f"{k} {v:.4g}" if isinstance(v, (int, float)) and v is not None else f"{k} -")
    return "  ".join(parts)


def _print_summary(out: Path, started: Any, fin: Any, wall: float) -> None:
    from aestudio.training.runs import RunError, read_run

    lines = [f"run       {out}  ({fin.reason.value}: {fin.message})"]
    try:
        info = read_run(out)
    except RunError:
        info = None
    if info is not None:
        ratio = f", compression {info.compression_ratio:.1f}x" if info.compression_ratio else ""
        lines.append(f"net       {info.net_name}, {info.num_params:,} params{ratio}")
        lines.append(f"data      {info.data_spec}")
        lines.append(f"progress  {info.epoch}/{info.train_cfg.epochs} epochs, step {info.step}, wall time {_duration(wall)}")
        if fin.metrics:
            lines.append(f"final     {_fmt_metrics(fin.metrics)}")
        if info.best:
            b = info.best
            lines.append(f"best      {b['metric']} {b['value']:.4g} (epoch {b['epoch']}, step {b['step']})")
    if fin.reason.value == "done":
        lines.append(f"next      aestudio export {out}")
        lines.append(f"          aestudio eval {out} --data {info.data_spec if info else 'SPEC'}")
    elif fin.reason in (FinishReason.STOPPED, FinishReason.DIVERGED):
        lines.append(f"next      aestudio train --resume --out {out}")
    print("\n".join(lines))


# ------------------------------------------------------------------ eval / info


def cmd_eval(args: argparse.Namespace) -> int:
    from torch.utils.data import ConcatDataset

    from aestudio.config import SelfSupervised, Task
    from aestudio.data.base import DataError, DataKind
    from aestudio.data.specs import open_data
    from aestudio.nets.registry import get_spec
    from aestudio.training.device import DeviceError, resolve_device
    from aestudio.training.metrics import evaluate
    from aestudio.training.runner import native_from_options, native_plan, uses_native_scale
    from aestudio.training.runs import load_net

    net, info = load_net(args.run, which=args.which)
    spec = get_spec(info.net_name)
    opts = info.data_options
    # Self-supervised runs have no clean images: they are scored by their own loss on noisy crops.
    selfsup = info.train_cfg.self_supervised is not SelfSupervised.NONE
    size = info.net_cfg.image_size if not spec.fully_convolutional else opts.get("image_size")
    try:
        device = resolve_device(args.device)
        native = native_from_options(opts)
        if native is None and args.data and size is None and uses_native_scale(info.net_name, args.data, None):
            native = native_plan(info.net_name, info.net_cfg, None)  # whole images at their own scale
        data = open_data(args.data or info.data_spec, image_size=size, channels=info.net_cfg.in_channels,
                         val_fraction=opts.get("val_fraction", info.train_cfg.val_fraction), seed=opts.get("seed", info.train_cfg.seed),
                         native=native, **({"noisy": True} if selfsup else {}))
    except (DeviceError, DataError) as exc:
        raise CliError(str(exc)) from None
    if spec.task is Task.SEGMENT and data.kind is not DataKind.SEGMENTATION:
        raise CliError(f"{info.net_name} segments; {data.spec!r} has no masks (use shapes-seg or pairs:IMAGES,MASKS)")
    train_set = data.train.whole_images() if hasattr(data.train, "whole_images") else data.train  # no random crops
    dataset = {"val": data.val, "train": train_set, "all": ConcatDataset([train_set, data.val])}[args.split]
    if args.split == "all":  # images of varying sizes: keep the padding collate of the parts
        dataset.collate_fn = getattr(data.val, "collate_fn", None)  # type: ignore[attr-defined]
        dataset.varying_sizes = getattr(data.val, "varying_sizes", False)  # type: ignore[attr-defined]
    if len(dataset) == 0:
        raise CliError(f"the {args.split} split of {data.spec!r} is empty; use --split all")
    noise = info.train_cfg.noise if info.train_cfg.noise.kind != "none" else None
    if selfsup:
        from aestudio.training.selfsup import validation_loss

        metrics = validation_loss(net.to(device), dataset, info.train_cfg.self_supervised, device=device,
                                  batch_size=args.batch_size, seed=info.train_cfg.seed)
    else:
        metrics = evaluate(net.to(device), dataset, task=spec.task, device=device, batch_size=args.batch_size,
                           noise=noise, seed=info.train_cfg.seed, num_classes=data.num_classes or None,
                           class_names=data.class_names or None)
    if args.json:
        print(json.dumps({"run": str(args.run), "data": data.spec, "split": args.split, "images": len(dataset),
                          "weights": args.which, "metrics": _finite(metrics)}))
    else:
        print(f"{info.net_name} ({args.which} weights) on {data.spec} [{args.split}, {len(dataset)} images]")
        for k, v in metrics.items():
            print(f"  {k:<18} {v:.6g}")
    return 0


def _finite(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float)) and v == v and abs(v) != float("inf") else None) for k, v in d.items()}


def cmd_info(args: argparse.Namespace) -> int:
    from aestudio.config import to_dict
    from aestudio.training.runs import read_run

    info = read_run(args.run)
    if args.json:
        print(json.dumps({
            "run": str(info.path), "net": info.net_name, "net_config": to_dict(info.net_cfg), "data": info.data_spec,
            "data_options": info.data_options, "train_config": to_dict(info.train_cfg), "status": info.status.value,
            "epoch": info.epoch, "step": info.step, "num_params": info.num_params,
            "compression_ratio": info.compression_ratio, "best": info.best, "metrics": _finite(info.metrics),
            "history": info.history, "bad_files": info.bad_files, "created": info.created, "updated": info.updated,
            "distributed": _launches(info.path),
        }, default=str))
        return 0
    cfg = to_dict(info.net_cfg)
    tc = info.train_cfg
    lines = [
        f"run         {info.path}",
        f"status      {info.status.value}{': ' + info.message if info.message else ''}",
        f"net         {info.net_name}  " + " ".join(f"{k}={v}" for k, v in cfg.items()),
        f"parameters  {info.num_params:,}",
        f"compression {info.compression_ratio:.1f}x (input values / code values)" if info.compression_ratio else "compression -  (no code)",
        f"data        {info.data_spec}  ({info.data_info.get('train_size', '?')} train / {info.data_info.get('val_size', '?')} val)",
        f"training    epochs {info.epoch}/{tc.epochs}, step {info.step}, batch {tc.batch_size}, lr {tc.lr:g}, "
        f"loss {tc.recon_loss.value}, seed {tc.seed}, device {tc.device}"
        + (f", noise {_noise(tc.noise)}" if tc.noise.kind != "none" else "")
        + (f", self-supervised {tc.self_supervised.value}" if tc.self_supervised.value != "none" else "")
        + (f", time limit {tc.time_limit_minutes:g} min" if tc.time_limit_minutes else ""),
    ]
    if info.best:
        b = info.best
        lines.append(f"best        {b['metric']} {b['value']:.4g} at epoch {b['epoch']} (step {b['step']})")
    if info.metrics:
        lines.append(f"last        {_fmt_metrics(info.metrics, limit=12)}")
    if info.bad_files:
        lines.append(f"bad files   {info.bad_files} skipped")
    launches = _launches(info.path)
    if launches:
        lines.append("distributed " + "; ".join(
            f"{d.get('world_size')} processes ({d.get('backend')}) from step {d.get('start_step')}" for d in launches))
    lines.append(f"created     {info.created}   updated {info.updated}")
    print("\n".join(lines))
    return 0


def _launches(run: Path) -> list[dict[str, Any]]:
    """The torchrun launches recorded in run.json (empty for single-process runs)."""
    from aestudio.training.runs import RunError, read_record

    try:
        launches = read_record(run).get("distributed")
    except RunError:
        return []
    return [d for d in launches if isinstance(d, dict)] if isinstance(launches, list) else []


def _noise(cfg: Any) -> str:
    from aestudio.config import noise_to_spec

    return noise_to_spec(cfg)
