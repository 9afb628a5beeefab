"""Write an aestudio bundle as a BioImage Model Zoo package (spec format 0.5, ONNX weights).

The package is a zip that ilastik, deepImageJ, napari plug-ins, QuPath and
``bioimageio.core`` run: ``rdf.yaml`` (built and checked with ``bioimageio.spec``),
the bundle's ``model.onnx``, a test input and the expected output (made by that
ONNX graph), the model card as documentation, and a cover made from the model's
own output. What the app does before and after the graph is said with the
spec's own operations, so other programs reproduce it:

- input: ``ensure_dtype`` float32, then what the app does to the kind of image the
  model was trained on (:func:`aestudio.data.levels.input_kind`, recorded with the run;
  the spec has no step that depends on the input's dtype, so the package follows the
  training data): 8-bit (also the built-in data sets) ``scale_linear`` by 1/255, input
  declared uint8; 16-bit and float beyond [0, 1] ``scale_range`` over channel, y and x
  with percentiles 0 and 100, the app's own stretch (:func:`aestudio.data.levels.read_stretched`,
  per image, all channels together; the spec's eps 1e-6 against a span of at least 2
  counts), input declared uint16 / float32; float within [0, 1] nothing more (taken as
  it is). Unknown (a folder that is gone, mixed kinds): ``scale_range``, which fits
  16-bit data and leaves a full-range 8-bit photo unchanged. tests/interop runs each
  through bioimageio.core against the app on the same raw file;
- image output: ``clip`` to [0, 1] (the net's range; says so to the consumer);
- segmentation output: ``softmax`` over the channel axis (one probability map
  per class, named after the classes).

Sizes: fully convolutional nets declare ``min``/``step`` (the U-Net's size
multiple), fixed-size nets their one size. The exporter needs ``bioimageio.spec``
(the optional extra ``aestudio[bioimageio]``) but never torch: a run is first
exported to a bundle by :mod:`aestudio.export.exporter`.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aestudio.config import Task
from aestudio.errors import AestudioError
from aestudio.inference.bundle import (
    MODEL_JSON,
    BundleFile,
    ModelInfo,
    is_bundle,
    read_bundle,
)

log = logging.getLogger(__name__)

DEFAULT_LICENSE = "CC-BY-4.0"  # what the BioImage Model Zoo recommends for models
# scale_range's default eps: (x - min) / (max - min + eps)
SCALE_RANGE_EPS = 1e-6
CONFIG_KEY = "aestudio"  # our facts under rdf.yaml's `config`, read back by bioimageio_package
TEST_SIDE = 64  # side of the test tensors of fully convolutional nets (small: CI runs them)
SAMPLE_SIDE = 128  # the same when a shipped sample like the training data is used

# What each family is, for the package's `cite` (the spec requires at least one entry).
_CITATIONS = {
    "unet": ("Ronneberger, Fischer, Brox. U-Net: Convolutional Networks for Biomedical Image Segmentation. MICCAI 2015.",
             "10.1007/978-3-319-24574-4_28"),
    "denoising_ae": ("Vincent, Larochelle, Bengio, Manzagol. Extracting and composing robust features with denoising autoencoders. ICML 2008.",
                     "10.1145/1390156.1390294"),
    "vae": ("Kingma, Welling. Auto-Encoding Variational Bayes. ICLR 2014.", "10.48550/arXiv.1312.6114"),
}
_DEFAULT_CITATION = ("Masci, Meier, Ciresan, Schmidhuber. Stacked Convolutional Auto-Encoders for Hierarchical Feature Extraction. ICANN 2011.",
                     "10.1007/978-3-642-21735-7_7")


class PackageExportError(AestudioError, ValueError):
    """The bundle cannot become a package; the message names the reason and the fix."""


@dataclass(frozen=True)
class PackageOptions:
    """What the package says about its people and terms (the rest comes from the bundle)."""

    authors: Sequence[str] = ()  # default: the user running the export
    license: str = DEFAULT_LICENSE  # an SPDX identifier, e.g. MIT, CC-BY-4.0, BSD-3-Clause
    name: str | None = None  # default: the bundle's name
    description: str | None = None  # default: the card's first paragraph, or one made from model.json


def _require_spec():  # -> module
    try:
        import bioimageio.spec  # noqa: F401
        from bioimageio.spec.model import v0_5
    except ImportError:
        raise PackageExportError(
            "writing a BioImage Model Zoo package needs bioimageio.spec: pip install 'aestudio[bioimageio]'"
        ) from None
    return v0_5


@dataclass(frozen=True)
class InputScaling:
    """How the package's input reaches the [0, 1] the net was trained on, for one kind of training data."""

    kind: str | None  # aestudio.data.levels' EIGHT_BIT, SIXTEEN_BIT, FLOAT_UNIT, FLOAT_STRETCHED; None: unknown
    dtype: str  # the input's declared data type
    op: str  # "scale_linear" (/255), "scale_range" (own min and max) or "" (as it is)
    says: str  # the input tensor's description, and the card's "Use"

    def raw(self, x: np.ndarray) -> np.ndarray:
        """A [0, 1] test image as a file of this kind holds it (the package's test input)."""
        if self.dtype == "uint8":
            return np.round(x * 255.0).astype(np.uint8)
        if self.dtype == "uint16":
            return np.round(1000.0 + x * 2000.0).astype(np.uint16)  # a dim micrograph's range
        if self.kind is not None and self.op == "scale_range":  # float beyond [0, 1]
            return (1000.0 + x * 2000.0).astype(np.float32)
        return x.astype(np.float32)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """The package's preprocessing, as bioimageio.core computes it."""
        x = raw.astype(np.float32)
        if self.op == "scale_linear":
            return (x * np.float32(1.0 / 255.0)).astype(np.float32)
        return minmax01(x) if self.op == "scale_range" else x


