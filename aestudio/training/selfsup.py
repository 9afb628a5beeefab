"""Self-supervised denoising objectives: learn from noisy images alone.

Two methods, both for noise that is independent from pixel to pixel and
zero-mean given the clean image (Gaussian, Poisson, Poisson-Gaussian):

* **N2V2** (Noise2Void with the N2V2 fixes; Krull et al. 2019, Hoeck et al.
  2022): a sparse, stratified set of pixels is *blind-spotted*: each one's value
  is replaced by the median of its 5x5 neighbourhood, **without the centre**
  (N2V2's fix: replacing with a random neighbour can pick the centre itself, and
  the plain N2V replacement leaves tell-tale checkerboards). The loss is the
  MSE between the net's output and the noisy input at those pixels only. The
  replacement also ignores every other masked pixel, so no masked value reaches
  the input at all (``blind_spot_inputs`` is tested for exactly that). N2V2's
  other fixes (blur-pool instead of max-pool, no top-level skip) concern U-Nets;
  ``denoising_ae`` has neither downsampling nor skips.
* **Neighbor2Neighbor** (Huang et al. 2021): two half-size images are drawn from
  each 2x2 cell of the noisy image (two different, adjacent pixels); the net maps
  one to the other, plus a regulariser that ties it to the full-size output.

The random draws use torch's global RNG unless a generator is given; the
training loop saves and restores that RNG, so a resumed run draws the same
masks. Everything here is pure torch and device-agnostic.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from aestudio.config import SelfSupervised

MASK_FRACTION = 1 / 36  # N2V2's default of ~3 % blind spots: one pixel per 6x6 cell
MEDIAN_RADIUS = 2  # 5x5 neighbourhood for the replacement value (N2V2)
NE2NE_GAMMA = 1.0  # regulariser weight (the paper ramps it to 2); 1 beat 0 by 1.1 dB at 40 steps (DESIGN-notes)
ANCHOR_WEIGHT = 4.0  # fine-tuning: weight of the starting net's output as the target where clipping biases the noisy one
SELECTION_METRIC = "sure_mse"  # the best-checkpoint metric of self-supervised runs (lower is better)
_VAL_SEED_OFFSET = 104_729  # validation masks: a fixed stream apart from training's


# ---------------------------------------------------------------- N2V2: blind spots


def blind_spot_mask(shape: tuple[int, int, int], fraction: float | None = None,
                    generator: torch.Generator | None = None) -> Tensor:
    """Bool [N, 1, H, W]: one random pixel per cell of side ``round(1/sqrt(fraction))`` (stratified, as N2V).

    Stratification spreads the blind spots evenly, so no two are closer than
    the cells allow and each median has mostly unmasked neighbours."""
    n, h, w = shape
    cell = max(2, round((fraction or MASK_FRACTION) ** -0.5))
    rows, cols = -(-h // cell), -(-w // cell)
    dy = torch.randint(0, cell, (n, rows, cols), generator=generator)
    dx = torch.randint(0, cell, (n, rows, cols), generator=generator)
    y = torch.arange(rows)[None, :, None] * cell + dy
    x = torch.arange(cols)[None, None, :] * cell + dx
    keep = (y < h) & (x < w)  # cells cut by the border keep only their inside draws
    b = torch.arange(n)[:, None, None].expand_as(y)
    mask = torch.zeros(n, 1, h, w, dtype=torch.bool)
    mask[b[keep], 0, y[keep], x[keep]] = True
    return mask


def neighbourhood_median(x: Tensor, exclude: Tensor, radius: int = MEDIAN_RADIUS, at: Tensor | None = None) -> Tensor:
    """The median of each pixel's (2r+1)^2 window **without the centre and without excluded pixels**.

    ``exclude`` is bool [N, 1, H, W]. Outside the image counts as excluded (NaN
    padding): reflect or replicate padding would copy pixels near the border,
    the centre among them, into its own window. Returns [N, C, H, W], or with
    ``at`` (bool [N, 1, H, W]) only those pixels' medians as [K, C] in
    ``nonzero`` order (the training path: ~3 % of the pixels, far cheaper)."""
    n, c, h, w = x.shape
    r = radius
    values = x.float().masked_fill(exclude, float("nan"))
    padded = F.pad(values, (r,) * 4, value=float("nan"))
    full = at is None
    if at is None:
        at = torch.ones(n, 1, h, w, dtype=torch.bool, device=x.device)
    b, _, y, xx = at.nonzero(as_tuple=True)
    offsets = [(dy, dx) for dy in range(2 * r + 1) for dx in range(2 * r + 1) if (dy, dx) != (r, r)]
    dy = torch.tensor([o[0] for o in offsets], device=x.device)
    dx = torch.tensor([o[1] for o in offsets], device=x.device)
    windows = padded.permute(0, 2, 3, 1)[b[:, None], y[:, None] + dy, xx[:, None] + dx]  # [K, 24, C]
    med = windows.nanmedian(dim=1).values
    # A window with no usable neighbour (not possible at the fractions used) falls back to 0.5, not NaN.
    med = torch.nan_to_num(med, nan=0.5).to(x.dtype)
    if full:
        return med.view(n, h, w, c).permute(0, 3, 1, 2)
    return med


def blind_spot_inputs(x: Tensor, mask: Tensor, radius: int = MEDIAN_RADIUS) -> Tensor:
    """``x`` with every masked pixel (all channels) replaced by its neighbourhood median.

    The medians skip all masked pixels, so the result does not depend on any
    masked value: the net cannot see the pixels it is asked to predict."""
    mask = mask.to(x.device)
    out = x.clone()
    b, _, y, xx = mask.nonzero(as_tuple=True)
    out.permute(0, 2, 3, 1)[b, y, xx] = neighbourhood_median(x, mask, radius, at=mask)
    return out


def n2v2_loss(net: Callable[[Tensor], Tensor], x: Tensor, mask: Tensor) -> Tensor:
    """Masked MSE: the net sees the blind-spotted input and predicts the noisy values at the blind spots."""
    mask = mask.to(x.device)
    out = net(blind_spot_inputs(x, mask))
    m = mask.expand_as(x)
    return ((out.float() - x.float()) ** 2)[m].mean()


# ---------------------------------------------------------------- Neighbor2Neighbor


_NEIGHBOURS = torch.tensor([[1, 2], [0, 3], [0, 3], [1, 2]])  # 2x2 cell positions 0 1 / 2 3: edge neighbours


def neighbour_indices(shape: tuple[int, int, int], generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Two int64 [N, H/2, W/2] maps of positions (0..3) inside each 2x2 cell: different, edge-adjacent."""
    n, h, w = shape
    first = torch.randint(0, 4, (n, h // 2, w // 2), generator=generator)
    pick = torch.randint(0, 2, (n, h // 2, w // 2), generator=generator)
    second = _NEIGHBOURS[first, pick]
    return first, second


def subsample(x: Tensor, index: Tensor) -> Tensor:
    """[N, C, H, W] -> [N, C, H/2, W/2]: from each 2x2 cell the pixel at ``index`` (0..3)."""
    n, c, h, w = x.shape
    h2, w2 = h // 2, w // 2
    cells = x[:, :, : 2 * h2, : 2 * w2].reshape(n, c, h2, 2, w2, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h2, w2, 4)
    idx = index.to(x.device)[:, None, :, :, None].expand(n, c, h2, w2, 1)
    return cells.gather(-1, idx)[..., 0]


def ne2ne_loss(net: Callable[[Tensor], Tensor], x: Tensor, first: Tensor, second: Tensor,
               gamma: float = NE2NE_GAMMA) -> tuple[Tensor, dict[str, Tensor]]:
    """Neighbor2Neighbor: ||f(g1 y) - g2 y||^2 + gamma ||f(g1 y) - g2 y - (g1 f(y) - g2 f(y))||^2."""
    g1, g2 = subsample(x, first), subsample(x, second)
    out = net(g1).float()
    rec = torch.mean((out - g2.float()) ** 2)
    if gamma <= 0:
        return rec, {"recon": rec}
    with torch.no_grad():
        full = net(x).float()
    reg = torch.mean((out - g2.float() - (subsample(full, first) - subsample(full, second))) ** 2)
    return rec + gamma * reg, {"recon": rec, "regular": gamma * reg}


# ---------------------------------------------------------------- SURE: the error against the clean image, estimated

_SURE_EPS = 1e-3  # finite-difference step of the Monte-Carlo divergence (images in [0, 1]; Ramani et al. 2008)
_NOISE_BINS = 16
_CLIP_MARGIN = 3.0  # SURE skips pixels this many noise deviations from 0 or 1 (clipping)


def noise_model(x: Tensor) -> tuple[float, float]:
    """``(a, b)``: the noise variance as ``a * intensity + b`` (Poisson-Gaussian; ``a = 0`` for Gaussian noise).

    Fitted on the images ``x`` [N, C, H, W] themselves: the diagonal Haar detail of each 2x2 cell,
    ``(y00 - y01 - y10 + y11) / 2``, has the noise's variance where the image is smooth, and its robust
    spread (MAD) per intensity bin ignores most edges; a line through the bins' variances gives a, b."""
    y = x.detach().float().cpu()
    h2, w2 = y.shape[-2] // 2 * 2, y.shape[-1] // 2 * 2
    y = y[..., :h2, :w2]
    a00, a01, a10, a11 = y[..., 0::2, 0::2], y[..., 0::2, 1::2], y[..., 1::2, 0::2], y[..., 1::2, 1::2]
    detail = ((a00 - a01 - a10 + a11) / 2).flatten()
    level = ((a00 + a01 + a10 + a11) / 4).flatten()
    edges = torch.quantile(level[:: max(1, level.numel() // 100_000)], torch.linspace(0, 1, _NOISE_BINS + 1))
    means, variances, counts = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        d = detail[(level >= lo) & (level <= hi)]
        if d.numel() < 32:
            continue
        mad = (d - d.median()).abs().median()
        means.append(float(level[(level >= lo) & (level <= hi)].mean()))
        variances.append(float((1.4826 * mad) ** 2))
        counts.append(d.numel())
    if not means:
        return 0.0, float(detail.var())
    m, v, w = (torch.tensor(t, dtype=torch.float64) for t in (means, variances, counts))
    if len(means) >= 2 and float(m.max() - m.min()) > 1e-3:
        design = torch.stack([m, torch.ones_like(m)], 1) * w.sqrt()[:, None]
        a, b = torch.linalg.lstsq(design, (v * w.sqrt())[:, None]).solution[:, 0].tolist()
    else:
        a, b = 0.0, float((v * w).sum() / w.sum())
    if a < 0:  # no rise with intensity: Gaussian
        a, b = 0.0, float((v * w).sum() / w.sum())
    if b < 0:  # pure shot noise: a line through the origin
        a, b = float((m * v * w).sum() / (m * m * w).sum()), 0.0
    return float(a), float(b)


def _ring_mean(x: Tensor, radius: int = 2) -> Tensor:
    """Each pixel's (2r+1)^2 window mean **without the pixel itself** (replicate padding): independent of its own noise."""
    k = 2 * radius + 1
    total = F.avg_pool2d(F.pad(x, (radius,) * 4, mode="replicate"), k, stride=1) * (k * k)
    return (total - x) / (k * k - 1)


def clip_margin(x: Tensor, model: tuple[float, float]) -> float:
    """The widest of 3, 2, 1, 0 noise deviations that leaves at least a tenth of ``x``'s pixels usable for SURE
    (very noisy images would otherwise have none)."""
    for margin in (_CLIP_MARGIN, 2.0, 1.0):
        if float(noise_variance(x, model, margin)[1].float().mean()) >= 0.1:
            return margin
    return 0.0


def noise_variance(x: Tensor, model: tuple[float, float], margin: float = _CLIP_MARGIN) -> tuple[Tensor, Tensor]:
    """``(variance, usable)`` per pixel of ``x`` under ``model`` (a, b): the variance at the mean of the
    pixel's neighbours (not the pixel: SURE needs both independent of its noise), and where SURE holds.

    Not usable: pixels whose neighbours' mean lies within ``margin`` standard deviations of 0 or 1; there
    the images are clipped (sensor saturation, black level, the writer), the noise is no longer zero-mean
    Gaussian, and SURE would under-count the error (measured: it ranks a worse fine-tuned net above the
    photo-denoiser on clipped photos)."""
    a, b = model
    local = _ring_mean(x.float())
    variance = (a * local.clamp(min=0) + b).clamp(min=1e-10)
    sd = variance.sqrt()
    usable = (local > margin * sd) & (local < 1 - margin * sd)
    return variance, usable


def sure_loss(net: Callable[[Tensor], Tensor], x: Tensor, variance: Tensor, usable: Tensor | None = None,
              generator: torch.Generator | None = None) -> Tensor:
    """Stein's unbiased risk estimate of the mean squared error of ``net(x)`` against the clean image.

    For independent Gaussian noise of variance ``v`` (per pixel), ``E[(f - y)^2 - v + 2 v df/dy]`` is
    ``E[(f - x_clean)^2]``; the divergence is the Monte-Carlo estimate ``b . (f(y + eps b) - f(y)) / eps``.
    Unlike the neighbour loss, it scores the net at full resolution on the images as they are; for
    Poisson-Gaussian noise the per-pixel variance makes it an approximation. Averaged over ``usable``."""
    probe = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
    out = net(x).float()
    shifted = net(x + _SURE_EPS * probe).float()
    divergence = probe.float() * (shifted - out) / _SURE_EPS
    per_pixel = (out - x.float()) ** 2 - variance + 2 * variance * divergence
    if usable is None:
        return per_pixel.mean()
    weight = usable.expand_as(per_pixel).float()
    return (per_pixel * weight).sum() / weight.sum().clamp(min=1)


# ---------------------------------------------------------------- fine-tuning: anchored where clipped


def unclipped(x: Tensor, model: tuple[float, float] | None = None) -> Tensor:
    """Float [N, 1|C, H, W]: 1 where ``x``'s noise is zero-mean (the pixels SURE scores), 0 within the clip
    margin of 0 or 1, where clipping biased the noisy values (:func:`noise_variance`)."""
    model = noise_model(x) if model is None else model
    return noise_variance(x, model, clip_margin(x, model))[1].float()


def anchored_ne2ne_loss(net: Callable[[Tensor], Tensor], anchor: Callable[[Tensor], Tensor], x: Tensor,
                        first: Tensor, second: Tensor, gamma: float = NE2NE_GAMMA,
                        weight: float = ANCHOR_WEIGHT) -> tuple[Tensor, dict[str, Tensor]]:
    """Neighbor2Neighbor for fine-tuning trained weights: its terms where the noise is zero-mean, and
    ``weight * (f(g1 y) - anchor(g1 y))^2`` where clipping at 0 or 1 biased the neighbour the net is asked for
    (there the neighbour's expectation is not the clean value; the starting net's output is the better target).

    Measured (bench ``selfsup_denoise``'s probe, the shipped photo-denoiser fine-tuned 640 steps on 4 noisy
    photos; docs/DESIGN-notes.md): Gaussian 25/255 29.70 -> 29.90 dB (the start: 29.82), Poisson-Gaussian
    29.41 -> 29.32 (the start: 29.23); the clip margin left 43 % of the Gaussian case's pixels unclipped."""
    g1, g2 = subsample(x, first), subsample(x, second)
    keep = unclipped(g1, noise_model(x))
    out = net(g1).float()
    with torch.no_grad():
        full = net(x).float()
        target = anchor(g1).float()
    rec = (out - g2.float()) ** 2
    reg = (out - g2.float() - (subsample(full, first) - subsample(full, second))) ** 2
    held = (out - target) ** 2
    keep = keep.expand_as(rec)
    loss = ((rec + gamma * reg) * keep + weight * held * (1 - keep)).mean()
    return loss, {"recon": (rec * keep).mean(), "regular": gamma * (reg * keep).mean(), "anchor": weight * (held * (1 - keep)).mean()}


def anchored_n2v2_loss(net: Callable[[Tensor], Tensor], anchor: Callable[[Tensor], Tensor], x: Tensor, mask: Tensor,
                       weight: float = ANCHOR_WEIGHT) -> Tensor:
    """:func:`n2v2_loss` for fine-tuning: at blind spots where clipping biased the noisy value, the starting
    net's output (from the same blind-spotted input) is the target instead."""
    mask = mask.to(x.device)
    inputs = blind_spot_inputs(x, mask)
    out = net(inputs).float()
    with torch.no_grad():
        target = anchor(inputs).float()
    m = mask.expand_as(x)
    keep = unclipped(x).expand_as(x)[m]
    per_pixel = ((out - x.float()) ** 2)[m] * keep + weight * ((out - target) ** 2)[m] * (1 - keep)
    return per_pixel.mean()


# ---------------------------------------------------------------- the loop's entry points


def batch_objective(net: Callable[[Tensor], Tensor], x: Tensor, method: SelfSupervised,
                    anchor: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """The training loss of one noisy batch (draws from torch's global RNG, which the loop saves).

    ``net`` maps images to outputs: the module, or the loop's forward through DDP under torchrun (so the
    gradients are all-reduced); each rank's torch stream is its own there, so ranks draw different masks.
    ``anchor``: the starting weights of a fine-tuning run (``TrainConfig.anchor_clipped``), the target where
    clipping biases the noisy one."""
    n, _, h, w = x.shape
    if method is SelfSupervised.N2V2:
        mask = blind_spot_mask((n, h, w))
        loss = n2v2_loss(net, x, mask) if anchor is None else anchored_n2v2_loss(net, anchor, x, mask)
        return loss, {"blind_spot": loss}
    if method is SelfSupervised.NE2NE:
        first, second = neighbour_indices((n, h, w))
        if anchor is not None:
            return anchored_ne2ne_loss(net, anchor, x, first, second, gamma=NE2NE_GAMMA)
        return ne2ne_loss(net, x, first, second, gamma=NE2NE_GAMMA)
    raise ValueError(f"not a self-supervised method: {method!r}")


@torch.no_grad()
def validation_loss(net: nn.Module, dataset: Dataset, method: SelfSupervised, *, device: torch.device | str = "cpu",
                    batch_size: int = 16, seed: int = 0) -> dict[str, float]:
    """Scores on the validation crops: ``sure_mse`` (:data:`SELECTION_METRIC`, picks the best checkpoint) and
    ``ss_loss``, the method's own loss with fixed masks (shown, not used to choose).

    ``sure_mse`` estimates the mean squared error against the clean image (:func:`sure_loss`, noise model
    fitted on the crops, clipped pixels left out). The neighbour loss cannot rank trained denoisers: it
    scores the net on half-size images against the *neighbouring* pixel, so it prefers nets fitted to that
    task; measured on the bench's photos it ranked a fine-tuned net 0.4-0.8 dB worse than the
    photo-denoiser above it, where SURE ranked them in the right order (docs/DESIGN-notes.md)."""
    was_training = net.training
    net.eval()
    crops = torch.cat([x for x, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False)])
    model = noise_model(crops)
    margin = clip_margin(crops, model)
    g = torch.Generator().manual_seed(seed + _VAL_SEED_OFFSET)
    total, sure, count = 0.0, 0.0, 0
    try:
        for x in crops.split(batch_size):
            x = x.to(device)
            n, _, h, w = x.shape
            if method is SelfSupervised.N2V2:
                loss = n2v2_loss(net, x, blind_spot_mask((n, h, w), generator=g))
            else:
                loss, _ = ne2ne_loss(net, x, *neighbour_indices((n, h, w), generator=g), gamma=0.0)
            variance, usable = noise_variance(x, model, margin)
            sure += float(sure_loss(net, x, variance, usable, generator=g)) * n
            total += float(loss) * n
            count += n
    finally:
        net.train(was_training)
    return {SELECTION_METRIC: sure / max(count, 1), "ss_loss": total / max(count, 1)}


__all__ = [
    "ANCHOR_WEIGHT",
    "MASK_FRACTION",
    "anchored_n2v2_loss",
    "anchored_ne2ne_loss",
    "SELECTION_METRIC",
    "blind_spot_inputs",
    "blind_spot_mask",
    "batch_objective",
    "n2v2_loss",
    "ne2ne_loss",
    "neighbour_indices",
    "neighbourhood_median",
    "noise_model",
    "noise_variance",
    "subsample",
    "sure_loss",
    "unclipped",
    "validation_loss",
]
