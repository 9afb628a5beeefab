"""Live training on painted labels: a U-Net learns a labelling project's strokes while they are painted.

:class:`LiveTrainer` holds the net, its optimizer and the examples (image +
sparse mask, 255 = unlabelled); :meth:`LiveTrainer.events` is a generator of
the ordinary training events (``RunStarted``, ``StepEnded``, ``TrainFinished``)
so the app's ``TrainWorker`` drives it like any run. New strokes reach the
trainer through :meth:`LiveTrainer.update_mask` (a copy, under a lock) and are
in the very next batch. Every ``snapshot_seconds`` the trainer publishes a CPU
copy of its weights; predictions for the screen are made from that copy on
another thread (:func:`predict_probs`), never from the net being trained.
Training again continues from the current weights and optimizer state.

Batches: random crops (labelled-pixel centred, flipped, turned by 90 degrees,
brightness and contrast varied) of the images that hold
labels, padded to the net's multiple with 255 (see :mod:`aestudio.data.crops`);
the loss is the segmentation loss over labelled pixels only. The strokes are
first grown to the image regions they fall in (:mod:`aestudio.data.regions`);
grown pixels weigh ``LiveConfig.regions`` (painted ones 1) and never replace a
painted value.

What is published (for the screen, the project's saved model and exports) is an
exponential moving average of the trained weights (``LiveConfig.ema``): steadier
than the last step's, and measured better on most seeds (bench ``label_quality``).
Optional, off: pseudo-labels on unlabelled pixels and unpainted images
(``LiveConfig.pseudo``, :func:`pseudo_label_loss`), measured worse at short budgets.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from aestudio._malloc import keep_freed_memory
from aestudio.config import FinishReason
from aestudio.data.base import UNLABELLED
from aestudio.data.crops import crop_window, pad_collate
from aestudio.training.ema import update_average
from aestudio.training.events import Event, RunStarted, StepEnded, TrainFinished
from aestudio.training.losses import soft_dice_loss
from aestudio.training.steptimes import Sharing, StepLog
from aestudio.training.threads import ThreadChooser

if TYPE_CHECKING:  # the net modules load when a trainer is built, not with this module
    from aestudio.nets.unet import UNetConfig

log = logging.getLogger(__name__)

NET_NAME = "unet"


def _mask_tensor(mask: np.ndarray) -> torch.Tensor:
    """The trainer's own copy of an index mask, kept as uint8 (values 0-254, 255 unlabelled).

    Called on the GUI thread after every stroke: int64 made two 8x copies (32 MB each for a
    2048 x 2048 mask) and counted over them; one uint8 copy is 4 MB.
    """
    return torch.from_numpy(np.array(mask, dtype=np.uint8, copy=True))


@dataclass(frozen=True)
class LiveConfig:
    crop: int = 128  # crop side: objects are learnt at the images' own scale
    batch_size: int = 8  # crops per step: ~0.3 s a step on 2 CPU cores, so snapshots stay fresh
    lr: float = 2e-3  # Adam; the rate issue 13 measured best for U-Nets at this scale
    base_channels: int = 16  # U-Net width
    depth: int = 3  # U-Net depth (inputs padded to multiples of 2**depth)
    snapshot_seconds: float = 2.0  # how often weights are published for the on-screen prediction
    max_steps: int | None = None  # stop after this many steps of this session (tests, benches)
    seed: int = 0
    regions: float = 0.5  # loss weight of labels grown from strokes to image regions (0 = strokes only)
    rotate: bool = True  # random 90-degree turns of the crops besides flips (objects seldom have an up)
    jitter: float = 0.1  # per-crop brightness shift and contrast factor within +-jitter (0 = off)
    input_stride: int = 1  # 2: the U-Net works at half resolution, logits upsampled (UNetConfig.input_stride)
    balance: float = 0.0  # cross-entropy class weights ~ (share of the batch's labelled pixels) ** -balance
    ema: float = 0.99  # > 0: the published weights are an exponential moving average of the trained ones (decay)
    pseudo: float = 0.0  # > 0: loss weight of pseudo-labels on unlabelled pixels (teacher: the EMA, else the net)
    pseudo_threshold: float = 0.9  # a pseudo-label counts where the teacher's top class has at least this probability
    unlabelled_share: float = 0.0  # with `pseudo`: share of each batch's crops taken from wholly unpainted images


@dataclass
class _Example:
    image: torch.Tensor  # float16 [C, H, W]: half the memory of float32, ~11 bits (enough for 16-bit data's use here)
    mask: torch.Tensor  # uint8 [H, W], 255 unlabelled: what was painted
    labelled: int  # number of labelled pixels
    regions: np.ndarray | None = None  # int32 [H, W] region ids, made once per image in the training thread
    grown: torch.Tensor | None = None  # uint8 [H, W]: `mask` grown to its regions (None: not made yet)


def live_net_config(channels: int, num_classes: int, cfg: LiveConfig) -> UNetConfig:
    """The U-Net config of a live trainer (and of the bundle exported from its snapshot): at least two
    classes, ``cfg``'s depth and width."""
    from aestudio.nets.unet import UNetConfig

    return UNetConfig(in_channels=channels, num_classes=max(2, num_classes), depth=cfg.depth,
                      base_channels=cfg.base_channels, input_stride=cfg.input_stride)