def input_scaling(info: ModelInfo) -> InputScaling:
    """The scaling for the kind of images ``info``'s model was trained on (recorded with its run, else
    found from its data spec when that data is still there)."""
    from aestudio.data import levels

    kind = info.training.get("input_kind") if isinstance(info.training, dict) else None
    if kind is None:
        kind = levels.input_kind(str((info.training or {}).get("data_spec", "")))
    if kind == levels.EIGHT_BIT:
        return InputScaling(kind, "uint8", "scale_linear",
                            "8-bit image (0-255), divided by 255 as aestudio reads 8-bit files")
    if kind == levels.SIXTEEN_BIT:
        return InputScaling(kind, "uint16", "scale_range",
                            "16-bit image, scaled to [0, 1] by its own min and max as aestudio reads 16-bit files")
    if kind == levels.FLOAT_UNIT:
        return InputScaling(kind, "float32", "", "float image in [0, 1], taken as it is")
    if kind == levels.FLOAT_STRETCHED:
        return InputScaling(kind, "float32", "scale_range",
                            "float image, scaled to [0, 1] by its own min and max as aestudio reads float files beyond [0, 1]")
    return InputScaling(None, "float32", "scale_range", "any dtype, scaled to [0, 1] by its own min and max")


def minmax01(x: np.ndarray) -> np.ndarray:
    """The input preprocessing, as bioimageio.core computes it: scale_range 0-100 % over C, H, W per sample."""
    x = x.astype(np.float32)
    axes = tuple(range(1, x.ndim))
    lo = x.min(axis=axes, keepdims=True)
    hi = x.max(axis=axes, keepdims=True)
    return ((x - lo) / (hi - lo + np.float32(SCALE_RANGE_EPS))).astype(np.float32)


