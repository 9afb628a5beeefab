"""Read a BioImage Model Zoo package (a zip with ``rdf.yaml``) that aestudio can run: 2D, ONNX weights.

Torch-free and ``bioimageio``-free: the rdf is parsed with ``yaml.safe_load``
(no tags, no objects) and checked field by field here, so a refusal names the
field (``inputs[0].axes[2]: a 'z' axis (3D) ...``). Nothing in a package runs
but its ONNX graph: pre- and post-processing are ids from the spec's fixed list
(:mod:`aestudio.inference.bioimageio_ops`), run in numpy.

The zip is read member by member, never extracted as a whole: a member name
with ``..``, an absolute path, a drive or a URL is refused, sizes are checked
against the header *and* counted while reading (a header can lie), and a
member that inflates more than :data:`MAX_RATIO` times is refused as a zip
bomb. The ONNX graph is copied into the user cache (by the zip's hash), where
ONNX Runtime opens it. Spec formats 0.5 and 0.4 are read (0.4 is converted to
0.5's shape first).
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aestudio import limits
from aestudio.inference.bioimageio_ops import Op, OpError, make_op
from aestudio.inference.bundle import BundleError

log = logging.getLogger(__name__)

RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
MAX_MEMBERS = 10_000
MAX_RDF_BYTES = 1024**2  # an rdf is a few kB
MAX_TENSOR_BYTES = 256 * 1024**2  # test tensors are small images
MAX_ONNX_BYTES = limits.MAX_WEIGHTS_BYTES  # protobuf's limit for one .onnx file
MAX_RATIO = 200  # deflate reaches ~1000x only on degenerate data; real weights compress < 2x

# Input dtypes whose values an integer image holds: aestudio reads images to [0, 1]; a package
# declaring uint8 input gets them back on its own scale (x 255) before its preprocessing.
_RAW_SCALE = {"uint8": 255.0, "uint16": 65535.0, "int8": 127.0, "int16": 32767.0}
_AXIS_LETTERS = {"b": "batch", "c": "channel", "y": "y", "x": "x", "z": "z", "t": "time", "i": "index"}


class PackageError(BundleError):
    """A package aestudio cannot run; the message names the package, the field and what would work."""


@dataclass(frozen=True)
class Package:
    """What aestudio needs from a package's rdf.yaml, checked."""

    path: Path
    name: str
    format_version: str
    input_id: str
    output_id: str
    input_axes: tuple[str, ...]  # the graph's input layout, names from bioimageio_ops.CANONICAL
    output_axes: tuple[str, ...]
    in_channels: int
    out_channels: int
    fixed_size: tuple[int, int] | None  # (height, width) when the graph wants one size
    size_min: tuple[int, int] = (1, 1)  # valid sizes: min + n * step, per (y, x)
    size_step: tuple[int, int] = (1, 1)
    batch_size: int | None = None  # None: any batch; 1: one at a time (also when there is no batch axis)
    halo: int = 0
    raw_scale: float = 1.0
    pre: tuple[Op, ...] = ()
    post: tuple[Op, ...] = ()
    weights: str = ""  # member name of the ONNX file
    output_names: tuple[str, ...] = ()  # channel names of the output
    config: dict[str, Any] = field(default_factory=dict)  # config.aestudio, when we wrote it
    test_input: str | None = None
    test_output: str | None = None


# ----------------------------------------------------------------- the zip


def _member_name(package: Path, source: Any, where: str) -> str:
    if not isinstance(source, str) or not source.strip():
        raise PackageError(f"{package}: {where}: expected a file name inside the package")
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source):
        raise PackageError(f"{package}: {where}: {source!r} is a URL; aestudio runs only files inside the package and never downloads")
    name = posixpath.normpath(source.replace("\\", "/").removeprefix("./"))
    if name.startswith("/") or name.startswith("..") or re.match(r"^[a-zA-Z]:", name) or "/../" in f"/{name}/":
        raise PackageError(f"{package}: {where}: {source!r} points outside the package; refusing it")
    return name


