"""Validation metrics: MSE, PSNR, SSIM, the VAE's negative ELBO, IoU and Dice.

All image metrics assume values in [0, 1] (data range 1) and are means over
images. SSIM uses an 11x11 Gaussian window (sigma 1.5) with valid borders and
population statistics, matching ``skimage.metrics.structural_similarity(...,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)``;
images smaller than the window use the largest odd window that fits.

The VAE's negative ELBO is in nats per image: a Bernoulli decoder likelihood
(the binary cross-entropy summed over all values, the convention of the VAE
literature for [0, 1] images; for non-binary images it is a cross-entropy
bound rather than a true likelihood) plus the analytic KL of q(z|x) to N(0, I),
summed over latent dimensions, with one reparameterised sample per image drawn
from a seeded generator so the figure is reproducible.
"""

from __future__ import annotations

import enum
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from aestudio.config import NoiseConfig, Task

_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_MSE_FLOOR = 1e-10  # caps PSNR at 100 dB for a perfect reconstruction


class MetricMode(str, enum.Enum):
    MIN = "min"
    MAX = "max"


def main_metric(task: Task) -> tuple[str, MetricMode]:
    """The metric that picks the run's best checkpoint."""
    return ("miou", MetricMode.MAX) if task is Task.SEGMENT else ("mse", MetricMode.MIN)


def is_better(value: float, best: float | None, mode: MetricMode) -> bool:
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best if mode is MetricMode.MIN else value > best


def _gaussian_window(size: int, sigma: float, channels: int, device: torch.device) -> Tensor:
    coords = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).to(torch.float32)
    return window.expand(channels, 1, size, size).contiguous()


def ssim(x: Tensor, y: Tensor) -> Tensor:
    """Per-image SSIM of [N, C, H, W] batches in [0, 1] (mean over channels and positions)."""
    x = x.float()
    y = y.float()
    channels = x.shape[1]
    size = min(_SSIM_WINDOW, x.shape[-2], x.shape[-1])
    size -= (size + 1) % 2  # odd, so the window has a centre
    w = _gaussian_window(size, _SSIM_SIGMA, channels, x.device)
    c1, c2 = 0.01**2, 0.03**2

    def filt(t: Tensor) -> Tensor:
        return F.conv2d(t, w, groups=channels)

    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x**2
    syy = filt(y * y) - mu_y**2
    sxy = filt(x * y) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(dim=1)


def psnr(mse_per_image: Tensor) -> Tensor:
    return 10 * torch.log10(1.0 / mse_per_image.clamp_min(_MSE_FLOOR))


def vae_nelbo(net: nn.Module, x_in: Tensor, target: Tensor, generator: torch.Generator) -> Tensor:
    """Per-image negative ELBO in nats (see the module docstring)."""
    mu, logvar = net.encode(x_in)
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
    z = mu + torch.exp(0.5 * logvar) * eps
    recon = net.decode(z).float().clamp(1e-6, 1 - 1e-6)
    nll = F.binary_cross_entropy(recon, target.float(), reduction="none").flatten(1).sum(dim=1)
    kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).flatten(1).sum(dim=1)
    return nll + kl


class _SegCounts:
    """Per-class TP / FP / FN accumulated over the whole set (IoU of the set, not a mean of per-image IoUs)."""

    def __init__(self, num_classes: int) -> None:
        self.k = num_classes
        self.conf = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def add(self, pred: Tensor, target: Tensor) -> None:
        t = target.long().flatten().cpu()
        p = pred.long().flatten().cpu()
        keep = (t >= 0) & (t < self.k)  # 255 (unlabelled, also the padding of mixed sizes) counts nowhere
        idx = t[keep] * self.k + p[keep]
        self.conf += torch.bincount(idx, minlength=self.k * self.k).reshape(self.k, self.k)

    def result(self, names: list[str]) -> dict[str, float]:
        tp = self.conf.diag().double()
        fp = self.conf.sum(0).double() - tp
        fn = self.conf.sum(1).double() - tp
        out: dict[str, float] = {}
        ious = []
        for c in range(self.k):
            denom = tp[c] + fp[c] + fn[c]
            iou = float(tp[c] / denom) if denom > 0 else float("nan")
            dice = float(2 * tp[c] / (2 * tp[c] + fp[c] + fn[c])) if denom > 0 else float("nan")
            out[f"iou_{names[c]}"] = iou
            out[f"dice_{names[c]}"] = dice
            if denom > 0:  # a class absent from both truth and prediction says nothing
                ious.append(iou)
        out["miou"] = float(np.mean(ious)) if ious else float("nan")
        out["pixel_acc"] = float(tp.sum() / self.conf.sum().clamp_min(1))
        return out


@torch.no_grad()
def evaluate(
    net: nn.Module,
    dataset: Dataset,
    *,
    task: Task,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    noise: NoiseConfig | None = None,
    seed: int = 0,
    num_classes: int | None = None,
    class_names: list[str] | None = None,
) -> dict[str, Any]:
    """Metrics of ``net`` on ``dataset`` (items ``(image, target)`` as in DataBundle).

    Image nets: ``mse``, ``psnr``, ``ssim`` of ``net(x)`` against the clean image
    (inputs corrupted with ``noise`` first, seeded by ``seed``); plus ``nelbo``
    for nets whose ``encode`` returns ``(mu, logvar)``. Segmentation: ``miou``,
    ``pixel_acc``, ``iou_<class>``, ``dice_<class>``. The net is put in eval mode
    and restored to its previous mode afterwards.
    """
    from aestudio.training.losses import noisy_copy

    device = torch.device(device)
    was_training = net.training
    net.eval()
    # Datasets of varying image sizes bring their own collate (padding with unlabelled pixels)
    # and are scored image by image, as the app segments them.
    if getattr(dataset, "varying_sizes", False):
        batch_size = 1
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0,
                        collate_fn=getattr(dataset, "collate_fn", None))
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    segment = task is Task.SEGMENT
    sums: dict[str, float] = {}
    count = 0
    seg: _SegCounts | None = None
    is_vae: bool | None = None
    try:
        for x, target in loader:
            if segment:
                logits = net(x.to(device))
                k = num_classes or logits.shape[1]
                seg = seg or _SegCounts(k)
                seg.add(logits.argmax(dim=1), target)
                continue
            clean = x.to(device)
            x_in = noisy_copy(x, noise, rng).to(device) if noise and noise.kind != "none" else clean
            out = net(x_in).float()
            mse = (out - clean).pow(2).flatten(1).mean(dim=1)
            parts = {"mse": mse, "psnr": psnr(mse), "ssim": ssim(out, clean)}
            if is_vae is None:
                is_vae = _has_gaussian_code(net, x_in[:1])
            if is_vae:
                parts["nelbo"] = vae_nelbo(net, x_in, clean, gen)
            for name, values in parts.items():
                sums[name] = sums.get(name, 0.0) + float(values.double().sum())
            count += x.shape[0]
    finally:
        net.train(was_training)
    if segment:
        if seg is None:
            return {}
        names = class_names or [str(c) for c in range(seg.k)]
        return seg.result(list(names) + [str(c) for c in range(len(names), seg.k)])
    return {name: total / max(count, 1) for name, total in sums.items()}


def _has_gaussian_code(net: nn.Module, x: Tensor) -> bool:
    encode = getattr(net, "encode", None)
    if encode is None:
        return False
    code = encode(x)
    return isinstance(code, tuple) and len(code) == 2
