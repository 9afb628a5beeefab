"""Frozen configuration dataclasses shared by the CLI, the GUI and the engine.

Every config round-trips through JSON (``to_dict`` / ``from_dict``) so a run
folder's ``run.json`` fully describes how to rebuild its net, its data and its
training. Per-family net configs live beside their nets (``aestudio.nets``) and
subclass :class:`NetConfig`; this module holds only what every part needs.
Each field's comment says why it exists or why its default is what it is.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

T = TypeVar("T")


class Task(str, enum.Enum):
    """What a net's main output means; the UI picks panels from it."""

    RECONSTRUCT = "reconstruct"  # output `image`: a reconstruction of the input
    DENOISE = "denoise"  # output `image`: a cleaned version of a (noisy) input
    GENERATE = "generate"  # output `image`; the decoder also samples from a prior
    SEGMENT = "segment"  # output `logits` [N, K, H, W]


class ReconLoss(str, enum.Enum):
    MSE = "mse"  # the default: matches the PSNR/MSE metrics people read
    BCE = "bce"  # the classic choice for near-binary images such as digits


class SelfSupervised(str, enum.Enum):
    """Learning a denoiser from noisy images alone (``aestudio.training.selfsup``)."""

    NONE = "none"  # supervised: clean targets, synthetic noise from TrainConfig.noise
    N2V2 = "n2v2"  # Noise2Void blind spots with the N2V2 fixes (median replacement without the centre)
    NE2NE = "ne2ne"  # Neighbor2Neighbor: predict one sub-sampled neighbour image from the other


class FinishReason(str, enum.Enum):
    DONE = "done"
    STOPPED = "stopped"
    DIVERGED = "diverged"
    FAILED = "failed"


def help_text(text: str) -> dict[str, str]:
    """A config field's metadata: its help (the app's tooltip), which says why the default is what it is."""
    return {"help": text}


def field_help(cls: type) -> dict[str, str]:
    """Field name -> help text of a config dataclass (inherited fields included)."""
    return {f.name: f.metadata["help"] for f in dataclasses.fields(cls) if "help" in f.metadata}


@dataclass(frozen=True)
class NetConfig:
    """Fields every net has; each family subclasses this with its own."""

    in_channels: int = field(default=1, metadata=help_text('1 grayscale or 3 RGB; set from the data unless overridden'))
    image_size: int = field(default=28, metadata=help_text('square side for fixed-size nets; fully convolutional nets accept any size'))

    def __post_init__(self) -> None:
        # Every family's config passes here, from CLI flags, run.json, model.json and
        # import-pt alike: the one guard against sizes that would allocate gigabytes.
        from aestudio.validate import check_net_config

        check_net_config(self)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


@dataclass(frozen=True)
class NoiseConfig:
    """One corruption, as used by denoising training and the noise lab.

    ``strength`` means sigma for gaussian/speckle, probability for salt-and-pepper
    and masking, photons per unit intensity for poisson (lower is noisier), the
    blur sigma in pixels for blur. With ``strength_max`` set, each image draws
    its strength uniformly from [strength, strength_max], so one model learns a
    range of noise levels. Spec strings: ``gaussian:0.1``, ``gaussian:0-0.2``,
    ``saltpepper:0.05``, ``speckle:0.2``, ``poisson:30``, ``mask:0.3``,
    ``block:0.25``, ``blur:1.5``, ``none``.
    """

    kind: str = "none"
    strength: float = 0.0
    strength_max: float | None = None

    def __post_init__(self) -> None:
        # Checked once, where a noise enters (a --noise flag, run.json), not per image.
        from aestudio.validate import check_noise_config

        check_noise_config(self)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


