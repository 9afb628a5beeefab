"""Starting and resuming runs: build the net and the data, prepare the folder, call fit().

Both :func:`train` and :func:`resume` do all their checking eagerly (unknown
net, bad data spec, existing folder, damaged checkpoint raise ``RunError`` /
``DataError`` / ``ValueError`` at the call) and return the event generator of
:func:`aestudio.training.loop.fit`, so a caller reports setup errors before
it draws any progress.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from aestudio.config import NetConfig, NoiseConfig, SelfSupervised, Task, TrainConfig, to_dict
from aestudio.data.levels import input_kind
from aestudio.training import loop
from aestudio.training.checkpoint import (
    CheckpointError,
    load_training_state,
    load_weights,
    save_weights,
)
from aestudio.training.distributed import is_main, main_process_first
from aestudio.training.events import Event
from aestudio.training.loop import StartState, fit
from aestudio.training.runs import (
    BEST_FILE,
    MODEL_FILE,
    START_FILE,
    RunError,
    RunFolder,
    RunInfo,
    read_run,
)

if TYPE_CHECKING:
    from aestudio.data.base import DataBundle

log = logging.getLogger(__name__)

# Denoising without a noise setting would learn the identity; this is the
# range the denoising net is meant for (one model for light to moderate noise).
DEFAULT_DENOISE_NOISE = NoiseConfig(kind="gaussian", strength=0.0, strength_max=0.2)
_CLASS_FIELDS = ("num_classes", "classes", "n_classes")


def class_field(cfg: NetConfig) -> str | None:
    """The name of a net config's class-count field, if it has one."""
    names = {f.name for f in dataclasses.fields(cfg)}
    return next((n for n in _CLASS_FIELDS if n in names), None)


def _open(spec: str, *, image_size: int | None, channels: int | None, val_fraction: float, seed: int,
          patches: bool = False, native: Any = None, noisy: bool = False) -> Any:
    from aestudio.data.specs import open_data

    extra = {"noisy": True} if noisy else {}  # only self-supervised runs pass it (test fakes take **kw)
    return open_data(spec, image_size=image_size, channels=channels, val_fraction=val_fraction, seed=seed,
                     patches=patches, native=native, **extra)


# Defaults for segmentation at the images' own scale (issue 13, measured on 2 CPU cores: 128-pixel
# crops at batch 16 and lr 2e-3 reached 0.46 mIoU where 64 x 64 resizes at batch 64, lr 1e-3 reached 0.15).
NATIVE_SEG_TRAIN = {"batch_size": 16, "lr": 2e-3}


def uses_native_scale(net_name: str, data_spec: str, image_size: int | None) -> bool:
    """True when ``net_name`` trains on ``data_spec`` at the images' own scale (no resize).

    Fully convolutional segmentation nets on ``pairs:`` data, unless an
    ``image_size`` asks for the old square resize."""
    from aestudio.nets.registry import get_spec

    spec = get_spec(net_name)
    kind = data_spec.strip().partition(":")[0].strip().lower()
    return bool(spec.fully_convolutional and spec.task is Task.SEGMENT and kind == "pairs" and image_size is None)


def native_plan(net_name: str, net_cfg: NetConfig, crop_size: int | None, grow_strokes: bool = False) -> Any:
    from aestudio.data.crops import DEFAULT_CROP, NativeScale
    from aestudio.nets.registry import size_multiple

    multiple = size_multiple(net_name, net_cfg)
    crop = int(crop_size or DEFAULT_CROP)
    if crop < multiple:
        raise ValueError(f"crop size {crop} is smaller than the net's size multiple {multiple}; use {multiple} or more")
    return NativeScale(crop=crop, multiple=multiple, grow=grow_strokes)


def native_from_options(opts: dict[str, Any]) -> Any:
    """The NativeScale a run was opened with (None for resized runs)."""
    from aestudio.data.crops import NativeScale

    raw = opts.get("native")
    return NativeScale.from_dict(raw) if isinstance(raw, dict) else None


def _wants_patches(spec: Any) -> bool:
    # A fully convolutional denoiser learns local statistics: random crops of
    # photos keep their full resolution (and their noise scale) where resizing
    # whole photos down would teach it on blurred, shrunken images.
    return bool(spec.fully_convolutional and spec.task is Task.DENOISE)


