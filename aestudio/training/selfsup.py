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


# ---------------------------------------------------------------- the loop's entry points


def batch_objective(net: nn.Module, x: Tensor, method: SelfSupervised) -> tuple[Tensor, dict[str, Tensor]]:
    """The training loss of one noisy batch (draws from torch's global RNG, which the loop saves)."""
    n, _, h, w = x.shape
    if method is SelfSupervised.N2V2:
        loss = n2v2_loss(net, x, blind_spot_mask((n, h, w)))
        return loss, {"blind_spot": loss}
    if method is SelfSupervised.NE2NE:
        first, second = neighbour_indices((n, h, w))
        return ne2ne_loss(net, x, first, second, gamma=NE2NE_GAMMA)
    raise ValueError(f"not a self-supervised method: {method!r}")


@torch.no_grad()
def validation_loss(net: nn.Module, dataset: Dataset, method: SelfSupervised, *, device: torch.device | str = "cpu",
                    batch_size: int = 16, seed: int = 0) -> dict[str, float]:
    """The method's loss on validation crops with fixed masks: the best-checkpoint metric ``ss_loss``.

    Without clean images this is what can be measured; for independent
    zero-mean noise its expectation is the error against the clean image plus
    the noise variance, so lower is better in the same order."""
    was_training = net.training
    net.eval()
    g = torch.Generator().manual_seed(seed + _VAL_SEED_OFFSET)
    total, count = 0.0, 0
    try:
        for x, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            x = x.to(device)
            n, _, h, w = x.shape
            if method is SelfSupervised.N2V2:
                loss = n2v2_loss(net, x, blind_spot_mask((n, h, w), generator=g))
            else:
                loss, _ = ne2ne_loss(net, x, *neighbour_indices((n, h, w), generator=g), gamma=0.0)
            total += float(loss) * n
            count += n
    finally:
        net.train(was_training)
    return {"ss_loss": total / max(count, 1)}


__all__ = [
    "MASK_FRACTION",
    "blind_spot_inputs",
    "blind_spot_mask",
    "batch_objective",
    "n2v2_loss",
    "ne2ne_loss",
    "neighbour_indices",
    "neighbourhood_median",
    "subsample",
    "validation_loss",
]
