"""The ONNX Runtime predictor: bad model files, input validation, foreign models, profiles, no torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from aestudio.inference.bundle import BundleError
from aestudio.inference.ort import ForeignModelDescription, OrtPredictor, session_options


def _copy(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / "copy"))


# ----------------------------------------------------------------- bad model files


def test_truncated_onnx_is_a_bundle_error(bundles, tmp_path: Path) -> None:
    b = _copy(bundles("unet"), tmp_path)
    data = (b / "model.onnx").read_bytes()
    (b / "model.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match=r"model\.onnx: ONNX Runtime cannot load it.*re-export"):
        OrtPredictor(b)


def test_non_onnx_bytes_as_a_foreign_file(tmp_path: Path) -> None:
    f = tmp_path / "photo.onnx"
    f.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(BundleError, match=r"photo\.onnx: ONNX Runtime cannot load it"):
        OrtPredictor(f)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(BundleError, match="not an .onnx file"):
        OrtPredictor(txt)


def test_unsupported_opset_and_missing_initializer(bundles, tmp_path: Path) -> None:
    b = _copy(bundles("denoising_ae"), tmp_path)
    model = onnx.load(str(b / "model.onnx"))
    model.opset_import[0].version = 99
    onnx.save(model, str(b / "model.onnx"))
    with pytest.raises(BundleError, match=r"model\.onnx: .*opset"):
        OrtPredictor(b)
    model = onnx.load(str(bundles("denoising_ae") / "model.onnx"))
    del model.graph.initializer[0]
    onnx.save(model, str(b / "model.onnx"))
    with pytest.raises(BundleError, match=r"model\.onnx: ONNX Runtime cannot load it"):
        OrtPredictor(b)


def test_lazy_graph_with_wrong_tensor_names(bundles, tmp_path: Path) -> None:
    b = _copy(bundles("vae"), tmp_path)
    shutil.copy(b / "encoder.onnx", b / "decoder.onnx")  # a mixed-up bundle: decoder takes `image`
    p = OrtPredictor(b)  # the decoder session is created lazily ...
    with pytest.raises(BundleError, match=r"decoder\.onnx: tensors are \['image'\]"):
        p.decode(np.zeros((1, p.info.latent_dim), np.float32))  # ... and checked when first used


def test_missing_path_is_clear(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such bundle folder or .onnx file"):
        OrtPredictor(tmp_path / "nope")


# ----------------------------------------------------------------- input validation


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: np.zeros((1, 1, 16), np.float32), "got 3 dimensions"),
        (lambda: np.zeros((1, 1, 16, 16), np.float64), "got dtype float64"),
        (lambda: np.zeros((1, 3, 16, 16), np.float32), "got 3 channels"),
        (lambda: np.zeros((1, 1, 20, 16), np.float32), "needs 16x16 images; got 20x16"),
        (lambda: np.full((1, 1, 16, 16), np.nan, np.float32), "NaN"),
        (lambda: [[0.0]], "got list"),
    ],
)
def test_wrong_inputs_raise_before_onnx_runtime(bundles, make, message: str) -> None:
    p = OrtPredictor(bundles("conv_ae"))
    with pytest.raises(ValueError, match=message):
        p.predict(make())


def test_size_multiple_and_code_checks(bundles) -> None:
    unet = OrtPredictor(bundles("unet"))
    with pytest.raises(ValueError, match="multiples of 4"):
        unet.predict(np.zeros((1, 1, 30, 32), np.float32))
    with pytest.raises(ValueError, match="no encoder/decoder"):
        unet.encode(np.zeros((1, 1, 32, 32), np.float32))
    vae = OrtPredictor(bundles("vae"))
    with pytest.raises(ValueError, match="values per code"):
        vae.decode(np.zeros((2, vae.info.latent_dim + 1), np.float32))
    with pytest.raises(ValueError, match=r"\[H, W\] or \[H, W, C\]"):
        vae.run_image(np.zeros((2, 3, 16, 16), np.uint8))
    ae = OrtPredictor(bundles("conv_ae"))
    with pytest.raises(ValueError, match="needs a variational model"):
        ae.sample(4)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: np.zeros((20, 20), np.int32), "unsupported image dtype int32"),
        (lambda: np.zeros((20, 20, 2), np.uint8), r"\[H, W\] or \[H, W, C\] with C in 1, 3, 4"),
        (lambda: np.zeros((1, 20, 20, 3), np.uint8), r"\[H, W\] or \[H, W, C\]"),
        (lambda: np.zeros((0, 20), np.uint8), "the image is empty"),
        (lambda: np.array([[0.5, np.inf]], np.float32), "NaN or infinite"),
        (lambda: [[0, 1], [1, 0]], "expected a numpy array, got list"),
    ],
)
@pytest.mark.parametrize("net", ["conv_ae", "unet"])  # fixed size (resized) and fully convolutional (tiled)
def test_wrong_images_raise_a_clear_error(bundles, net: str, make, message: str) -> None:
    p = OrtPredictor(bundles(net))
    with pytest.raises(ValueError, match=message):
        p.run_image(make())


def test_run_image_handles_dtypes_channels_and_resizing(bundles) -> None:
    p = OrtPredictor(bundles("conv_ae"))  # 1 channel, fixed 16x16
    rng = np.random.default_rng(0)
    gray8 = (rng.random((50, 70)) * 255).astype(np.uint8)
    out8 = p.run_image(gray8)
    out16 = p.run_image(gray8.astype(np.uint16) * 257)  # same image in 16 bits
    outf = p.run_image(np.repeat(gray8[:, :, None] / 255.0, 3, axis=2))  # same image as RGB float
    assert out8.shape == (50, 70, 1)
    np.testing.assert_allclose(out8, out16, atol=1e-5)
    np.testing.assert_allclose(out8, outf, atol=1e-4)


def test_large_image_is_tiled_and_matches_untiled(bundles) -> None:
    p = OrtPredictor(bundles("denoising_ae"))
    img = np.random.default_rng(3).random((150, 170), dtype=np.float32)
    untiled = p.run_image(img)
    p.tiling.tile, p.tiling.overlap = 96, 48  # 2x2 tiles; overlap about twice the 23 px receptive field
    tiled = p.run_image(img)
    # Everywhere (not only the interior) the blend must agree with the untiled run: no seams.
    assert np.abs(tiled - untiled).max() < 1e-4


def test_padding_matches_a_padded_batch_and_segmentation_tiles_agree(bundles) -> None:
    """Odd sizes: tiles read through the reflect-padding index map give what a padded batch gives."""
    from aestudio.inference.imageops import pad_to_multiple, softmax
    from aestudio.inference.tiling import tiled_apply

    p = OrtPredictor(bundles("unet"))
    m = p.info.size_multiple
    img = (np.random.default_rng(4).random((61, 75)) * 255).astype(np.uint8)
    chw = (img.astype(np.float32) / 255.0)[None]
    padded, _ = pad_to_multiple(chw, m)
    want = p.predict(padded[None])[0][:, :61, :75]
    logits = p.run_image(img)
    np.testing.assert_allclose(logits, want, atol=1e-5)
    p.tiling.tile, p.tiling.overlap = 32, 16  # 3x4 tiles, padding in the last row and column
    seen: list[int] = []
    mask, probs = p.segment(img, progress=lambda done, total: seen.append(total))
    # Exactly the blend of the padded image's tiles (the reference path: pad the whole image first).
    ref = tiled_apply(padded, p.predict, tile=32, overlap=16, multiple=m)[:, :61, :75]
    np.testing.assert_allclose(probs, softmax(ref), atol=1e-5)
    assert np.abs(probs - softmax(want)).max() < 0.02  # and close to untiled (16 px is short for a U-Net)
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    assert mask.dtype == np.int64 and mask.shape == (61, 75)
    np.testing.assert_array_equal(mask, probs.argmax(axis=0))
    assert len(seen) > 4 and set(seen) == {len(seen)}  # one call per tile, total known up front


def test_run_image_holds_no_full_size_copy_of_the_input(bundles) -> None:
    """Large images: tiles are converted from the raw input one at a time (tracemalloc sees numpy,
    not ONNX Runtime): the peak is the [H, W, C] result plus tile buffers."""
    import tracemalloc

    p = OrtPredictor(bundles("denoising_ae"))  # 1 channel: RGB uint8 in, converted per tile
    p.tiling.tile, p.tiling.overlap = 128, 32
    img = np.random.default_rng(6).integers(0, 256, (1000, 1100, 3), dtype=np.uint8)
    p.run_image(img[:64, :64])  # first run allocates ORT's own memory
    tracemalloc.start()
    try:
        out = p.run_image(img)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (1000, 1100, 1) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    # The old path held a float32 RGB copy (13 MB), a CHW copy, a clipped copy and a transposed copy.
    assert peak < out.nbytes + 2_000_000


def test_prepare_image_converts_dtype_channels_and_range(tmp_path: Path) -> None:
    path, _ = _foreign_file(tmp_path, dynamic=True)
    p = OrtPredictor(path, description=ForeignModelDescription(task="reconstruct", value_range=(-1, 1)))
    rgba = np.random.default_rng(7).integers(0, 256, (5, 6, 4), dtype=np.uint8)
    batch, size = p.prepare_image(rgba)
    assert size == (5, 6) and batch.shape == (1, 3, 5, 6) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0], rgba[:, :, :3].transpose(2, 0, 1) / 255.0 * 2 - 1, atol=1e-6)
    gray, _ = p.prepare_image(rgba[:, :, 0])
    np.testing.assert_allclose(gray[0], np.repeat(rgba[None, :, :, 0] / 255.0 * 2 - 1, 3, axis=0), atol=1e-6)
    with pytest.raises(ValueError, match="NaN or infinite"):
        p.prepare_image(np.full((4, 4), np.nan, np.float32))


# ----------------------------------------------------------------- foreign models


class _Foreign(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))  # an image model in [-1, 1]


def _foreign_file(tmp_path: Path, dynamic: bool) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    net = _Foreign().eval()
    path = tmp_path / ("dyn.onnx" if dynamic else "fixed.onnx")
    axes = {"pixels": {0: "n", 2: "h", 3: "w"}, "out": {0: "n", 2: "h", 3: "w"}} if dynamic else None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, 24, 24),), str(path), dynamo=False, input_names=["pixels"], output_names=["out"], dynamic_axes=axes, opset_version=17)
    return path, net


def test_foreign_model_asks_for_missing_facts(tmp_path: Path) -> None:
    path, _ = _foreign_file(tmp_path, dynamic=True)
    with pytest.raises(ValueError, match=r"needs its task .*value_range"):
        OrtPredictor(path)


def test_foreign_model_runs_with_a_description(tmp_path: Path) -> None:
    path, net = _foreign_file(tmp_path, dynamic=True)
    p = OrtPredictor(path, description=ForeignModelDescription(task="reconstruct", value_range=(-1, 1)))
    assert p.info.in_channels == 3 and p.info.image_size == "any" and p.info.net == "foreign"
    img = np.random.default_rng(0).random((33, 41, 3), dtype=np.float32)
    out = p.run_image(img)
    with torch.no_grad():
        want = net(torch.from_numpy(img.transpose(2, 0, 1)[None] * 2 - 1))[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(out, np.clip((want + 1) / 2, 0, 1), atol=1e-5)


def test_foreign_fixed_size_model_resizes_and_splits_batches(tmp_path: Path) -> None:
    path, _ = _foreign_file(tmp_path, dynamic=False)  # fixed [1, 3, 24, 24]
    p = OrtPredictor(path, description=ForeignModelDescription(task="denoise", value_range=(0, 1)))
    assert p.info.fixed_size == 24
    assert p.run_image(np.zeros((40, 30, 3), np.uint8)).shape == (40, 30, 3)
    assert p.predict(np.zeros((3, 3, 24, 24), np.float32)).shape == (3, 3, 24, 24)  # batch 1 graph, 3 images
    with pytest.raises(ValueError, match="graph has 3 input channels but the description says 1"):
        OrtPredictor(path, description=ForeignModelDescription(task="denoise", value_range=(0, 1), channels=1))


# ----------------------------------------------------------------- sessions and layering


def test_session_profiles() -> None:
    inter = session_options("interactive")
    assert inter.intra_op_num_threads == 1 and inter.inter_op_num_threads == 1
    assert inter.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    batch = session_options("batch")
    assert batch.intra_op_num_threads >= 1
    with pytest.raises(ValueError):
        session_options("turbo")


def test_with_profile_shares_the_model_not_the_sessions(bundles, tmp_path: Path) -> None:
    inter = OrtPredictor(bundles("vae"))
    batch = inter.with_profile("batch")
    assert batch.profile.value == "batch" and inter.profile.value == "interactive"
    assert batch.info is inter.info and batch.with_profile("interactive") is inter and inter.with_profile("batch") is batch
    assert inter.with_profile("interactive") is inter
    img = np.random.default_rng(8).random((16, 16), dtype=np.float32)
    np.testing.assert_allclose(batch.run_image(img), inter.run_image(img), atol=1e-6)
    np.testing.assert_allclose(batch.decode(np.zeros((2, inter.info.latent_dim), np.float32)),
                               inter.decode(np.zeros((2, inter.info.latent_dim), np.float32)), atol=1e-6)
    from aestudio.inference.bundle import BundleFile

    assert batch.session(BundleFile.MODEL) is not inter.session(BundleFile.MODEL)
    assert batch.session(BundleFile.MODEL).get_session_options().intra_op_num_threads == session_options("batch").intra_op_num_threads
    path, _ = _foreign_file(tmp_path, dynamic=True)
    foreign = OrtPredictor(path, description=ForeignModelDescription(task="reconstruct", value_range=(-1, 1)))
    x = np.random.default_rng(9).random((20, 20, 3), dtype=np.float32)
    np.testing.assert_allclose(foreign.with_profile("batch").run_image(x), foreign.run_image(x), atol=1e-6)


def test_ort_predictor_runs_without_torch(bundles) -> None:
    code = textwrap.dedent(
        f"""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch.") or name.startswith("torchvision"):
                    raise ImportError("torch is blocked in this test")
        for m in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
            del sys.modules[m]
        sys.meta_path.insert(0, Block())
        import numpy as np
        from aestudio.inference.ort import OrtPredictor
        p = OrtPredictor({str(bundles("vae"))!r})
        out = p.run_image(np.zeros((20, 20), np.uint8))
        s = p.sample(3, seed=1)
        assert out.shape == (20, 20, 1) and s.shape[0] == 3
        assert "torch" not in sys.modules
        print("ok", p.provider)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok CPUExecutionProvider")


def test_one_palette_for_masks_on_disk_and_model_overlays(tmp_path: Path) -> None:
    """A class has the same colour in a written mask (data panel) and in a model's overlay (issue 15)."""
    from PIL import Image

    from aestudio.data.io import write_mask
    from aestudio.palette import default_palette

    path, _ = _foreign_file(tmp_path, dynamic=True)  # 3 output channels: 3 classes as a segmenter
    p = OrtPredictor(path, description=ForeignModelDescription(task="segment", value_range=(0, 1),
                                                               class_names=("bg", "a", "b")))
    mask = np.array([[0, 1, 2]], dtype=np.int64)
    written = write_mask(tmp_path / "m.png", mask)
    png_palette = Image.open(written).getpalette()[: 3 * 3]
    assert [tuple(c) for c in p.info.class_colors] == default_palette(3)
    assert png_palette == [v for c in default_palette(3) for v in c]
    assert default_palette(5)[3] == (0, 130, 200) and default_palette(5)[4] == (255, 225, 25)