def _fit_net_to_data(net_name: str, net_cfg: NetConfig, data: Any, num_classes: int | None) -> NetConfig:
    """The net config with channels, size and class count taken from the data."""
    changes: dict[str, Any] = {"in_channels": int(data.channels)}
    if data.image_size:  # None: sizes vary (fully convolutional nets only)
        changes["image_size"] = int(data.image_size)
    field = class_field(net_cfg)
    if field is not None and _kind(data) == "segmentation" and data.num_classes:
        k = int(data.num_classes)
        if num_classes is not None and num_classes < k:
            raise ValueError(f"--classes {num_classes} is fewer than the {k} classes in {data.spec!r}; use --classes {k} or more")
        changes[field] = max(k, num_classes or 0)
    elif field is not None and num_classes is not None:
        changes[field] = num_classes
    return dataclasses.replace(net_cfg, **changes)


def _kind(data: DataBundle) -> str:
    return data.kind.value


def _summary(net: nn.Module) -> dict[str, Any]:
    summary = getattr(net, "summary", None)
    info = dict(summary()) if callable(summary) else {}
    info.setdefault("num_params", sum(p.numel() for p in net.parameters()))
    return info


def train(
    net_name: str,
    net_cfg: NetConfig | None,
    data_spec: str,
    cfg: TrainConfig,
    run_dir: Path | str,
    *,
    stop: threading.Event | None = None,
    pause: threading.Event | None = None,
    init_encoder: Path | str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    num_classes: int | None = None,
    crop_size: int | None = None,
    init_weights: Path | str | None = None,
    grow_strokes: bool = False,
    budget_spent_s: float = 0.0,
) -> Iterator[Event]:
    """Start a new run in ``run_dir`` (which must not exist or be empty).

    ``cfg.time_limit_minutes`` counts from this call, opening the data included, less the
    ``budget_spent_s`` seconds already gone before it (the CLI's start-up: a person budgets the
    command's wall time).

    The data decides the net's input channels and image size (``channels`` /
    ``image_size`` ask the data loader to convert); a U-Net gets at least the
    data's class count. A denoising net with no noise in ``cfg`` trains on
    :data:`DEFAULT_DENOISE_NOISE`. A fully convolutional segmentation net on
    ``pairs:`` data without ``image_size`` trains at the images' own scale, on
    random crops of ``crop_size`` (see :func:`uses_native_scale`); ``grow_strokes`` grows
    sparse labels (255 elsewhere) to each crop's regions of uniform colour.
    """
    from aestudio.nets.registry import build_net, get_spec, net_config_to_dict
    from aestudio.training.device import resolve_device

    budget_start = loop._monotonic() - budget_spent_s
    spec = get_spec(net_name)  # KeyError names the choices
    resolve_device(cfg.device)  # fail before touching the disk
    if net_cfg is None and init_weights is not None:
        net_cfg = source_net_config(net_name, Path(init_weights))
    net_cfg = net_cfg or spec.config_cls()
    selfsup = cfg.self_supervised is not SelfSupervised.NONE
    if selfsup:
        _check_self_supervised(net_name, spec, cfg, data_spec)
    elif spec.task is Task.DENOISE and cfg.noise.kind == "none":
        log.info("denoising net without --noise: using %s", DEFAULT_DENOISE_NOISE)
        cfg = dataclasses.replace(cfg, noise=DEFAULT_DENOISE_NOISE)
    if image_size is None and not spec.fully_convolutional:
        image_size = net_cfg.image_size  # fixed-size nets: the data must come at the net's size
    patches = _wants_patches(spec)
    native = native_plan(net_name, net_cfg, crop_size, grow_strokes) if uses_native_scale(net_name, data_spec, image_size) else None
    data = _open(data_spec, image_size=image_size, channels=channels, val_fraction=cfg.val_fraction, seed=cfg.seed,
                 patches=patches, native=native, noisy=selfsup)
    if spec.task is Task.SEGMENT and _kind(data) != "segmentation":
        raise ValueError(f"{net_name} needs images with masks, but {data_spec!r} has none; use shapes-seg or pairs:IMAGES,MASKS")
    net_cfg = _fit_net_to_data(net_name, net_cfg, data, num_classes)
    torch.manual_seed(cfg.seed)  # the initial weights are part of a reproducible run
    net = build_net(net_name, net_cfg)
    extra: dict[str, Any] = {}
    if init_encoder is not None:
        extra["init_encoder"] = {"run": str(init_encoder), "copied": _init_encoder(net, Path(init_encoder))}
    if init_weights is not None:
        _init_weights(net, Path(init_weights))
        extra["init_weights"] = {"from": str(init_weights)}
        if cfg.self_supervised is not SelfSupervised.NONE and not cfg.freeze_norm:
            # Measured (bench selfsup_denoise, the shipped photo-denoiser fine-tuned on 4 noisy photos): with
            # BatchNorm's running statistics updated from the half-size sub-sampled crops the objective trains
            # on, the net lost ~3 dB within 160 steps even at lr 1e-5; with them kept it stayed within 0.2 dB.
            cfg = dataclasses.replace(cfg, freeze_norm=True)
        if cfg.self_supervised is not SelfSupervised.NONE and not cfg.anchor_clipped:
            # Where clipping biases the noisy targets, the starting weights' output is the target (selfsup.
            # anchored_ne2ne_loss): measured +0.2 dB on the noise the start knew, -0.09 on a new one.
            cfg = dataclasses.replace(cfg, anchor_clipped=True)
    info = _summary(net)
    if not is_main():  # under torchrun only rank 0 creates and writes the run folder
        return fit(net, data, cfg, stop, pause=pause, task=spec.task, budget_start=budget_start)
    run = RunFolder.create(run_dir, {
        "net": net_config_to_dict(net_name, net_cfg),
        "task": spec.task.value,
        "data": _data_record(data, image_size, channels, cfg, patches, native, noisy=selfsup),
        "train": to_dict(cfg),
        "num_params": int(info["num_params"]),
        "code_values": info.get("code_values"),
        "compression_ratio": info.get("compression_ratio"),
        "bad_files": len(getattr(data, "bad_files", []) or []),
        **extra,
    })
    if cfg.anchor_clipped:  # the anchor of a resumed run is the weights it started from, not its checkpoint's
        save_weights(run.path / START_FILE, net.state_dict(), step=0, epoch=0)
    return fit(net, data, cfg, stop, run=run, pause=pause, task=spec.task, budget_start=budget_start)