class LiveTrainer:
    """A U-Net trained in the background on sparse labels (see the module docstring)."""

    def __init__(self, channels: int, num_classes: int, cfg: LiveConfig | None = None,
                 state: dict[str, torch.Tensor] | None = None, step: int = 0) -> None:
        from aestudio.nets.registry import build_net

        self.cfg = cfg or LiveConfig()
        self.channels = channels
        self.net_cfg = live_net_config(channels, num_classes, self.cfg)
        torch.manual_seed(self.cfg.seed)
        self.net = build_net(NET_NAME, self.net_cfg)
        if state is not None:
            load_matching(self.net, state)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr)
        self.step = step
        self._ema: torch.nn.Module | None = None  # eval-mode copy holding the averaged weights (made at the first step)
        self._ema_updates = 0
        self._examples: dict[str, _Example] = {}
        self._lock = threading.Lock()
        self._rng = np.random.default_rng(self.cfg.seed + step)
        self._snapshot: tuple[int, dict[str, torch.Tensor]] = (step, self._copy_state())
        self._collate = pad_collate(self.net_cfg.size_multiple)
        self._publish_soon = False  # new strokes: publish after the next step instead of waiting
        # Set while another thread predicts for the screen: the steps then run on one torch thread. Two
        # OpenMP threads and the prediction's thread on 2 cores wait for each other at every barrier:
        # in one process at load ~12, 0.18 steps/s on 2 threads beside a prediction, 0.45 on one.
        self.sharing = Sharing()
        # Every step's period and whether a prediction overlapped it: the Label tab's refresh schedule reads
        # from it how much of its speed the training keeps beside the predictions (training/steptimes.py).
        self.step_log = StepLog()
        self._threads: ThreadChooser | None = None
        self.pretrained = 0  # encoder tensors copied from a pre-trained autoencoder

    # ------------------------------------------------------------- examples (any thread)

    @property
    def num_classes(self) -> int:
        return int(self.net_cfg.num_classes)

    def set_example(self, key: str, image: np.ndarray, mask: np.ndarray) -> None:
        """Add or replace an example: image float32 [H, W, C] in [0, 1], mask [H, W] (255 unlabelled)."""
        img = np.asarray(image, np.float32)
        if img.ndim == 2:
            img = img[..., None]
        if img.shape[-1] != self.channels:
            img = img.mean(axis=-1, keepdims=True) if self.channels == 1 else np.repeat(img[..., :1], 3, axis=-1)
        if img.shape[:2] != np.shape(mask):
            raise ValueError(f"{key}: mask {np.shape(mask)} does not match image {img.shape[:2]}")
        image_t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float16))
        mask_t = _mask_tensor(mask)
        with self._lock:
            self._examples[key] = _Example(image_t, mask_t, int((mask_t != UNLABELLED).sum()))

    def update_mask(self, key: str, mask: np.ndarray) -> None:
        """New strokes on ``key``: the next batch sees them."""
        mask_t = _mask_tensor(mask)
        with self._lock:
            ex = self._examples.get(key)
            if ex is not None:  # the regions stay (same image); the grown labels are remade in the next batch
                self._examples[key] = replace(ex, mask=mask_t, labelled=int((mask_t != UNLABELLED).sum()), grown=None)
            self._publish_soon = True
            self._ema_updates = 0  # the average restarts its ramp, so the screen follows new strokes within steps

    def has_example(self, key: str) -> bool:
        with self._lock:
            return key in self._examples

    def labelled_pixels(self) -> int:
        with self._lock:
            return sum(ex.labelled for ex in self._examples.values())

    def grow_classes(self, num_classes: int) -> None:
        """More classes than the head has: a wider head, every other weight kept (call while not training)."""
        if num_classes <= self.num_classes:
            return
        from aestudio.nets.registry import build_net

        state = self.net.state_dict()
        self.net_cfg = live_net_config(self.channels, num_classes, self.cfg)
        self.net = build_net(NET_NAME, self.net_cfg)
        load_matching(self.net, state)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr)
        self._ema = None
        with self._lock:
            self._snapshot = (self.step, self._copy_state())

    # ------------------------------------------------------------- pre-training

    def pretrain_encoder(self, images: list[np.ndarray], seconds: float, stop: threading.Event | None = None,
                         crop: int = 64, noise: float = 0.1) -> int:
        """Start the U-Net's encoder from a denoising conv autoencoder trained on ``images``.

        Every image of a project can teach the encoder what the pictures look like, painted or
        not: random crops (flipped), Gaussian noise in, the clean crop out, for ``seconds``.
        Returns the number of encoder tensors copied into the U-Net (call while not training)."""
        from aestudio.nets.registry import build_net, default_config

        if not images:
            return 0
        m = self.net_cfg.size_multiple
        crop = min(crop, min(min(np.shape(im)[:2]) for im in images)) // m * m  # small images: a smaller crop
        if crop < 2 * m:
            return 0
        cfg = default_config("conv_ae", in_channels=self.channels, image_size=crop, latent_dim=64,
                             base_channels=self.net_cfg.base_channels, depth=self.net_cfg.depth)
        ae = build_net("conv_ae", cfg)
        opt = torch.optim.Adam(ae.parameters(), lr=self.cfg.lr)
        tensors = [torch.from_numpy(np.ascontiguousarray(np.asarray(im).reshape(
            im.shape[0], im.shape[1], -1).transpose(2, 0, 1), dtype=np.float16)) for im in images]
        tensors = [t if t.shape[0] == self.channels else (t.mean(0, keepdim=True) if self.channels == 1
                                                          else t[:1].expand(3, -1, -1)) for t in tensors]
        end = time.perf_counter() + seconds
        ae.train()
        while time.perf_counter() < end and not (stop is not None and stop.is_set()):
            batch = []
            for i in self._rng.integers(len(tensors), size=self.cfg.batch_size):
                t = tensors[i]
                y = int(self._rng.integers(0, t.shape[1] - crop + 1))
                x = int(self._rng.integers(0, t.shape[2] - crop + 1))
                c = t[:, y:y + crop, x:x + crop]
                batch.append(c.flip(-1) if self._rng.random() < 0.5 else c)
            clean = torch.stack(batch).float()
            noisy = (clean + noise * torch.randn_like(clean)).clamp(0, 1)
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(ae(noisy), clean)
            loss.backward()
            opt.step()
        copied = int(self.net.load_encoder_state(ae.state_dict()))
        self.pretrained = copied
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr)
        self._ema = None
        self._publish()
        return copied

    # ------------------------------------------------------------- weights

    def _copy_state(self) -> dict[str, torch.Tensor]:
        """The weights to publish: the moving average when ``cfg.ema`` is on, else the trained ones."""
        source = self._ema if self._ema is not None and self.cfg.ema > 0 else self.net
        return {k: v.detach().clone() for k, v in source.state_dict().items()}

    def _update_ema(self) -> None:
        """Move the averaged weights towards the trained ones (after an optimizer step).

        The decay ramps up as ``(1 + n) / (10 + n)`` towards ``cfg.ema``, so the first snapshots
        follow training instead of the random start. BatchNorm's running statistics are averaged too."""
        if self._ema is None:
            self._ema = copy.deepcopy(self.net).eval().requires_grad_(False)
            self._ema_updates = 0
            return
        self._ema_updates += 1
        update_average(self._ema, self.net, self._ema_updates, self.cfg.ema)

    def snapshot(self) -> tuple[int, dict[str, torch.Tensor]]:
        """(step, CPU weights) last published; safe to call from any thread."""
        with self._lock:
            return self._snapshot

    def save(self, path: Path) -> None:
        from aestudio.training.checkpoint import save_weights

        path.parent.mkdir(parents=True, exist_ok=True)
        save_weights(path, self.snapshot()[1], step=self.step, epoch=0)

    def record(self, weights: str) -> dict[str, Any]:
        """What a project file keeps about this model (paths relative to the project)."""
        from aestudio.nets.registry import net_config_to_dict

        return {"net": net_config_to_dict(NET_NAME, self.net_cfg), "weights": weights, "step": self.step,
                "crop": self.cfg.crop}

    # ------------------------------------------------------------- training

    def events(self, stop: threading.Event, pause: threading.Event | None = None) -> Iterator[Event]:
        """Train until ``stop`` (or ``cfg.max_steps`` steps); the generator a TrainWorker runs."""
        keep_freed_memory()  # else each step faults ~50 MB in afresh (and a refresh beside it hid that cost)
        start_step = self.step
        n_images = sum(1 for ex in self._examples.values() if ex.labelled)
        yield RunStarted(run_dir=None, device="cpu", device_name=f"CPU ({torch.get_num_threads()} threads)",
                         net_name=NET_NAME, num_params=sum(p.numel() for p in self.net.parameters()),
                         train_size=n_images, val_size=0, batch_size=self.cfg.batch_size, epochs=1,
                         steps_per_epoch=self.cfg.max_steps or 0, start_epoch=0, start_step=start_step)
        reason, message = FinishReason.STOPPED, "stopped"
        last_publish = time.perf_counter()
        ips: float | None = None
        threads = torch.get_num_threads()  # this thread's own (OpenMP's setting is per thread)
        if self._threads is None or self._threads.most != threads:  # kept over Stop/Train: the machine's
            self._threads = ThreadChooser(threads, start=time.perf_counter())
        chooser = self._threads  # 1 or all threads, whichever made the faster steps
        self.step_log.restart()
        try:
            while not stop.is_set():
                sharing = self.sharing.is_set()
                want = chooser.want(time.perf_counter(), sharing)
                if torch.get_num_threads() != want:
                    torch.set_num_threads(want)
                if pause is not None and pause.is_set():
                    self.step_log.restart()
                    time.sleep(0.05)
                    continue
                if self.cfg.max_steps is not None and self.step - start_step >= self.cfg.max_steps:
                    reason, message = FinishReason.DONE, f"trained {self.cfg.max_steps} steps"
                    break
                batch = self._batch()
                if batch is None:
                    reason, message = FinishReason.FAILED, "nothing is labelled yet: paint a few strokes of each class first"
                    break
                t0 = time.perf_counter()
                loss = self._train_step(*batch)
                if not math.isfinite(loss):
                    reason, message = FinishReason.DIVERGED, f"loss became {loss}; lower the learning rate"
                    break
                self.step += 1
                self.step_log.record(self.sharing, threads=want)
                dt = time.perf_counter() - t0
                chooser.record(want, dt, t0 + dt, sharing or self.sharing.is_set())
                rate = batch[0].shape[0] / max(dt, 1e-9)
                ips = rate if ips is None else 0.9 * ips + 0.1 * rate
                now = time.perf_counter()
                if now - last_publish >= self.cfg.snapshot_seconds or self._publish_soon:
                    self._publish_soon = False
                    self._publish()
                    last_publish = now
                total = start_step + self.cfg.max_steps if self.cfg.max_steps else self.step + 1
                yield StepEnded(epoch=0, step=self.step, total_steps=total, loss=loss, terms={}, images_per_s=ips,
                                eta_s=0.0, lr=self.cfg.lr)
        finally:
            torch.set_num_threads(threads)
            self._publish()
        yield TrainFinished(reason=reason, message=message, run_dir=None, epoch=0, step=self.step)

    def _publish(self) -> None:
        state = self._copy_state()
        with self._lock:
            self._snapshot = (self.step, state)

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Jittered images [N, C, h, w], the same before jitter (the teacher's view), and targets int64
        [N, 3, h, w]: the painted labels, the grown ones, and 0 inside the crop (255 in the padding).

        With ``cfg.pseudo`` and ``cfg.unlabelled_share``, that share of the crops comes from wholly
        unpainted images (targets all unlabelled: only the pseudo-label term learns from them)."""
        with self._lock:
            examples = [(k, ex) for k, ex in self._examples.items() if ex.labelled]
            blank = [(k, ex) for k, ex in self._examples.items() if not ex.labelled] if self.cfg.pseudo > 0 else []
        if not examples:
            return None
        n_blank = int(round(self.cfg.batch_size * self.cfg.unlabelled_share)) if blank else 0
        n_blank = min(n_blank, self.cfg.batch_size - 1)  # at least one labelled crop per step
        chosen = [examples[i] for i in self._rng.integers(len(examples), size=self.cfg.batch_size - n_blank)]
        if n_blank:
            chosen += [blank[i] for i in self._rng.integers(len(blank), size=n_blank)]
        items = []
        grown_now: dict[str, _Example] = {}  # grown once per batch: a list entry still holds the ungrown example
        for key, ex in chosen:
            if ex.labelled:
                if key not in grown_now:
                    grown_now[key] = self._grown(key, ex)
                ex = grown_now[key]
            grown = ex.grown if ex.grown is not None and self.cfg.regions > 0 else ex.mask  # cfg may change between runs
            targets = torch.stack([ex.mask, grown, torch.zeros_like(ex.mask)])
            top, left, h, w = crop_window(targets[1], self.cfg.crop, self._rng)
            x, t = ex.image[:, top:top + h, left:left + w], targets[:, top:top + h, left:left + w]
            if self._rng.random() < 0.5:
                x, t = x.flip(-1), t.flip(-1)
            if self._rng.random() < 0.5:
                x, t = x.flip(-2), t.flip(-2)
            turns = int(self._rng.integers(4)) if self.cfg.rotate else 0
            if turns:
                x, t = torch.rot90(x, turns, (-2, -1)), torch.rot90(t, turns, (-2, -1))
            items.append((x.float(), t))
        images, targets = self._collate(items)  # only the crops widen to int64
        return self._jitter(images), images, targets

    def _jitter(self, x: torch.Tensor) -> torch.Tensor:
        """Brightness and contrast of each crop varied a little (lighting differs between images)."""
        j = self.cfg.jitter
        if j <= 0:
            return x
        n = x.shape[0]
        shift = torch.from_numpy(self._rng.uniform(-j, j, (n, 1, 1, 1)).astype(np.float32))
        gain = torch.from_numpy(self._rng.uniform(1 - j, 1 + j, (n, 1, 1, 1)).astype(np.float32))
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return ((x - mean) * gain + mean + shift).clamp(0, 1)

    def _grown(self, key: str, ex: _Example) -> _Example:
        """``ex`` with its strokes grown to regions (made here, in the training thread, once per mask)."""
        if self.cfg.regions <= 0 or ex.grown is not None:
            return ex
        from aestudio.data.regions import grow, segments

        regions = ex.regions
        if regions is None:
            regions = segments(ex.image.float().permute(1, 2, 0).numpy())
        ex2 = replace(ex, regions=regions, grown=torch.from_numpy(grow(ex.mask.numpy(), regions)))
        with self._lock:
            current = self._examples.get(key)
            if current is ex:
                self._examples[key] = ex2
            elif current is not None and current.image is ex.image and current.regions is None:
                self._examples[key] = replace(current, regions=regions)  # new strokes meanwhile: keep the regions
        return ex2

    def _train_step(self, x: torch.Tensor, clean: torch.Tensor, targets: torch.Tensor) -> float:
        pseudo = None
        if self.cfg.pseudo > 0:
            # The teacher sees the crop before jitter; the student must agree under the jitter.
            teacher = self._ema if self._ema is not None and self.cfg.ema > 0 else self.net.eval()
            with torch.no_grad():
                pseudo = torch.softmax(teacher(clean).float(), dim=1)
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.net(x)
        loss = sparse_loss(logits, targets[:, 0], targets[:, 1], self.cfg.regions, self.cfg.balance)
        if pseudo is not None:
            unlabelled = (targets[:, 1] == UNLABELLED) & (targets[:, 2] != UNLABELLED)
            loss = loss + self.cfg.pseudo * pseudo_label_loss(logits, pseudo, unlabelled, self.cfg.pseudo_threshold)
        value = float(loss.detach())
        if math.isfinite(value):
            loss.backward()
            self.optimizer.step()
            if self.cfg.ema > 0:
                self._update_ema()
        return value


def pseudo_label_loss(logits: torch.Tensor, teacher_probs: torch.Tensor, unlabelled: torch.Tensor,
                      threshold: float) -> torch.Tensor:
    """FixMatch's unlabelled term per pixel: cross-entropy towards the teacher's top class where the
    teacher is at least ``threshold`` sure, over the ``unlabelled`` pixels only (bool [N, H, W]).

    Averaged over all unlabelled pixels (confident or not), so the term grows as the teacher becomes
    sure; it vanishes where the student agrees with the teacher with certainty, and labelled pixels
    never receive a pseudo-label (their own labels stay the only target there)."""
    confidence, target = teacher_probs.max(dim=1)
    use = unlabelled & (confidence >= threshold)
    if not bool(use.any()):
        return logits.float().sum() * 0.0
    ce = torch.nn.functional.cross_entropy(logits.float(), target, reduction="none")
    return (ce * use).sum() / unlabelled.sum().clamp_min(1)


def sparse_loss(logits: torch.Tensor, painted: torch.Tensor, grown: torch.Tensor, weight: float,
                balance: float = 0.0) -> torch.Tensor:
    """Cross-entropy (painted pixels weigh 1, grown-only ones ``weight``) + soft Dice over the grown labels.

    With nothing grown (``grown`` equal to ``painted``) this is the plain segmentation loss over
    labelled pixels (:func:`aestudio.training.losses.segmentation_losses`); a batch without any
    label gives a zero loss still tied to the graph. ``balance`` > 0 weighs each pixel's
    cross-entropy by its class's share of the batch's labelled pixels to the power ``-balance``
    (grown labels are mostly background: large regions), normalised to a mean weight of 1."""
    labelled = grown != UNLABELLED
    if not bool(labelled.any()):
        return logits.float().sum() * 0.0
    w = torch.where(painted != UNLABELLED, 1.0, torch.where(labelled, float(weight), 0.0))
    if balance > 0:
        k = logits.shape[1]
        counts = torch.bincount(grown[labelled].long(), minlength=k)[:k].float()
        share = counts / counts.sum()
        cw = torch.where(counts > 0, share.clamp_min(1e-6) ** -float(balance), torch.zeros(()))
        cw = cw / (cw * share).sum()  # a labelled pixel weighs 1 on average
        w = w * cw[grown.long().clamp_max(k - 1)]
    ce = torch.nn.functional.cross_entropy(logits.float(), grown.long(), ignore_index=UNLABELLED, reduction="none")
    return (ce * w).sum() / w.sum().clamp_min(1e-6) + soft_dice_loss(logits, grown)


def load_matching(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> int:
    """Load the tensors of ``state`` whose names and shapes fit ``net``; returns how many."""
    own = net.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    net.load_state_dict(fitting, strict=False)
    return len(fitting)


def net_from_snapshot(channels: int, num_classes: int, state: dict[str, torch.Tensor], cfg: LiveConfig | None = None) -> torch.nn.Module:
    """A U-Net in eval mode with ``state`` loaded (for predicting from a published snapshot)."""
    from aestudio.nets.registry import build_net

    net = build_net(NET_NAME, live_net_config(channels, num_classes, cfg or LiveConfig()))
    load_matching(net, state)
    return net.eval()


@torch.no_grad()
def predict_probs(net: torch.nn.Module, image: np.ndarray, *, tile: int = 512, flips: bool = False) -> np.ndarray:
    """Class probabilities float32 [K, H, W] of image [H, W, C] in [0, 1] (tiled when large).

    ``flips``: the mean of the predictions for the image and its three mirror images (4x the cost)."""
    from aestudio.inference.imageops import pad_to_multiple
    from aestudio.inference.tiling import tiled_apply

    img = np.asarray(image, np.float32)
    if img.ndim == 2:
        img = img[..., None]
    height, width = img.shape[:2]
    multiple = int(getattr(net, "size_multiple", 0) or 2 ** int(getattr(net, "depth", 3)))
    chw = np.ascontiguousarray(img.transpose(2, 0, 1))
    chw, _ = pad_to_multiple(chw, multiple)

    def run(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch))
        if not flips:
            return torch.softmax(net(x), dim=1).numpy()
        views = [(), (-1,), (-2,), (-2, -1)]
        total = sum(torch.softmax(net(x.flip(d) if d else x), dim=1).flip(d) if d else torch.softmax(net(x), dim=1)
                    for d in views)
        return (total / len(views)).numpy()

    if max(chw.shape[1:]) <= tile:
        probs = run(chw[None])[0]
    else:
        probs = tiled_apply(chw, run, tile=tile, overlap=32, multiple=multiple)
    return np.ascontiguousarray(probs[:, :height, :width], dtype=np.float32)


def entropy_map(probs: np.ndarray) -> np.ndarray:
    """Per-pixel entropy of [K, H, W] probabilities, scaled to [0, 1] (1 = all classes alike)."""
    k = probs.shape[0]
    p = np.clip(probs, 1e-8, 1.0)
    ent = -(p * np.log(p)).sum(axis=0)
    return (ent / math.log(max(k, 2))).astype(np.float32)
