"""What each family adds: its regulariser, its helpers, its errors."""

from __future__ import annotations

import pytest
import torch
from nets_helpers import perturb, tiny_config
from torch.distributions import Normal, kl_divergence

from aestudio.nets import build_net
from aestudio.nets.contractive_ae import ContractiveAutoencoder


def _build(name: str, **overrides):
    overrides.setdefault("image_size", 14)
    torch.manual_seed(0)
    return build_net(name, tiny_config(name, **overrides))


# ---------------------------------------------------------------- contractive


def test_contractive_estimate_matches_the_exact_jacobian_norm() -> None:
    net = _build(
        "contractive_ae", image_size=8, base_channels=2, depth=1, latent_dim=3, contractive=0.5
    )
    assert isinstance(net, ContractiveAutoencoder)
    perturb(net)
    net.eval()  # BatchNorm on running stats: each sample's code depends on that sample only
    gen = torch.Generator().manual_seed(0)
    samples = torch.rand(4, 1, 8, 8, generator=gen)

    exact = []
    for x in samples:
        jac = torch.autograd.functional.jacobian(net.encode, x[None])  # [1, 3, 1, 1, 8, 8]
        exact.append(jac.pow(2).sum())
    exact_mean = torch.stack(exact).mean()

    # Each replica draws its own random probe, so the batch mean averages 4 x 1000 estimates.
    batch = samples.repeat_interleave(1000, dim=0)
    torch.manual_seed(1)
    out = net.forward_train(batch)
    estimate = net.extra_losses(batch, out)["contractive"] / 0.5
    assert estimate.item() == pytest.approx(exact_mean.item(), rel=0.05)
    # Without forward_train's leaf it re-encodes and still agrees.
    again = net.extra_losses(batch, {"output": out["output"]})["contractive"] / 0.5
    assert again.item() == pytest.approx(exact_mean.item(), rel=0.05)


def test_contractive_penalty_trains_the_encoder() -> None:
    net = _build("contractive_ae", contractive=1.0)
    x = torch.rand(4, 1, 14, 14)
    penalty = net.extra_losses(x, net.forward_train(x))["contractive"]
    penalty.backward()
    # Conv weights shape the Jacobian directly (the last BN shift only moves ReLU gates: zero grad).
    encoder = [
        p
        for n, p in net.named_parameters()
        if n.startswith(("encoder_blocks.", "bottleneck.to_code."))
    ]
    weights = [p for p in encoder if p.dim() > 1]
    assert len(weights) > 4
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)
    decoder = [*net.decoder.parameters(), *net.bottleneck.from_code.parameters()]
    assert all(p.grad is None for p in decoder)  # the decoder plays no part in dz/dx


# ---------------------------------------------------------------- sparse


def test_sparse_loss_is_weight_times_mean_abs_code() -> None:
    net = _build("sparse_ae", sparsity=0.25)
    x = torch.rand(3, 1, 14, 14)
    out = net.forward_train(x)
    loss = net.extra_losses(x, out)["sparsity"]
    assert loss.item() == pytest.approx(0.25 * out["z"].abs().mean().item())
    assert loss.item() > 0


# ---------------------------------------------------------------- vae


def test_vae_kl_matches_torch_distributions_and_scales() -> None:
    net = _build("vae", beta=3.0, image_size=12, in_channels=3)
    x = torch.rand(5, 3, 12, 12)
    out = net.forward_train(x)
    mu, logvar = out["mu"], out["logvar"]
    kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1).mean()
    expected = 3.0 * 0.5 * kl / (3 * 12 * 12)
    got = net.extra_losses(x, out, kl_scale=0.5)["kl"]
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert net.extra_losses(x, out, kl_scale=0.0)["kl"].item() == 0.0


def test_vae_forward_is_deterministic_and_training_samples() -> None:
    net = _build("vae").eval()
    x = torch.rand(2, 1, 14, 14)
    mu, _ = net.encode(x)
    assert torch.equal(net(x), net(x))
    assert torch.equal(net(x), net.decode(mu))
    a, b = net.forward_train(x), net.forward_train(x)
    assert not torch.equal(a["z"], b["z"])  # reparameterised samples differ
    assert not torch.equal(a["z"], a["mu"])


