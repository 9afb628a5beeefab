"""Inference subcommands: ``export``, ``import-pt``, ``denoise``, ``segment``, ``reconstruct``, ``sample``, ``interpolate``.

Everything but ``export`` runs through ONNX Runtime (no torch import), on a
bundle folder or a foreign .onnx file; the one exception is ``--precision``'s
bfloat16 runtime for a denoiser or segmenter whose model.json allows it, on a
CPU with native bfloat16 (:mod:`aestudio.export.bf16_runtime`). The folder commands (``denoise``,
``segment``, ``reconstruct``) run the one folder job of the app
(:func:`aestudio.explore.folder_job.run_folder`): they read files and folders
(recursively), show a progress bar, write into OUT_DIR only (mirroring
sub-folders, sanitised names), never overwrite an input, keep results already
there unless ``--overwrite``, and name and skip bad files: exit code 1 if any
file failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aestudio.cli.common import CliError, bounded_int, noise_spec, value_range
from aestudio.config import Task
from aestudio.inference.precision import PRECISIONS
from aestudio.limits import MAX_SAMPLES, MAX_SEED, MAX_STEPS

if TYPE_CHECKING:
    from aestudio.explore.folder_job import FolderWork

log = logging.getLogger(__name__)

OVERLAY_ALPHA = 0.5  # `segment --overlay`: class colours at half opacity over the image


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a training run to an ONNX bundle (checked against torch)")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("-o", "--out", type=Path, default=None, metavar="BUNDLE_DIR", help="default: RUN_DIR/bundle")
    p.add_argument("--which", choices=("best", "last"), default="best", help="which weights to export (default best)")
    p.add_argument("--format", choices=("bundle", "bioimageio"), default="bundle",
                   help="bundle: an aestudio bundle folder (default); bioimageio: a BioImage Model Zoo package "
                   "(-o MODEL.zip; RUN_DIR may also be a bundle or a shipped model's name)")
    p.add_argument("--int8", action="store_true",
                   help="bundle: quantize model.onnx to int8 (ONNX Runtime QDQ, calibrated on the run's own training "
                   "inputs): faster on CPUs, less exact; model.json records its error against float32 and both speeds. "
                   "The weights stay float32 for fine-tuning")
    p.add_argument("--author", action="append", default=[], metavar="NAME", help="bioimageio: an author (repeatable; default: your user name)")
    p.add_argument("--license", default=None, metavar="SPDX", help="bioimageio: the licence, an SPDX id (default CC-BY-4.0)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import-pt", help="convert a trusted legacy PyTorch .pt/.pth state dict into an ONNX bundle",
                       description="Pickle files can run code when loaded, so aestudio refuses them everywhere else. "
                       "This command reads one only with --allow-pickle and torch.load(weights_only=True) "
                       "(tensors and plain containers only), then writes a bundle with safetensors weights.")
    p.add_argument("file", type=Path, metavar="FILE", help="a .pt/.pth file holding a state dict (or {'state_dict': ...})")
    p.add_argument("--net", required=True, metavar="NAME", help="the net family the weights belong to, e.g. conv_ae")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a net config field (JSON value), e.g. --param image_size=28 --param latent_dim=16; repeatable")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="BUNDLE_DIR", help="the bundle folder to write")
    p.add_argument("--allow-pickle", action="store_true",
                   help="I trust this file's source: read it with torch.load(weights_only=True)")
    p.set_defaults(func=cmd_import_pt)

    def folder_command(name: str, help_: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        q = sub.add_parser(name, help=help_)
        _model_args(q)
        q.add_argument("inputs", nargs="+", type=Path, metavar="INPUTS", help="image files or folders (searched recursively)")
        q.add_argument("-o", "--out", type=Path, required=True, metavar="OUT_DIR", help="folder for the results")
        q.add_argument("--overwrite", action="store_true",
                       help="replace results already in OUT_DIR (by default they are kept and the image is skipped)")
        q.add_argument("--precision", choices=PRECISIONS, default="auto",
                       help="auto (default): a denoiser or segmenter runs in bfloat16 (torch) on a CPU with native "
                       "bfloat16 (AVX512-BF16 or AMX) when its model.json shows bfloat16 within 45 dB PSNR of "
                       "float32, else the float32 ONNX graph; float32: always the ONNX graph; bfloat16: insist")
        q.set_defaults(func=func)
        return q

    q = folder_command("denoise", "denoise images (optionally adding noise first, to demonstrate); 16-bit images "
                       "are denoised at their own range and written as 16-bit TIFFs in it", cmd_denoise)
    q.add_argument("--noise", type=noise_spec, default=None, metavar="SPEC",
                   help="add this noise first, e.g. gaussian:0.1; saves NAME_noisy.png too")
    q.add_argument("--seed", type=bounded_int(0, MAX_SEED), default=0,
                   help="noise seed (default 0); each file's noise depends on it and the file's name alone")
    q = folder_command("segment", "segment images into class-index masks (NAME_mask.png)", cmd_segment)
    q.add_argument("--overlay", action="store_true", help="also save NAME_overlay.png with class colours over the image")
    folder_command("reconstruct", "reconstruct images through the model (NAME_recon.png; 16-bit images: "
                   "NAME_recon.tif in their own range)", cmd_reconstruct)

    q = sub.add_parser("sample", help="decode random codes from a VAE's prior into a grid image")
    _model_args(q)
    q.add_argument("-n", type=bounded_int(1, MAX_SAMPLES), default=64, help=f"number of samples (default 64, at most {MAX_SAMPLES})")
    q.add_argument("-o", "--out", type=Path, required=True, metavar="GRID_PNG")
    q.add_argument("--overwrite", action="store_true", help="replace GRID_PNG if it exists")
    q.add_argument("--seed", type=bounded_int(0, MAX_SEED), default=0)
    q.set_defaults(func=cmd_sample)

    q = sub.add_parser("interpolate", help="decode the straight line between the codes of two images into a strip")
    _model_args(q)
    q.add_argument("a", type=Path, metavar="A")
    q.add_argument("b", type=Path, metavar="B")
    q.add_argument("-n", type=bounded_int(2, MAX_STEPS), default=8,
                   help=f"number of steps including both ends (default 8, at most {MAX_STEPS})")
    q.add_argument("-o", "--out", type=Path, required=True, metavar="STRIP_PNG")
    q.add_argument("--overwrite", action="store_true", help="replace STRIP_PNG if it exists")
    q.set_defaults(func=cmd_interpolate)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=_model_path, required=True, metavar="MODEL",
                   help="a bundle folder, a .onnx file, a BioImage Model Zoo package (.zip, 2D, ONNX weights) "
                   "or a shipped model's name (e.g. shapes-vae)")
    p.add_argument("--value-range", type=value_range, default=(0.0, 1.0), metavar="LO,HI",
                   help="input range of a foreign .onnx model (default 0,1)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=None,
                   help="input channels of a foreign .onnx model, if its graph does not say")


# ----------------------------------------------------------------- helpers


def _model_path(text: str) -> Path:
    """``--model``: a path as given, else a shipped zoo model's short name (the one place names resolve)."""
    from aestudio.zoo.catalog import ZooError, resolve_model

    try:
        return resolve_model(text)
    except ZooError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _open_model(args: argparse.Namespace, task: str | None) -> Any:
    from aestudio.inference.bioimageio_package import is_package
    from aestudio.inference.ort import ForeignModelDescription, OrtPredictor, SessionProfile

    if is_package(args.model):  # a BioImage Model Zoo package: its rdf.yaml says the rest
        from aestudio.inference.bioimageio_predictor import open_package

        try:
            return open_package(args.model, task=task, profile=SessionProfile.BATCH)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    desc = None
    if args.model.is_file():
        lo, hi = args.value_range
        desc = ForeignModelDescription(task=task or "reconstruct", value_range=(lo, hi), channels=args.channels)
    try:
        pred = OrtPredictor(args.model, profile=SessionProfile.BATCH, description=desc)
    except ValueError as exc:  # BundleError is a ValueError too; both are one-line user errors
        raise CliError(str(exc)) from None
    pred = _choose_precision(args, pred)
    if pred.info.precision != "float32":  # say so: its results differ a little from the float32 graph's
        err = pred.info.quantization.get("error_vs_float32", {})
        note = f" (output {err['psnr_vs_float32_db']} dB PSNR against float32's)" if "psnr_vs_float32_db" in err else ""
        print(f"aestudio: {args.model} runs an {pred.info.precision} graph{note}", file=sys.stderr)
    return pred