def _check_zip(package: Path, zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise PackageError(f"{package}: {len(infos)} files; a model package has a handful (limit {MAX_MEMBERS})")
    members = {}
    for info in infos:
        if info.flag_bits & 0x1:
            raise PackageError(f"{package}: {info.filename} is encrypted; aestudio opens unencrypted packages only")
        members[info.filename] = info
    return members


def _read_member(package: Path, zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], name: str, limit: int,
                 where: str, sink: Any = None) -> bytes:
    """Read one member, counting bytes as they inflate; ``sink`` (a binary file) gets them instead of memory."""
    info = members.get(name)
    if info is None:
        raise PackageError(f"{package}: {where}: {name!r} is not in the package")
    if info.file_size > limit:
        raise PackageError(f"{package}: {name} would be {info.file_size / 1024**2:.0f} MiB; the limit is {limit / 1024**2:.0f} MiB")
    if info.file_size > 1024**2 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise PackageError(f"{package}: {name} inflates {info.file_size // max(info.compress_size, 1)}x; refusing a likely zip bomb")
    chunks: list[bytes] = []
    total = 0
    with zf.open(info) as fh:
        while chunk := fh.read(1 << 20):
            total += len(chunk)
            if total > limit or total > info.file_size:  # the header lied
                raise PackageError(f"{package}: {name} is larger than its zip header says; the package is damaged or hostile")
            if sink is None:
                chunks.append(chunk)
            else:
                sink.write(chunk)
    return b"".join(chunks)


def is_package(path: str | os.PathLike[str]) -> bool:
    """True for a zip file with an ``rdf.yaml`` (or ``bioimageio.yaml``) at its root."""
    p = Path(path)
    if not p.is_file() or not zipfile.is_zipfile(p):
        return False
    try:
        with zipfile.ZipFile(p) as zf:
            return any(n in zf.NameToInfo for n in RDF_NAMES) or any(n.endswith(".bioimageio.yaml") and "/" not in n for n in zf.NameToInfo)
    except (OSError, zipfile.BadZipFile):
        return False


def _rdf_name(names: dict[str, zipfile.ZipInfo]) -> str | None:
    for n in RDF_NAMES:
        if n in names:
            return n
    return next((n for n in names if n.endswith(".bioimageio.yaml") and "/" not in n), None)


# ----------------------------------------------------------------- the rdf


