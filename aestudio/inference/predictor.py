"""The predictor interface shared by the ONNX Runtime and torch backends (numpy only).

A backend implements one method, :meth:`Predictor._run` (run one graph of the
bundle on validated arrays); everything a caller sees is here: input
validation with clear errors (ONNX Runtime alone accepts some wrong shapes),
image pre/post-processing (dtype, channels, value range, resizing for
fixed-size nets, padding to the size multiple, tiling of large images), and
the latent helpers (encode, decode, sample, interpolate).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from aestudio.config import Task
from aestudio.inference import imageops
from aestudio.inference.bundle import (
    DECODER_OUTPUT,
    INPUT_IMAGE,
    LATENT_LOGVAR,
    LATENT_MU,
    LATENT_Z,
    BundleFile,
    LatentKind,
    ModelInfo,
)
from aestudio.inference.tiling import DEFAULT_TILE_BATCH, tiled_map

log = logging.getLogger(__name__)


@dataclass
class TilingOptions:
    """When and how :meth:`Predictor.run_image` tiles (fully convolutional models only)."""

    tile: int = 512  # images with a side larger than this are tiled
    overlap: int = 64  # wider than the U-Net's edge effects at depth 4
    batch: int = DEFAULT_TILE_BATCH  # tiles per model call


class Predictor(abc.ABC):
    """Runs a model described by a :class:`ModelInfo`; subclasses provide :meth:`_run`."""

    def __init__(self, info: ModelInfo) -> None:
        self.info = info
        self.tiling = TilingOptions()
        self._input_name = INPUT_IMAGE
        self._output_name = info.output_name
        self._max_batch: int | None = None  # set when a graph fixes its batch size (foreign models)

    # ------------------------------------------------------------- backend

    @property
    @abc.abstractmethod
    def provider(self) -> str:
        """Where it runs, e.g. ``CPUExecutionProvider``, ``CUDAExecutionProvider``, ``torch:cpu``."""

    @abc.abstractmethod
    def _run(self, graph: BundleFile, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one graph on validated float32 inputs; return its outputs by name."""

    # ------------------------------------------------------------- raw batches

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """The main graph on a float32 [N, C, H, W] batch in the model's value range.

        Returns the raw output: an image batch [N, C, H, W] or logits [N, K, H, W].
        """
        self.check_batch(batch)
        if self._max_batch is not None and batch.shape[0] > self._max_batch:
            parts = [self.predict(batch[i : i + self._max_batch]) for i in range(0, len(batch), self._max_batch)]
            return np.concatenate(parts)
        return self._run(BundleFile.MODEL, {self._input_name: batch})[self._output_name]

    def encode_full(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Encoder outputs by name: ``{"z": ...}`` or, for a VAE, ``{"mu": ..., "logvar": ...}``."""
        self._need_latent("encode")
        self.check_batch(batch)
        return self._run(BundleFile.ENCODER, {INPUT_IMAGE: batch})

    def encode(self, batch: np.ndarray) -> np.ndarray:
        """The code [N, D] of each image (the mean ``mu`` for a VAE)."""
        out = self.encode_full(batch)
        return out[LATENT_MU] if self.info.latent_kind is LatentKind.GAUSSIAN else out[LATENT_Z]

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Images [N, C, H, W] in [0, 1] from codes float32 [N, D]."""
        self._need_latent("decode")
        self.check_code(z)
        out = self._run(BundleFile.DECODER, {LATENT_Z: z})[DECODER_OUTPUT]
        if not np.isfinite(out).all():  # finite codes in, so the model is at fault, not the caller
            raise ValueError(f"{self.info.name}: the decoder turned finite codes into NaN or infinite pixels; "
                             "its weights are damaged (a diverged run?): re-export it from a good checkpoint")
        return out

    def sample(self, n: int, *, seed: int | None = None) -> np.ndarray:
        """``n`` images decoded from the prior N(0, I); only models with a Gaussian code have one."""
        self._need_latent("sample")
        if self.info.latent_kind is not LatentKind.GAUSSIAN:
            raise ValueError(
                f"{self.info.name}: sampling needs a variational model (a prior over codes); "
                f"this {self.info.net} has a plain code. Use a vae bundle, or interpolate between two images"
            )
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, int(self.info.latent_dim or 0))).astype(np.float32)
        return self.decode(z)

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
        """``steps`` images [steps, C, H, W] decoded along the straight line between the codes of a and b."""
        if steps < 2:
            raise ValueError(f"interpolate needs at least 2 steps, got {steps}")
        za, zb = (self.encode(self.prepare_image(img)[0]) for img in (a, b))
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        return self.decode(((1 - t) * za + t * zb).astype(np.float32))

    # ------------------------------------------------------------- whole images

    def prepare_image(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """Any image -> a float32 [1, C, H', W'] batch the model accepts, plus the original (H, W).

        Fixed-size models get a resized image; fully convolutional ones the
        image as is (padding happens in :meth:`run_image`). The batch is the
        only full-size array made: dtype, channels and value range are
        converted while writing it (``imageops.fill_chw``).
        """
        src = self._image_source(image)
        h, w = src.shape[:2]
        chw = np.empty((self.info.in_channels, h, w), dtype=np.float32)
        imageops.fill_chw(src, chw, self.info.value_range)
        size = self.info.fixed_size
        if size is not None:
            chw = imageops.resize_chw(chw, size, size)
        return chw[None], (h, w)

    def run_image(self, image: np.ndarray, *, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Run the main graph on one image of any size and dtype.

        ``image``: [H, W] or [H, W, C], uint8/uint16 or float in [0, 1].
        Returns the output at the original size: an image [H, W, C] float32 in
        [0, 1] (C = the model's channels), or for segmentation logits [K, H, W].
        ``progress(done, total)`` is called after each tile (once when the image
        is not tiled); it may raise to cancel.

        Memory (fully convolutional models): tiles are read and converted from
        ``image`` one at a time and their outputs blended straight into the
        returned array, so beyond the input and the result only a few tiles
        (and ONNX Runtime's working memory for one tile) are held.
        """
        info = self.info
        segment = info.task is Task.SEGMENT
        if info.fixed_size is not None:
            batch, (h, w) = self.prepare_image(image)
            out = imageops.resize_chw(self.predict(batch)[0], h, w, channels_last=not segment)
            if progress is not None:
                progress(1, 1)
        else:
            out = self._run_any_size(self._image_source(image), channels_last=not segment, progress=progress)
        if segment:
            return out
        lo, hi = info.value_range
        if (lo, hi) != (0.0, 1.0):
            out -= np.float32(lo)
            out /= np.float32(hi - lo)
        np.clip(out, 0.0, 1.0, out=out)
        return out

    def _image_source(self, image: np.ndarray) -> np.ndarray:
        """The raw image as an [H, W, C] view (no copy), checked for dtype, shape and finite values."""
        src = imageops.image_view(image)
        if src.shape[0] == 0 or src.shape[1] == 0:
            raise ValueError(f"the image is empty ({src.shape[1]}x{src.shape[0]} pixels)")
        if not imageops.all_finite(src):
            raise ValueError("the image contains NaN or infinite values")
        imageops.fill_chw(src[:1, :1], np.empty((self.info.in_channels, 1, 1), np.float32))  # channel check, early
        return src

    def _run_any_size(
        self, src: np.ndarray, *, channels_last: bool, progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        """A fully convolutional model over a raw [H, W, C] image: padded, tiled when large, cropped back.

        Tiles come from ``src`` through reflect-padding index maps (the same
        values ``imageops.pad_to_multiple`` gives), so no padded or converted
        copy of the whole image is made.
        """
        h, w = src.shape[:2]
        m = self.info.size_multiple
        ph, pw = h + (-h) % m, w + (-w) % m
        reflect = min(h, w) > 1
        gy, gx = imageops.pad_indices(h, ph, reflect=reflect), imageops.pad_indices(w, pw, reflect=reflect)
        value_range = self.info.value_range

        def read(y: int, x: int, out: np.ndarray) -> None:
            th, tw = out.shape[1:]
            if y + th <= h and x + tw <= w:
                region = src[y : y + th, x : x + tw]
            else:
                region = src[np.ix_(gy[y : y + th], gx[x : x + tw])]
            imageops.fill_chw(region, out, value_range)

        t = self.tiling  # an image no larger than a tile is one tile: one model call, weights all 1
        return tiled_map(read, self.info.in_channels, ph, pw, self.predict, crop=(h, w), channels_last=channels_last,
                         tile=t.tile, overlap=t.overlap, multiple=m, tile_batch=t.batch, progress=progress)

    def segment(
        self, image: np.ndarray, *, progress: Callable[[int, int], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class index per pixel (int64 [H, W]) and class probabilities (float32 [K, H, W])."""
        if self.info.task is not Task.SEGMENT:
            raise ValueError(f"{self.info.name} is a {self.info.task.value} model, not a segmentation model")
        probs = self.run_image(image, progress=progress)  # logits, turned into probabilities in place
        mask = imageops.softmax_argmax_(probs)
        return mask, probs

    # ------------------------------------------------------------- validation

    def check_batch(self, batch: Any) -> None:
        """Raise a ValueError that says what to change unless ``batch`` fits the model."""
        info = self.info
        what = f"{info.name} expects a float32 array [N, {info.in_channels}, H, W]"
        if not isinstance(batch, np.ndarray):
            raise ValueError(f"{what}; got {type(batch).__name__}")
        if batch.ndim != 4:
            raise ValueError(f"{what}; got {batch.ndim} dimensions {batch.shape}. Use run_image() for a single [H, W(, C)] image")
        if batch.dtype != np.float32:
            raise ValueError(f"{what}; got dtype {batch.dtype}. Convert with batch.astype(np.float32) (values in [0, 1])")
        n, c, h, w = batch.shape
        if n < 1:
            raise ValueError(f"{what}; got an empty batch")
        if c != info.in_channels:
            raise ValueError(f"{what}; got {c} channels. Use run_image(), which converts grayscale and RGB")
        size = info.fixed_size
        if size is not None and (h, w) != (size, size):
            raise ValueError(f"{info.name} needs {size}x{size} images; got {h}x{w}. Use run_image(), which resizes")
        m = info.size_multiple
        if size is None and (h % m or w % m or h < m or w < m):
            raise ValueError(f"{info.name} needs H and W that are multiples of {m}; got {h}x{w}. Pad the image (run_image() does)")
        if not np.isfinite(batch).all():
            raise ValueError(f"{info.name}: the batch contains NaN or infinite values")

    def check_code(self, z: Any) -> None:
        d = self.info.latent_dim
        what = f"{self.info.name} decodes float32 codes [N, {d}]"
        if not isinstance(z, np.ndarray) or z.ndim != 2 or z.shape[0] < 1:
            raise ValueError(f"{what}; got {getattr(z, 'shape', type(z).__name__)}")
        if z.dtype != np.float32:
            raise ValueError(f"{what}; got dtype {z.dtype}. Convert with z.astype(np.float32)")
        if z.shape[1] != d:
            raise ValueError(f"{what}; got {z.shape[1]} values per code")
        if not np.isfinite(z).all():
            raise ValueError(f"{self.info.name}: the codes contain NaN or infinite values")

    def _need_latent(self, what: str) -> None:
        if not self.info.has_latent:
            raise ValueError(f"{self.info.name} ({self.info.net}) has no encoder/decoder, so it cannot {what}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info.name!r}, net={self.info.net}, provider={self.provider})"


LATENT_OUTPUTS = {LatentKind.Z: (LATENT_Z,), LatentKind.GAUSSIAN: (LATENT_MU, LATENT_LOGVAR)}