def _check_self_supervised(net_name: str, spec: Any, cfg: TrainConfig, data_spec: str) -> None:
    """Self-supervised training: a fully convolutional denoiser, the images' own noise, a folder."""
    if spec.task is not Task.DENOISE or not spec.fully_convolutional:
        raise ValueError(f"--self-supervised trains a denoiser; {net_name} is not one (use --model denoising_ae)")
    if cfg.noise.kind != "none":
        raise ValueError("--self-supervised learns from the noise already in the images; leave out --noise (noise: none)")


def _data_record(data: Any, image_size: int | None, channels: int | None, cfg: TrainConfig,
                 patches: bool = False, native: Any = None, noisy: bool = False) -> dict[str, Any]:
    return {
        "spec": data.spec,
        "options": {"image_size": image_size, "channels": channels, "val_fraction": cfg.val_fraction, "seed": cfg.seed,
                    "patches": patches, "native": native.to_dict() if native is not None else None,
                    "noisy": noisy},
        "kind": _kind(data),
        "channels": int(data.channels),
        "image_size": data.image_size,
        "num_classes": getattr(data, "num_classes", None),
        "class_names": list(getattr(data, "class_names", None) or []) or None,
        "class_colors": [list(c) for c in (getattr(data, "class_colors", None) or [])] or None,
        "train_size": len(data.train),
        "val_size": len(data.val),
        # 8-bit / 16-bit / float files: how a package for other programs must scale its input
        # (aestudio.export.bioimageio); None when unknown or mixed.
        "input_kind": input_kind(data.spec),
    }