def _softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def _sample_image(info: ModelInfo) -> np.ndarray | None:
    """A shipped sample like the model's training data (a digit, a photo...) as [C, S, S], or None.

    Centre-cropped to a square; fixed-size nets get their size, fully convolutional
    ones at most SAMPLE_SIDE px and never an enlargement (a net trained at the
    images' own scale would see bigger objects than it learned).
    """
    from aestudio.data.io import read_image
    from aestudio.inference.imageops import convert_channels, resize_chw
    from aestudio.zoo.catalog import sample_for_data

    path = sample_for_data(str(info.training.get("data_spec", "")))
    if path is None:
        return None
    img = convert_channels(read_image(path), info.in_channels)  # [H, W, C] in [0, 1]
    h, w = img.shape[:2]
    s = min(h, w)
    crop = np.ascontiguousarray(img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s].transpose(2, 0, 1), dtype=np.float32)
    if info.fixed_size is not None:
        side = info.fixed_size
    else:
        m = info.size_multiple
        side = max(m, min(SAMPLE_SIDE, s) // m * m)
        if side < 8:
            return None
    return resize_chw(crop, side, side)


def _test_image(info: ModelInfo) -> np.ndarray:
    """A deterministic test input [1, C, S, S] in [0, 1], plus noise for denoisers: a shipped
    sample like the training data when there is one, else smooth synthetic shapes (so a package can
    be written from any bundle, also one whose training data is gone)."""
    rng = np.random.default_rng(0)
    sample = _sample_image(info)
    if sample is not None:
        x = np.clip(sample, 0.0, 1.0)[None].astype(np.float32)
        if info.task is Task.DENOISE:
            x = np.clip(x + rng.normal(0.0, 0.1, x.shape).astype(np.float32), 0.0, 1.0)
        x[..., 0, 0], x[..., -1, -1] = 0.0, 1.0  # full range, as below
        return x
    side = _synthetic_side(info)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / max(side - 1, 1)
    img = 0.25 + 0.35 * xx
    for cy, cx, r, v in ((0.35, 0.3, 0.18, 0.95), (0.65, 0.7, 0.22, 0.05), (0.7, 0.25, 0.12, 0.7)):
        img = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r * r, v, img)
    chans = [np.clip(img * (0.8 + 0.2 * c) + 0.05 * c, 0, 1) for c in range(info.in_channels)]
    x = np.stack(chans)[None].astype(np.float32)
    if info.task is Task.DENOISE:
        x = np.clip(x + rng.normal(0.0, 0.1, x.shape).astype(np.float32), 0.0, 1.0)
    # Exactly 0 and 1 somewhere, so scale_range leaves it unchanged (up to eps) and the
    # bundle and the package see the same numbers in the round-trip tests.
    x[..., 0, 0], x[..., -1, -1] = 0.0, 1.0
    return x


