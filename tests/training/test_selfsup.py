"""Self-supervised objectives: the net never sees the pixels it is scored on."""

from __future__ import annotations

import pytest
import torch

from aestudio.config import SelfSupervised
from aestudio.nets import build_net, default_config
from aestudio.training import selfsup
from aestudio.training.selfsup import (
    blind_spot_inputs,
    blind_spot_mask,
    neighbour_indices,
    neighbourhood_median,
    subsample,
)


def _denoiser(channels: int = 1) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_net("denoising_ae", default_config("denoising_ae", in_channels=channels, channels=8))
    # The output conv starts at zero (identity net): give it weights so the prediction depends on the input.
    torch.nn.init.normal_(net.noise.weight, std=0.2)
    return net.eval()


@pytest.mark.parametrize("channels", [1, 3])
def test_blind_spot_prediction_does_not_depend_on_the_masked_values(channels) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, channels, 40, 36, generator=g)
    mask = blind_spot_mask((2, 40, 36), generator=g)
    assert 30 <= int(mask.sum()) <= 2 * 7 * 6  # ~1 in 36 pixels, stratified
    changed = torch.where(mask, torch.rand(x.shape, generator=g), x)  # other true values at the blind spots only
    net = _denoiser(channels)
    with torch.no_grad():
        a = net(blind_spot_inputs(x, mask))
        b = net(blind_spot_inputs(changed, mask))
    m = mask.expand_as(x)
    assert torch.equal(a[m], b[m])  # the prediction at a blind spot never saw its own (or any masked) value
    # The same net fed the unmasked images does see the change: the check above can fail.
    with torch.no_grad():
        assert not torch.allclose(net(x)[m], net(changed)[m])


def test_the_loss_gradient_ignores_the_input_at_the_blind_spots() -> None:
    """d(loss)/d(input) is zero at every blind spot: the target enters the loss, never the input."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 1, 24, 24, generator=g, requires_grad=True)
    mask = blind_spot_mask((1, 24, 24), generator=g)
    net = _denoiser()
    out = net(blind_spot_inputs(x, mask))
    out.sum().backward()  # every output pixel, not just the scored ones
    assert torch.all(x.grad[mask] == 0)
    assert x.grad[~mask].abs().sum() > 0


def test_median_replacement_excludes_the_centre_and_the_border() -> None:
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0  # the centre is an outlier: a median that used it could not return it anyway,
    x[0, 0, 0, 0] = 7.0
    none = torch.zeros(1, 1, 5, 5, dtype=torch.bool)
    med = neighbourhood_median(x, none, radius=1)
    assert med[0, 0, 2, 2] == 0.0
    # At a corner the window has 3 neighbours inside the image; padding must not copy the corner into it.
    corner = torch.tensor([[[[9.0, 1.0], [2.0, 3.0]]]])
    assert neighbourhood_median(corner, torch.zeros(1, 1, 2, 2, dtype=torch.bool), radius=1)[0, 0, 0, 0] == 2.0
    # Excluded pixels are skipped too.
    excl = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    excl[0, 0, 1, 0] = True
    assert neighbourhood_median(corner, excl, radius=1)[0, 0, 0, 0] in (1.0, 3.0)


def test_neighbour_subsamples_are_distinct_adjacent_pixels_and_the_prediction_never_sees_the_target() -> None:
    g = torch.Generator().manual_seed(3)
    first, second = neighbour_indices((2, 16, 12), generator=g)
    assert first.shape == (2, 8, 6) and torch.all(first != second)
    # Positions 0 1 / 2 3: adjacent means a shared edge, so the sum is never 3 (diagonals 0-3, 1-2).
    assert torch.all(first + second != 3)
    x = torch.arange(2 * 16 * 12, dtype=torch.float32).view(2, 1, 16, 12)
    g1 = subsample(x, first)
    # Each pick is inside its own 2x2 cell.
    rows = (g1 // 12) % 16
    assert torch.all(rows // 2 == torch.arange(8).view(1, 1, 8, 1))
    # Changing the pixels g2 takes leaves g1 (the net's input) unchanged.
    x = torch.rand(2, 1, 16, 12, generator=g)
    cells = torch.zeros(2, 1, 8, 6, 4)
    cells.scatter_(-1, second[:, None, :, :, None], 1.0)
    taken = cells.view(2, 1, 8, 6, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(2, 1, 16, 12).bool()
    changed = torch.where(taken, torch.rand(x.shape, generator=g), x)
    assert torch.equal(subsample(x, first), subsample(changed, first))
    assert not torch.equal(subsample(x, second), subsample(changed, second))


def test_a_few_neighbour_steps_bring_the_output_closer_to_clean_images_never_seen() -> None:
    # (Blind spots need far more steps with this residual net; see docs/DESIGN-notes.md.)
    method = SelfSupervised.NE2NE
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    clean = (0.5 + 0.3 * torch.sin(6 * xx) * torch.cos(4 * yy)).expand(8, 1, 32, 32)
    noisy = (clean + 0.1 * torch.randn(clean.shape)).clamp(0, 1)
    net = build_net("denoising_ae", default_config("denoising_ae", channels=16))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for _ in range(60):
        opt.zero_grad()
        loss, terms = selfsup.batch_objective(net, noisy, method)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        err = torch.mean((net(noisy) - clean) ** 2)
    assert err < 0.6 * torch.mean((noisy - clean) ** 2)  # closer to the clean images it never saw
