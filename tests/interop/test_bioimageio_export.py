"""`aestudio export --format bioimageio`: packages that bioimageio.core itself accepts and runs.

bioimageio.core's own test reproduces the package's test output from its test
input through the ONNX weights and runs the parametrized sizes (n = 0, 1, 2)
at batch 1 and 2; a second test runs bioimageio.core's prediction on a size the
package was not made with and compares it with the aestudio bundle.
"""

from __future__ import annotations

import warnings
import zipfile

import numpy as np
import pytest
import yaml

pytest.importorskip("bioimageio.core")

from aestudio.cli import main  # noqa: E402
from aestudio.export.bioimageio import minmax01  # noqa: E402
from aestudio.inference.ort import OrtPredictor  # noqa: E402

FAMILIES = ["denoising_ae", "unet", "conv_ae"]


def _rdf(path):
    with zipfile.ZipFile(path) as zf:
        return yaml.safe_load(zf.read("rdf.yaml"))


@pytest.mark.parametrize("name", FAMILIES)
def test_bioimageio_core_accepts_the_package(packages, name):
    from bioimageio.core import test_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = test_model(packages(name))
    failed = [(d.name, [e.msg for e in d.errors]) for d in summary.details if d.status != "passed"]
    assert summary.status == "passed", failed
    names = [d.name for d in summary.details]
    assert any("Reproduce test outputs" in n for n in names)  # the test tensors really ran
    if name != "conv_ae":  # fully convolutional: core also ran the min/step sizes n = 1 and 2
        assert any("size parameter n: 2" in n for n in names)


def test_package_contents_describe_the_model(packages, bundles):
    from aestudio.inference.bundle import read_bundle

    rdf = _rdf(packages("unet"))
    assert rdf["format_version"].startswith("0.5")
    inp, out = rdf["inputs"][0], rdf["outputs"][0]
    y_axis = next(a for a in inp["axes"] if a.get("id") == "y")
    assert y_axis["size"] == {"min": 8, "step": 4}  # the tiny U-Net (depth 2) needs multiples of 4
    assert [p["id"] for p in inp["preprocessing"]][:2] == ["ensure_dtype", "scale_range"]
    assert out["postprocessing"][0]["id"] == "softmax"
    assert next(a for a in out["axes"] if a["type"] == "channel")["channel_names"] == ["background", "class_1", "class_2"]
    assert rdf["weights"]["onnx"]["opset_version"] == 18
    assert rdf["config"]["aestudio"]["task"] == "segment"
    with zipfile.ZipFile(packages("unet")) as zf:
        names = set(zf.namelist())
    assert {"rdf.yaml", "model.onnx", "test_input.npy", "test_output.npy", "cover.png", "README.md"} <= names
    fixed = _rdf(packages("conv_ae"))["inputs"][0]["axes"]
    assert next(a for a in fixed if a.get("id") == "x")["size"] == read_bundle(bundles("conv_ae")).image_size  # a fixed size


@pytest.mark.parametrize("name, shape", [("unet", (1, 1, 44, 68)), ("denoising_ae", (2, 1, 37, 53))])
def test_bioimageio_core_prediction_at_a_second_size_matches_the_bundle(packages, bundles, name, shape):
    from bioimageio.core import load_model_description, predict

    rng = np.random.default_rng(1)
    raw = (rng.random(shape) * 200 + 20).astype(np.float32)  # not in [0, 1]: scale_range must do its job
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        descr = load_model_description(packages(name), perform_io_checks=False)
        got = predict(model=descr, inputs=raw)
    (member,) = got.members.values()
    core = np.asarray(member.data)
    ours = OrtPredictor(bundles(name)).predict(minmax01(raw))
    if name == "unet":
        ours = np.exp(ours - ours.max(1, keepdims=True))
        ours /= ours.sum(1, keepdims=True)
    assert core.shape == ours.shape == shape[:1] + ours.shape[1:2] + shape[2:]
    np.testing.assert_allclose(core, np.clip(ours, 0, 1), atol=2e-5)


