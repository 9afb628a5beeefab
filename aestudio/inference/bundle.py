"""The bundle format: ``model.json`` as a dataclass, and reading/validating a bundle folder.

A bundle is a folder that any tool can run with nothing but ONNX Runtime (see
docs/BUNDLE_FORMAT.md): ``model.json`` describes the model, ``model.onnx`` is
the main graph, ``encoder.onnx``/``decoder.onnx`` exist for nets with a code,
and ``weights.safetensors`` keeps the torch weights for fine-tuning. This
module never imports torch (nor onnx): the predictor side depends on it.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from aestudio import limits
from aestudio._fs import atomic_write_bytes
from aestudio.config import Task
from aestudio.errors import AestudioError
from aestudio.limits import LimitError
from aestudio.validate import need, parse_json, printable, read_json

FORMAT_NAME = "aestudio-bundle"
FORMAT_VERSION = 1
MODEL_JSON = "model.json"

# Tensor names, fixed by the format. ONNX values are single-assignment, so the
# image output of model.onnx cannot share the input's name `image`; it is
# `reconstruction` (the denoised image for denoisers).
INPUT_IMAGE = "image"
OUTPUT_IMAGE = "reconstruction"
OUTPUT_LOGITS = "logits"
LATENT_Z = "z"
LATENT_MU = "mu"
LATENT_LOGVAR = "logvar"
DECODER_OUTPUT = "image"


class BundleError(AestudioError, ValueError):
    """A bundle or model file that cannot be used; the message names the file and the fix."""


class LatentKind(str, enum.Enum):
    Z = "z"  # encoder.onnx outputs `z`
    GAUSSIAN = "gaussian"  # VAE: encoder.onnx outputs `mu` and `logvar`; prior N(0, I)


class BundleFile(str, enum.Enum):
    """Keys of ``model.json``'s ``files`` table."""

    MODEL = "model"
    ENCODER = "encoder"
    DECODER = "decoder"
    WEIGHTS = "weights"


QUANTIZED_DTYPES = ("int8",)  # what `quantization.dtype` may say (ONNX Runtime runs the QDQ graph as it is)

DEFAULT_FILES = {
    BundleFile.MODEL.value: "model.onnx",
    BundleFile.ENCODER.value: "encoder.onnx",
    BundleFile.DECODER.value: "decoder.onnx",
    BundleFile.WEIGHTS.value: "weights.safetensors",
}


