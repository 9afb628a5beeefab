"""Which number type a bundle's model graph may run in: the rule, torch-free (the runtime is
:mod:`aestudio.export.bf16_runtime`, which imports torch; a front end asks here first, so a model that
cannot run in bfloat16 never pays torch's import)."""

from __future__ import annotations

from typing import Literal

from aestudio.config import Task
from aestudio.inference.bundle import BundleFile, ModelInfo

Precision = Literal["auto", "float32", "bfloat16"]
PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")
# Image-to-image models that run on whole photos and micrographs, where the speed matters; the small
# fixed-size autoencoders gain nothing and keep the exact graph.
TASKS = (Task.DENOISE, Task.SEGMENT)
MIN_PSNR_DB = 45.0  # bfloat16 output against float32's, on the export's inputs (the photo-denoiser: see its card)
MIN_AGREEMENT = 0.999  # share of pixels whose class is the same (segmenters)


def record_ok(info: ModelInfo) -> str | None:
    """None when the bundle's ``bfloat16`` record allows the bfloat16 runtime, else why not (one phrase)."""
    rec = info.bfloat16
    if info.task not in TASKS:
        return f"a {info.task.value} model's graphs stay in ONNX Runtime"
    if info.precision != "float32":
        return f"its graph is {info.precision}"
    if not info.net_config or BundleFile.WEIGHTS.value not in info.files:
        return "it has no torch weights (weights.safetensors) to run"
    if not rec:
        return "its model.json has no bfloat16 check (re-export it with this version)"
    psnr = float(rec.get("psnr_vs_float32_db", 0.0))
    if psnr < MIN_PSNR_DB:
        return f"its bfloat16 output is {psnr:.1f} dB PSNR from float32's (below {MIN_PSNR_DB:.0f})"
    if float(rec.get("class_agreement", 1.0)) < MIN_AGREEMENT:
        return f"bfloat16 changes the class of {100 * (1 - float(rec['class_agreement'])):.2f}% of pixels"
    return None
