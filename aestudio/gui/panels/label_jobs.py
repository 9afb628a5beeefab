"""Off-GUI-thread jobs of the Label tab: predicting from a snapshot, ranking by uncertainty, exporting.

Plain functions and one small cache, no widgets: they run on the panel's
``LatestRunner`` or the window's ``TaskRunner`` and return numpy arrays.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aestudio.gui.label_canvas import argb_lut, premultiplied_argb

if TYPE_CHECKING:  # torch loads on the worker that first predicts, never with the window
    import torch

    from aestudio.export.live_session import Bf16Snapshot, SnapshotSession
    from aestudio.nets.unet import UNetConfig
    from aestudio.training.live import LiveConfig

Snapshot = tuple[int, "dict[str, torch.Tensor]"]  # (trainer step, its published weights)
Rect = tuple[int, int, int, int]  # (top, left, bottom, right) in image pixels, bottom/right exclusive

UNLABELLED = 255
# A region's new prediction fades into the older one around it over this many pixels of its edge (less
# than the Label tab's VIEW_MARGIN, so the view itself shows only the new one).
FEATHER = 32

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    key: str  # the image it belongs to
    step: int  # the trainer step of the weights used
    mask: np.ndarray  # uint8 [H, W] argmax
    entropy: np.ndarray  # float32 [H, W] in [0, 1]
    layer_prediction: np.ndarray  # uint32 [H, W] premultiplied ARGB, ready for the canvas
    layer_uncertainty: np.ndarray  # uint32 [H, W] premultiplied ARGB
    cpu_s: float = 0.0  # CPU seconds the prediction thread spent on it
    region: Rect | None = None  # the part predicted from these weights (None: the whole image); outside
    #                             it the arrays hold the last prediction of this image there (255 = none)

    def covers(self, rect: Rect | None) -> bool:
        """Whether ``rect`` (None: the whole image) was predicted from this prediction's weights."""
        if self.region is None:
            return True
        if rect is None:
            return False
        t, left, b, r = self.region
        return t <= rect[0] and left <= rect[1] and rect[2] <= b and rect[3] <= r