def _synthetic_side(info: ModelInfo) -> int:
    if info.fixed_size is not None:
        return info.fixed_size
    m = info.size_multiple
    return m * max(1, -(-TEST_SIDE // m))


def _run_bundle(bundle: Path, x: np.ndarray) -> np.ndarray:
    """The bundle's own ONNX graph on a preprocessed batch (the expected output's source)."""
    from aestudio.inference.ort import OrtPredictor

    return OrtPredictor(bundle, providers=["CPUExecutionProvider"]).predict(x)


def _cover(x: np.ndarray, y: np.ndarray, info: ModelInfo, path: Path) -> None:
    """Input | output side by side (2:1, at least 256 px tall), from the test tensors."""
    from PIL import Image

    from aestudio.inference.imageops import colorize
    from aestudio.palette import default_palette

    def rgb(a: np.ndarray) -> np.ndarray:  # [C, H, W] in [0, 1] -> uint8 [H, W, 3]
        a = np.clip(a, 0, 1)
        a = np.repeat(a[:1], 3, axis=0) if a.shape[0] != 3 else a
        return (a.transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)

    left = rgb(x[0])
    if info.task is Task.SEGMENT:
        colors = info.class_colors or default_palette(y.shape[1])
        right = colorize(y[0].argmax(0), colors)
    else:
        right = rgb(y[0])
    pair = np.concatenate([left, right], axis=1)
    h = pair.shape[0]
    scale = max(1, -(-256 // h))
    img = Image.fromarray(pair).resize((pair.shape[1] * scale, h * scale), Image.NEAREST)
    img.save(path, format="PNG")


def _validation(info: ModelInfo) -> list[str]:
    lines = ["## Validation", ""]
    if info.metrics:
        lines += ["Metrics of the exported weights on the validation split:", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in info.metrics.items()]
        lines.append("")
    if info.parity_error:
        lines += [f"The ONNX graph matches the torch net within {info.parity_error.get('max', 0):.2g} (max absolute difference, aestudio's export check).", ""]
    lines += ["The test tensors in this package were made by the ONNX graph itself; `bioimageio test` reproduces them.", ""]
    return lines


def _card(bundle: Path, info: ModelInfo, scaling: InputScaling) -> str:
    card = bundle / "README.md"
    if card.is_file():
        text = card.read_text(encoding="utf-8")
        return text if re.search(r"^#+ *Validation", text, re.M) else text.rstrip() + "\n\n" + "\n".join(_validation(info))
    lines = [f"# {info.name}", "", f"An aestudio `{info.net}` model (task: {info.task.value}), exported as a BioImage Model Zoo package.", ""]
    lines += _validation(info)
    if info.training:
        t = info.training
        lines += ["## Training", ""]
        lines += [f"- {k}: {t[k]}" for k in ("data_spec", "epochs", "steps", "wall_time_s", "seed", "status") if k in t]
        lines.append("")
    how = {"scale_linear": " (`scale_linear`, gain 1/255)", "scale_range": " (`scale_range`, percentiles 0 and 100)"}
    lines += ["## Use", "", f"Input: {scaling.says}{how.get(scaling.op, '')}.",
              "Output: " + ("one probability map per class (softmax)." if info.task is Task.SEGMENT
                            else "an image in [0, 1]."), ""]
    return "\n".join(lines)


def _description(bundle: Path, info: ModelInfo) -> str:
    from aestudio.zoo.catalog import (
        _summary,  # the card's first paragraph, as the Models panel shows it
    )

    text = _summary(bundle / "README.md") if (bundle / "README.md").is_file() else ""
    if not text:
        text = f"aestudio {info.net} ({info.task.value}) for {info.in_channels}-channel 2D images."
    return text[:500]


_NAME_OK = re.compile(r"[^A-Za-z0-9_+\- ()]+")


def _package_name(name: str) -> str:
    clean = " ".join(_NAME_OK.sub(" ", name).split())[:64]
    return clean if len(clean) >= 5 else f"aestudio {clean}".strip()


def write_package(
    bundle: str | os.PathLike[str],
    out_zip: str | os.PathLike[str],
    options: PackageOptions | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write the bundle at ``bundle`` as a BioImage Model Zoo package ``out_zip``; return its path."""
    v = _require_spec()
    from bioimageio.spec import ValidationContext, save_bioimageio_package

    opts = options or PackageOptions()
    bundle, out = Path(bundle), Path(out_zip)
    if out.suffix.lower() != ".zip":
        raise PackageExportError(f"-o {out}: a BioImage Model Zoo package is a .zip file; give a name such as {out.with_suffix('.zip').name}")
    if out.is_dir():
        raise PackageExportError(f"-o {out} is a folder; give a .zip file name")
    if out.exists() and not overwrite:
        raise PackageExportError(f"{out}: already exists; choose another name (aestudio never overwrites a file it did not write)")
    info = read_bundle(bundle)
    scaling = input_scaling(info)
    x = scaling.raw(_test_image(info))  # as a file of the kind the model was trained on holds it
    side = x.shape[-1]
    logits_or_image = _run_bundle(bundle, scaling.apply(x))
    segment = info.task is Task.SEGMENT
    y = _softmax(logits_or_image) if segment else np.clip(logits_or_image, 0.0, 1.0)

    work = Path(tempfile.mkdtemp(prefix=".bioimageio-"))
    try:
        onnx_path = work / "model.onnx"
        shutil.copyfile(bundle / info.files[BundleFile.MODEL.value], onnx_path)
        np.save(work / "test_input.npy", x)
        np.save(work / "test_output.npy", y)
        _cover(scaling.apply(x), y, info, work / "cover.png")
        (work / "README.md").write_text(_card(bundle, info, scaling), encoding="utf-8")
        try:
            descr = _describe(v, info, work, opts, _description(bundle, info) if opts.description is None else opts.description,
                              scaling)
        except ValueError as exc:  # pydantic's ValidationError: name the field and what it said
            raise PackageExportError(_first_error(exc)) from None
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_zip = out.with_name(f".{out.name}.partial.zip")
        # io checks compute the files' hashes; no network is needed for local files.
        with ValidationContext(perform_io_checks=True, raise_errors=True):
            save_bioimageio_package(descr, output_path=tmp_zip, weights_priority_order=["onnx"])
        os.replace(tmp_zip, out)  # atomic: a failed export leaves no half package
    finally:
        shutil.rmtree(work, ignore_errors=True)
        Path(out.with_name(f".{out.name}.partial.zip")).unlink(missing_ok=True)
    log.info("wrote BioImage Model Zoo package %s (%s, test tensors %dx%d)", out, info.net, side, side)
    return out


def _describe(v, info: ModelInfo, work: Path, opts: PackageOptions, description: str,  # -> v0_5.ModelDescr
              scaling: InputScaling):
    from bioimageio.spec.model.v0_5 import (
        Author,
        AxisId,
        BatchAxis,
        ChannelAxis,
        CiteEntry,
        ClipDescr,
        ClipKwargs,
        EnsureDtypeDescr,
        EnsureDtypeKwargs,
        FileDescr,
        Identifier,
        InputTensorDescr,
        IntervalOrRatioDataDescr,
        ModelDescr,
        OnnxWeightsDescr,
        OutputTensorDescr,
        ParameterizedSize,
        ScaleLinearDescr,
        ScaleLinearKwargs,
        ScaleRangeDescr,
        ScaleRangeKwargs,
        SizeReference,
        SoftmaxDescr,
        SoftmaxKwargs,
        SpaceInputAxis,
        SpaceOutputAxis,
        TensorId,
        WeightsDescr,
    )

    from aestudio.inference.bundle import INPUT_IMAGE

    segment = info.task is Task.SEGMENT
    in_id, out_id = TensorId(INPUT_IMAGE), TensorId(info.output_name)
    in_names = ["gray"] if info.in_channels == 1 else ["red", "green", "blue"] if info.in_channels == 3 else [f"c{i}" for i in range(info.in_channels)]
    if info.fixed_size is not None:
        size_y = size_x = info.fixed_size
    else:
        m = info.size_multiple
        # Valid sizes are multiples of m (the U-Net pools len(depth) times); at least 8 px for tiny nets.
        low = m * max(1, -(-8 // m))
        size_y = size_x = ParameterizedSize(min=low, step=m)
    out_names = _identifiers(info.class_names) if segment else list(in_names)
    pre: list = [EnsureDtypeDescr(kwargs=EnsureDtypeKwargs(dtype="float32"))]
    if scaling.op == "scale_linear":
        pre.append(ScaleLinearDescr(kwargs=ScaleLinearKwargs(gain=1.0 / 255.0, offset=0.0)))
    elif scaling.op == "scale_range":
        pre.append(ScaleRangeDescr(kwargs=ScaleRangeKwargs(axes=[AxisId("channel"), AxisId("y"), AxisId("x")],
                                                           min_percentile=0.0, max_percentile=100.0,
                                                           eps=SCALE_RANGE_EPS)))
    if len(pre) > 1:
        # The spec appends a cast back to the declared (raw) type unless the steps end with one:
        # a uint8 input would reach the net as 0 and 1 after the /255.
        pre.append(EnsureDtypeDescr(kwargs=EnsureDtypeKwargs(dtype="float32")))
    data_range = {"uint8": (0.0, 255.0), "uint16": (0.0, 65535.0)}.get(scaling.dtype, (None, None))
    inputs = [InputTensorDescr(
        id=in_id,
        description=f"{info.in_channels}-channel image; {scaling.says}",
        axes=[BatchAxis(), ChannelAxis(channel_names=[Identifier(n) for n in in_names]),
              SpaceInputAxis(id=AxisId("y"), size=size_y), SpaceInputAxis(id=AxisId("x"), size=size_x)],
        test_tensor=FileDescr(source=work / "test_input.npy"),
        data=IntervalOrRatioDataDescr(type=scaling.dtype, range=data_range),
        preprocessing=pre,
    )]
    post = ([SoftmaxDescr(kwargs=SoftmaxKwargs(axis=AxisId("channel")))] if segment
            else [ClipDescr(kwargs=ClipKwargs(min=0.0, max=1.0))])
    outputs = [OutputTensorDescr(
        id=out_id,
        description=("class probabilities (softmax over channels)" if segment else "image in [0, 1]"),
        axes=[BatchAxis(), ChannelAxis(channel_names=[Identifier(n) for n in out_names]),
              SpaceOutputAxis(id=AxisId("y"), size=SizeReference(tensor_id=in_id, axis_id=AxisId("y"))),
              SpaceOutputAxis(id=AxisId("x"), size=SizeReference(tensor_id=in_id, axis_id=AxisId("x")))],
        test_tensor=FileDescr(source=work / "test_output.npy"),
        data=IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
        postprocessing=post,
    )]
    text, doi = _CITATIONS.get(info.net, _DEFAULT_CITATION)
    authors = [a.strip() for a in opts.authors if a.strip()] or [_default_author()]
    tags = ["aestudio", "2d", "onnx", {"segment": "segmentation", "denoise": "denoising"}.get(info.task.value, "reconstruction"), info.net]
    config = {CONFIG_KEY: {
        "task": info.task.value,
        "net": info.net,
        "class_names": list(info.class_names),
        "class_colors": [list(c) for c in info.class_colors],
        "value_range": list(info.value_range),
        "input_kind": scaling.kind,  # what the model was trained on: how the input is scaled
        "size_multiple": info.size_multiple,
        "metrics": dict(info.metrics),
    }}
    return ModelDescr(
        name=_package_name(opts.name or info.name),
        description=description,
        authors=[Author(name=a) for a in authors],
        cite=[CiteEntry(text=text, doi=doi)],
        license=opts.license,
        documentation=FileDescr(source=work / "README.md"),
        covers=[FileDescr(source=work / "cover.png")],
        tags=tags,
        inputs=inputs,
        outputs=outputs,
        weights=WeightsDescr(onnx=OnnxWeightsDescr(source=work / "model.onnx", opset_version=_opset(work / "model.onnx"))),
        config=config,
    )


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = [str(p) for p in first.get("loc", ())]
        if loc and loc[0] == "license":
            return f"licence {first.get('input')!r} is not an SPDX identifier; use one such as MIT, CC-BY-4.0 or BSD-3-Clause"
        field = ".".join(p for p in loc if "[" not in p)
        return f"the package's {field or 'description'} is invalid: {str(first.get('msg'))[:200]}"
    return str(exc).splitlines()[0]


def _identifiers(names: Sequence[str]) -> list[str]:
    """Class names -> distinct Python identifiers (the spec's rule for channel names): 'class 1' -> 'class_1'."""
    out: list[str] = []
    for i, n in enumerate(names):
        ident = re.sub(r"\W+", "_", n).strip("_") or f"class{i}"
        ident = f"c_{ident}" if ident[0].isdigit() else ident
        while ident in out:
            ident += f"_{i}"
        out.append(ident)
    return out


def _opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return max(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _default_author() -> str:
    try:
        return getpass.getuser() or "aestudio user"
    except Exception:  # no user name in the environment (some containers)
        return "aestudio user"


def export_package(
    source: str | os.PathLike[str],
    out_zip: str | os.PathLike[str],
    options: PackageOptions | None = None,
    *,
    which: str = "best",
) -> Path:
    """A run folder or a bundle folder -> a package. A run is exported to a bundle first (torch)."""
    source = Path(source)
    _require_spec()
    if is_bundle(source):
        return write_package(source, out_zip, options)
    if not (source / "run.json").is_file() and not (source / MODEL_JSON).is_file():
        raise PackageExportError(f"{source}: neither a run folder (run.json) nor a bundle (model.json)")
    from aestudio.export.exporter import export_run

    with tempfile.TemporaryDirectory(prefix=".aestudio-bioimageio-") as tmp:
        bundle = export_run(source, Path(tmp) / "bundle", which=which, measure_timings=False)
        return write_package(bundle, out_zip, options)