def source_net_config(net_name: str, source: Path) -> NetConfig | None:
    """The architecture of a run's or bundle's net (width, depth, dilations, ...) when it is of family ``net_name``.

    Fine-tuning starts from it unless the net is given: the shipped photo-denoiser is not the family's
    default shape, and "Learn this noise" or ``--init-from`` without the net flags must still fit its weights.
    None when the source is unreadable or of another family (``_init_weights`` then names the problem).
    """
    from aestudio.inference.bundle import BundleError, is_bundle, read_bundle
    from aestudio.nets.registry import net_config_from_dict

    folder = Path(source)
    try:
        if is_bundle(folder):
            name, cfg = net_config_from_dict(read_bundle(folder).net_config)
        else:
            info = read_run(folder)
            name, cfg = info.net_name, info.net_cfg
    except (BundleError, RunError, KeyError, TypeError, ValueError):
        return None
    return cfg if name == net_name else None


def _init_weights(net: nn.Module, source: Path) -> None:
    """Start from a trained run's (best) or a bundle's weights of the same net: fine-tuning, e.g. a shipped
    denoiser adapted self-supervised to a camera's own noise. Raises ``RunError`` naming the mismatch."""
    from aestudio.inference.bundle import BundleError, BundleFile, is_bundle, read_bundle

    folder = Path(source)
    if is_bundle(folder):
        try:
            weights = read_bundle(folder).files.get(BundleFile.WEIGHTS.value)
        except BundleError as exc:
            raise RunError(str(exc)) from None
        if not weights:
            raise RunError(f"{folder}: this bundle has no torch weights (weights.safetensors) to start from")
        file = folder / weights
    else:
        read_run(folder)  # validates and names the file on error
        file = folder / BEST_FILE if (folder / BEST_FILE).is_file() else folder / MODEL_FILE
    try:
        if is_bundle(folder):  # a bundle's weights carry the exporter's metadata, not a checkpoint's
            from safetensors.torch import load_file

            state = load_file(str(file))
        else:
            state, _ = load_weights(file)
        net.load_state_dict(state, strict=True)
    except (CheckpointError, OSError) as exc:
        raise RunError(str(exc)) from None
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise RunError(f"{file}: these weights do not fit this net ({first}); start from a model of the same "
                       "family, width and channel count (grey vs colour)") from None
    log.info("initialised all weights from %s", file)


def _init_encoder(net: nn.Module, source: Path) -> int:
    """Copy a trained run's encoder into ``net`` (U-Net pre-training); returns tensors copied."""
    load = getattr(net, "load_encoder_state", None)
    if load is None:
        raise ValueError("--init-encoder works only for nets with a shared encoder (unet)")
    folder = Path(source)
    read_run(folder)  # validates and names the file on error
    file = folder / BEST_FILE if (folder / BEST_FILE).is_file() else folder / MODEL_FILE
    try:
        state, _ = load_weights(file)
    except CheckpointError as exc:
        raise RunError(str(exc)) from None
    copied = int(load(state))
    if copied == 0:
        raise RunError(f"{file}: no encoder tensors match this net (channels and depth must agree); "
                       "pre-train a conv_ae with the same --channels and base width")
    log.info("copied %d encoder tensors from %s", copied, file)
    return copied