class SnapshotNets:
    """Predictors made from published snapshots; used on one thread only.

    On a CPU with native bfloat16 (``live_session.bf16_supported``: AVX512-BF16 or AMX) the snapshot's net
    in torch, bfloat16 and channels-last (``Bf16Snapshot``: 0.55-0.6 CPU-s for 1024^2 where ONNX Runtime
    took 0.84; ``bf16`` False turns it off). Elsewhere an ONNX Runtime session whose weights are swapped per
    snapshot (``SnapshotSession``: ~3.5x less CPU than torch's float32 for the same prediction, bench
    label_live); torch float32 while its graph is being exported, or if it cannot be made for this net
    (logged once)."""

    def __init__(self) -> None:
        self._key: tuple[int, int, int] | None = None
        self._net: torch.nn.Module | None = None
        self._sessions: dict[UNetConfig, SnapshotSession | None] = {}  # by net shape
        self._exports: dict[UNetConfig, subprocess.Popen[bytes]] = {}  # graphs being exported
        self.cache: Path | None = None  # where graphs are cached (None: the user's cache folder)
        self._default_threads: int | None = None
        self._one = False
        self.bf16: bool | None = None  # None: where the CPU has it natively
        self._bf16: dict[UNetConfig, Bf16Snapshot] = {}

    def uses_bf16(self) -> bool:
        """Whether predictions run in bfloat16 (``bf16``; None is decided here, once, by the CPU)."""
        if self.bf16 is None:
            from aestudio.export.live_session import bf16_supported

            self.bf16 = bf16_supported()
        return self.bf16

    def use_threads(self, one: bool) -> None:
        """One thread while a training run shares the cores, else the process default (every core).

        torch's intra-op setting is per calling thread (OpenMP) and ORT's per session, so this leaves
        the training thread alone. Two 2-thread pools on 2 cores wait for each other's time slices: a
        prediction every few seconds then halved the training's speed (bench label_live)."""
        import torch

        if self._default_threads is None:
            self._default_threads = torch.get_num_threads()  # this thread's, before any change
        torch.set_num_threads(1 if one else self._default_threads)
        self._one = one

    def get(self, step: int, channels: int, num_classes: int, state: dict[str, torch.Tensor],
            cfg: LiveConfig) -> torch.nn.Module:
        """The snapshot as a torch net in eval mode (the fallback, and what tests compare with)."""
        from aestudio.training.live import net_from_snapshot

        key = (step, channels, num_classes)
        if key != self._key:
            self._net = net_from_snapshot(channels, num_classes, state, cfg)
            self._key = key
        assert self._net is not None
        return self._net

    def session(self, channels: int, num_classes: int, cfg: LiveConfig) -> SnapshotSession | None:
        """The ONNX Runtime session for this net shape, or None while its graph is being exported (in a
        child process, once per shape and machine: the cache survives the app) or if it cannot be made."""
        from aestudio.export.live_session import (
            SnapshotSession,
            graph_path,
            read_graph,
            start_export,
        )
        from aestudio.training.live import live_net_config

        key = live_net_config(channels, num_classes, cfg)  # the net's shape, not the training-only fields
        if key in self._sessions:
            return self._sessions[key]
        path = graph_path(key, self.cache)
        child = self._exports.get(key)
        if child is None and not path.exists():
            try:
                self._exports[key] = start_export(key, self.cache)
            except OSError:
                log.warning("predicting with torch: cannot start the graph export", exc_info=True)
                self._sessions[key] = None
            return None
        if child is not None and child.poll() is None:
            return None  # still exporting: torch meanwhile
        self._exports.pop(key, None)
        try:
            self._sessions[key] = SnapshotSession(key, *read_graph(key, self.cache))
        except Exception:  # noqa: BLE001 - any failure: predict with torch instead (logged once)
            log.warning("predicting with torch: the live U-Net could not be run in ONNX Runtime (%s)",
                        path.with_suffix(".log"), exc_info=True)
            self._sessions[key] = None
        return self._sessions[key]

    def close(self) -> None:
        """Stop graph exports still running (at the app's close: no child outlives it; a graph half
        written is never used, the file appears whole or not at all)."""
        for child in list(self._exports.values()):
            if child.poll() is None:
                child.kill()

    def probs(self, snapshot: Snapshot, channels: int, num_classes: int, cfg: LiveConfig,
              image: np.ndarray) -> np.ndarray:
        """Class probabilities [K, H, W] of ``image`` [H, W, C] under the snapshot's weights."""
        from aestudio.training.live import predict_probs

        step, state = snapshot
        if self.uses_bf16():
            from aestudio.export.live_session import Bf16Snapshot
            from aestudio.training.live import live_net_config

            key = live_net_config(channels, num_classes, cfg)
            net = self._bf16.get(key)
            if net is None:
                net = self._bf16[key] = Bf16Snapshot(key)
            net.load(step, state)
            return net.predict_probs(image)
        session = self.session(channels, num_classes, cfg)
        if session is not None:
            session.load(step, state, threads=1 if self._one else 0)
            probs = session.predict_probs(image)
        else:
            probs = predict_probs(self.get(step, channels, num_classes, state, cfg), image)
        return probs


UNCERTAINTY_RGB = (255, 225, 0)  # yellow: unlike any class colour


def uncertainty_rgba(entropy: np.ndarray) -> np.ndarray:
    """Entropy [H, W] in [0, 1] as a yellow layer whose opacity grows with doubt (unlike any class colour)."""
    h, w = entropy.shape
    out = np.empty((h, w, 4), np.uint8)
    out[..., :3] = UNCERTAINTY_RGB
    out[..., 3] = np.clip(entropy * 255.0, 0, 255).astype(np.uint8)
    return out


def prediction_rgba(mask: np.ndarray, colors: list[tuple[int, int, int]]) -> np.ndarray:
    pal = np.zeros((256, 4), np.uint8)
    for i, c in enumerate(colors[:255]):
        pal[i] = (*c, 255)
    return pal[mask]


# The layers straight from lookup tables (class or quantised doubt -> premultiplied ARGB32): the same
# pixels as premultiplied_argb(prediction_rgba / uncertainty_rgba), 4 ms instead of 65 for 1024^2.
_DOUBT_LUT = premultiplied_argb(uncertainty_rgba(np.arange(256, dtype=np.float32)[None] / 255.0))[0]


def prediction_layer(mask: np.ndarray, colors: list[tuple[int, int, int]]) -> np.ndarray:
    """uint32 [H, W] premultiplied ARGB of the class colours (255 and unknown classes transparent)."""
    return argb_lut(colors)[mask]


