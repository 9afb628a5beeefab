"""Every net exports to ONNX and ONNX Runtime agrees with torch (the exporter itself lives in inference/).

Uses the TorchScript exporter (``dynamo=False``): it works for every family
here and takes ~0.1 s per net; the torch.export-based exporter also works
(checked for the U-Net, whose size check must stay out of the graph) but
takes seconds per net.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from nets_helpers import input_size, perturb, tiny_config
from torch import Tensor, nn

from aestudio.config import Task
from aestudio.nets import build_net, get_spec, list_nets

OPSET = 17
TOLERANCE = 1e-4


def _export(
    module: nn.Module,
    example: Tensor,
    input_name: str,
    input_axes: dict[int, str],
    outputs: dict[str, dict[int, str]],
) -> ort.InferenceSession:
    """Export ``module`` (in eval mode) to an in-memory ONNX model and open it in ONNX Runtime."""
    buffer = io.BytesIO()
    output_names = list(outputs)
    axes = {input_name: input_axes, **outputs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module,
            (example,),
            buffer,
            input_names=[input_name],
            output_names=output_names,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    return ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])


class _Encoder(nn.Module):
    """What an exporter wraps for encoder.onnx: ``encode`` as ``forward``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor):
        return self.net.encode(x)


class _Decoder(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: Tensor) -> Tensor:
        return self.net.decode(z)


def _trained_looking(name: str, channels: int = 1):
    torch.manual_seed(0)
    cfg = tiny_config(name, in_channels=channels, image_size=12)
    net = build_net(name, cfg)
    perturb(net)  # zero-initialised layers and fresh BatchNorm stats would hide mismatches
    return net.eval(), cfg


@pytest.mark.parametrize("name", list_nets())
def test_forward_exports_with_dynamic_axes_and_matches_torch(name: str) -> None:
    spec = get_spec(name)
    net, cfg = _trained_looking(name, channels=3)
    dynamic = {0: "batch", 2: "height", 3: "width"} if spec.fully_convolutional else {0: "batch"}
    output = "logits" if spec.task is Task.SEGMENT else "reconstruction"  # the bundle format's name
    side = input_size(name, cfg, cfg.image_size)
    session = _export(net, torch.rand(2, 3, side, side), "image", dynamic, {output: dynamic})
    shapes = [(1, side, side), (5, side, side)]
    if spec.fully_convolutional:
        shapes += [(2, input_size(name, cfg, 20), input_size(name, cfg, 36))]
    gen = torch.Generator().manual_seed(1)
    for n, h, w in shapes:
        x = torch.rand(n, 3, h, w, generator=gen)
        with torch.no_grad():
            expected = net(x).numpy()
        (got,) = session.run([output], {"image": x.numpy()})
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)


def test_ffdnet_style_denoiser_exports_with_odd_sizes() -> None:
    """The pad for odd sides comes from the input's shape, so it must stay dynamic in the graph; one-pixel
    sides work too (ONNX Runtime's reflect pad refused them)."""
    torch.manual_seed(0)
    net = build_net("denoising_ae", tiny_config("denoising_ae", in_channels=1, unshuffle=2))
    perturb(net)
    net.eval()
    dynamic = {0: "batch", 2: "height", 3: "width"}
    session = _export(net, torch.rand(2, 1, 16, 16), "image", dynamic, {"reconstruction": dynamic})
    gen = torch.Generator().manual_seed(1)
    for n, h, w in ((1, 16, 16), (2, 9, 13), (1, 20, 7), (3, 2, 3), (1, 1, 5), (2, 7, 1), (1, 1, 1)):
        x = torch.rand(n, 1, h, w, generator=gen)
        with torch.no_grad():
            expected = net(x).numpy()
        (got,) = session.run(["reconstruction"], {"image": x.numpy()})
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("name", [n for n in list_nets() if get_spec(n).has_latent])
def test_encoder_and_decoder_export_separately(name: str) -> None:
    net, cfg = _trained_looking(name)
    x = torch.rand(3, 1, cfg.image_size, cfg.image_size)
    outputs = ["mu", "logvar"] if name == "vae" else ["z"]
    # A wrapper starts in train mode (and export restores it): eval() it, or BatchNorm uses batch stats.
    encoder = _export(
        _Encoder(net).eval(), x, "image", {0: "batch"}, {o: {0: "batch"} for o in outputs}
    )
    with torch.no_grad():
        expected = net.encode(x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = encoder.run(outputs, {"image": x.numpy()})
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e.numpy(), atol=TOLERANCE, rtol=0)

    z = torch.randn(4, cfg.latent_dim)
    decoder = _export(_Decoder(net).eval(), z, "z", {0: "batch"}, {"image": {0: "batch"}})
    with torch.no_grad():
        expected_image = net.decode(z).numpy()
    (got_image,) = decoder.run(["image"], {"z": z.numpy()})
    np.testing.assert_allclose(got_image, expected_image, atol=TOLERANCE, rtol=0)


@pytest.mark.slow
def test_unet_exports_with_the_dynamo_exporter_too(tmp_path) -> None:
    net, cfg = _trained_looking("unet")
    path = tmp_path / "unet.onnx"
    auto = torch.export.Dim.AUTO
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.rand(2, 1, 16, 16),),
            str(path),
            input_names=["image"],
            output_names=["logits"],
            dynamic_shapes={"x": {0: auto, 2: auto, 3: auto}},
            opset_version=18,
            dynamo=True,
            external_data=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 1, 24, 40)
    with torch.no_grad():
        expected = net(x).numpy()
    (got,) = session.run(["logits"], {"image": x.numpy()})
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)
