"""`--model MODEL.zip`: BioImage Model Zoo packages run through aestudio's torch-free runtime.

Round trips (ours -> package -> aestudio) give the bundle's output; refusals name
the rdf.yaml field; the zip is read defensively (no path outside it, no URLs, no
zip bombs, no YAML tags); a 0.4-format rdf around the same graph runs too.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from aestudio.cli import main
from aestudio.data.io import read_image, write_image
from aestudio.inference.bioimageio_package import (
    PackageError,
    is_package,
    read_package,
    read_tensor,
)
from aestudio.inference.bioimageio_predictor import PackagePredictor
from aestudio.inference.ort import OrtPredictor


def _minmax(img: np.ndarray) -> np.ndarray:
    f = img.astype(np.float32)
    return (f - f.min()) / (f.max() - f.min() + np.float32(1e-6))


def repack(src: Path, dst: Path, edit=None, extra: dict[str, bytes] | None = None, drop=()) -> Path:
    """A copy of package ``src`` with its rdf changed by ``edit(rdf)`` and members added or dropped."""
    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if n not in drop}
    rdf = yaml.safe_load(members["rdf.yaml"])
    if edit is not None:
        edit(rdf)
    members["rdf.yaml"] = yaml.safe_dump(rdf).encode()
    members.update(extra or {})
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in members.items():
            out.writestr(name, data)
    return dst


@pytest.mark.parametrize("name", ["denoising_ae", "unet", "conv_ae"])
def test_package_reproduces_its_own_test_output(packages, name):
    pred = PackagePredictor(packages(name))
    pkg = pred.package
    x, want = read_tensor(pkg.path, pkg.test_input), read_tensor(pkg.path, pkg.test_output)
    got = pred.predict(x.astype(np.float32))
    if pred.info.task.value == "segment":
        got = np.exp(got)  # segmentation comes back as log-probabilities (aestudio takes the softmax)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert pred.info.net == "bioimageio" and pred.info.task.value == pkg.config["task"]


def test_round_trip_tiled_denoiser_equals_the_bundle(packages, bundles):
    rng = np.random.default_rng(3)
    img = (rng.random((700, 600)) * 180 + 40).astype(np.uint8)  # larger than a tile: tiled
    pred = PackagePredictor(packages("denoising_ae"))
    calls = []
    got = pred.run_image(img, progress=lambda d, t: calls.append(t))
    want = OrtPredictor(bundles("denoising_ae")).run_image(_minmax(img))
    assert calls[-1] > 1  # really tiled
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_round_trip_unet_segments_like_the_bundle(packages, bundles):
    rng = np.random.default_rng(4)
    img = (rng.random((130, 90)) * 255).astype(np.uint8)
    mask, probs = PackagePredictor(packages("unet")).segment(img)
    mask_b, probs_b = OrtPredictor(bundles("unet")).segment(_minmax(img))
    np.testing.assert_allclose(probs, probs_b, atol=1e-5)
    assert (mask == mask_b).mean() > 0.999  # argmax ties aside


def test_cli_denoise_and_segment_with_a_package(packages, bundles, tmp_path):
    rng = np.random.default_rng(5)
    img = (rng.random((40, 56)) * 255).astype(np.float32) / 255
    img[0, 0], img[-1, -1] = 0.0, 1.0  # full range: min-max scaling is the identity
    src = tmp_path / "in" / "a.png"
    src.parent.mkdir()
    write_image(src, img)
    assert main(["denoise", "--model", str(packages("denoising_ae")), str(src), "-o", str(tmp_path / "p")]) == 0
    assert main(["denoise", "--model", str(bundles("denoising_ae")), str(src), "-o", str(tmp_path / "b")]) == 0
    a, b = read_image(tmp_path / "p" / "a_denoised.png"), read_image(tmp_path / "b" / "a_denoised.png")
    assert np.abs(a - b).max() <= 1 / 255 + 1e-6
    assert main(["segment", "--model", str(packages("unet")), str(src), "-o", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "a_mask.png").is_file()
    assert main(["denoise", "--model", str(packages("unet")), str(src), "-o", str(tmp_path / "x")]) == 2


# ----------------------------------------------------------------- refusals, each naming the field


def _z_axis(rdf):
    rdf["inputs"][0]["axes"].append({"type": "space", "id": "z", "size": 8})


def _torch_weights(rdf):
    rdf["weights"] = {"pytorch_state_dict": {"source": "model.onnx"}}


def _unknown_op(rdf):
    rdf["inputs"][0]["preprocessing"].insert(0, {"id": "frobnicate", "kwargs": {}})


def _custom_op(rdf):
    rdf["outputs"][0]["postprocessing"] = [{"id": "stardist_postprocessing", "kwargs": {}}]


def _two_inputs(rdf):
    rdf["inputs"].append(dict(rdf["inputs"][0], id="mask"))


def _traversal(rdf):
    rdf["weights"]["onnx"]["source"] = "../../etc/model.onnx"


def _url(rdf):
    rdf["weights"]["onnx"]["source"] = "https://example.org/model.onnx"


def _old_format(rdf):
    rdf["format_version"] = "0.3.6"


def _offset_output(rdf):
    rdf["outputs"][0]["axes"][2]["size"]["offset"] = -8


def _two_channels(rdf):
    rdf["inputs"][0]["axes"][1]["channel_names"] = ["a", "b"]


def _huge_size(rdf):
    rdf["inputs"][0]["axes"][2]["size"] = {"min": 10**12, "step": 1}


def _time_axis(rdf):
    rdf["inputs"][0]["axes"].insert(1, {"type": "time"})


@pytest.mark.parametrize("edit, field, says", [
    (_z_axis, "inputs[0].axes[4]", "3D"),
    (_time_axis, "inputs[0].axes[1]", "'time' axis"),
    (_torch_weights, "weights", "only ONNX weights"),
    (_unknown_op, "inputs[0].preprocessing[0].id", "unknown operation 'frobnicate'"),
    (_custom_op, "outputs[0].postprocessing[0].id", "not supported"),
    (_two_inputs, "inputs", "2 input tensors"),
    (_traversal, "weights.onnx.source", "outside the package"),
    (_url, "weights.onnx.source", "never downloads"),
    (_old_format, "format_version", "0.4 and 0.5"),
    (_offset_output, "outputs[0].axes[2].size", "not the input's size"),
    (_two_channels, "inputs[0].axes[channel]", "2 input channels"),
    (_huge_size, "inputs[0].axes[y].size", "between 1 and"),
])
def test_unsupported_packages_are_refused_naming_the_field(packages, tmp_path, edit, field, says):
    bad = repack(packages("denoising_ae"), tmp_path / "bad.zip", edit)
    with pytest.raises(ValueError) as err:  # PackageError, or LimitError for sizes (aestudio.limits)
        PackagePredictor(bad)
    msg = str(err.value)
    assert field in msg and says in msg and str(bad) in msg


def test_cli_refusal_is_one_line(packages, tmp_path, capsys):
    bad = repack(packages("denoising_ae"), tmp_path / "bad.zip", _z_axis)
    img = tmp_path / "i.png"
    write_image(img, np.zeros((8, 8), np.float32))
    assert main(["denoise", "--model", str(bad), str(img), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aestudio: error:") and "3D" in err and "\n" not in err


def test_yaml_tags_are_never_constructed(packages, tmp_path):
    marker = tmp_path / "pwned"
    evil = repack(packages("denoising_ae"), tmp_path / "evil.zip")
    with zipfile.ZipFile(evil) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["rdf.yaml"] = f"name: !!python/object/apply:os.system ['touch {marker}']\n".encode() + members["rdf.yaml"]
    with zipfile.ZipFile(evil, "w") as out:
        for n, d in members.items():
            out.writestr(n, d)
    with pytest.raises(PackageError, match="not valid YAML"):
        read_package(evil)
    assert not marker.exists()


def test_deeply_nested_yaml_is_refused(packages, tmp_path):
    deep = repack(packages("denoising_ae"), tmp_path / "deep.zip")
    with zipfile.ZipFile(deep) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["rdf.yaml"] = b"a: " + b"[" * 100_000 + b"]" * 100_000
    with zipfile.ZipFile(deep, "w") as out:
        for n, d in members.items():
            out.writestr(n, d)
    with pytest.raises(PackageError, match="nests too deeply|not valid YAML"):
        read_package(deep)


def test_zip_bomb_is_refused_before_inflating(packages, tmp_path):
    bomb = repack(packages("denoising_ae"), tmp_path / "bomb.zip", extra={"model.onnx": bytes(64 * 1024**2)})
    with pytest.raises(PackageError, match="zip bomb"):
        PackagePredictor(bomb)


def test_not_a_package(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK not really")
    assert not is_package(junk)
    with pytest.raises(PackageError, match="not a readable zip"):
        read_package(junk)
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("notes.txt", "hi")
    assert not is_package(plain)
    with pytest.raises(PackageError, match="no rdf.yaml"):
        read_package(plain)


def test_format_04_package_runs(packages, bundles, tmp_path):
    """A 0.4 rdf (axes letters, shape min/step, `name` ops with `mode`) around our denoiser's graph."""
    src = packages("denoising_ae")
    with zipfile.ZipFile(src) as zf:
        onnx_bytes, x = zf.read("model.onnx"), zf.read("test_input.npy")
    rdf = {
        "format_version": "0.4.10", "type": "model", "name": "old denoiser",
        "inputs": [{"name": "raw", "axes": "bcyx", "data_type": "uint8", "shape": {"min": [1, 1, 8, 8], "step": [0, 0, 1, 1]},
                    "preprocessing": [{"name": "scale_linear", "kwargs": {"gain": 0.00392156862745098, "offset": 0.0, "axes": "yx"}}]}],
        "outputs": [{"name": "out", "axes": "bcyx", "shape": {"reference_tensor": "raw", "scale": [1, 1, 1, 1], "offset": [0, 0, 0, 0]},
                     "postprocessing": [{"name": "clip", "kwargs": {"min": 0.0, "max": 1.0}}]}],
        "test_inputs": ["test_input.npy"], "test_outputs": ["test_input.npy"],
        "weights": {"onnx": {"source": "./weights.onnx"}},
    }
    pkg_path = tmp_path / "old.zip"
    with zipfile.ZipFile(pkg_path, "w") as zf:
        zf.writestr("rdf.yaml", yaml.safe_dump(rdf))
        zf.writestr("weights.onnx", onnx_bytes)
        zf.writestr("test_input.npy", x)
    pred = PackagePredictor(pkg_path, task="denoise")
    assert pred.package.raw_scale == 255.0 and pred.package.input_axes == ("batch", "channel", "y", "x")
    img = np.random.default_rng(6).random((50, 70)).astype(np.float32)
    # uint8 data: aestudio's [0, 1] becomes 0..255 again, and the package's gain brings it back.
    np.testing.assert_allclose(pred.run_image(img), OrtPredictor(bundles("denoising_ae")).run_image(img), atol=1e-5)