def _choose_precision(args: argparse.Namespace, pred: Any) -> Any:
    """``--precision``: the bundle's bfloat16 twin (aestudio.export.bf16_runtime) where allowed; torch is
    imported only when the bundle's own record allows bfloat16, so other models start as fast as before."""
    from aestudio.inference.precision import record_ok

    precision = getattr(args, "precision", "float32")
    if precision == "float32" or (precision == "auto" and (not args.model.is_dir() or record_ok(pred.info))):
        return pred
    try:
        from aestudio.export.bf16_runtime import choose_bf16
    except ImportError:  # the torch-free runtime: no bfloat16 path
        if precision == "bfloat16":
            raise CliError(f"{args.model}: --precision bfloat16 needs torch, which is not installed; use --precision float32") from None
        return pred
    try:
        twin, why = choose_bf16(pred, precision)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if twin is not pred:
        print(f"aestudio: {args.model} runs in {why}", file=sys.stderr)
    return twin


def _collect(inputs: list[Path], out_dir: Path) -> list[tuple[Path, Path]]:
    """(input file, output stem path inside out_dir) pairs: the one naming scheme of every folder job."""
    from aestudio.explore.batch import plan_outputs

    try:
        pairs = plan_outputs(inputs, out_dir)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    if not pairs:
        raise CliError(f"no supported images found in {', '.join(map(str, inputs))}")
    return pairs


