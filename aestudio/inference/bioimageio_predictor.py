"""Run a BioImage Model Zoo package (2D, ONNX weights) like any aestudio model.

:class:`PackagePredictor` is an :class:`~aestudio.inference.ort.OrtPredictor`
over the package's ONNX graph (copied out of the zip into the user cache) that
wraps every graph call in the package's declared pre- and post-processing
(numpy, :mod:`aestudio.inference.bioimageio_ops`) and in its tensor layout, so
the app, the CLI and the napari plug-in get the usual API: ``run_image`` (tiled
for large images), ``segment``, ``predict``. Per-image statistics (scale_range,
zero_mean_unit_variance) are taken once from the whole image before tiling, so
tiles share them and no seams appear.

Which task: the package's own ``config.aestudio.task`` when aestudio wrote it,
else the one asked for (``aestudio segment`` asks for ``segment``), else
``segment`` when the output ends in a softmax, else ``reconstruct``.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from aestudio.config import Task
from aestudio.inference.bioimageio_ops import CANONICAL, Op, apply, resolve
from aestudio.inference.bioimageio_package import (
    Package,
    PackageError,
    extract_weights,
    read_package,
)
from aestudio.inference.bundle import BundleFile, ModelInfo
from aestudio.inference.ort import OrtPredictor, SessionProfile
from aestudio.palette import default_palette

log = logging.getLogger(__name__)

PACKAGE_NET = "bioimageio"  # ModelInfo.net of a package
_PROB_OPS = ("softmax", "sigmoid", "binarize")


def _last_op(ops: tuple[Op, ...]) -> str | None:
    """The last operation that changes values' meaning (ensure_dtype, which bioimageio.spec appends, does not)."""
    ids = [op.id for op in ops if op.id != "ensure_dtype"]
    return ids[-1] if ids else None


def _task(pkg: Package, asked: str | None) -> Task:
    ours = pkg.config.get("task")
    if ours in {t.value for t in Task}:
        return Task(ours)
    if asked is not None:
        return Task(asked)
    return Task.SEGMENT if _last_op(pkg.post) == "softmax" else Task.RECONSTRUCT


def _info(pkg: Package, task: Task) -> ModelInfo:
    if pkg.in_channels not in (1, 3):
        raise PackageError(f"{pkg.path}: inputs[0].axes[channel]: {pkg.in_channels} input channels; aestudio feeds grey (1) or RGB (3) images")
    ours = bool(pkg.config)
    image_size: int | str = "any"
    if pkg.fixed_size is not None and ours:  # our fixed-size nets see whole images resized, as in the app
        h, w = pkg.fixed_size
        if h != w:
            raise PackageError(f"{pkg.path}: inputs[0].axes: fixed size {h}x{w} is not square")
        image_size = h
    names: list[str] = []
    colors: list[list[int]] = []
    if task is Task.SEGMENT:
        names = [str(n) for n in pkg.config.get("class_names") or []] or list(pkg.output_names)
        if pkg.out_channels == 1:  # one probability map: background vs that class
            names = ["background", names[0] if names else "foreground"]
        elif len(names) != pkg.out_channels:
            names = [f"class {i}" for i in range(pkg.out_channels)]
        cc = pkg.config.get("class_colors")
        colors = [list(map(int, c)) for c in cc] if isinstance(cc, list) and len(cc) == len(names) else [list(c) for c in default_palette(len(names))]
    elif pkg.out_channels not in (1, 3):
        raise PackageError(f"{pkg.path}: outputs[0].axes[channel]: {pkg.out_channels} output channels; as an image aestudio "
                           "shows 1 (grey) or 3 (RGB). If they are class scores, use `aestudio segment`")
    info = ModelInfo(
        name=pkg.name, net=PACKAGE_NET, task=task, in_channels=pkg.in_channels, image_size=image_size,
        size_multiple=1, value_range=(0.0, 1.0), class_names=names, class_colors=colors,
        files={BundleFile.MODEL.value: "model.onnx"},
        training={"package": pkg.path.name, "format_version": pkg.format_version},
    )
    info.validate(str(pkg.path))
    return info


def _to_layout(x: np.ndarray, axes: tuple[str, ...]) -> np.ndarray:
    keep = [CANONICAL.index(a) for a in axes]
    rest = [i for i in range(4) if i not in keep]  # absent axes have length 1 here
    return np.ascontiguousarray(np.transpose(x, keep + rest).reshape([x.shape[i] for i in keep]))


def _from_layout(y: np.ndarray, axes: tuple[str, ...]) -> np.ndarray:
    missing = [a for a in CANONICAL if a not in axes]
    y = y.reshape(y.shape + (1,) * len(missing))
    order = list(axes) + missing
    return np.transpose(y, [order.index(a) for a in CANONICAL])