def uncertainty_layer(entropy: np.ndarray) -> np.ndarray:
    """uint32 [H, W] premultiplied ARGB of :func:`uncertainty_rgba`."""
    return _DOUBT_LUT[np.clip(entropy * 255.0, 0, 255).astype(np.uint8)]


def predict_image(nets: SnapshotNets, key: str, image: np.ndarray, snapshot: Snapshot,
                  channels: int, num_classes: int, cfg: LiveConfig, colors: list[tuple[int, int, int]],
                  training: bool = False, region: Rect | None = None, base: Prediction | None = None,
                  sharing: threading.Event | None = None) -> Prediction:
    """The prediction and its uncertainty for one image, from the trainer's last published weights.

    ``region``: predict only that part (the view when zoomed in, with a margin); the rest comes from
    ``base`` (the last prediction of this image, left as it was) or is empty (255, transparent). Where
    ``base`` has a prediction the region's edge is blended into it (:func:`blend_weights`): a hard edge
    there showed as a seam wherever the two weights differ, and the region's own outer pixels, predicted
    without the context beyond the region, are its least sure.
    ``sharing`` (the trainer's ``LiveTrainer.sharing``) is set while the net runs: the training's
    steps meanwhile take one thread."""
    if sharing is not None:
        sharing.set()
    try:
        return _predict(nets, key, image, snapshot, channels, num_classes, cfg, colors, training, region, base)
    finally:
        if sharing is not None:
            sharing.clear()


def _predict(nets: SnapshotNets, key: str, image: np.ndarray, snapshot: Snapshot, channels: int, num_classes: int,
             cfg: LiveConfig, colors: list[tuple[int, int, int]], training: bool, region: Rect | None,
             base: Prediction | None) -> Prediction:
    from aestudio.training.live import entropy_map

    c0 = time.thread_time()
    nets.use_threads(one=training)
    h, w = image.shape[:2]
    if region is not None and tuple(region) == (0, 0, h, w):
        region = None
    t, left, b, r = region if region is not None else (0, 0, h, w)
    probs = nets.probs(snapshot, channels, num_classes, cfg, _channels(image[t:b, left:r], channels))
    mask = probs.argmax(axis=0).astype(np.uint8)
    ent = entropy_map(probs)
    # The layers are made here, on the prediction thread, so the GUI thread only wraps them.
    layer_p = prediction_layer(mask, colors)
    if region is None:
        return Prediction(key, snapshot[0], mask, ent, layer_p, uncertainty_layer(ent), cpu_s=time.thread_time() - c0)
    full = _base_arrays(base, key, (h, w))
    old_mask, old_ent, old_p = full[0][t:b, left:r], full[1][t:b, left:r], full[2][t:b, left:r]
    weight = np.where(old_mask != UNLABELLED, blend_weights((h, w), (t, left, b, r)), np.float32(1.0))
    if (weight < 1.0).any():  # an older prediction to blend the region's edge into
        ent = weight * ent + (1.0 - weight) * old_ent
        layer_p = _mix_argb(layer_p, old_p, weight)
        mask = np.where(weight >= 0.5, mask, old_mask)
    for whole, part in zip(full, (mask, ent, layer_p, uncertainty_layer(ent)), strict=True):
        whole[t:b, left:r] = part
    mask, ent, layer_p, layer_u = full
    return Prediction(key, snapshot[0], mask, ent, layer_p, layer_u, cpu_s=time.thread_time() - c0, region=region)


def blend_weights(shape: tuple[int, int], region: Rect, feather: int | None = None) -> np.ndarray:
    """float32 [b - t, r - left]: how much of a region's new prediction to show over the old one around it,
    0 at an edge inside the image rising to 1 at ``feather`` px (``FEATHER``) from it; 1 along the image's
    own borders (nothing lies beyond them)."""
    feather = FEATHER if feather is None else feather
    h, w = shape
    t, left, b, r = region

    def ramp(n: int, lo_open: bool, hi_open: bool) -> np.ndarray:
        i = np.arange(n, dtype=np.float32)
        out = np.ones(n, np.float32)
        if lo_open:
            out = np.minimum(out, (i + 0.5) / feather)
        if hi_open:
            out = np.minimum(out, (n - i - 0.5) / feather)
        return np.clip(out, 0.0, 1.0)

    rows = ramp(b - t, t > 0, b < h)
    cols = ramp(r - left, left > 0, r < w)
    return np.minimum(rows[:, None], cols[None, :])


