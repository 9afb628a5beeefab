"""Checks of the config dataclasses and of every JSON file aestudio reads.

Two doors, one for each way hostile numbers arrive:

* the config dataclasses (``NetConfig`` and its families, ``TrainConfig``,
  ``NoiseConfig``) call :func:`check_net_config` & co. from ``__post_init__``,
  so a CLI flag, a run.json, a model.json and ``import-pt --param`` all meet
  the same bounds (:mod:`aestudio.limits`);
* :func:`read_json` / :func:`parse_json` read model.json, run.json,
  metrics.jsonl lines and safetensors headers: size, nesting depth and huge
  integers are refused with the file's name instead of a RecursionError or a
  5,000-digit int; :func:`need` checks one field's type.

A refusal is a :class:`aestudio.limits.LimitError` (a ``ValueError``) whose
message names the file or flag, the field, and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from aestudio import limits
from aestudio.limits import LimitError

# Integer net-config fields and their bounds; a family's field not listed gets _DEFAULT_INT.
_NET_INTS: dict[str, tuple[int, int]] = {
    "in_channels": (1, limits.MAX_CHANNELS),
    "image_size": (1, limits.MAX_NET_IMAGE_SIZE),
    "latent_dim": (1, limits.MAX_LATENT),
    "num_classes": (1, limits.MAX_CLASSES),
    "base_channels": (1, limits.MAX_WIDTH),
    "channels": (1, limits.MAX_WIDTH),
    "hidden": (0, limits.MAX_HIDDEN),
    "depth": (1, limits.MAX_DEPTH),
    "jacobian_probes": (1, 64),
}
_DEFAULT_INT = (0, limits.MAX_HIDDEN)
_MAX_FLOAT_WEIGHT = 1e6  # beta, sparsity, contractive: loss weights


def check_net_config(cfg: Any) -> None:
    name = type(cfg).__name__
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if kind == "int":
            lo, hi = _NET_INTS.get(f.name, _DEFAULT_INT)
            limits.check_int(f.name, value, lo, hi, where=name)
        elif kind == "float":
            limits.check_float(f.name, value, 0.0, _MAX_FLOAT_WEIGHT, where=name)
        elif kind.startswith("tuple"):
            if not isinstance(value, (tuple, list)) or not 1 <= len(value) <= 64:
                raise LimitError(f"{name}: {f.name} must be a list of 1 to 64 whole numbers")
            for v in value:
                limits.check_int(f.name, v, 1, 64, where=name)


_NOISE_RANGES: dict[str, tuple[float, float, bool]] = {  # kind -> (lo, hi, lo excluded)
    "gaussian": (0.0, limits.MAX_SIGMA, False),
    "speckle": (0.0, limits.MAX_SIGMA, False),
    "saltpepper": (0.0, 1.0, False),
    "mask": (0.0, 1.0, False),
    "block": (0.0, 1.0, False),
    "poisson": (0.0, limits.MAX_PHOTONS, True),
    "blur": (0.0, limits.MAX_BLUR_SIGMA, False),
}
_NOISE_MEANING = {"gaussian": "sigma", "speckle": "sigma", "saltpepper": "a probability", "mask": "a probability",
                  "block": "a probability", "poisson": "photons per unit (lower is noisier)", "blur": "sigma in pixels"}


def check_noise_config(cfg: Any) -> None:
    if cfg.kind == "none":
        return
    if cfg.kind not in _NOISE_RANGES:
        raise LimitError(f"unknown noise {cfg.kind!r}; use one of {', '.join(_NOISE_RANGES)} (e.g. gaussian:0.1)")
    lo, hi, lo_open = _NOISE_RANGES[cfg.kind]
    what = f"noise {cfg.kind} strength ({_NOISE_MEANING[cfg.kind]})"
    limits.check_float(what, cfg.strength, lo, hi, lo_open=lo_open)
    if cfg.strength_max is not None:
        limits.check_float(what, cfg.strength_max, lo, hi, lo_open=lo_open)
        if cfg.strength_max < cfg.strength:
            raise LimitError(f"{what}: the range {cfg.strength:g}-{cfg.strength_max:g} must go from low to high")


def check_train_config(cfg: Any) -> None:
    c = limits.check_int
    c("epochs", cfg.epochs, 0, limits.MAX_EPOCHS)
    c("batch_size", cfg.batch_size, 1, limits.MAX_BATCH)
    limits.check_float("lr", cfg.lr, 0.0, 1e30, lo_open=True)
    limits.check_float("weight_decay", cfg.weight_decay, 0.0, 1e6)
    c("kl_warmup_epochs", cfg.kl_warmup_epochs, 0, limits.MAX_EPOCHS)
    limits.check_float("val_fraction", cfg.val_fraction, 0.0, 0.99)
    c("seed", cfg.seed, 0, limits.MAX_SEED)
    if cfg.max_steps is not None:
        c("max_steps", cfg.max_steps, 1, 10**12)
    c("num_workers", cfg.num_workers, 0, limits.MAX_WORKERS_ABSOLUTE)
    if cfg.checkpoint_every_steps is not None:
        c("checkpoint_every_steps", cfg.checkpoint_every_steps, 1, 10**12)
    c("preview_count", cfg.preview_count, 0, 256)
    c("max_oom_retries", cfg.max_oom_retries, 0, 16)
    limits.check_float("ema", getattr(cfg, "ema", 0.0), 0.0, 0.9999)
    # time_limit_minutes is checked where training starts (loop.py), with its own message.


# ----------------------------------------------------------------- JSON files


def parse_json(text: str | bytes, where: str) -> Any:
    """``json.loads`` that refuses, by name, what would crash or bloat the reader.

    Nesting deeper than ``MAX_JSON_DEPTH`` (Python's parser recurses: a few thousand
    ``[`` give a RecursionError) and integers longer than ``MAX_INT_DIGITS`` digits
    (Python refuses 4,300 digits only after the work) are checked on the raw text."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise LimitError(f"{where}: not UTF-8 text; the file is damaged") from None
    if len(text) > limits.MAX_JSON_BYTES:
        raise LimitError(f"{where}: {len(text):,} characters of JSON, over the {limits.MAX_JSON_BYTES:,} aestudio reads")
    _check_depth(text, where)
    try:
        return json.loads(text, parse_int=lambda s: _parse_int(s, where), parse_constant=lambda s: float(s))
    except RecursionError:  # pragma: no cover - _check_depth catches it first
        raise LimitError(f"{where}: JSON nested too deeply; the file is damaged") from None
    except json.JSONDecodeError as exc:
        raise LimitError(f"{where}: damaged JSON, not valid JSON ({exc.msg} at line {exc.lineno})") from None


def read_json(path: Path, what: str = "") -> Any:
    """Read and :func:`parse_json` a file; ``what`` names it in messages (default: the path)."""
    where = what or str(path)
    limits.check_file_size(path, limits.MAX_JSON_BYTES, "the JSON file")
    return parse_json(Path(path).read_bytes(), where)


def need(data: Any, key: str, types: type | tuple[type, ...], where: str, *, optional: bool = False) -> Any:
    """``data[key]`` if it has one of ``types`` (bool is never an int here); else a LimitError naming it."""
    if not isinstance(data, dict):
        raise LimitError(f"{where}: must hold a JSON object, not {type(data).__name__}")
    if key not in data or data[key] is None:
        if optional:
            return None
        raise LimitError(f"{where}: field {key!r} is missing")
    value = data[key]
    types = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types) or (float in types and isinstance(value, int))
    if not ok:
        names = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        raise LimitError(f"{where}: field {key!r} must be {names}, not {_type_of(value)}")
    return value