def test_vae_sample_shape_range_and_seed() -> None:
    net = _build("vae", in_channels=3, image_size=16).eval()
    one = net.sample(4, generator=torch.Generator().manual_seed(7))
    two = net.sample(4, generator=torch.Generator().manual_seed(7))
    assert one.shape == (4, 3, 16, 16)
    assert one.min() >= 0 and one.max() <= 1
    assert torch.equal(one, two)
    assert not torch.equal(one, net.sample(4, generator=torch.Generator().manual_seed(8)))
    assert not one.requires_grad


# ---------------------------------------------------------------- conv_ae padding and depth


def test_conv_ae_pads_28_to_32_and_fits_depth_for_8() -> None:
    mnist = _build("conv_ae", image_size=28, depth=3)
    assert mnist.depth == 3
    assert mnist.encoder_blocks(torch.zeros(1, 1, 32, 32))[-1].shape[-1] == 4
    digits = _build("conv_ae", image_size=8, depth=3)
    assert digits.depth == 2  # 8x8 at depth 3 would leave a 1x1 map


@pytest.mark.parametrize("crop", [(2, 2, 2, 2), (1, 2, 1, 2), (0, 1, 0, 1), (3, 4, 3, 4), (2, 1, 0, 3)])
def test_decoder_leaves_the_crop_out_of_its_last_convs_exactly(crop) -> None:
    # The decoder computes only the pixels it keeps; the result must equal the full map cropped.
    from aestudio.nets.blocks import ConvDecoder

    torch.manual_seed(0)
    decoder = ConvDecoder((4, 8, 16), 1)
    perturb(decoder)
    decoder.eval()
    x = torch.randn(2, 16, 4, 4)
    full = decoder.head(decoder.stages(x))
    left, right, top, bottom = crop
    expected = full[..., top : 16 - bottom, left : 16 - right]
    got = decoder(x, crop)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_conv_ae_28_decodes_without_a_slice() -> None:
    net = _build("conv_ae", image_size=28, depth=3).eval()
    assert net.decode(torch.zeros(1, net.latent_dim)).shape == (1, 1, 28, 28)
    import io
    import warnings

    import onnx

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Decode(net), (torch.zeros(2, net.latent_dim),), buffer, dynamo=False, opset_version=17)
    graph = onnx.load_from_string(buffer.getvalue()).graph
    producer = {out: n for n in graph.node for out in n.output}
    last = producer[graph.output[0].name]
    assert last.op_type == "Sigmoid" and producer[last.input[0]].op_type == "Conv"  # no crop after the head


class _Decode(torch.nn.Module):
    def __init__(self, net) -> None:
        super().__init__()
        self.net = net

    def forward(self, z):
        return self.net.decode(z)


# ---------------------------------------------------------------- denoising


def test_denoiser_starts_as_the_identity() -> None:
    net = _build("denoising_ae").eval()
    x = torch.rand(2, 1, 9, 13)
    assert torch.equal(net(x), x)


def test_denoiser_clamp_lets_gradients_through_in_training() -> None:
    net = _build("denoising_ae")
    perturb(net)
    net.train()
    x = torch.ones(1, 1, 6, 6, requires_grad=True)
    y = net(x)
    assert y.max() <= 1
    # Target below the clamped value: a plain clamp would give zero gradient wherever x - noise > 1.
    (y - 0.5).pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_ffdnet_style_denoiser_keeps_any_size_and_sees_its_neighbours() -> None:
    net = _build("denoising_ae", unshuffle=2, dilations=(1, 1, 1))
    assert net.head[0].in_channels == 4 and net.noise.out_channels == 4  # 2x2 blocks of one channel
    x = torch.rand(2, 1, 9, 13)
    assert torch.equal(net.eval()(x), x)  # identity start, odd sides included
    perturb(net)
    net.eval()
    for h, w in ((2, 3), (9, 13), (16, 16), (17, 8)):
        x = torch.rand(1, 1, h, w)
        y = net(x)
        assert y.shape == x.shape and torch.isfinite(y).all() and not torch.equal(y, x)
    # Half-size convs: 5 layers of 3x3 see 11x11 blocks = 22x22 pixels; a change 9 px away reaches
    # the centre (the full-size net with 5 such layers sees 11 px, i.e. 5 px each side).
    x = torch.rand(1, 1, 32, 32)
    moved = x.clone()
    moved[..., 16, 16 + 9] += 0.5
    assert not torch.allclose(net(x)[..., 16, 16], net(moved)[..., 16, 16])