def test_cli_writes_a_package_and_refuses_bad_requests(bundles, tmp_path, capsys):
    out = tmp_path / "den.zip"
    assert main(["export", str(bundles("denoising_ae")), "--format", "bioimageio", "-o", str(out),
                 "--author", "Ada Lovelace", "--license", "MIT"]) == 0
    rdf = _rdf(out)
    assert [a["name"] for a in rdf["authors"]] == ["Ada Lovelace"] and rdf["license"] == "MIT"
    before = out.read_bytes()
    assert main(["export", str(bundles("denoising_ae")), "--format", "bioimageio", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before  # never overwritten
    assert main(["export", str(bundles("denoising_ae")), "--format", "bioimageio", "-o", str(tmp_path / "x.zip"),
                 "--license", "Not-A-Licence"]) == 2
    assert "SPDX" in capsys.readouterr().err and not (tmp_path / "x.zip").exists()
    assert main(["export", str(bundles("denoising_ae")), "--format", "bioimageio"]) == 2
    assert "-o MODEL.zip" in capsys.readouterr().err
    assert main(["export", str(bundles("denoising_ae")), "--format", "bioimageio", "-o", str(tmp_path / "m.onnx")]) == 2
    assert ".zip" in capsys.readouterr().err


def test_cli_packages_a_training_run_without_writing_into_it(tmp_path, capsys):
    from aestudio.config import TrainConfig
    from aestudio.inference.bioimageio_package import read_package
    from aestudio.training import train

    run = tmp_path / "run"
    for _ in train("dense_ae", None, "digits", TrainConfig(epochs=1, max_steps=2, batch_size=16), run):
        pass
    before = sorted(p.name for p in run.iterdir())
    out = tmp_path / "digits.zip"
    assert main(["export", str(run), "--format", "bioimageio", "-o", str(out), "--which", "last"]) == 0
    assert "bioimageio test" in capsys.readouterr().out
    pkg = read_package(out)
    from aestudio.training import read_run

    side = read_run(run).net_cfg.image_size
    assert pkg.config["net"] == "dense_ae" and pkg.fixed_size == (side, side)
    # The run recorded what it trained on (8-bit digits), and the package scales its input to match.
    assert read_run(run).data_info["input_kind"] == "8-bit" and pkg.config["input_kind"] == "8-bit"
    assert pkg.raw_scale == 255.0 and [op.id for op in pkg.pre][:3] == ["ensure_dtype", "scale_linear", "ensure_dtype"]
    assert sorted(p.name for p in run.iterdir()) == before  # the bundle went to a temp folder


def test_shipped_model_package_uses_a_real_sample_and_passes_core(tmp_path):
    """A zoo model's package: the test input is a shipped sample like its training data (not
    enlarged), so the cover shows the model doing its job; bioimageio.core accepts it."""
    from bioimageio.core import test_model

    from aestudio.inference.bioimageio_package import read_package, read_tensor
    from aestudio.inference.bioimageio_predictor import PackagePredictor
    from aestudio.zoo.catalog import find_model

    out = tmp_path / "seg.zip"
    assert main(["export", "shapes-seg-unet", "--format", "bioimageio", "-o", str(out)]) == 0
    pkg = read_package(out)
    x = read_tensor(out, pkg.test_input)
    assert x.shape == (1, 3, 64, 64)  # the 64 px sample at its own scale
    assert x.dtype == np.uint8 and pkg.raw_scale == 255.0  # shapes-seg is 8-bit: so is the package's input
    mask, _ = PackagePredictor(out).segment(x[0].transpose(1, 2, 0) / 255.0)  # the app's reading of it
    assert len(np.unique(mask)) >= 3  # background and at least two shapes: a cover worth showing
    assert pkg.name == _rdf(out)["name"] and "U-Net" in pkg.name and find_model("shapes-seg-unet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert test_model(out).status == "passed"


def test_a_16_bit_micrograph_runs_in_bioimageio_core_as_in_the_app(packages, bundles, tmp_path):
    """The package's scale_range (percentiles 0 and 100 over channel, y, x, per sample) is the app's
    stretch of a 16-bit image by its own min/max (aestudio.data.levels.read_stretched): a consumer handing
    the raw uint16 array to bioimageio.core gets what the app computes from the file."""
    from bioimageio.core import load_model_description, predict
    from PIL import Image

    from aestudio.data.levels import read_stretched
    from tests.data.test_levels_labelling import deep_images

    path = deep_images(tmp_path)["dim"]  # a 16-bit PNG holding 1000-3000
    raw = np.asarray(Image.open(path), dtype=np.uint16)[None, None]  # as another program reads the file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        descr = load_model_description(packages("denoising_ae"), perform_io_checks=False)
        got = predict(model=descr, inputs=raw)
    (member,) = got.members.values()
    app = OrtPredictor(bundles("denoising_ae")).predict(read_stretched(path).transpose(2, 0, 1)[None])
    np.testing.assert_allclose(np.asarray(member.data), np.clip(app, 0, 1), atol=2e-5)


def _kind_image(folder, kind: str):
    """One file of ``kind`` (the way a camera or another program stores it) in ``folder``; its path."""
    import tifffile

    from aestudio.data.io import write_float_tiff, write_image
    from tests.data.test_levels_labelling import deep_images

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    base = rng.random((40, 48)).astype(np.float32)
    base[10:30, 12:36] += 1.0
    base /= base.max()
    if kind == "8-bit":  # a dim photo, 20-120: a min-max stretch would brighten it
        return write_image(folder / "dim8.png", (20 + 100 * base)[..., None] / 255.0)
    if kind == "16-bit":
        return deep_images(folder)["dim"]
    if kind == "float":  # within [0, 1]: taken as it is
        return write_float_tiff(folder / "unit.tif", 0.2 + 0.4 * base)
    path = folder / "wide.tif"  # float beyond [0, 1]: stretched by its min and max
    tifffile.imwrite(path, (1000 + 2000 * base).astype(np.float32))
    return path


@pytest.mark.parametrize("kind, dtype, op", [("8-bit", "uint8", "scale_linear"), ("16-bit", "uint16", "scale_range"),
                                             ("float", "float32", None), ("float-stretched", "float32", "scale_range")])
def test_the_package_scales_each_input_kind_as_the_app_reads_it(tmp_path, tiny_net, kind, dtype, op):
    """A package read every input by its own min and max ('scale_range'), where the app reads 8-bit
    files as /255 and float ones within [0, 1] as they are: a dim 8-bit photo came out of ilastik or
    bioimageio.core brighter than in the app. The package now scales what the model was trained on
    (found from its training folder here) as the app does: the raw file through bioimageio.core's
    preprocessing and the model equals the app's result on the same file."""
    import tifffile
    from bioimageio.core import load_model_description, predict, test_model
    from PIL import Image

    from aestudio.data.levels import input_kind, read_stretched
    from aestudio.export.bioimageio import write_package
    from aestudio.export.exporter import export_net

    path = _kind_image(tmp_path / "train", kind)
    assert input_kind(f"folder:{tmp_path / 'train'}") == kind
    net, cfg = tiny_net("denoising_ae")
    bundle = tmp_path / "bundle"
    export_net(net, "denoising_ae", cfg, bundle, metadata={"training": {"data_spec": f"folder:{tmp_path / 'train'}"}},
               measure_timings=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        package = write_package(bundle, tmp_path / "den.zip")
    inp = _rdf(package)["inputs"][0]
    ops = [p["id"] for p in inp["preprocessing"]]
    assert inp["data"]["type"] == dtype and ops[0] == "ensure_dtype" and ops[-1] == "ensure_dtype"
    assert [o for o in ops if o != "ensure_dtype"] == ([op] if op else [])
    # As another program reads the file: Pillow for PNG, tifffile for TIFF.
    raw = tifffile.imread(path) if path.suffix == ".tif" else np.asarray(Image.open(path))
    raw = raw.astype(dtype)[None, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        descr = load_model_description(package, perform_io_checks=False)
        got = predict(model=descr, inputs=raw)
        summary = test_model(package)  # its own test tensors, in the declared dtype, reproduce
    assert summary.status == "passed", [(d.name, [e.msg for e in d.errors]) for d in summary.details if d.status != "passed"]
    (member,) = got.members.values()
    app = OrtPredictor(bundle).predict(read_stretched(path).transpose(2, 0, 1)[None])
    np.testing.assert_allclose(np.asarray(member.data), np.clip(app, 0, 1), atol=2e-5)


def test_a_run_from_before_the_input_kind_was_recorded_gets_it_from_its_data_at_export(tmp_path):
    """The long photo-denoiser run began before runs recorded their input kind: the export probes the run's
    data folder (still there during a zoo build), so the bundle, and a package made from it, read 8-bit as
    the app does instead of stretching it."""
    import json

    import numpy as np

    from aestudio.config import TrainConfig
    from aestudio.data.io import write_image
    from aestudio.export.exporter import export_run
    from aestudio.inference.bundle import read_bundle
    from aestudio.training import train

    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        write_image(data / f"{i}.png", (rng.random((24, 24, 1)) * 255).astype(np.uint8))
    run = tmp_path / "run"
    for _ in train("denoising_ae", None, f"folder:{data}", TrainConfig(epochs=1, max_steps=1, batch_size=2), run,
                   image_size=16):
        pass
    meta = json.loads((run / "run.json").read_text())
    meta["data"].pop("input_kind")  # as a run.json written before the field existed
    (run / "run.json").write_text(json.dumps(meta))
    export_run(run, tmp_path / "bundle", which="last")
    assert read_bundle(tmp_path / "bundle").training["input_kind"] == "8-bit"
