"""The BioImage Model Zoo's fixed list of pre- and post-processing operations, in numpy.

Arrays are in one canonical layout, float32 ``[batch, channel, y, x]``; an op's
``axes``/``axis`` name axes of that layout (``batch``, ``channel``, ``y``, ``x``).
Formulas follow ``bioimageio.core`` (``proc_ops.py``): ``scale_range`` is
``(x - p_lo) / (p_hi - p_lo + eps)`` with linear-interpolated percentiles,
``zero_mean_unit_variance`` is ``(x - mean) / (std + eps)`` with the population
std. Statistics are per sample (over the op's axes, never across the batch) and,
as in ``bioimageio.core`` (which measures every statistic once, before the first
operation), they are taken from the tensor as it enters the chain, not from an
earlier operation's result. A whole image is one sample, so :func:`resolve`
computes them once on the whole image and returns fixed ops that tiles share
without seams.

Nothing here is executed from the package but numbers: an op is an id from
:data:`KNOWN_OPS` and numeric keyword arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aestudio.errors import AestudioError

CANONICAL = ("batch", "channel", "y", "x")
KNOWN_OPS = (
    "binarize", "clip", "ensure_dtype", "fixed_zero_mean_unit_variance", "scale_linear",
    "scale_range", "sigmoid", "softmax", "zero_mean_unit_variance",
)
# Ops the spec has that aestudio does not run (they need a second tensor or custom code).
REFUSED_OPS = {
    "scale_mean_variance": "it needs a reference tensor's statistics",
    "custom": "it runs code from the package",
    "stardist_postprocessing": "it is StarDist's own code",
    "cellpose_flow_dynamics": "it is Cellpose's own code",
}
_DTYPES = {"float32", "float64", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "bool"}


class OpError(AestudioError, ValueError):
    """An operation aestudio cannot run; the message names the field."""


@dataclass(frozen=True)
class Op:
    """One operation: ``id`` from :data:`KNOWN_OPS` and its checked keyword arguments."""

    id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    where: str = ""  # e.g. "inputs[0].preprocessing[1]", for messages

    @property
    def needs_stats(self) -> bool:
        if self.id in ("scale_range", "zero_mean_unit_variance"):
            return "_fixed" not in self.kwargs
        if self.id == "clip":
            return ("min_percentile" in self.kwargs or "max_percentile" in self.kwargs) and "_fixed" not in self.kwargs
        return False


def _num(where: str, key: str, v: Any) -> float:
    if isinstance(v, str):  # PyYAML (YAML 1.1) reads 1e-06 as a string: it wants a dot in floats
        try:
            v = float(v)
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
        raise OpError(f"{where}.kwargs.{key}: {v!r} is not a finite number")
    return float(v)


def _nums(where: str, key: str, v: Any) -> float | list[float]:
    if isinstance(v, list):
        if not v:
            raise OpError(f"{where}.kwargs.{key}: an empty list")
        return [_num(where, key, e) for e in v]
    return _num(where, key, v)


def _axis(where: str, key: str, v: Any) -> str:
    if v not in CANONICAL:
        raise OpError(f"{where}.kwargs.{key}: axis {v!r} is not one of {list(CANONICAL)} (aestudio runs 2D images)")
    return str(v)


def make_op(raw: Any, where: str, *, default_axes: Sequence[str] | None = None) -> Op:
    """Check one operation of an rdf.yaml (already in 0.5 form: ``id`` + ``kwargs``) and return it."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise OpError(f"{where}: expected a mapping with an 'id' (the operation's name)")
    op_id, kw = raw["id"], raw.get("kwargs") or {}
    if op_id in REFUSED_OPS:
        raise OpError(f"{where}.id: {op_id!r} is not supported ({REFUSED_OPS[op_id]}); aestudio runs only {', '.join(KNOWN_OPS)}")
    if op_id not in KNOWN_OPS:
        raise OpError(f"{where}.id: unknown operation {op_id!r}; aestudio runs only {', '.join(KNOWN_OPS)}")
    if not isinstance(kw, dict):
        raise OpError(f"{where}.kwargs: expected a mapping")
    out: dict[str, Any] = {}
    if op_id == "binarize":
        out["threshold"] = _nums(where, "threshold", kw.get("threshold"))
        if "axis" in kw:
            out["axis"] = _axis(where, "axis", kw["axis"])
    elif op_id == "clip":
        for key in ("min", "max", "min_percentile", "max_percentile"):
            if kw.get(key) is not None:
                out[key] = _num(where, key, kw[key])
        if not out:
            raise OpError(f"{where}.kwargs: clip needs min, max or a percentile")
        out["axes"] = _axes(where, kw.get("axes"), default_axes)
    elif op_id == "ensure_dtype":
        if kw.get("dtype") not in _DTYPES:
            raise OpError(f"{where}.kwargs.dtype: {kw.get('dtype')!r} is not one of {sorted(_DTYPES)}")
        out["dtype"] = kw["dtype"]
    elif op_id in ("fixed_zero_mean_unit_variance", "scale_linear"):
        keys = ("mean", "std") if op_id.startswith("fixed") else ("gain", "offset")
        defaults = {"gain": 1.0, "offset": 0.0}
        for key in keys:
            if key not in kw and key not in defaults:
                raise OpError(f"{where}.kwargs.{key}: missing")
            out[key] = _nums(where, key, kw.get(key, defaults.get(key)))
        if "axis" in kw:
            out["axis"] = _axis(where, "axis", kw["axis"])
        elif any(isinstance(out[k], list) for k in keys):
            raise OpError(f"{where}.kwargs.axis: per-channel values need an 'axis'")
        out["eps"] = 1e-6 if op_id.startswith("fixed") else 0.0
    elif op_id == "scale_range":
        if kw.get("reference_tensor") not in (None, raw.get("_self")):
            raise OpError(f"{where}.kwargs.reference_tensor: scaling by another tensor ({kw['reference_tensor']!r}) is not supported")
        out["min_percentile"] = _num(where, "min_percentile", kw.get("min_percentile", 0.0))
        out["max_percentile"] = _num(where, "max_percentile", kw.get("max_percentile", 100.0))
        if not 0 <= out["min_percentile"] < out["max_percentile"] <= 100:
            raise OpError(f"{where}.kwargs: need 0 <= min_percentile < max_percentile <= 100")
        out["eps"] = _num(where, "eps", kw.get("eps", 1e-6))
        out["axes"] = _axes(where, kw.get("axes"), default_axes)
    elif op_id == "zero_mean_unit_variance":
        out["eps"] = _num(where, "eps", kw.get("eps", 1e-6))
        out["axes"] = _axes(where, kw.get("axes"), default_axes)
    elif op_id == "softmax":
        out["axis"] = _axis(where, "axis", kw.get("axis", "channel"))
    return Op(op_id, out, where)


def _axes(where: str, axes: Any, default: Sequence[str] | None) -> tuple[str, ...]:
    """The axes statistics reduce over; the batch axis is dropped (one image is one sample)."""
    if axes is None:
        axes = default or ("channel", "y", "x")
    if not isinstance(axes, (list, tuple)):
        raise OpError(f"{where}.kwargs.axes: expected a list of axis names")
    names = tuple(_axis(where, "axes", a) for a in axes)
    return tuple(a for a in names if a != "batch") or ("channel", "y", "x")


def _idx(axes: Sequence[str]) -> tuple[int, ...]:
    return tuple(CANONICAL.index(a) for a in axes)


def _along(v: float | list[float], axis: str | None, x: np.ndarray, where: str) -> np.ndarray | float:
    """A scalar, or per-index values shaped to broadcast along ``axis``."""
    if not isinstance(v, list):
        return np.float32(v)
    i = CANONICAL.index(axis or "channel")
    if len(v) != x.shape[i]:
        raise OpError(f"{where}: {len(v)} values for an axis {axis!r} of length {x.shape[i]}")
    shape = [1] * x.ndim
    shape[i] = len(v)
    return np.asarray(v, np.float32).reshape(shape)


def _stats(op: Op, x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample statistics over the op's axes (kept as broadcastable arrays)."""
    axes = _idx(op.kwargs["axes"])
    if op.id == "zero_mean_unit_variance":
        return {"mean": x.mean(axis=axes, keepdims=True, dtype=np.float64).astype(np.float32),
                "std": x.std(axis=axes, keepdims=True, dtype=np.float64).astype(np.float32)}
    qs = []
    keys = [k for k in ("min_percentile", "max_percentile") if k in op.kwargs]
    moved = np.moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))
    flat = moved.reshape(moved.shape[: x.ndim - len(axes)] + (-1,))
    for k in keys:
        pct = op.kwargs[k]
        if pct in (0.0, 100.0):  # min / max: exact, and a single pass instead of a partition
            q = (flat.min(axis=-1) if pct == 0.0 else flat.max(axis=-1)).astype(np.float32)
        else:
            q = np.percentile(flat, pct, axis=-1, method="linear").astype(np.float32)
        qs.append(np.expand_dims(q, axes))
    return dict(zip(keys, qs, strict=True))