def _valid(n: int, low: int, step: int) -> int:
    """The smallest valid size >= n: ``low + k * step`` (``step`` 0: the one fixed size)."""
    if n <= low or step == 0:
        return low
    return low + -(-(n - low) // step) * step


class PackagePredictor(OrtPredictor):
    """A BioImage Model Zoo package behind the usual predictor API."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        profile: SessionProfile | str = SessionProfile.INTERACTIVE,
        providers: list[str] | None = None,
        task: Task | str | None = None,
        cache: Path | None = None,
    ) -> None:
        pkg = read_package(path)
        info = _info(pkg, _task(pkg, Task(task).value if task is not None else None))
        super().__init__(extract_weights(pkg, cache), profile=profile, providers=providers, info=info)
        self.package = pkg
        self.path = pkg.path  # what the app and the CLI show; the graph itself lives in the cache
        self._local = threading.local()  # whole-image statistics for the tiles of one run_image call
        sess = self.session(BundleFile.MODEL)
        # One image per call without a batch axis; else what the rdf or the graph fixes (OrtPredictor read
        # the graph's first axis, which need not be the batch here).
        graph_batch = sess.get_inputs()[0].shape[pkg.input_axes.index("batch")] if "batch" in pkg.input_axes else 1
        self._max_batch = 1 if pkg.batch_size == 1 else graph_batch if isinstance(graph_batch, int) else None
        rank_in, rank_out = len(sess.get_inputs()[0].shape), len(sess.get_outputs()[0].shape)
        if rank_in != len(pkg.input_axes):
            raise PackageError(f"{pkg.path}: inputs[0].axes: {len(pkg.input_axes)} axes, but the ONNX graph's input has {rank_in}")
        if rank_out != len(pkg.output_axes):
            raise PackageError(f"{pkg.path}: outputs[0].axes: {len(pkg.output_axes)} axes, but the ONNX graph's output has {rank_out}")
        if pkg.fixed_size is not None and info.fixed_size is None:  # a foreign fixed-size net runs on tiles of its size
            self.tiling.tile = min(pkg.fixed_size)
            self.tiling.overlap = min(self.tiling.overlap, self.tiling.tile // 4)
        if pkg.halo:  # the package says how much of each tile edge is unreliable
            self.tiling.overlap = min(max(self.tiling.overlap, 2 * pkg.halo), self.tiling.tile // 2)

    # ------------------------------------------------------------- whole images

    def run_image(self, image: np.ndarray, *, progress=None) -> np.ndarray:  # type: ignore[no-untyped-def]
        """As for any predictor; per-image statistics come from the whole image, then tiles share them."""
        if not any(op.needs_stats for op in self.package.pre):
            return super().run_image(image, progress=progress)
        batch, _ = self.prepare_image(image)
        fixed = resolve(self.package.pre, self._raw(batch))
        self._local.pre = fixed
        try:
            return super().run_image(image, progress=progress)
        finally:
            self._local.pre = None

    def _raw(self, x: np.ndarray) -> np.ndarray:
        """aestudio's [0, 1] back to the package's declared input scale (uint8 -> 0..255)."""
        s = self.package.raw_scale
        return x * np.float32(s) if s != 1.0 else x

    # ------------------------------------------------------------- one graph call

    def _run(self, graph: BundleFile, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pkg = self.package
        x = self._raw(feeds[self._input_name])
        pre: tuple[Op, ...] | list[Op] = getattr(self._local, "pre", None) or pkg.pre
        x = apply(pre, x)
        n, _, h, w = x.shape
        (ly, lx), (sy, sx) = pkg.size_min, pkg.size_step
        ph, pw = _valid(h, ly, sy), _valid(w, lx, sx)
        if ph < h or pw < w:
            raise ValueError(f"{pkg.path.name} takes images up to {ph}x{pw} pixels; got {h}x{w}")
        if (ph, pw) != (h, w):  # pad to a size the graph accepts (reflect where the image allows), crop after
            mode = "reflect" if min(h, w) > 1 and ph - h < h and pw - w < w else "edge"
            x = np.pad(x, ((0, 0), (0, 0), (0, ph - h), (0, pw - w)), mode=mode)
        y = _from_layout(super()._run(graph, {self._input_name: _to_layout(x, pkg.input_axes)})[self._output_name], pkg.output_axes)
        y = apply(pkg.post, np.ascontiguousarray(y[:, :, :h, :w], dtype=np.float32))
        if self.info.task is Task.SEGMENT:
            y = self._as_logits(y)
        return {self._output_name: y}

    def _as_logits(self, y: np.ndarray) -> np.ndarray:
        """Segmentation outputs as logits (aestudio takes the softmax): probabilities -> their logs."""
        probs = _last_op(self.package.post) in _PROB_OPS
        if y.shape[1] == 1:  # one map: foreground probability (or its logit)
            p = y if probs else 1.0 / (1.0 + np.exp(-y))
            p = np.clip(p, 1e-7, 1 - 1e-7)
            return np.log(np.concatenate([1 - p, p], axis=1)).astype(np.float32)
        return np.log(np.clip(y, 1e-7, None)).astype(np.float32) if probs else y

    def __repr__(self) -> str:
        return f"PackagePredictor({self.path.name!r}, task={self.info.task.value}, provider={self.provider})"


def open_package(path: str | os.PathLike[str], *, task: str | None = None,
                 profile: SessionProfile | str = SessionProfile.INTERACTIVE) -> PackagePredictor:
    """Open a package for inference (the CLI's and the app's entry point)."""
    return PackagePredictor(path, task=task, profile=profile)