def _run_folder(args: argparse.Namespace, work: FolderWork) -> int:
    """The app's folder job over ``args.inputs`` into ``args.out``, with a progress bar; bad files named."""
    import threading

    from tqdm import tqdm

    from aestudio.explore.folder_job import FolderReport, input_root, run_folder

    out_dir: Path = args.out
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f"{out_dir} is a file; -o needs a folder")
    pairs = _collect(list(args.inputs), out_dir)
    report = FolderReport.for_work(work, input_root(list(args.inputs)), out_dir, total=len(pairs))
    bar = tqdm(total=len(pairs), unit="image", desc=args.command, file=sys.stderr, leave=False)
    seen_bad = 0

    def progress(r: FolderReport, _name: str) -> None:
        nonlocal seen_bad
        bar.update(1)
        for name, reason in r.bad[seen_bad:]:
            tqdm.write(f"aestudio: skipped {name}: {reason}", file=sys.stderr)
        seen_bad = len(r.bad)

    try:
        run_folder(pairs, report, work, threading.Event(), progress, overwrite=args.overwrite)
    finally:
        bar.close()
    print(f"{len(report.written)} image(s) written to {out_dir}"
          + (f"; {len(report.skipped)} skipped (outputs already there; --overwrite replaces them)" if report.skipped else "")
          + (f"; {len(report.bad)} failed" if report.bad else ""))
    return 1 if report.bad else 0


# ----------------------------------------------------------------- commands


def cmd_export(args: argparse.Namespace) -> int:
    if args.format == "bioimageio":
        if args.int8:
            raise CliError("--int8 writes a bundle; export it first (`aestudio export RUN --int8 -o BUNDLE`), "
                           "then package that bundle (`aestudio export BUNDLE --format bioimageio -o MODEL.zip`)")
        return _export_bioimageio(args)
    from aestudio.inference.bundle import read_bundle

    if args.int8:
        from aestudio.export.quantize import QuantizeError, export_run_int8

        try:
            path = export_run_int8(args.run_dir, args.out, which=args.which)
        except QuantizeError as exc:
            raise CliError(str(exc)) from None
        print(int8_summary(path, read_bundle(path)))
        return 0
    from aestudio.export.exporter import export_run

    path = export_run(args.run_dir, args.out, which=args.which)
    info = read_bundle(path)
    speed = ", ".join(f"{k} {v['speedup']}x" for k, v in info.timings.items() if isinstance(v, dict) and "speedup" in v)
    print(f"bundle written to {path} (parity {info.parity_error.get('max', 0):.2g}; ORT vs torch at batch 1: {speed})")
    return 0