def resolve(ops: Sequence[Op], x: np.ndarray) -> list[Op]:
    """Statistics of ``x`` (a whole sample, as it enters the chain) baked into every op that needs them.

    The returned ops give the same values on any tile of ``x`` as on the whole.
    """
    return [Op(op.id, {**op.kwargs, "_fixed": _stats(op, x.astype(np.float32, copy=False))}, op.where)
            if op.needs_stats else op for op in ops]


def apply(ops: Sequence[Op], x: np.ndarray) -> np.ndarray:
    """Apply ``ops`` in order to a canonical batch; per-sample statistics come from ``x`` as given."""
    if any(op.needs_stats for op in ops):
        ops = resolve(ops, x)
    for op in ops:
        x = apply_one(op, x)
    return x


def apply_one(op: Op, x: np.ndarray) -> np.ndarray:
    kw = op.kwargs
    if op.id == "ensure_dtype":
        # Like bioimageio.core: a cast. The net always gets float32 (the loop converts back after).
        return x.astype(kw["dtype"]).astype(np.float32) if kw["dtype"] != "float32" else x.astype(np.float32, copy=False)
    x = x.astype(np.float32, copy=False)
    if op.id == "binarize":
        return (x > _along(kw["threshold"], kw.get("axis"), x, op.where)).astype(np.float32)
    if op.id == "sigmoid":
        return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)
    if op.id == "softmax":
        i = CANONICAL.index(kw["axis"])
        e = np.exp(x - x.max(axis=i, keepdims=True))
        return (e / e.sum(axis=i, keepdims=True)).astype(np.float32)
    if op.id == "scale_linear":
        return (x * _along(kw["gain"], kw.get("axis"), x, op.where) + _along(kw["offset"], kw.get("axis"), x, op.where)).astype(np.float32)
    if op.id == "fixed_zero_mean_unit_variance":
        mean, std = _along(kw["mean"], kw.get("axis"), x, op.where), _along(kw["std"], kw.get("axis"), x, op.where)
        return ((x - mean) / (std + np.float32(kw["eps"]))).astype(np.float32)
    if op.id == "clip" and "_fixed" not in kw:
        return np.clip(x, kw.get("min"), kw.get("max")).astype(np.float32)
    stats = kw["_fixed"]  # apply() resolves every statistic from the chain's input first
    if op.id == "scale_range":
        lo, hi = stats["min_percentile"], stats["max_percentile"]
        return ((x - lo) / (hi - lo + np.float32(kw["eps"]))).astype(np.float32)
    if op.id == "zero_mean_unit_variance":
        return ((x - stats["mean"]) / (stats["std"] + np.float32(kw["eps"]))).astype(np.float32)
    if op.id == "clip":
        lo = stats.get("min_percentile", kw.get("min"))
        hi = stats.get("max_percentile", kw.get("max"))
        return np.clip(x, lo, hi).astype(np.float32)
    raise OpError(f"{op.where}.id: unknown operation {op.id!r}")  # make_op refuses these first
