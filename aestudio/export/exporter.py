"""Export a trained net (or a run folder) to a checked ONNX bundle.

Writes ``model.onnx`` (plus ``encoder.onnx``/``decoder.onnx`` for nets with a
code), ``weights.safetensors`` and ``model.json`` into a temporary folder
beside the target and renames it into place, so a failed export never leaves
a half bundle. Every graph is checked before it is published: the ONNX
checker with full shape inference, then ONNX Runtime against torch eager on
random (and real, when given) inputs at batch 1 and 8, and for fully
convolutional nets a second, non-square size. The largest difference is
recorded in ``model.json``; above :data:`PARITY_TOLERANCE` the export fails.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import shutil
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from aestudio import __version__
from aestudio._fs import make_temp_dir
from aestudio.config import NetConfig, Task, to_dict
from aestudio.data.levels import input_kind
from aestudio.errors import AestudioError
from aestudio.export.graph_rewrites import optimise_for_ort
from aestudio.export.target import (
    ExportTargetError,
    check_finite,
    check_target,
    clean_stale,
    temp_prefix,
)
from aestudio.export.torch_predictor import info_for_net
from aestudio.inference.bundle import (
    DECODER_OUTPUT,
    DEFAULT_FILES,
    INPUT_IMAGE,
    LATENT_Z,
    BundleFile,
    ModelInfo,
    utc_now,
    write_model_json,
)
from aestudio.inference.ort import OrtPredictor, SessionProfile
from aestudio.inference.predictor import LATENT_OUTPUTS

log = logging.getLogger(__name__)

OPSET = 18  # supported by every onnxruntime >= 1.16 and by both torch exporters
PARITY_TOLERANCE = 1e-4  # max |ORT - torch|: float32 reordering stays ~1e-6; more means a wrong graph
PARITY_BATCHES = (1, 8)
_METADATA_KEYS = {"name", "metrics", "training", "class_names", "class_colors"}


class ExportError(AestudioError, RuntimeError):
    """Export failed or would be wrong; the message names the net or folder and the fix."""


class Exporter(str, enum.Enum):
    # torch.export-based (the supported path since torch 2.9): symbolic sizes,
    # onnxscript's optimiser. ~0.7 s per graph on 2 cores.
    DYNAMO = "dynamo"
    # The legacy tracer: deprecated, ~50x faster to export, same runtime speed
    # for these nets (measured). Kept as a fallback when torch.export refuses a net.
    TORCHSCRIPT = "torchscript"


@dataclass(frozen=True)
class _Graph:
    file: BundleFile
    module: nn.Module
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    spatial: bool  # input is an image batch (else a code [N, D])


class _Encode(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> Any:
        return self.net.encode(image)  # type: ignore[operator]


class _Decode(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net.decode(z)  # type: ignore[operator]


class _Forward(nn.Module):
    """Gives the exported input the format's name (torch.export names inputs after arguments)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


def _graphs(net: nn.Module, info: ModelInfo) -> list[_Graph]:
    # Wrappers are put in eval mode too: a fresh module is in training mode, and
    # exporters read the top module's flag.
    graphs = [_Graph(BundleFile.MODEL, _Forward(net).eval(), (INPUT_IMAGE,), (info.output_name,), True)]
    if info.latent_kind is not None:
        graphs.append(_Graph(BundleFile.ENCODER, _Encode(net).eval(), (INPUT_IMAGE,), LATENT_OUTPUTS[info.latent_kind], True))
        graphs.append(_Graph(BundleFile.DECODER, _Decode(net).eval(), (LATENT_Z,), (DECODER_OUTPUT,), False))
    return graphs