def read_package(path: str | os.PathLike[str]) -> Package:
    """Open and check a package; :class:`PackageError` names the field of anything unsupported."""
    import yaml

    package = Path(path)
    try:
        zf = zipfile.ZipFile(package)
    except (OSError, zipfile.BadZipFile) as exc:
        raise PackageError(f"{package}: not a readable zip file ({exc}); a BioImage Model Zoo package is a .zip with an rdf.yaml") from None
    with zf:
        members = _check_zip(package, zf)
        rdf_name = _rdf_name(members)
        if rdf_name is None:
            raise PackageError(f"{package}: no rdf.yaml at the top of the zip; it is not a BioImage Model Zoo package")
        text = _read_member(package, zf, members, rdf_name, MAX_RDF_BYTES, rdf_name)
    try:
        rdf = yaml.safe_load(text.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PackageError(f"{package}: {rdf_name} is not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:  # a few kB of '[[[[...' nests deeper than Python's stack
        raise PackageError(f"{package}: {rdf_name} nests too deeply to be a model description") from None
    if not isinstance(rdf, dict):
        raise PackageError(f"{package}: {rdf_name} must be a mapping of fields")
    return _parse(package, rdf, set(members))


def _field(package: Path, rdf: dict, key: str, kind: type | tuple[type, ...], where: str | None = None) -> Any:
    v = rdf.get(key)
    if not isinstance(v, kind):
        raise PackageError(f"{package}: {where or key}: missing or not a {getattr(kind, '__name__', kind)}")
    return v


def _parse(package: Path, rdf: dict, members: set[str]) -> Package:
    if rdf.get("type") != "model":
        raise PackageError(f"{package}: type: {rdf.get('type')!r}; only model packages run (type: model)")
    version = str(rdf.get("format_version", ""))
    if version.startswith("0.4"):
        rdf = _from_v04(package, rdf)
    elif not version.startswith("0.5"):
        raise PackageError(f"{package}: format_version: {version!r} is not supported; aestudio reads 0.4 and 0.5 packages")
    weights = _field(package, rdf, "weights", dict)
    if "onnx" not in weights:
        have = ", ".join(sorted(weights)) or "none"
        raise PackageError(f"{package}: weights: only ONNX weights run in aestudio; this package has {have}. "
                           "Ask its authors for ONNX weights (bioimageio.core can convert pytorch_state_dict and torchscript)")
    onnx = weights["onnx"] if isinstance(weights["onnx"], dict) else {}
    if onnx.get("external_data"):
        raise PackageError(f"{package}: weights.onnx.external_data: ONNX weights split into external data files are not supported")
    weights_member = _member_name(package, onnx.get("source"), "weights.onnx.source")
    inputs, outputs = _field(package, rdf, "inputs", list), _field(package, rdf, "outputs", list)
    if len(inputs) != 1:
        raise PackageError(f"{package}: inputs: {len(inputs)} input tensors; aestudio runs models with one image input")
    if len(outputs) != 1:
        raise PackageError(f"{package}: outputs: {len(outputs)} output tensors; aestudio runs models with one image output")
    inp, out = inputs[0], outputs[0]
    if not isinstance(inp, dict) or not isinstance(out, dict):
        raise PackageError(f"{package}: inputs[0] / outputs[0]: expected mappings")
    in_axes, in_chan, sizes, batch = _axes(package, inp, "inputs[0]")
    out_axes, out_chan, _, _ = _axes(package, out, "outputs[0]")
    fixed, mins, steps = _sizes(package, sizes)
    _check_output_sizes(package, out, str(inp.get("id")), in_axes)
    in_id, out_id = str(inp.get("id", "input")), str(out.get("id", "output"))
    config = rdf.get("config") if isinstance(rdf.get("config"), dict) else {}
    ours = config.get("aestudio") if isinstance(config.get("aestudio"), dict) else {}
    test_in = _test_member(package, inp, "inputs[0]")
    test_out = _test_member(package, out, "outputs[0]")
    if out_chan is None:  # 0.4 packages say channels only through shapes; the test output tells
        out_chan = _test_channels(package, test_out, out_axes)
    dtype = (inp.get("data") or {}).get("type", "float32") if isinstance(inp.get("data"), dict) else "float32"
    try:
        pre = tuple(make_op(op | {"_self": in_id} if isinstance(op, dict) else op, f"inputs[0].preprocessing[{i}]")
                    for i, op in enumerate(inp.get("preprocessing") or []))
        post = tuple(make_op(op | {"_self": out_id} if isinstance(op, dict) else op, f"outputs[0].postprocessing[{i}]")
                     for i, op in enumerate(out.get("postprocessing") or []))
    except OpError as exc:
        raise PackageError(f"{package}: {exc}") from None
    for member in (weights_member, test_in, test_out):
        if member is not None and member not in members:
            raise PackageError(f"{package}: {member!r} is named in rdf.yaml but missing from the zip; the package is incomplete")
    name = rdf.get("name") if isinstance(rdf.get("name"), str) and rdf.get("name") else package.stem
    limits.check_int("inputs[0] channels", in_chan or 1, 1, limits.MAX_CLASSES, where=str(package))
    limits.check_int("outputs[0] channels", out_chan or 1, 1, limits.MAX_CLASSES, where=str(package))
    return Package(
        path=package, name=name, format_version=version, input_id=in_id, output_id=out_id,
        input_axes=in_axes, output_axes=out_axes, in_channels=in_chan or 1, out_channels=out_chan or 1,
        fixed_size=fixed, size_min=mins, size_step=steps, batch_size=batch, halo=_halo(out),
        raw_scale=_RAW_SCALE.get(str(dtype), 1.0), pre=pre, post=post, weights=weights_member,
        output_names=_channel_names(out), config=dict(ours), test_input=test_in, test_output=test_out,
    )


def _axes(package: Path, tensor: dict, where: str) -> tuple[tuple[str, ...], int | None, dict[str, Any], int | None]:
    """(layout, channel count, sizes of y and x, batch size) of a tensor's ``axes``."""
    axes = tensor.get("axes")
    if not isinstance(axes, list) or not axes:
        raise PackageError(f"{package}: {where}.axes: missing or empty")
    layout: list[str] = []
    channels: int | None = None
    sizes: dict[str, Any] = {}
    batch: int | None = 1  # no batch axis: one image per call
    for i, ax in enumerate(axes):
        if not isinstance(ax, dict):
            raise PackageError(f"{package}: {where}.axes[{i}]: expected a mapping")
        kind, ident = ax.get("type"), str(ax.get("id", ax.get("type")))
        if kind == "batch":
            layout.append("batch")
            batch = ax.get("size") if isinstance(ax.get("size"), int) else None
        elif kind == "channel":
            layout.append("channel")
            names = ax.get("channel_names")
            channels = len(names) if isinstance(names, list) and names else channels
        elif kind == "space" and ident in ("y", "x"):
            layout.append(ident)
            sizes[ident] = ax.get("size")
        elif kind == "space":
            raise PackageError(f"{package}: {where}.axes[{i}]: a {ident!r} space axis (3D data); aestudio runs 2D models (axes y and x)")
        else:
            raise PackageError(f"{package}: {where}.axes[{i}]: a {kind!r} axis; aestudio runs 2D images (batch, channel, y, x)")
    if "y" not in layout or "x" not in layout:
        raise PackageError(f"{package}: {where}.axes: needs space axes y and x; found {layout}")
    if len(set(layout)) != len(layout):
        raise PackageError(f"{package}: {where}.axes: an axis appears twice in {layout}")
    return tuple(layout), channels, sizes, batch


def _sizes(package: Path, sizes: dict[str, Any]) -> tuple[tuple[int, int] | None, tuple[int, int], tuple[int, int]]:
    fixed: list[int] = []
    mins, steps = [], []
    for ax in ("y", "x"):
        s = sizes.get(ax)
        if isinstance(s, int) and not isinstance(s, bool) and s > 0:
            fixed.append(s)
            mins.append(s)
            steps.append(0)
        elif isinstance(s, dict) and isinstance(s.get("min"), int) and isinstance(s.get("step"), int) and s["min"] > 0 and s["step"] >= 0:
            mins.append(s["min"])
            steps.append(s["step"])
        else:
            raise PackageError(f"{package}: inputs[0].axes[{ax}].size: {s!r}; aestudio needs a number or {{min, step}}")
    for ax, low, step in zip(("y", "x"), mins, steps, strict=True):
        limits.check_int(f"inputs[0].axes[{ax}].size", low, 1, limits.MAX_IMAGE_SIDE, where=str(package))
        limits.check_int(f"inputs[0].axes[{ax}].size.step", step, 0, limits.MAX_IMAGE_SIDE, where=str(package))
    if len(fixed) == 2 or all(st == 0 for st in steps):
        return (mins[0], mins[1]), (mins[0], mins[1]), (0, 0)
    if fixed:
        raise PackageError(f"{package}: inputs[0].axes: one fixed and one free space axis; aestudio needs both fixed or both {{min, step}}")
    return None, (mins[0], mins[1]), (steps[0], steps[1])


def _check_output_sizes(package: Path, out: dict, in_id: str, in_axes: tuple[str, ...]) -> None:
    """The output must be the input's size (same y and x): aestudio blends tiles pixel for pixel."""
    for i, ax in enumerate(out.get("axes") or []):
        if not isinstance(ax, dict) or ax.get("type") != "space":
            continue
        size = ax.get("size")
        if isinstance(size, dict) and "tensor_id" in size:
            if size.get("offset", 0) not in (0, None) or size.get("axis_id") != ax.get("id"):
                raise PackageError(f"{package}: outputs[0].axes[{i}].size: the output is not the input's size ({size}); "
                                   "aestudio runs image-to-image models whose output matches the input pixel for pixel")
        elif isinstance(size, dict) and ("min" in size or "max" in size) and "tensor_id" not in size:
            raise PackageError(f"{package}: outputs[0].axes[{i}].size: a data-dependent size; aestudio needs the input's size")
        if ax.get("scale", 1.0) not in (1, 1.0, None) and isinstance(size, dict) and "tensor_id" in size:
            raise PackageError(f"{package}: outputs[0].axes[{i}].scale: {ax['scale']}; the output must have the input's pixel size")


def _halo(out: dict) -> int:
    halos = [ax.get("halo", 0) for ax in out.get("axes") or [] if isinstance(ax, dict) and ax.get("type") == "space"]
    return max([int(h) for h in halos if isinstance(h, int)] or [0])


def _channel_names(out: dict) -> tuple[str, ...]:
    for ax in out.get("axes") or []:
        if isinstance(ax, dict) and ax.get("type") == "channel" and isinstance(ax.get("channel_names"), list):
            return tuple(str(n) for n in ax["channel_names"])
    return ()


def _test_member(package: Path, tensor: dict, where: str) -> str | None:
    t = tensor.get("test_tensor")
    src = t.get("source") if isinstance(t, dict) else t
    return _member_name(package, src, f"{where}.test_tensor.source") if src else None


def _test_channels(package: Path, member: str | None, axes: tuple[str, ...]) -> int | None:
    if member is None or "channel" not in axes:
        return 1 if "channel" not in axes else None
    return int(read_tensor(package, member).shape[axes.index("channel")])


def read_tensor(package: str | os.PathLike[str], member: str) -> np.ndarray:
    """A packaged .npy test tensor (``allow_pickle=False``: numbers only)."""
    import io

    package = Path(package)
    with zipfile.ZipFile(package) as zf:
        members = _check_zip(package, zf)
        data = _read_member(package, zf, members, member, MAX_TENSOR_BYTES, member)
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise PackageError(f"{package}: {member}: not a plain .npy array ({exc})") from None


def extract_weights(pkg: Package, cache: Path | None = None) -> Path:
    """The ONNX graph copied (once) into the cache, keyed by the package's hash; returns its path."""
    from aestudio._fs import atomic_write

    digest = hashlib.sha256()
    with open(pkg.path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    root = cache or _cache_dir()
    folder = root / digest.hexdigest()[:24]
    target = folder / "model.onnx"  # our name, never the zip's
    if target.is_file() and target.stat().st_size > 0:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(pkg.path) as zf:
        members = _check_zip(pkg.path, zf)
        atomic_write(target, lambda out: _read_member(pkg.path, zf, members, pkg.weights, MAX_ONNX_BYTES, "weights.onnx.source", sink=out))
    return target


def _cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_path("aestudio")) / "bioimageio"


# ----------------------------------------------------------------- format 0.4 -> 0.5


def _letters(package: Path, axes: Any, where: str) -> list[str]:
    if not isinstance(axes, str):
        raise PackageError(f"{package}: {where}: expected a string of axis letters such as 'bcyx'")
    try:
        return [_AXIS_LETTERS[c] for c in axes]
    except KeyError:
        raise PackageError(f"{package}: {where}: unknown axis letter in {axes!r} (known: {''.join(_AXIS_LETTERS)})") from None


def _from_v04(package: Path, rdf: dict) -> dict:
    """Rewrite the fields aestudio reads from a 0.4 rdf into their 0.5 form."""
    new = dict(rdf)
    tensors = {}
    for kind in ("inputs", "outputs"):
        converted = []
        for n, t in enumerate(rdf.get(kind) or []):
            if not isinstance(t, dict):
                converted.append(t)
                continue
            names = _letters(package, t.get("axes"), f"{kind}[{n}].axes")
            shape = t.get("shape")
            halo = t.get("halo") or [0] * len(names)
            axes = []
            for i, name in enumerate(names):
                ax: dict[str, Any] = {"type": "space" if name in ("x", "y", "z") else name, "id": name}
                if isinstance(shape, list) and i < len(shape) and isinstance(shape[i], int):
                    size: Any = shape[i]
                elif isinstance(shape, dict) and "min" in shape:
                    step = shape.get("step", [0] * len(names))[i]
                    size = {"min": shape["min"][i], "step": step} if step else shape["min"][i]
                elif isinstance(shape, dict) and "reference_tensor" in shape:
                    scale = (shape.get("scale") or [1] * len(names))[i]
                    offset = (shape.get("offset") or [0] * len(names))[i]
                    if name in ("x", "y") and (scale != 1 or offset != 0):
                        raise PackageError(f"{package}: {kind}[{n}].shape: the output is not the input's size (scale {scale}, offset {offset} on {name})")
                    size = {"tensor_id": shape["reference_tensor"], "axis_id": name}
                else:
                    size = None
                if name == "channel":
                    if isinstance(size, int):
                        ax["channel_names"] = [f"channel{c}" for c in range(size)]
                elif name == "batch":
                    ax["size"] = size if size == 1 else None
                else:
                    ax["size"] = size
                    if kind == "outputs" and isinstance(halo, list) and i < len(halo) and halo[i]:
                        ax["halo"] = halo[i]
                axes.append(ax)
            t2 = {"id": t.get("name"), "axes": axes, "test_tensor": {"source": (rdf.get(f"test_{kind}") or [None])[n]},
                  "data": {"type": t.get("data_type", "float32")}}
            proc = "preprocessing" if kind == "inputs" else "postprocessing"
            t2[proc] = [_op_v04(package, op, letters=names, where=f"{kind}[{n}].{proc}[{j}]") for j, op in enumerate(t.get(proc) or [])]
            converted.append(t2)
        tensors[kind] = converted
    new.update(tensors)
    weights = rdf.get("weights") if isinstance(rdf.get("weights"), dict) else {}
    new["weights"] = weights
    return new


def _op_v04(package: Path, op: Any, *, letters: list[str], where: str) -> dict:
    if not isinstance(op, dict) or not isinstance(op.get("name"), str):
        raise PackageError(f"{package}: {where}: expected a mapping with a 'name'")
    kw = dict(op.get("kwargs") or {})
    name = op["name"]
    if isinstance(kw.get("axes"), str):
        kw["axes"] = [_AXIS_LETTERS.get(c, c) for c in kw["axes"]]
        if kw.get("mode") == "per_dataset":
            log.warning("%s: %s: per_dataset statistics are computed per image here", package, where)
    mode = kw.pop("mode", None)
    if name == "zero_mean_unit_variance" and mode == "fixed":
        name = "fixed_zero_mean_unit_variance"
        kw.pop("axes", None)
        if isinstance(kw.get("mean"), list):
            kw["axis"] = "channel"
    if name == "scale_linear":
        axes = kw.pop("axes", None)
        if isinstance(kw.get("gain"), list) or isinstance(kw.get("offset"), list):
            kw["axis"] = "channel" if not axes or "channel" not in axes else next(a for a in ("channel",) if a)
    return {"id": name, "kwargs": kw}
