"""ONNX Runtime sessions for a bundle with exactly the options the product's predictor uses.

The speed figures must describe what ships, so the session options come from
:class:`aestudio.inference.ort.OrtPredictor` itself (its sessions are reused),
and only the raw ``InferenceSession.run`` call is timed, with no pre/post-processing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Profile:
    """Session profile names of DESIGN.md ("Inference")."""

    INTERACTIVE = "interactive"  # one intra-op thread, no spinning: sliders, previews
    BATCH = "batch"  # all cores: folders, big images


def predictor(bundle: Path, profile: str) -> Any:
    from aestudio.inference.ort import OrtPredictor

    return OrtPredictor(bundle, profile=profile)


def _find_session(pred: Any, part: str) -> Any:
    """The predictor's InferenceSession for ``part`` ("model", "encoder" or "decoder")."""
    import onnxruntime as ort

    candidates = [f"_{part}_session", f"{part}_session", f"_{part}", part]
    if part == "model":
        candidates += ["_session", "session"]
    for name in candidates:
        obj = getattr(pred, name, None)
        if callable(obj) and not isinstance(obj, ort.InferenceSession):
            try:
                obj = obj()
            except TypeError:
                continue
        if isinstance(obj, ort.InferenceSession):
            return obj
    for name in ("_sessions", "sessions"):
        table = getattr(pred, name, None)
        if isinstance(table, dict) and isinstance(table.get(part), ort.InferenceSession):
            return table[part]
    return None


def session(bundle: Path, part: str, profile: str, *, warm_input: Any = None) -> Any:
    """The InferenceSession the predictor would use for ``part`` of ``bundle``.

    Falls back to building one with DESIGN.md's profile options when the
    predictor does not expose its sessions (logged, since the figures then
    describe the documented options rather than the shipped code).
    """
    pred = predictor(bundle, profile)
    found = _find_session(pred, part)
    if found is None and warm_input is not None:
        # Encoder/decoder sessions may be created lazily on first use.
        method = {"model": "predict", "encoder": "encode", "decoder": "decode"}[part]
        getattr(pred, method)(warm_input)
        found = _find_session(pred, part)
    if found is not None:
        return found
    log.warning("OrtPredictor exposes no %s session; building one with DESIGN.md's %s options", part, profile)
    return raw_session(bundle / f"{part}.onnx", profile)


def raw_session(path: Path, profile: str, *, level: Any = None) -> Any:
    import os

    import onnxruntime as ort

    opts = ort.SessionOptions()
    if profile == Profile.INTERACTIVE:
        opts.intra_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    else:
        opts.intra_op_num_threads = os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    if level is not None:
        opts.graph_optimization_level = level
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