def _mix_argb(new: np.ndarray, old: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Premultiplied ARGB32 ``weight * new + (1 - weight) * old``, per channel (premultiplied colours mix linearly)."""
    n = new.view(np.uint8).reshape(*new.shape, 4).astype(np.float32)
    o = old.view(np.uint8).reshape(*old.shape, 4).astype(np.float32)
    mixed = np.rint(o + weight[..., None] * (n - o)).astype(np.uint8)
    return np.ascontiguousarray(mixed).view(np.uint32).reshape(new.shape)


def _base_arrays(base: Prediction | None, key: str, shape: tuple[int, int]) -> list[np.ndarray]:
    """Copies of ``base``'s arrays to write a region into, or empty ones (nothing predicted: 255, transparent)."""
    if base is not None and base.key == key and base.mask.shape == shape:
        return [base.mask.copy(), base.entropy.copy(), base.layer_prediction.copy(), base.layer_uncertainty.copy()]
    return [np.full(shape, UNLABELLED, np.uint8), np.zeros(shape, np.float32), np.zeros(shape, np.uint32),
            np.zeros(shape, np.uint32)]


def _channels(image: np.ndarray, channels: int) -> np.ndarray:
    img = np.asarray(image, np.float32)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == channels:
        return img
    if channels == 1:
        return (img[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    return np.repeat(img[..., :1], 3, axis=-1)


def rank_by_uncertainty(paths: list[tuple[str, Path, Path]], snapshot: Snapshot, channels: int,
                        num_classes: int, cfg: LiveConfig, training: bool = False,
                        nets: SnapshotNets | None = None) -> list[tuple[str, float]]:
    """(key, mean entropy over the unlabelled pixels) for every image, most uncertain first.

    ``nets``: the caller's, kept between rankings (the Label tab's: one ONNX Runtime session and at most
    one graph export for all of them; it closes them at shutdown). Without, one is made and closed
    here: each ranking used to leave its own export child running, one more per click.

    The calling thread's torch thread count is restored afterwards: the ranking runs on a shared
    worker thread, which a ranking made while training used to leave on one thread for good."""
    import torch

    from aestudio.data.io import read_mask
    from aestudio.data.levels import read_stretched  # as the trainer and the canvas read it
    from aestudio.training.live import entropy_map

    own = nets is None
    nets = SnapshotNets() if nets is None else nets
    threads = torch.get_num_threads()
    try:
        nets.use_threads(one=training)
        scores: list[tuple[str, float]] = []
        for key, image_path, mask_path in paths:
            image = _channels(read_stretched(image_path), channels)
            ent = entropy_map(nets.probs(snapshot, channels, num_classes, cfg, image))
            unl = read_mask(mask_path) == UNLABELLED if mask_path.exists() else np.ones(ent.shape, bool)
            scores.append((key, float(ent[unl].mean()) if unl.any() else 0.0))
    finally:
        torch.set_num_threads(threads)
        if own:
            nets.close()
    return sorted(scores, key=lambda s: -s[1])


def export_bundle(snapshot: Snapshot, channels: int, num_classes: int, cfg: LiveConfig, out_dir: Path,
                  name: str, class_names: list[str], class_colors: list[tuple[int, int, int]],
                  data_spec: str = "") -> Path:
    """Export the snapshot's U-Net as an ONNX bundle (segments folders in the Segment tab and the CLI).
    ``data_spec`` (the project's ``pairs:``) records what it learned from: a BioImage Model Zoo package
    made from the bundle scales its input as the app reads those images (8-bit /255, 16-bit stretched)."""
    from aestudio.data.levels import input_kind
    from aestudio.export.exporter import export_net
    from aestudio.palette import default_palette
    from aestudio.training.live import live_net_config, net_from_snapshot

    net_cfg = live_net_config(channels, num_classes, cfg)
    k = net_cfg.num_classes  # the net's classes (at least 2): one name and colour each
    net = net_from_snapshot(channels, num_classes, snapshot[1], cfg)
    names = (list(class_names) + [f"class {i}" for i in range(len(class_names), k)])[:k]
    colors = (list(class_colors) + default_palette(k)[len(class_colors):])[:k]
    export_net(net, "unet", net_cfg, out_dir, measure_timings=False,
               metadata={"name": name, "class_names": names, "class_colors": [list(c) for c in colors],
                         "training": {"source": "label project", "step": snapshot[0],
                                      **({"data_spec": data_spec, "input_kind": input_kind(data_spec)}
                                         if data_spec else {})}})
    return out_dir