def _channels_last_graph(onnx_bytes: bytes) -> bytes:
    """Our denoiser's graph behind Transpose nodes: input `raw` [N, H, W, 1] -> output `out` [N, H, W, 1]."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(onnx_bytes)
    g = model.graph
    (old_in,), (old_out,) = list(g.input), list(g.output)
    g.node.insert(0, helper.make_node("Transpose", ["raw"], [old_in.name], perm=[0, 3, 1, 2]))
    g.node.append(helper.make_node("Transpose", [old_out.name], ["out"], perm=[0, 2, 3, 1]))
    g.input.remove(old_in)
    g.output.remove(old_out)
    g.input.append(helper.make_tensor_value_info("raw", TensorProto.FLOAT, ["n", "h", "w", 1]))
    g.output.append(helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", "h", "w", 1]))
    return model.SerializeToString()


def test_foreign_layout_fixed_tiles_and_whole_image_statistics(packages, bundles, tmp_path):
    """A package unlike ours: axes batch, y, x, channel; uint8 input; zero_mean_unit_variance
    (per image); a fixed 48 x 48 input, so larger images run in 48 px tiles that share the
    whole image's mean and std; an output halo."""
    from aestudio.inference.tiling import tiled_apply

    with zipfile.ZipFile(packages("denoising_ae")) as zf:
        graph = _channels_last_graph(zf.read("model.onnx"))
    axes_in = [{"type": "batch"}, {"type": "space", "id": "y", "size": 48}, {"type": "space", "id": "x", "size": 48},
               {"type": "channel", "channel_names": ["gray"]}]
    axes_out = [{"type": "batch"}, {"type": "space", "id": "y", "size": {"tensor_id": "raw", "axis_id": "y"}, "halo": 4},
                {"type": "space", "id": "x", "size": {"tensor_id": "raw", "axis_id": "x"}, "halo": 4},
                {"type": "channel", "channel_names": ["gray"]}]
    rdf = {
        "format_version": "0.5.4", "type": "model", "name": "channels-last denoiser",
        "inputs": [{"id": "raw", "axes": axes_in, "data": {"type": "uint8"},
                    "preprocessing": [{"id": "ensure_dtype", "kwargs": {"dtype": "float32"}},
                                      {"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}}]}],
        "outputs": [{"id": "out", "axes": axes_out}],
        "weights": {"onnx": {"source": "net.onnx", "opset_version": 18}},
    }
    path = tmp_path / "cl.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("rdf.yaml", yaml.safe_dump(rdf))
        zf.writestr("net.onnx", graph)
    pred = PackagePredictor(path, task="denoise")
    assert pred.package.input_axes == ("batch", "y", "x", "channel") and pred.info.image_size == "any"
    assert pred.tiling.tile == 48 and pred.tiling.overlap >= 8  # tiles of the fixed size; the halo widened nothing here
    bundle = OrtPredictor(bundles("denoising_ae"))

    def zmuv(img: np.ndarray) -> np.ndarray:
        f = img.astype(np.float32)
        return ((f - f.mean()) / (f.std() + np.float32(1e-6)))[None, None].astype(np.float32)

    rng = np.random.default_rng(7)
    one = (rng.random((48, 48)) * 255).astype(np.uint8)
    np.testing.assert_allclose(pred.run_image(one)[..., 0], np.clip(bundle.predict(zmuv(one))[0, 0], 0, 1), atol=1e-4)
    big = (rng.random((100, 90)) * 255).astype(np.uint8)
    want = tiled_apply(zmuv(big)[0], bundle.predict, tile=48, overlap=pred.tiling.overlap)
    np.testing.assert_allclose(pred.run_image(big)[..., 0], np.clip(want[0], 0, 1), atol=1e-4)
    small = (rng.random((20, 30)) * 255).astype(np.uint8)  # smaller than the fixed size: padded, cropped back
    assert pred.run_image(small).shape == (20, 30, 1)


def test_package_without_batch_or_channel_axes_runs_image_by_image(packages, bundles, tmp_path):
    """axes [y, x] only: the graph takes one [H, W] image; a batch of 3 runs as three calls."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    with zipfile.ZipFile(packages("denoising_ae")) as zf:
        model = onnx.load_from_string(zf.read("model.onnx"))
    g = model.graph
    (old_in,), (old_out,) = list(g.input), list(g.output)
    g.initializer.append(numpy_helper.from_array(np.array([0, 1], np.int64), "nc_axes"))
    g.node.insert(0, helper.make_node("Unsqueeze", ["yx", "nc_axes"], [old_in.name]))
    g.node.append(helper.make_node("Squeeze", [old_out.name, "nc_axes"], ["yx_out"]))
    g.input.remove(old_in)
    g.output.remove(old_out)
    g.input.append(helper.make_tensor_value_info("yx", TensorProto.FLOAT, ["h", "w"]))
    g.output.append(helper.make_tensor_value_info("yx_out", TensorProto.FLOAT, ["h", "w"]))
    rdf = {
        "format_version": "0.5.4", "type": "model", "name": "plain 2D",
        "inputs": [{"id": "yx", "axes": [{"type": "space", "id": "y", "size": {"min": 4, "step": 1}},
                                         {"type": "space", "id": "x", "size": {"min": 4, "step": 1}}]}],
        "outputs": [{"id": "yx_out", "axes": [{"type": "space", "id": "y", "size": {"tensor_id": "yx", "axis_id": "y"}},
                                              {"type": "space", "id": "x", "size": {"tensor_id": "yx", "axis_id": "x"}}]}],
        "weights": {"onnx": {"source": "m.onnx"}},
    }
    path = tmp_path / "yx.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("rdf.yaml", yaml.safe_dump(rdf))
        zf.writestr("m.onnx", model.SerializeToString())
    pred = PackagePredictor(path)
    assert pred.info.task.value == "reconstruct" and pred.info.in_channels == 1  # no softmax: an image model
    x = np.random.default_rng(8).random((3, 1, 24, 20)).astype(np.float32)
    np.testing.assert_allclose(pred.predict(x), OrtPredictor(bundles("denoising_ae")).predict(x), atol=1e-5)