_TYPE_NAMES = {int: "a whole number", float: "a number", str: "text", dict: "an object", list: "a list", bool: "true/false"}


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return f"text ({value[:20]!r})"
    return {dict: "an object", list: "a list"}.get(type(value), type(value).__name__)


def _parse_int(s: str, where: str) -> int:
    if len(s.lstrip("-")) > limits.MAX_INT_DIGITS:
        raise LimitError(f"{where}: holds a {len(s.lstrip('-')):,}-digit integer; no field of it can be that large; "
                         "the file is damaged or hostile")
    return int(s)


def _check_depth(text: str, where: str) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH, counting brackets outside strings."""
    if text.count("[") + text.count("{") <= limits.MAX_JSON_DEPTH:
        return  # cannot be that deep
    depth = 0
    for m in _BRACKETS.finditer(_STRINGS.sub('""', text)):
        if m.group() in "[{":
            depth += 1
            if depth > limits.MAX_JSON_DEPTH:
                raise LimitError(f"{where}: JSON nested more than {limits.MAX_JSON_DEPTH} levels deep; "
                                 "the file is damaged or hostile")
        else:
            depth -= 1


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str, limit: int = 200) -> str:
    """``text`` safe to print: control characters (terminal escape sequences, bidi overrides)
    become ``?`` and it is cut to ``limit`` characters. A model's name in model.json once
    reached the terminal raw, escape sequences included."""
    clean = _CONTROL.sub("?", text)
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."