def _example_size(info: ModelInfo) -> tuple[int, int]:
    if info.fixed_size is not None:
        return info.fixed_size, info.fixed_size
    m = info.size_multiple
    side = m * max(2, -(-48 // m))  # >= 48 px and a multiple of m: big enough for every stage
    return side, side


def _parity_sizes(info: ModelInfo) -> list[tuple[int, int]]:
    sizes = [_example_size(info)]
    if info.fixed_size is None:  # a second, non-square size proves H and W really are dynamic
        h, w = sizes[0]
        m = info.size_multiple
        sizes.append((h + 2 * m, w + 5 * m))
    return sizes


def _export_one(g: _Graph, example: torch.Tensor, info: ModelInfo, path: Path, exporter: Exporter) -> None:
    spatial_dynamic = g.spatial and info.fixed_size is None
    if exporter is Exporter.DYNAMO:
        batch = torch.export.Dim("batch", min=1, max=65536)
        dims: dict[int, Any] = {0: batch}
        if spatial_dynamic:
            m = info.size_multiple
            # H = m * k expresses the net's divisibility constraint, so torch.export can prove the skips line up.
            hk, wk = torch.export.Dim("hk", min=1, max=8192), torch.export.Dim("wk", min=1, max=8192)
            dims.update({2: hk * m if m > 1 else hk, 3: wk * m if m > 1 else wk})
        program = torch.onnx.export(
            g.module,
            (example,),
            None,
            dynamo=True,
            input_names=list(g.inputs),
            output_names=list(g.outputs),
            dynamic_shapes={g.inputs[0]: dims},
            opset_version=OPSET,
            verbose=False,
        )
        if program is None:  # pragma: no cover - torch always returns a program with dynamo=True
            raise ExportError("torch.onnx.export returned no program")
        program.save(str(path))
    else:
        axes = {0: "batch", 2: "height", 3: "width"} if spatial_dynamic else {0: "batch"}
        dyn = {g.inputs[0]: axes} | {o: {0: "batch"} | ({2: "height", 3: "width"} if spatial_dynamic and o == info.output_name else {}) for o in g.outputs}
        if g.file is BundleFile.DECODER:
            dyn = {g.inputs[0]: {0: "batch"}, g.outputs[0]: {0: "batch"}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecation notice: we chose this path on purpose
            torch.onnx.export(
                g.module,
                (example,),
                str(path),
                dynamo=False,
                input_names=list(g.inputs),
                output_names=list(g.outputs),
                dynamic_axes=dyn,
                opset_version=OPSET,
            )


def _check_onnx(path: Path) -> None:
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:
        raise ExportError(f"{path.name}: the exported graph fails the ONNX checker ({str(exc).splitlines()[0]}); this is a bug in the net's export path") from None


def _torch_out(g: _Graph, x: torch.Tensor) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = g.module(x)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return {name: t.detach().float().cpu().numpy() for name, t in zip(g.outputs, outs, strict=True)}


def median_ms(fns: Mapping[str, Callable[[], object]], *, budget_s: float = 0.3, max_rounds: int = 50) -> dict[str, float]:
    """Median wall time (ms) of each function, calls interleaved so that load from
    other processes hits all of them alike; two warm-up calls each, a small time budget."""
    for fn in fns.values():
        fn()
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    t_end = time.perf_counter() + budget_s
    rounds = 0
    while rounds < max_rounds and (rounds < 5 or time.perf_counter() < t_end):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
        rounds += 1
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def _fsync_tree(folder: Path) -> None:
    for f in folder.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - not possible on Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_target(out_dir: Path) -> None:
    try:
        check_target(out_dir)  # a bundle replaces only a bundle (aestudio/export/target.py)
    except ExportTargetError as exc:
        raise ExportError(str(exc)) from None


def _publish(tmp: Path, out_dir: Path) -> None:
    """Move the finished bundle into place; an old bundle (or empty folder) there is replaced."""
    _check_target(out_dir)  # again: the folder may have been filled while we exported
    if out_dir.exists():
        old = make_temp_dir(out_dir.parent, prefix=temp_prefix(out_dir, "old"))
        os.replace(out_dir, old / out_dir.name)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)


@contextlib.contextmanager
def staged_bundle(out_dir: Path) -> Iterator[Path]:
    """A new folder beside ``out_dir`` to write a bundle into (temp folders of exports killed earlier are
    cleaned first), removed if anything fails; :func:`publish_bundle` moves it into place."""
    clean_stale(out_dir)  # their process is gone
    tmp = make_temp_dir(out_dir.parent, prefix=temp_prefix(out_dir))  # 0o777 - umask, as mkdir
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def publish_bundle(tmp: Path, out_dir: Path, info: ModelInfo) -> None:
    """Write ``info`` as the staged bundle's model.json, flush it to disk and move it into place."""
    write_model_json(tmp, info)
    _fsync_tree(tmp)
    _publish(tmp, out_dir)


def export_net(
    net: nn.Module,
    net_name: str,
    net_cfg: NetConfig,
    out_dir: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    sample_inputs: np.ndarray | torch.Tensor | None = None,
    exporter: Exporter | str = Exporter.DYNAMO,
    measure_timings: bool = True,
) -> ModelInfo:
    """Export ``net`` into a checked bundle at ``out_dir`` and return its :class:`ModelInfo`.

    ``metadata`` may set ``name``, ``metrics``, ``training``, ``class_names``,
    ``class_colors``. ``sample_inputs`` are real images [N, C, H, W] in [0, 1]
    for the parity check. If the chosen exporter cannot export the net, the
    other one is tried (and recorded in ``model.json``).
    """
    out_dir = Path(out_dir)
    meta = dict(metadata or {})
    unknown = set(meta) - _METADATA_KEYS
    if unknown:
        raise ValueError(f"unknown metadata key(s) {sorted(unknown)}; allowed: {sorted(_METADATA_KEYS)}")
    _check_target(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    net = net.eval().cpu()
    info = info_for_net(
        net, net_name, net_cfg, name=meta.get("name"), class_names=meta.get("class_names"), class_colors=meta.get("class_colors")
    )
    real = _real_batch(sample_inputs, info)  # validate before the slow part
    try:
        check_finite(net.state_dict(), f"{net_name} ({info.name})")
    except ExportTargetError as exc:
        raise ExportError(str(exc)) from None
    with staged_bundle(out_dir) as tmp:
        graphs = _graphs(net, info)
        files = {g.file.value: DEFAULT_FILES[g.file.value] for g in graphs}
        used = _export_all(graphs, info, tmp, Exporter(exporter))
        for g in graphs:
            optimise_for_ort(tmp / files[g.file.value])  # exact rewrites; the parity check below covers them
            _check_onnx(tmp / files[g.file.value])
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
        save_file(state, str(tmp / DEFAULT_FILES[BundleFile.WEIGHTS.value]), metadata={"aestudio": __version__})
        files[BundleFile.WEIGHTS.value] = DEFAULT_FILES[BundleFile.WEIGHTS.value]
        info = replace(
            info,
            metrics={k: float(v) for k, v in meta.get("metrics", {}).items()},
            training=dict(meta.get("training", {})),
            files=files,
            exporter=f"torch {torch.__version__} {used.value}, opset {OPSET}",
            created=utc_now(),
        )
        write_model_json(tmp, info)  # provisional, so OrtPredictor can open the folder for the checks
        parity, timings = _verify(net, info, tmp, graphs, real, measure_timings)
        info = replace(info, parity_error=parity, timings=timings, bfloat16=_bf16_check(net, info, real))
        publish_bundle(tmp, out_dir, info)
    log.info("exported %s to %s (parity %.2g)", net_name, out_dir, parity["max"])
    return info


def _bf16_check(net: nn.Module, info: ModelInfo, real: torch.Tensor | None) -> dict[str, Any]:
    """``model.json``'s ``bfloat16`` record: the model graph in bfloat16 against float32, on the run's real
    images when there are any, else on random ones (which make a denoiser's output move the most)."""
    from aestudio.export.bf16_runtime import TASKS, bf16_record

    if info.task not in TASKS:
        return {}
    gen = torch.Generator().manual_seed(0)
    if real is None:
        h, w = _parity_sizes(info)[-1]
        return bf16_record(net, info, [torch.rand(2, info.in_channels, h, w, generator=gen)], f"2 random images {h}x{w}")
    where = f"{real.shape[0]} real image(s) {real.shape[2]}x{real.shape[3]}"
    inputs = [real]
    if info.task is Task.DENOISE:
        # A denoiser's real images are its clean targets, on which its output hardly moves; what it is for
        # is noisy input, so the check includes the same images with Gaussian noise (sigma 0.1).
        inputs.append((real + 0.1 * torch.randn(real.shape, generator=gen)).clamp(0, 1))
        where += ", clean and with Gaussian noise sigma 0.1"
    return bf16_record(net, info, inputs, where)


def _export_all(graphs: list[_Graph], info: ModelInfo, folder: Path, exporter: Exporter) -> Exporter:
    h, w = _example_size(info)
    order = [exporter, *(e for e in Exporter if e is not exporter)]
    errors = []
    for ex in order:
        try:
            for g in graphs:
                # Batch 2, not 1: torch.export specialises sizes 0 and 1 to constants.
                example = torch.rand(2, info.in_channels, h, w) if g.spatial else torch.randn(2, int(info.latent_dim or 0))
                _export_one(g, example, info, folder / DEFAULT_FILES[g.file.value], ex)
            if ex is not exporter:
                log.warning("%s: the %s exporter failed (%s); exported with %s instead", info.net, exporter.value, errors[0], ex.value)
            return ex
        except ExportError:
            raise
        except Exception as exc:  # the exporters raise many types; we report the first line
            disk = _disk_error(exc)
            if disk is not None:  # a full or read-only disk is not an operator ONNX lacks
                raise disk from exc
            errors.append(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    raise ExportError(f"{info.net}: neither ONNX exporter could export it ({'; '.join(errors)}); the net uses an op ONNX cannot express")


def _disk_error(exc: BaseException) -> OSError | None:
    """The write error (disk full, read-only, no permission) behind an exporter's exception, if any."""
    import errno

    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
            return exc
        if "No space left on device" in str(exc):
            return OSError(errno.ENOSPC, "No space left on device")
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return None


def _verify(
    net: nn.Module,
    info: ModelInfo,
    folder: Path,
    graphs: list[_Graph],
    real: torch.Tensor | None,
    measure: bool,
) -> tuple[dict[str, float], dict[str, Any]]:
    """ORT vs torch on random and real inputs; median batch-1 timings of both."""
    gen = torch.Generator().manual_seed(0)
    pred = OrtPredictor(folder, profile=SessionProfile.INTERACTIVE, providers=["CPUExecutionProvider"])
    parity: dict[str, float] = {}
    timings: dict[str, Any] = {}
    for g in graphs:
        cases: list[torch.Tensor] = []
        if g.spatial:
            for h, w in _parity_sizes(info):
                cases += [torch.rand(n, info.in_channels, h, w, generator=gen) for n in PARITY_BATCHES]
            if real is not None:
                cases.append(real)
        else:
            cases += [torch.randn(n, int(info.latent_dim or 0), generator=gen) for n in PARITY_BATCHES]
            if real is not None:  # the codes of real images, where the decoder is actually used
                with torch.no_grad():
                    code = net.encode(real)  # type: ignore[operator]
                cases.append(code[0] if isinstance(code, (tuple, list)) else code)
        sess = pred.session(g.file)
        worst = 0.0
        for x in cases:
            x = x.detach()
            want = _torch_out(g, x)
            got = dict(zip(g.outputs, sess.run(list(g.outputs), {g.inputs[0]: x.numpy()}), strict=True))
            for name in g.outputs:
                if got[name].shape != want[name].shape:
                    raise ExportError(f"{info.net} {g.file.value}.onnx: output {name} has shape {got[name].shape} in ONNX Runtime, {want[name].shape} in torch, for input {tuple(x.shape)}")
                worst = max(worst, float(np.max(np.abs(got[name] - want[name]))))
        if not worst <= PARITY_TOLERANCE:  # also catches NaN
            raise ExportError(f"{info.net} {g.file.value}.onnx: ONNX Runtime differs from torch by {worst:.3g} (> {PARITY_TOLERANCE}); the export is wrong, do not use it")
        parity[g.file.value] = worst
        if measure:
            x1 = cases[0][:1].contiguous()
            feed = {g.inputs[0]: x1.numpy()}
            with torch.no_grad():
                ms = median_ms({"torch": lambda g=g, x1=x1: g.module(x1), "ort": lambda sess=sess, feed=feed: sess.run(None, feed)})
            torch_ms, ort_ms = ms["torch"], ms["ort"]
            timings[g.file.value] = {"torch_ms": round(torch_ms, 4), "ort_ms": round(ort_ms, 4), "speedup": round(torch_ms / ort_ms, 2), "input": list(x1.shape)}
    parity["max"] = max(parity.values())
    if measure:
        timings["conditions"] = {"batch": 1, "statistic": "median", "torch_threads": torch.get_num_threads(), "ort_profile": SessionProfile.INTERACTIVE.value}
    return parity, timings


def _real_batch(sample: np.ndarray | torch.Tensor | None, info: ModelInfo) -> torch.Tensor | None:
    if sample is None:
        return None
    x = torch.as_tensor(np.asarray(sample) if not isinstance(sample, torch.Tensor) else sample).float()[:8]
    if x.dim() != 4 or x.shape[1] != info.in_channels or len(x) == 0:
        raise ValueError(f"sample_inputs must be [N, {info.in_channels}, H, W] images in [0, 1], got {tuple(x.shape)}")
    if info.fixed_size is not None and tuple(x.shape[2:]) != (info.fixed_size,) * 2:
        raise ValueError(f"sample_inputs must be {info.fixed_size}x{info.fixed_size} for {info.net}, got {tuple(x.shape[2:])}")
    m = info.size_multiple
    return x[:, :, : x.shape[2] // m * m, : x.shape[3] // m * m].contiguous()


# ----------------------------------------------------------------- run folders


def run_model_name(run: Any) -> str:
    """A bundle's display name that tells runs apart: "conv_ae on digits (code 16, 30 epochs, 2026-12-07 04:20)".

    Every run used to be called "conv_ae on digits", so a list of them said nothing.
    """
    spec = str(run.data_spec or "")
    if spec.startswith("folder:"):  # the folder's name, not its whole path (it filled the status bar)
        spec = Path(spec.partition(":")[2].rstrip("/\\")).name or spec
    base = f"{run.net_name} on {spec}" if spec else run.net_name
    details = []
    method = getattr(getattr(run, "train_cfg", None), "self_supervised", None)
    if method is not None and getattr(method, "value", "none") != "none":
        details.append("self-supervised")
    latent = getattr(run.net_cfg, "latent_dim", None)
    if latent:
        details.append(f"code {latent}")
    classes = getattr(run.net_cfg, "num_classes", None)
    if classes and not latent:
        details.append(f"{classes} classes")
    details.append(f"{run.epoch} epoch{'s' if run.epoch != 1 else ''}")
    created = str(getattr(run, "created", "") or "")
    if len(created) >= 16:
        details.append(created[:16].replace("T", " "))
    return f"{base} ({', '.join(details)})"


def export_run(
    run_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    which: str = "best",
    exporter: Exporter | str = Exporter.DYNAMO,
    measure_timings: bool = True,
) -> Path:
    """Export a training run folder to a bundle (default ``RUN_DIR/bundle``); return the bundle path.

    Reads the run read-only: its net and ``which`` weights ("best" or "last"),
    metrics, class names and training summary. A few validation images from
    the run's data, when they can be opened, join the parity check.
    """
    from aestudio.training.runs import load_net

    run_dir = Path(run_dir)
    target = Path(out_dir) if out_dir is not None else run_dir / "bundle"
    _check_target(target)  # before loading anything: refusing is cheap, exporting is not
    net, run = load_net(run_dir, which=which)
    data_info = run.data_info or {}
    k = int(getattr(run.net_cfg, "num_classes", 0) or 0)
    names = list(data_info.get("class_names") or [])
    colors = [list(map(int, c)) for c in (data_info.get("class_colors") or [])]
    if k and names and len(names) < k:  # a U-Net may have more outputs than the data has classes
        names += [f"class {i}" for i in range(len(names), k)]
        colors = colors + _palette_tail(len(colors), k) if colors else []
    if len(colors) != len(names):
        colors = []
    metrics = (run.best or {}).get("metrics") if which == "best" and isinstance((run.best or {}).get("metrics"), dict) else None
    metadata = {
        "name": run_model_name(run),
        "metrics": {k2: float(v) for k2, v in (metrics or run.metrics or {}).items() if isinstance(v, (int, float))},
        "training": {
            "run": run_dir.name,
            "data_spec": run.data_spec,
            # 8-bit / 16-bit / float: a package's input scaling. A run from before it was recorded (the long
            # photo-denoiser run) is probed now, while its data folder is still there.
            "input_kind": data_info.get("input_kind") or input_kind(run.data_spec),
            "weights": which,
            "epochs": run.epoch,
            "steps": run.step,
            "wall_time_s": round(sum(float(h.get("seconds", 0.0)) for h in run.history), 2),
            "seed": run.train_cfg.seed,
            # What the model knows: the Noise lab warns when an image's noise is outside it.
            "noise": to_dict(run.train_cfg.noise),
            "self_supervised": run.train_cfg.self_supervised.value,
            "best": run.best,
            "status": run.status.value,
        },
    }
    if names:
        metadata["class_names"] = names
        if colors:
            metadata["class_colors"] = colors
    export_net(
        net,
        run.net_name,
        run.net_cfg,
        target,
        metadata=metadata,
        sample_inputs=_sample_images(run),
        exporter=exporter,
        measure_timings=measure_timings,
    )
    return target


def _palette_tail(start: int, stop: int) -> list[list[int]]:
    from aestudio.palette import default_palette

    return [list(c) for c in default_palette(stop)[start:stop]]


def _sample_images(run: Any) -> torch.Tensor | None:
    """Up to 8 validation images of the run's data, or None if the data cannot be opened now."""
    try:
        from aestudio.data.specs import open_data

        opts = run.data_options or {}
        data = open_data(
            run.data_spec,
            image_size=opts.get("image_size"),
            channels=opts.get("channels"),
            val_fraction=opts.get("val_fraction", 0.2),
            seed=opts.get("seed", 0),
        )
        items = [data.val[i][0] for i in range(min(8, len(data.val)))]
        if not items or len({tuple(t.shape) for t in items}) != 1:
            return None
        return torch.stack(items)
    except Exception as exc:  # the check still runs on random inputs; say why real ones are missing
        log.warning("parity check without real images: cannot open %r (%s)", getattr(run, "data_spec", "?"), exc)
        return None