def int8_summary(path: Path, info: Any) -> str:
    """One line on an int8 bundle: what it gains and what it costs, from its model.json."""
    q = info.quantization
    err, t = q.get("error_vs_float32", {}), q.get("timings", {})
    cost = (f"{err['mask_agreement']:.2%} of pixels keep float32's class" if "mask_agreement" in err
            else f"output {err.get('psnr_vs_float32_db', '?')} dB PSNR against float32's")
    return (f"int8 bundle written to {path}: {t.get('speedup', '?')}x the float32 graph's speed here "
            f"({t.get('int8_ms', '?')} vs {t.get('float32_ms', '?')} ms at {t.get('input', '?')}); {cost}, "
            f"max difference {err.get('max_abs', '?')}")


def _export_bioimageio(args: argparse.Namespace) -> int:
    from aestudio.export import bioimageio as bx

    if args.out is None:
        raise CliError("--format bioimageio needs -o MODEL.zip")
    try:
        source = _model_path(str(args.run_dir))  # a run, a bundle, or a shipped model's name
    except argparse.ArgumentTypeError as exc:
        raise CliError(str(exc)) from None
    opts = bx.PackageOptions(authors=tuple(args.author), license=args.license or bx.DEFAULT_LICENSE)
    try:
        path = bx.export_package(source, args.out, opts, which=args.which)
    except bx.PackageExportError as exc:
        raise CliError(str(exc)) from None
    print(f"BioImage Model Zoo package written to {path} (check it with `bioimageio test {path}`)")
    return 0


def cmd_import_pt(args: argparse.Namespace) -> int:
    import json

    from aestudio.training.checkpoint import load_legacy_pt

    if not args.file.is_file():
        raise CliError(f"{args.file}: no such file")
    if not args.allow_pickle:
        raise CliError(f"{args.file}: legacy .pt files are pickles, which can run code when loaded; "
                       "pass --allow-pickle only if you trust where it came from")
    params: dict[str, Any] = {}
    for item in args.param:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CliError(f"--param {item!r}: use KEY=VALUE, e.g. --param image_size=28")
        try:
            params[key.strip().replace("-", "_")] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip().replace("-", "_")] = raw
    from aestudio.export.exporter import export_net
    from aestudio.nets.registry import build_net, default_config

    try:
        cfg = default_config(args.net, **params)
    except (KeyError, TypeError, ValueError) as exc:
        raise CliError(f"--net {args.net} / --param: {exc}") from None
    state = load_legacy_pt(args.file, allow=True)  # weights_only=True: refuses anything but tensors
    net = build_net(args.net, cfg)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CliError(f"{args.file}: the weights do not fit {args.net} with {params or 'its defaults'} ({first}); "
                       "give the net's config with --param KEY=VALUE") from None
    info = export_net(net, args.net, cfg, args.out, metadata={"name": args.file.stem,
                      "training": {"imported_from": args.file.name}})
    print(f"bundle written to {args.out} ({info.net}, {len(state)} tensors from {args.file.name})")
    return 0


def _image_model(args: argparse.Namespace, task: str) -> Any:
    pred = _open_model(args, task)
    if pred.info.task.value == "segment":
        raise CliError(f"{args.model} is a segmentation model; use `aestudio segment`")
    return pred


def cmd_denoise(args: argparse.Namespace) -> int:
    """Each image keeps its channels (a grey model denoises colour one channel at a time, as in the app).
    16-bit images are denoised at their own range and written back as 16-bit TIFFs in it
    (:mod:`aestudio.data.levels`); ``--noise`` draws each file's noise from ``--seed`` and the file's
    name, so a file gets the same noise whichever other files were skipped or added."""
    import zlib

    from aestudio.data.levels import file_result_suffix, read_levelled, result_suffix
    from aestudio.data.noise import apply_noise
    from aestudio.explore.folder_job import FolderWork, LevelledImage
    from aestudio.explore.image_metrics import (
        run_model_image,  # a colour image through a grey model: per channel
    )

    noise = args.noise if args.noise is not None and args.noise.kind != "none" else None  # parsed by noise_spec
    pred = _image_model(args, "denoise")
    names = ("_denoised", "_noisy") if noise is not None else ("_denoised",)

    def suffixes_for(path: Path) -> tuple[str, ...]:
        ext = file_result_suffix(path)  # 16-bit and float results keep their depth (TIFF holds any)
        return tuple(n + ext for n in names)

    def compute(path: Path, name: str) -> dict[str, LevelledImage]:
        img, levels = read_levelled(path)
        ext = result_suffix(levels)  # as suffixes_for, without reading the header again
        if noise is None:
            return {"_denoised" + ext: LevelledImage(run_model_image(pred, img), levels)}
        rng = np.random.default_rng([args.seed, zlib.crc32(Path(name).as_posix().encode())])
        noisy = apply_noise(img.transpose(2, 0, 1), noise, rng).transpose(1, 2, 0)
        return {"_noisy" + ext: LevelledImage(noisy, levels), "_denoised" + ext: LevelledImage(run_model_image(pred, noisy), levels)}

    return _run_folder(args, FolderWork("Denoised", "denoising", tuple(n + ".png" for n in names),
                                        compute_file=compute, suffixes_for=suffixes_for))