def test_ffdnet_style_body_starts_at_he_scale_and_the_full_resolution_net_keeps_torchs_default() -> None:
    """He init lets a deep half-size body learn (torch's default left 13 layers stuck); the shipped
    full-resolution net keeps torch's default so its recipe rebuilds the same weights."""
    for unshuffle, expected in ((2, 2.0), (1, 1.0 / 3.0)):  # variance x fan_in
        torch.manual_seed(0)
        net = build_net("denoising_ae", tiny_config("denoising_ae", channels=48, dilations=(1,) * 4,
                                                    unshuffle=unshuffle))
        w = net.body[1][0].weight.detach()
        assert float(w.var() * w[0].numel()) == pytest.approx(expected, rel=0.1)


def test_ffdnet_style_denoiser_takes_one_pixel_wide_images() -> None:
    """Odd sides are padded with the edge pixel (a reflect pad needs two pixels: a 1 x N image failed in
    ONNX Runtime); the padding only adds context, so the result is the input's size and is denoised."""
    net = _build("denoising_ae", unshuffle=2)
    perturb(net)
    net.eval()
    with torch.no_grad():
        for h, w in ((1, 5), (5, 1), (1, 1), (3, 1)):
            x = torch.rand(2, 1, h, w)
            out = net(x)
            assert out.shape == x.shape and torch.isfinite(out).all()
            # The same pixels inside a larger even image see more context, but a 1-pixel image is not refused
            # and its result depends on its own pixels.
            assert not torch.equal(net(x + 0.1), out)


def test_old_denoiser_configs_load_as_full_resolution_nets() -> None:
    from aestudio.nets.registry import net_config_from_dict

    name, cfg = net_config_from_dict({"name": "denoising_ae", "params": {"in_channels": 1, "channels": 32,
                                                                         "dilations": [1, 2, 3, 2, 1]}})
    assert cfg.unshuffle == 1
    net = build_net(name, cfg)
    assert net.head[0].in_channels == 1  # the shipped bundles' weights keep their shapes


# ---------------------------------------------------------------- unet


def test_unet_names_the_fix_for_bad_sizes() -> None:
    net = build_net("unet", tiny_config("unet", depth=3))
    with pytest.raises(ValueError, match="pad your image to a multiple of 8"):
        net(torch.rand(1, 1, 20, 24))
    assert net(torch.rand(1, 1, 24, 16)).shape == (1, 2, 24, 16)


def test_unet_starts_from_a_conv_autoencoders_encoder() -> None:
    source = _build("conv_ae", image_size=28, depth=3, base_channels=4)
    perturb(source, seed=3)
    target = _build("unet", depth=3, base_channels=4, num_classes=3)
    encoder_keys = [k for k in source.state_dict() if k.startswith("encoder_blocks.")]
    copied = target.load_encoder_state(source.state_dict())
    assert copied == len(encoder_keys) > 0
    mine = target.state_dict()
    for key in encoder_keys:
        assert torch.equal(mine[key], source.state_dict()[key]), key
    # The decoder and head are untouched by the copy.
    assert not any(
        k.startswith("encoder_blocks.") for k in ("decoder.stages.0.up.weight", "head.weight")
    )


def test_unet_copies_the_stages_a_shallower_encoder_has() -> None:
    source = _build("vae", image_size=8, depth=3, base_channels=4)  # fitted to depth 2 on 8x8
    target = _build("unet", depth=3, base_channels=4)
    src_keys = [k for k in source.state_dict() if k.startswith("encoder_blocks.")]
    assert target.load_encoder_state(source.state_dict()) == len(src_keys)
    assert len(src_keys) < sum(k.startswith("encoder_blocks.") for k in target.state_dict())


def test_unet_refuses_an_encoder_that_does_not_fit() -> None:
    source = _build("conv_ae", in_channels=3, base_channels=8, depth=1)
    target = _build("unet", in_channels=1, base_channels=4)
    with pytest.raises(ValueError, match=r"encoder_blocks\.stages\.0.*vs ours"):
        target.load_encoder_state(source.state_dict())
    with pytest.raises(ValueError, match="no encoder layer matches.*no encoder_blocks"):
        target.load_encoder_state(build_net("dense_ae").state_dict())