@dataclass(frozen=True)
class TrainConfig:
    """How to train; independent of which net is trained."""

    epochs: int = field(default=10, metadata=help_text('short by default: the studio is interactive; resume adds more'))
    batch_size: int = field(default=64, metadata=help_text('fits every built-in net in a few hundred MB'))
    lr: float = field(default=1e-3, metadata=help_text("Adam's usual rate; stable for every family here"))
    weight_decay: float = 0.0
    recon_loss: ReconLoss = ReconLoss.MSE
    noise: NoiseConfig = field(default_factory=NoiseConfig, metadata=help_text('input corruption (denoising)'))
    kl_warmup_epochs: int = field(default=0, metadata=help_text('VAE: ramp beta from 0 over this many epochs (avoids posterior collapse)'))
    val_fraction: float = field(default=0.2, metadata=help_text('deterministic split; validation metrics every epoch'))
    device: str = field(default="auto", metadata=help_text('auto | cpu | cuda | cuda:N | mps'))
    amp: bool = field(default=True, metadata=help_text('mixed precision, used on CUDA only'))
    bf16: bool = field(default=False, metadata=help_text('CPU: bfloat16 autocast and channels-last convs (~2.4x faster steps where the CPU has AVX-512 BF16 or AMX); a resume may switch it'))
    seed: int = field(default=0, metadata=help_text('seeds torch, numpy and the data split; CPU runs are deterministic'))
    max_steps: int | None = field(default=None, metadata=help_text('stop after this many optimizer steps (tests, quick looks)'))
    time_limit_minutes: float | None = field(default=None, metadata=help_text('wall-clock budget of this invocation, counted from its start (opening the data included); stops with a resumable checkpoint'))
    self_supervised: SelfSupervised = field(default=SelfSupervised.NONE, metadata=help_text('denoisers: learn from the noisy images alone (no --noise)'))
    num_workers: int = field(default=0, metadata=help_text('DataLoader workers; 0 keeps small data in-process and deterministic'))
    ema: float = field(default=0.0, metadata=help_text('> 0: checkpoints and exports hold an exponential moving average of the weights with this decay (e.g. 0.99, the Label tab\'s); training and resume continue from the trained weights'))
    checkpoint_every_steps: int | None = field(default=None, metadata=help_text('extra mid-epoch checkpoints for long epochs'))
    freeze_norm: bool = field(default=False, metadata=help_text("keep BatchNorm's running statistics as the starting weights had them; on by itself for self-supervised fine-tuning (--init-from with --self-supervised, the Noise lab's Learn this noise)"))
    anchor_clipped: bool = field(default=False, metadata=help_text("self-supervised fine-tuning: where clipping at 0 or 1 biases the noisy pixels the objective predicts, the starting weights' output is the target instead; on by itself with freeze_norm"))
    preview_count: int = field(default=8, metadata=help_text('images in the per-epoch preview batch'))
    max_oom_retries: int = field(default=3, metadata=help_text('CUDA OOM: halve the batch size at most this many times'))

    def __post_init__(self) -> None:
        from aestudio.validate import check_train_config

        check_train_config(self)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


# ---------------------------------------------------------------- JSON round trip


def to_dict(obj: Any) -> Any:
    """A dataclass (nested, with enums) as plain JSON-able data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild dataclass ``cls`` from :func:`to_dict` output.

    Unknown keys raise (a typo in a config must not pass silently); missing
    keys take their defaults, so old run folders stay loadable.
    """
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
    kwargs: dict[str, Any] = {}
    hints = _resolved_types(cls)
    for name, value in data.items():
        kwargs[name] = _coerce(hints.get(name), value)
    return cls(**kwargs)


def _resolved_types(cls: type) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(cls)
    except Exception:  # pragma: no cover - exotic annotations
        return {}


def _coerce(tp: Any, value: Any) -> Any:
    import typing

    if value is None or tp is None:
        return value
    origin = typing.get_origin(tp)
    if origin is typing.Union or str(origin) == "types.UnionType":
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value)
            except (TypeError, ValueError):
                continue
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value)
    if tp is float and isinstance(value, int):
        return float(value)
    if origin in (tuple,) and isinstance(value, list):
        return tuple(value)
    return value


def parse_noise(spec: str | None) -> NoiseConfig:
    """Parse ``kind:strength`` or ``kind:lo-hi`` (see :class:`NoiseConfig`)."""
    if spec is None or spec.strip() in ("", "none"):
        return NoiseConfig()
    kind, _, amount = spec.strip().partition(":")
    kind = kind.strip().lower().replace("-", "").replace("_", "")
    aliases = {"sp": "saltpepper", "saltandpepper": "saltpepper", "gauss": "gaussian", "masking": "mask"}
    kind = aliases.get(kind, kind)
    valid = ("gaussian", "saltpepper", "speckle", "poisson", "mask", "block", "blur")
    if kind not in valid:
        raise ValueError(f"unknown noise {kind!r} in {spec!r}; use one of {', '.join(valid)} (e.g. gaussian:0.1)")
    if not amount:
        raise ValueError(f"noise {spec!r} needs a strength, e.g. {kind}:0.1")
    lo, sep, hi = amount.partition("-") if not amount.startswith("-") else (amount, "", "")
    try:
        strength = float(lo)
        strength_max = float(hi) if sep else None
    except ValueError:
        raise ValueError(f"noise strength in {spec!r} is not a number; e.g. {kind}:0.1 or {kind}:0-0.2") from None
    if strength < 0 or (strength_max is not None and strength_max < strength):
        raise ValueError(f"noise strength in {spec!r} must be >= 0 and lo <= hi")
    return NoiseConfig(kind=kind, strength=strength, strength_max=strength_max)


def noise_to_spec(cfg: NoiseConfig) -> str:
    if cfg.kind == "none":
        return "none"
    if cfg.strength_max is not None:
        return f"{cfg.kind}:{cfg.strength:g}-{cfg.strength_max:g}"
    return f"{cfg.kind}:{cfg.strength:g}"
