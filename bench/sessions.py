"""ONNX Runtime sessions for a bundle, exactly as the product's predictor creates them.

The speed figures must describe what ships, so the sessions come from
:class:`aestudio.inference.ort.OrtPredictor` itself (``predictor.session(graph)``,
with the options of ``aestudio.inference.ort.session_options``), and only the raw
``InferenceSession.run`` call is timed, with no pre/post-processing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Profile:
    """Session profile names of DESIGN.md ("Inference")."""

    INTERACTIVE = "interactive"  # one intra-op thread, no spinning: sliders, previews
    BATCH = "batch"  # all cores: folders, big images


def predictor(bundle: Path, profile: str) -> Any:
    from aestudio.inference.ort import OrtPredictor

    return OrtPredictor(bundle, profile=profile)


def session(bundle: Path, part: str, profile: str) -> Any:
    """The InferenceSession the predictor uses for ``part`` ("model", "encoder", "decoder")."""
    from aestudio.inference.bundle import BundleFile

    return predictor(bundle, profile).session(BundleFile(part))


def raw_session(path: Path, profile: str, *, level: Any = None) -> Any:
    """A bare session on one .onnx file with the product's options for ``profile``.

    ``level`` overrides the graph optimisation level (for investigating a slow net).
    """
    import onnxruntime as ort

    from aestudio.inference.ort import session_options

    opts = session_options(profile)
    if level is not None:
        opts.graph_optimization_level = level
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