def resume(
    run_dir: Path | str,
    *,
    stop: threading.Event | None = None,
    pause: threading.Event | None = None,
    epochs: int | None = None,
    max_steps: int | None = None,
    device: str | None = None,
    time_limit_minutes: float | None = None,
    lr: float | None = None,
    bf16: bool | None = None,
    budget_spent_s: float = 0.0,
) -> Iterator[Event]:
    """Continue a run exactly where its last checkpoint left it.

    ``lr`` sets a new learning rate from here on (the common fix after a divergence);
    the optimizer's moments are kept.

    ``epochs`` raises the run's target epoch count (the total, not extra).
    ``max_steps`` is a limit for this invocation only (total steps); the
    run's stored limit is dropped, so resuming a run that ended on
    ``max_steps`` continues to its epoch target. ``time_limit_minutes`` is
    likewise this invocation's own budget (a run stopped by its time limit
    resumes without one unless given again), counted like :func:`train`'s from this call less
    ``budget_spent_s``, reading the data included. ``device`` moves the run to
    another device (bitwise continuation is only promised on the same device);
    ``bf16`` switches CPU bfloat16 training on or off (None keeps the run's; bitwise
    continuation is only promised at the same precision).
    """
    from aestudio.nets.registry import build_net, get_spec
    from aestudio.training.device import resolve_device

    budget_start = loop._monotonic() - budget_spent_s
    folder = Path(run_dir)
    with main_process_first():  # rank 0 may repair an interrupted write; the others read after it
        info = read_run(folder)
        run = RunFolder.open(folder) if is_main() else None
    cfg = info.train_cfg
    if epochs is not None:
        if epochs < info.epoch:
            raise RunError(f"{folder} has already trained {info.epoch} epochs; pass --epochs {info.epoch} or more")
        cfg = dataclasses.replace(cfg, epochs=epochs)
    cfg = dataclasses.replace(cfg, max_steps=max_steps, time_limit_minutes=time_limit_minutes, device=device or cfg.device,
                              lr=cfg.lr if lr is None else lr, bf16=cfg.bf16 if bf16 is None else bf16)
    resolve_device(cfg.device)  # fail before touching the folder
    opts = info.data_options
    data = _open(info.data_spec, image_size=opts.get("image_size"), channels=opts.get("channels"),
                 val_fraction=opts.get("val_fraction", cfg.val_fraction), seed=opts.get("seed", cfg.seed),
                 patches=bool(opts.get("patches", False)), native=native_from_options(opts),
                 noisy=bool(opts.get("noisy", False)))
    expected = info.data_info.get("train_size")
    if expected is not None and expected != len(data.train):
        log.warning("%s: the training set changed (%s -> %d images); the resume is not exact", folder, expected, len(data.train))
    net = build_net(info.net_name, info.net_cfg)
    start = _start_state(folder, info, net, len(data.train))
    if run is not None:
        run.update(train=to_dict(cfg))
    return fit(net, data, cfg, stop, run=run, pause=pause, start=start, task=get_spec(info.net_name).task,
               budget_start=budget_start)


def _start_state(folder: Path, info: RunInfo, net: nn.Module, n_train: int) -> StartState:
    if info.step == 0 and not (folder / MODEL_FILE).exists():
        raise RunError(f"{folder} never trained (no checkpoint was saved); start it again with the same "
                       "`aestudio train` command without --resume (the folder is reused)")
    try:
        weights, wmeta = load_weights(folder / MODEL_FILE)
        state = load_training_state(folder / "optimizer.safetensors")
    except CheckpointError as exc:
        raise RunError(str(exc)) from None
    steps = {"run.json": info.step, MODEL_FILE: wmeta.get("step"), "optimizer.safetensors": state.step}
    if len(set(steps.values())) != 1:
        raise RunError(f"{folder}: its files come from different checkpoints (steps {steps}); "
                       "the last write was interrupted: restore the folder from a backup or train again")
    # With TrainConfig.ema the weights file holds the average; training continues from the trained
    # weights kept in the training state (the average continues from the weights file).
    trained, average = (state.net, weights) if state.net is not None else (weights, None)
    try:
        net.load_state_dict(trained, strict=True)
    except RuntimeError as exc:
        raise RunError(f"{folder / MODEL_FILE}: weights do not fit the net in run.json ({str(exc).splitlines()[0]})") from None
    pos = info.position
    epoch_pos = int(pos.get("epoch_pos", 0))
    if epoch_pos >= n_train:
        epoch_pos = 0  # the data shrank under us; restart the epoch rather than index past the end
    anchor = None
    if info.train_cfg.anchor_clipped:
        try:
            anchor, _ = load_weights(folder / START_FILE)
        except (CheckpointError, OSError) as exc:
            raise RunError(f"{exc} (it holds the weights this fine-tuning started from, which anchor its training)") from None
    return StartState(
        anchor=anchor,
        epoch=info.epoch, step=info.step, epoch_pos=epoch_pos,
        batch_size=int(pos.get("batch_size", info.train_cfg.batch_size)),
        optimizer=state.optimizer, torch_rng=state.torch_rng, sampler_epoch_start=state.sampler_epoch_start,
        numpy_rng=state.numpy_rng, cuda_rng=state.cuda_rng, scaler=state.scaler, best=info.best,
        metrics=dict(info.metrics), epoch_loss_sum=float(pos.get("epoch_loss_sum", 0.0)),
        epoch_loss_count=int(pos.get("epoch_loss_count", 0)), epoch_seconds=float(pos.get("epoch_seconds", 0.0)),
        ema=average, ema_updates=state.ema_updates,
    )

