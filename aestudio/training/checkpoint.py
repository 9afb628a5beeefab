"""Checkpoint files: weights and training state in safetensors, never pickle.

* Weights: a flat ``name -> tensor`` safetensors file (``model.safetensors``,
  ``best.safetensors``), with the global step in its metadata.
* Training state (``optimizer.safetensors``): the optimizer's ``state_dict``
  flattened to tensors named ``optim.<param index>.<key>`` plus a JSON string
  in the safetensors metadata for the non-tensor structure (param groups,
  scalar state); RNG states (torch CPU and CUDA generators as uint8 tensors,
  the sampler generator as a uint8 tensor, numpy's bit generator state as
  JSON); the mixed-precision scaler state as JSON.

safetensors only stores tensors and strings, so loading one cannot execute
code, unlike ``torch.load`` of a pickle. The one pickle path is
:func:`load_legacy_pt`, behind an explicit opt-in and ``weights_only=True``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from aestudio import limits
from aestudio.errors import AestudioError
from aestudio.limits import LimitError
from aestudio.training.atomic import TEMP_PREFIX, atomic_write_bytes, explained, fsync_dir
from aestudio.validate import parse_json

log = logging.getLogger(__name__)

_OPTIM_PREFIX = "optim."
_RNG_TORCH = "rng.torch"
_RNG_CUDA_PREFIX = "rng.cuda."
_TRAINED_PREFIX = "trained_net."  # the trained weights, when the weights file holds their moving average
_RNG_SAMPLER = "rng.sampler"
_RNG_SAMPLER_EPOCH = "rng.sampler_epoch_start"
_META_KEY = "aestudio"
PREV_SUFFIX = ".prev"  # the version a checkpoint write replaced; see keep_previous()

# First bytes of PyTorch's pickle checkpoints: a zip archive (torch.save since 1.6)
# or a raw pickle stream (protocol 2-5, older torch.save and pickle.dump).
_PICKLE_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
IMPORT_HINT = "aestudio import-pt FILE --net NAME -o BUNDLE_DIR --allow-pickle"


class CheckpointError(AestudioError, ValueError):
    """A checkpoint file is missing, damaged or of the wrong kind (message names the file)."""


def _plain(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage; copy to CPU and make
    # every tensor own its memory so tied weights save too.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any] | None = None) -> None:
    metadata = {_META_KEY: json.dumps(meta or {})}
    data = st_save(_plain(tensors), metadata=metadata)
    try:
        keep_previous(Path(path))
    except OSError as exc:
        better = explained(exc, Path(path))
        raise better from (None if better is exc else exc)
    atomic_write_bytes(Path(path), data)


def keep_previous(path: Path) -> None:
    """Keep the version ``path`` is about to lose as ``path.prev`` (a hard link: no copy).

    A checkpoint is several files (weights, training state, run.json last as the
    commit point); each is replaced atomically, but a crash between two of them
    leaves files newer than run.json. :func:`aestudio.training.runs.recover_run`
    then puts the ``.prev`` versions back, so the folder is again the checkpoint
    run.json names.
    """
    if not path.is_file():
        return
    tmp = path.with_name(f"{TEMP_PREFIX}{path.name}{PREV_SUFFIX}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:  # no hard links on this filesystem: copy instead
        shutil.copyfile(path, tmp)
    os.replace(tmp, path.with_name(path.name + PREV_SUFFIX))
    fsync_dir(path.parent)


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and the JSON metadata of a safetensors file written by :func:`save_tensors`."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found; the run folder is incomplete (train again or copy the file back)") from None
    if head.startswith(_PICKLE_MAGIC):
        raise CheckpointError(
            f"{path}: is a PyTorch pickle checkpoint, not safetensors; aestudio never unpickles "
            "weights (loading a pickle can run code). If you trust its source, convert it with "
            f"`{IMPORT_HINT}`"
        )
    try:  # before reading: a 3 GiB sparse file must not be read whole to be called damaged
        limits.check_file_size(path, limits.MAX_WEIGHTS_BYTES, "the weights file")
    except LimitError as exc:
        raise CheckpointError(f"{exc}; restore it or train again") from None
    data = path.read_bytes()
    try:
        raw_meta = _header_metadata(data, path)
        tensors = st_load(data)
    except LimitError as exc:
        raise CheckpointError(f"{exc}; restore the file or train again") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc}); it is damaged, restore it or train again") from None
    try:
        meta = parse_json(raw_meta.get(_META_KEY, "{}"), f"{path}: metadata")
        if not isinstance(meta, dict):
            raise LimitError(f"{path}: metadata must be a JSON object, not {type(meta).__name__}")
    except LimitError as exc:
        raise CheckpointError(f"{exc}; restore the file or train again") from None
    return tensors, meta


def _header_metadata(data: bytes, path: Path) -> dict[str, str]:
    # The safetensors layout: u64 little-endian header size, then a JSON header
    # whose "__metadata__" holds the string metadata. Parsed from the bytes we
    # already read, so tensors and metadata come from the same file version.
    size = int.from_bytes(data[:8], "little")
    if not 0 < size <= min(len(data) - 8, limits.MAX_JSON_BYTES):
        raise LimitError(f"{path}: the safetensors header claims {size:,} bytes; the file is damaged")
    header = parse_json(data[8 : 8 + size], f"{path}: header")
    if not isinstance(header, dict):
        raise LimitError(f"{path}: the safetensors header must be a JSON object")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise LimitError(f"{path}: the safetensors '__metadata__' must map names to text")
    return meta


def read_meta(path: Path) -> dict[str, Any] | None:
    """The JSON metadata of a safetensors file from its header alone; None if unreadable."""
    try:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if not 0 < size <= 100_000_000:
                return None
            header = json.loads(fh.read(size))
        return json.loads((header.get("__metadata__") or {}).get(_META_KEY, "{}"))
    except (OSError, ValueError, AttributeError):
        return None


def save_weights(path: Path, state_dict: dict[str, torch.Tensor], *, step: int, epoch: int) -> None:
    save_tensors(path, state_dict, {"kind": "weights", "step": step, "epoch": epoch})


def load_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, meta = load_tensors(path)
    if meta.get("kind", "weights") != "weights":
        raise CheckpointError(f"{path}: holds {meta.get('kind')!r}, not model weights")
    return tensors, meta


# ------------------------------------------------------------------ optimizer state


def flatten_optimizer_state(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors and a JSON-able structure."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, pstate in sd["state"].items():
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{_OPTIM_PREFIX}{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    meta = {"param_groups": sd["param_groups"], "scalars": scalars, "indices": [str(i) for i in sd["state"]]}
    return tensors, meta


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(i): {} for i in meta.get("indices", [])}
    for name, value in tensors.items():
        if not name.startswith(_OPTIM_PREFIX):
            continue
        idx, _, key = name[len(_OPTIM_PREFIX):].partition(".")
        state.setdefault(int(idx), {})[key] = value
    for idx, values in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


# ------------------------------------------------------------------ training state


@dataclass
class TrainingState:
    """Everything besides the weights that an exact resume needs."""

    optimizer: dict[str, Any]  # optimizer.state_dict()
    torch_rng: torch.Tensor  # torch.get_rng_state()
    sampler_rng: torch.Tensor  # the sampler generator's current state
    sampler_epoch_start: torch.Tensor  # its state before drawing this epoch's permutation
    numpy_rng: dict[str, Any]  # numpy bit_generator.state (noise for denoising)
    cuda_rng: list[torch.Tensor] = field(default_factory=list)
    scaler: dict[str, Any] = field(default_factory=dict)  # GradScaler.state_dict() (CUDA AMP)
    step: int = 0
    epoch: int = 0
    # With TrainConfig.ema the weights file holds the moving average; the trained weights an exact
    # resume continues from are kept here, with the number of average updates so far.
    net: dict[str, torch.Tensor] | None = None
    ema_updates: int = 0


def save_training_state(path: Path, st: TrainingState) -> None:
    tensors, optim_meta = flatten_optimizer_state(st.optimizer)
    tensors[_RNG_TORCH] = st.torch_rng
    tensors[_RNG_SAMPLER] = st.sampler_rng
    tensors[_RNG_SAMPLER_EPOCH] = st.sampler_epoch_start
    for i, state in enumerate(st.cuda_rng):
        tensors[f"{_RNG_CUDA_PREFIX}{i}"] = state
    for k, v in (st.net or {}).items():
        tensors[f"{_TRAINED_PREFIX}{k}"] = v.detach().contiguous()
    meta = {
        "kind": "training-state",
        "step": st.step,
        "epoch": st.epoch,
        "optimizer": optim_meta,
        "numpy_rng": st.numpy_rng,
        "scaler": {k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in st.scaler.items()},
        "trained_net": st.net is not None,
        "ema_updates": int(st.ema_updates),
    }
    save_tensors(path, tensors, meta)


def load_training_state(path: Path) -> TrainingState:
    tensors, meta = load_tensors(path)
    if meta.get("kind") != "training-state":
        raise CheckpointError(f"{path}: not an aestudio training state; restore it or start a new run")
    try:
        cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith(_RNG_CUDA_PREFIX)), key=lambda k: int(k.rsplit(".", 1)[1]))]
        return TrainingState(
            optimizer=unflatten_optimizer_state(tensors, meta["optimizer"]),
            torch_rng=tensors[_RNG_TORCH],
            sampler_rng=tensors[_RNG_SAMPLER],
            sampler_epoch_start=tensors[_RNG_SAMPLER_EPOCH],
            numpy_rng=meta["numpy_rng"],
            cuda_rng=cuda,
            scaler=meta.get("scaler", {}),
            step=int(meta["step"]),
            epoch=int(meta["epoch"]),
            net=({k[len(_TRAINED_PREFIX):]: v for k, v in tensors.items() if k.startswith(_TRAINED_PREFIX)}
                 if meta.get("trained_net") else None),
            ema_updates=int(meta.get("ema_updates", 0)),
        )
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"{path}: incomplete training state (missing {exc}); restore it or start a new run") from None


# ------------------------------------------------------------------ legacy


def load_legacy_pt(path: Path, *, allow: bool = False) -> dict[str, torch.Tensor]:
    """Weights from a legacy PyTorch ``.pt``/``.pth`` file, only with ``allow=True``.

    Pickle files can run arbitrary code when loaded; ``weights_only=True``
    restricts unpickling to tensors and plain containers, and the opt-in makes
    the caller say they trust the file. Accepts a bare state dict or
    ``{"state_dict": ...}`` / ``{"model": ...}``.
    """
    path = Path(path)
    if not allow:
        raise CheckpointError(
            f"{path}: legacy pickle checkpoints can run code when loaded and are refused; "
            "pass allow=True only if you trust its source (CLI: "
            f"`{IMPORT_HINT}` converts it to a bundle)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except Exception as exc:  # weights_only refusal surfaces as UnpicklingError/RuntimeError
        raise CheckpointError(f"{path}: refused or unreadable as a weights-only checkpoint ({type(exc).__name__}: {exc})") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: does not hold a state dict of tensors")
    log.info("loaded %d tensors from legacy checkpoint %s", len(obj), path)
    return dict(obj)
