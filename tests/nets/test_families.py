"""Behaviour every family shares, parametrized over the registry (a new net is tested for free)."""

from __future__ import annotations

import pytest
import torch
from nets_helpers import input_size, perturb, tiny_config
from safetensors.torch import load_file, save_file
from torch.nn import functional as F

from aestudio.config import Task
from aestudio.nets import build_net, get_spec, list_nets

NAMES = list_nets()
FIXED = [n for n in NAMES if not get_spec(n).fully_convolutional]
FULLY_CONV = [n for n in NAMES if get_spec(n).fully_convolutional]
LATENT = [n for n in NAMES if get_spec(n).has_latent]


def _net(name: str, *, channels: int = 1, size: int = 14, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    cfg = tiny_config(name, in_channels=channels, image_size=size, **overrides)
    return build_net(name, cfg), cfg


def _batch(
    name: str, cfg, n: int = 3, h: int | None = None, w: int | None = None, seed: int = 1
) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    h = input_size(name, cfg, h or cfg.image_size)
    w = input_size(name, cfg, w or cfg.image_size)
    return torch.rand(n, cfg.in_channels, h, w, generator=gen)


def _check_output(name: str, cfg, x: torch.Tensor, y: torch.Tensor) -> None:
    spec = get_spec(name)
    assert torch.isfinite(y).all()
    if spec.task is Task.SEGMENT:
        assert y.shape == (x.shape[0], cfg.num_classes, *x.shape[-2:])
    else:
        assert y.shape == x.shape
        assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_output_shape_and_range_in_both_modes(name: str, channels: int) -> None:
    net, cfg = _net(name, channels=channels)
    perturb(net)
    x = _batch(name, cfg)
    for train in (True, False):
        net.train(train)
        _check_output(name, cfg, x, net(x))
        _check_output(name, cfg, x, net.forward_train(x)["output"])


@pytest.mark.parametrize("size", [8, 16, 28, 32, 64])
@pytest.mark.parametrize("name", FIXED)
def test_fixed_size_nets_build_for_every_builtin_size(name: str, size: int) -> None:
    # depth 3 on 8x8 digits must be fitted down rather than fail.
    depth = {"depth": 3} if "depth" in tiny_config(name).to_dict() else {}
    net, cfg = _net(name, size=size, **depth)
    x = _batch(name, cfg, n=2)
    _check_output(name, cfg, x, net.eval()(x))
    if depth:
        bottom = net.encoder_blocks(torch.zeros(1, 1, size, size))[-1]
        assert bottom.shape[-1] >= 2  # the depth was fitted to the size
        assert net.depth == (2 if size == 8 else 3)


@pytest.mark.parametrize("hw", [(5, 7), (16, 40), (33, 17)])
@pytest.mark.parametrize("name", FULLY_CONV)
def test_fully_convolutional_nets_take_any_allowed_size(name: str, hw: tuple[int, int]) -> None:
    net, cfg = _net(name, channels=3)
    perturb(net)
    x = _batch(name, cfg, n=2, h=hw[0], w=hw[1])
    _check_output(name, cfg, x, net.eval()(x))


@pytest.mark.parametrize("name", NAMES)
def test_backward_reaches_every_parameter_with_finite_grads(name: str) -> None:
    net, cfg = _net(name)
    perturb(net)
    net.train()
    x = _batch(name, cfg, n=4)
    out = net.forward_train(x)
    if get_spec(name).task is Task.SEGMENT:
        loss = F.cross_entropy(out["output"], (x[:, 0] > 0.5).long())
    else:
        loss = F.mse_loss(out["output"], x)
    extras = net.extra_losses(x, out)
    total = loss + sum(extras.values())
    total.backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, f"{pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", NAMES)
def test_safetensors_round_trip_gives_identical_outputs(name: str, tmp_path) -> None:
    net, cfg = _net(name)
    perturb(net)
    net.eval()
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    other, _ = _net(name, seed=123)
    other.load_state_dict(load_file(str(path)), strict=True)
    other.eval()
    x = _batch(name, cfg)
    assert torch.equal(net(x), other(x))


@pytest.mark.parametrize("name", NAMES)
def test_encode_decode_and_summary(name: str) -> None:
    channels, size = 3, 16
    net, cfg = _net(name, channels=channels, size=size)
    net.eval()
    summary = net.summary()
    assert summary["num_params"] == sum(p.numel() for p in net.parameters()) > 0
    if not get_spec(name).has_latent:
        assert summary["code_values"] is None and summary["compression_ratio"] is None
        assert set(net.forward_train(_batch(name, cfg))) == {"output"}
        return
    x = _batch(name, cfg, n=2)
    code = net.encode(x)
    if name == "vae":
        mu, logvar = code
        assert mu.shape == logvar.shape == (2, cfg.latent_dim)
        z = mu
    else:
        z = code
    assert z.shape == (2, cfg.latent_dim) == (2, net.latent_dim)
    assert net.decode(z).shape == x.shape
    assert torch.allclose(net.decode(z), net(x))
    assert summary["code_values"] == cfg.latent_dim
    assert summary["compression_ratio"] == pytest.approx(channels * size * size / cfg.latent_dim)
    out = net.forward_train(x)
    assert {"output", "z"} <= set(out)
    assert out["z"].shape == (2, cfg.latent_dim)


@pytest.mark.parametrize("name", FIXED)
def test_fixed_size_nets_name_the_fix_for_wrong_inputs(name: str) -> None:
    net, cfg = _net(name, size=16)
    with pytest.raises(ValueError, match="resize your images to 16x16"):
        net(torch.rand(1, 1, 20, 20))
    with pytest.raises(ValueError, match="channel"):
        net(torch.rand(1, 3, 16, 16))


@pytest.mark.parametrize("name", NAMES)
def test_a_few_steps_fit_a_tiny_batch(name: str) -> None:
    """Loss goes down: the architecture can learn (not a quality claim)."""
    net, cfg = _net(name, size=16)
    net.train()
    gen = torch.Generator().manual_seed(0)
    clean = torch.zeros(8, 1, 16, 16)
    for i, (top, left, side) in enumerate(torch.randint(0, 8, (8, 3), generator=gen).tolist()):
        clean[i, :, top : top + side + 3, left : left + side + 3] = 1.0  # one square per image
    noisy = (clean + 0.2 * torch.randn(clean.shape, generator=gen)).clamp(0, 1)
    x, target = (noisy, clean) if get_spec(name).task is Task.DENOISE else (clean, clean)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)

    def step() -> float:
        out = net.forward_train(x)
        if get_spec(name).task is Task.SEGMENT:
            loss = F.cross_entropy(out["output"], target[:, 0].long())
        else:
            loss = F.mse_loss(out["output"], target)
        total = loss + sum(net.extra_losses(x, out).values())
        opt.zero_grad()
        total.backward()
        opt.step()
        return loss.item()

    first = step()
    for _ in range(30):
        last = step()
    assert last < 0.7 * first, (first, last)