@dataclass(frozen=True)
class ModelInfo:
    """Everything ``model.json`` says; also synthesised for foreign ONNX files."""

    name: str  # display name, e.g. "conv_ae on digits"
    net: str  # registry name ("conv_ae") or "foreign"
    task: Task
    in_channels: int  # 1 grayscale or 3 RGB
    image_size: int | str = "any"  # square side for fixed-size nets, or "any" (fully convolutional)
    size_multiple: int = 1  # H and W must be multiples of this (U-Net: 2**depth)
    value_range: tuple[float, float] = (0.0, 1.0)  # input and image-output range
    latent_dim: int | None = None  # size of the code; None without encoder/decoder
    latent_kind: LatentKind | None = None
    class_names: list[str] = field(default_factory=list)  # segmentation only
    class_colors: list[list[int]] = field(default_factory=list)  # RGB 0-255, one per class
    metrics: dict[str, float] = field(default_factory=dict)  # validation metrics of the exported weights
    parity_error: dict[str, float] = field(default_factory=dict)  # max |ORT - torch| per graph
    timings: dict[str, Any] = field(default_factory=dict)  # median ms per batch-1 call, torch vs ORT
    training: dict[str, Any] = field(default_factory=dict)  # data spec, epochs, steps, wall time, seed
    net_config: dict[str, Any] = field(default_factory=dict)  # the family config, to rebuild in torch
    files: dict[str, str] = field(default_factory=dict)  # BundleFile key -> file name in the folder
    exporter: str = ""  # which torch ONNX exporter wrote the graphs, and the opset
    created: str = ""  # ISO 8601 UTC
    # Empty for float32 graphs (and then left out of model.json, so older readers still open it); for an
    # int8 model.onnx (`aestudio export --int8`, aestudio.export.quantize): dtype "int8", how it was
    # quantized and calibrated, its error against the float32 graph and both graphs' speed.
    quantization: dict[str, Any] = field(default_factory=dict)
    # The model graph run in bfloat16 (torch, aestudio.export.bf16_runtime) against float32, measured at export
    # on its parity inputs: psnr_vs_float32_db, max_abs_error, class_agreement (segmenters), checked_on. Empty
    # (and left out of model.json) when not measured; the bfloat16 runtime is then never chosen by itself.
    bfloat16: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION

    # ------------------------------------------------------------- derived facts

    @property
    def fixed_size(self) -> int | None:
        return None if self.image_size == "any" else int(self.image_size)

    @property
    def has_latent(self) -> bool:
        return self.latent_dim is not None

    @property
    def output_name(self) -> str:
        return OUTPUT_LOGITS if self.task is Task.SEGMENT else OUTPUT_IMAGE

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def precision(self) -> str:
        """The main graph's number type, as the app and the CLI show it: "float32" or "int8"."""
        return str(self.quantization.get("dtype", "float32")) if self.quantization else "float32"

    # ------------------------------------------------------------- JSON

    def to_json(self) -> str:
        data = asdict(self)
        data["task"] = self.task.value
        data["latent_kind"] = self.latent_kind.value if self.latent_kind else None
        data["value_range"] = list(self.value_range)
        if not self.quantization:
            del data["quantization"]
        if not self.bfloat16:
            del data["bfloat16"]
        # Put the identifying keys first so a person reading the file sees them.
        head = ("format", "format_version", "name", "net", "task")
        ordered = {k: data[k] for k in head} | {k: v for k, v in data.items() if k not in head}
        return json.dumps(ordered, indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = MODEL_JSON) -> ModelInfo:
        """Parse and validate; any problem raises :class:`BundleError` naming ``source``."""
        try:
            data = parse_json(text, source)
        except LimitError as exc:
            raise BundleError(f"{exc}; re-export the bundle with `aestudio export RUN_DIR`") from None
        if not isinstance(data, dict):
            raise BundleError(f"{source}: expected a JSON object; re-export the bundle with `aestudio export RUN_DIR`")
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = MODEL_JSON) -> ModelInfo:
        def bad(msg: str) -> BundleError:
            return BundleError(f"{source}: {msg}; re-export the bundle with `aestudio export RUN_DIR`")

        if data.get("format") != FORMAT_NAME:
            raise bad(f"'format' is {data.get('format')!r}, expected {FORMAT_NAME!r}")
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
            raise BundleError(
                f"{source}: format_version {version!r} is not supported (this aestudio reads 1..{FORMAT_VERSION}); "
                "upgrade aestudio or re-export the bundle"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise bad(f"unknown key(s) {unknown}")
        for key in ("name", "net", "task", "in_channels"):
            if key not in data:
                raise bad(f"missing required key {key!r}")
        try:
            _check_types(data, source)
        except LimitError as exc:
            raise BundleError(f"{exc}; re-export the bundle with `aestudio export RUN_DIR`") from None
        kw = dict(data)
        kw["name"] = printable(data["name"])  # shown in terminals and windows: no escape sequences
        kw["class_names"] = [printable(n, 80) for n in data.get("class_names") or []]
        try:
            kw["task"] = Task(data["task"])
        except ValueError:
            raise bad(f"'task' {data['task']!r} is not one of {[t.value for t in Task]}") from None
        kind = data.get("latent_kind")
        try:
            kw["latent_kind"] = LatentKind(kind) if kind is not None else None
        except ValueError:
            raise bad(f"'latent_kind' {kind!r} is not one of {[k.value for k in LatentKind]}") from None
        vr = data.get("value_range", [0.0, 1.0])
        if not (isinstance(vr, list) and len(vr) == 2 and all(_is_number(v) for v in vr) and vr[0] < vr[1]):
            raise bad(f"'value_range' {vr!r} must be [low, high] with low < high")
        kw["value_range"] = (float(vr[0]), float(vr[1]))
        info = cls(**kw)
        info.validate(source)
        return info

    def validate(self, source: str = MODEL_JSON) -> None:
        """Check the facts agree with each other; raise :class:`BundleError` if not."""

        def bad(msg: str) -> BundleError:
            return BundleError(f"{source}: {msg}; re-export the bundle with `aestudio export RUN_DIR`")

        try:  # sizes that would allocate: the same bounds as a net config (aestudio.limits)
            limits.check_int("'in_channels'", self.in_channels, 1, limits.MAX_CHANNELS)
            if self.image_size != "any":
                limits.check_int("'image_size' (a number or \"any\")", self.image_size, 1, limits.MAX_NET_IMAGE_SIZE)
            limits.check_int("'size_multiple'", self.size_multiple, 1, limits.MAX_SIZE_MULTIPLE)
            if self.latent_dim is not None:
                limits.check_int("'latent_dim'", self.latent_dim, 1, limits.MAX_LATENT)
            if len(self.class_names) > limits.MAX_CLASSES:
                raise LimitError(f"{len(self.class_names)} 'class_names'; at most {limits.MAX_CLASSES}")
        except LimitError as exc:
            raise bad(str(exc)) from None
        if (self.latent_dim is None) != (self.latent_kind is None):
            raise bad("'latent_dim' and 'latent_kind' must be given together (or both null)")
        if self.task is Task.SEGMENT and len(self.class_names) < 2:
            raise bad("a segmentation model needs 'class_names' (at least 2)")
        if self.class_colors and len(self.class_colors) != len(self.class_names):
            raise bad(f"{len(self.class_colors)} 'class_colors' for {len(self.class_names)} 'class_names'")
        for c in self.class_colors:
            if not (isinstance(c, list) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)):
                raise bad(f"class colour {c!r} must be [r, g, b] with integers 0-255")
        if not isinstance(self.files, dict) or not all(isinstance(v, str) for v in self.files.values()):
            raise bad("'files' must map names to file names")
        for key, name in self.files.items():
            if key not in {f.value for f in BundleFile}:
                raise bad(f"'files' has unknown entry {key!r}")
            if Path(name).name != name or name in ("", ".", ".."):
                raise bad(f"file name {name!r} must be a plain name inside the bundle folder")
        if BundleFile.MODEL.value not in self.files:
            raise bad("'files' has no 'model' entry")
        if self.quantization:
            if self.quantization.get("dtype") not in QUANTIZED_DTYPES:
                raise bad(f"'quantization' dtype {self.quantization.get('dtype')!r} is not one of {list(QUANTIZED_DTYPES)}")
            qfiles = self.quantization.get("files", [BundleFile.MODEL.value])
            if not isinstance(qfiles, list) or not all(isinstance(f, str) and f in self.files for f in qfiles):
                raise bad(f"'quantization' files {qfiles!r} must be entries of 'files'")
        if self.has_latent:
            missing = [k for k in (BundleFile.ENCODER.value, BundleFile.DECODER.value) if k not in self.files]
            if missing:
                raise bad(f"a model with a code needs 'files' entries {missing}")


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "net": (str,), "task": (str,), "latent_kind": (str,), "value_range": (list,),
    "class_names": (list,), "class_colors": (list,), "metrics": (dict,), "parity_error": (dict,), "timings": (dict,),
    "training": (dict,), "net_config": (dict,), "files": (dict,), "quantization": (dict,), "bfloat16": (dict,), "exporter": (str,), "created": (str,),
    "in_channels": (int,), "size_multiple": (int,), "latent_dim": (int,), "image_size": (int, str),
}