def cmd_reconstruct(args: argparse.Namespace) -> int:
    """16-bit images are reconstructed at their own range and written back as 16-bit TIFFs in it,
    as ``aestudio denoise`` writes them (:mod:`aestudio.data.levels`); others as 8-bit PNGs."""
    from aestudio.data.levels import file_result_suffix, read_levelled, result_suffix
    from aestudio.explore.folder_job import FolderWork, LevelledImage

    pred = _image_model(args, "reconstruct")

    def suffixes_for(path: Path) -> tuple[str, ...]:
        return ("_recon" + file_result_suffix(path),)

    def compute(path: Path, _name: str) -> dict[str, LevelledImage]:
        img, levels = read_levelled(path)
        return {"_recon" + result_suffix(levels): LevelledImage(pred.run_image(img), levels)}

    return _run_folder(args, FolderWork("Reconstructed", "reconstruction", ("_recon.png",),
                                        compute_file=compute, suffixes_for=suffixes_for))


def cmd_segment(args: argparse.Namespace) -> int:
    """The Segment panel's folder job, headless."""
    from aestudio.explore.segmentation import FolderSettings, segment_work

    pred = _open_model(args, "segment")
    if pred.info.task is not Task.SEGMENT:
        raise CliError(f"{args.model} is a {pred.info.task.value} model, not a segmentation model")
    colors = np.asarray(pred.info.class_colors, dtype=np.uint8).reshape(-1, 3)
    alphas = np.full(len(colors), OVERLAY_ALPHA, np.float32)
    alphas[:1] = 0.0  # class 0 (background) is left unpainted in the overlay
    settings = FolderSettings(colors, alphas, threshold=None, overlays=args.overlay, outlines=False)
    return _run_folder(args, segment_work(pred, settings))


def _write_result(path: Path, image: np.ndarray, overwrite: bool) -> None:
    from aestudio.data.io import write_image

    try:
        write_image(path, image, overwrite=overwrite)
    except FileExistsError:  # appeared since the check
        raise CliError(f"-o {path} exists; add --overwrite to replace it, or choose another file name") from None


def _check_out_file(out: Path, overwrite: bool = False) -> None:
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
        raise CliError(f"-o {out}: give an image file name such as grid.png")
    if out.is_dir():
        raise CliError(f"-o {out} is a folder; give an image file name such as {out / 'grid.png'}")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise CliError(f"-o {out} exists; add --overwrite to replace it, or choose another file name")
    out.parent.mkdir(parents=True, exist_ok=True)


def cmd_sample(args: argparse.Namespace) -> int:
    from aestudio.inference.imageops import make_grid

    _check_out_file(args.out, args.overwrite)
    pred = _open_model(args, None)
    try:
        images = pred.sample(args.n, seed=args.seed)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    _write_result(args.out, make_grid(images), args.overwrite)
    print(f"{args.n} samples written to {args.out}")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    # 16-bit at its own range, as folder: training read it
    from aestudio.data.levels import read_stretched
    from aestudio.inference.imageops import make_grid

    _check_out_file(args.out, args.overwrite)
    if args.out.resolve() in (args.a.resolve(), args.b.resolve()):
        raise CliError(f"-o {args.out} is an input; choose another file name")
    pred = _open_model(args, None)
    a, b = read_stretched(args.a), read_stretched(args.b)
    try:
        strip = pred.interpolate(a, b, args.n)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    _write_result(args.out, make_grid(strip, nrow=args.n), args.overwrite)
    print(f"{args.n} steps written to {args.out}")
    return 0
