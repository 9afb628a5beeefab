"""Training losses: reconstruction, the nets' own regularisers, segmentation.

The objective of one batch is ``recon`` (MSE or BCE against the clean image,
a per-value mean) plus whatever the net's ``extra_losses`` returns (already
weighted: sparsity, contractive penalty, VAE KL times ``beta * kl_scale``);
for segmentation it is cross-entropy plus soft Dice. Denoising inputs are
corrupted on the CPU with :func:`aestudio.data.noise.apply_noise` from a seeded
numpy generator, so a run (and its resume) sees the same noise every time.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aestudio.config import NoiseConfig, ReconLoss
from aestudio.data.base import UNLABELLED

_EPS = 1e-6


def kl_scale(epoch_progress: float, warmup_epochs: int) -> float:
    """KL weight multiplier: 0 -> 1 linearly over ``warmup_epochs`` (measured in
    fractional epochs, so it moves every step); 1 without warm-up.

    Starting the KL term at zero lets the decoder learn to use the code before
    the prior pulls the posterior onto it (avoids posterior collapse)."""
    if warmup_epochs <= 0:
        return 1.0
    return float(min(1.0, max(0.0, epoch_progress / warmup_epochs)))


def reconstruction_loss(output: Tensor, target: Tensor, kind: ReconLoss) -> Tensor:
    """Per-value mean reconstruction loss of an image in [0, 1] (computed in float32:
    BCE is unsafe under float16 autocast)."""
    output = output.float()
    target = target.float()
    if kind is ReconLoss.BCE:
        return F.binary_cross_entropy(output.clamp(_EPS, 1 - _EPS), target)
    return F.mse_loss(output, target)


def soft_dice_loss(logits: Tensor, target: Tensor) -> Tensor:
    """1 - mean soft Dice over classes present in the batch or predicted.

    Dice complements cross-entropy on imbalanced masks (a small object class
    weighs as much as the background). Classes absent from both the target
    and the prediction are skipped, so they do not inflate the score.
    Unlabelled pixels (:data:`UNLABELLED`) are left out of both sides."""
    num_classes = logits.shape[1]
    valid = (target != UNLABELLED).unsqueeze(1)
    probs = logits.float().softmax(dim=1) * valid
    onehot = F.one_hot(target.long().clamp(0, num_classes - 1), num_classes).permute(0, 3, 1, 2).to(probs.dtype)
    onehot = onehot * valid
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    total = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + _EPS) / (total + _EPS)
    present = onehot.sum(dims) > 0
    if not bool(present.any()):
        return 1 - dice.mean()
    return 1 - dice[present].mean()


def segmentation_losses(logits: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Cross-entropy + soft Dice over the labelled pixels; pixels valued 255 count in neither.

    A batch with no labelled pixel at all gives a zero loss still tied to the
    graph (cross-entropy's mean over nothing would be NaN and stop the run)."""
    if not bool((target != UNLABELLED).any()):
        zero = logits.float().sum() * 0.0
        return {"ce": zero, "dice": zero}
    return {"ce": F.cross_entropy(logits.float(), target.long(), ignore_index=UNLABELLED),
            "dice": soft_dice_loss(logits, target)}


def batch_loss(
    net: nn.Module,
    out: dict[str, Tensor],
    x_in: Tensor,
    target: Tensor,
    *,
    segmentation: bool,
    recon: ReconLoss,
    kl_weight: float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Total loss and its named terms for one batch.

    ``x_in`` is what the net saw (noisy for denoising); ``target`` is the clean
    image, or the int64 mask for segmentation."""
    if segmentation:
        terms = segmentation_losses(out["output"], target)
    else:
        terms = {"recon": reconstruction_loss(out["output"], target, recon)}
    extra = getattr(net, "extra_losses", None)
    if extra is not None:
        for name, value in extra(x_in, out, kl_scale=kl_weight).items():
            terms[name] = value.float()
    total = torch.stack(list(terms.values())).sum()
    return total, terms


def noisy_copy(x: Tensor, noise: NoiseConfig, rng: np.random.Generator) -> Tensor:
    """A corrupted copy of a CPU batch [N, C, H, W] in [0, 1] (clean one untouched)."""
    from aestudio.data.noise import apply_noise

    arr = apply_noise(x.detach().cpu().numpy(), noise, rng)
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