def _check_types(data: dict[str, Any], source: str) -> None:
    """Each known field of model.json has its JSON type (values are checked by ``validate``)."""
    for key, types in _FIELD_TYPES.items():
        need(data, key, types, source, optional=True)
    if not all(isinstance(n, str) for n in data.get("class_names") or []):
        raise LimitError(f"{source}: 'class_names' must be a list of text")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a folder with a ``model.json`` that names the bundle format."""
    p = Path(path) / MODEL_JSON
    try:
        data = read_json(p)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT_NAME


def read_bundle(path: str | os.PathLike[str]) -> ModelInfo:
    """Read and validate a bundle folder: ``model.json`` and that every listed file is there."""
    folder = Path(path)
    if not folder.is_dir():
        raise BundleError(f"{folder}: not a folder; pass a bundle folder (made by `aestudio export RUN_DIR`) or a .onnx file")
    mj = folder / MODEL_JSON
    if not mj.is_file():
        raise BundleError(f"{mj}: missing; {folder} is not a bundle. Create one with `aestudio export RUN_DIR -o {folder}`")
    try:
        limits.check_file_size(mj, limits.MAX_JSON_BYTES, MODEL_JSON)
        text = mj.read_text(encoding="utf-8")
    except LimitError as exc:
        raise BundleError(f"{exc}; re-export the bundle with `aestudio export RUN_DIR`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{mj}: cannot be read ({exc}); re-export the bundle with `aestudio export RUN_DIR`") from None
    info = ModelInfo.from_json(text, source=str(mj))
    for key, name in info.files.items():
        f = folder / name
        if not f.is_file():
            raise BundleError(f"{f}: missing ({key} file listed in model.json); re-export the bundle with `aestudio export RUN_DIR`")
        if f.stat().st_size == 0:
            raise BundleError(f"{f}: empty file; re-export the bundle with `aestudio export RUN_DIR`")
    return info


def write_model_json(folder: str | os.PathLike[str], info: ModelInfo) -> Path:
    """Write ``model.json`` atomically (temp file in the same folder, fsync, replace)."""
    info.validate()
    target = Path(folder) / MODEL_JSON
    atomic_write_bytes(target, info.to_json().encode("utf-8"))
    return target


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
