"""Int8 bundles (aestudio.export.quantize): close to float32 on a tiny net, marked in model.json, and run
everywhere a float32 bundle runs (OrtPredictor, `aestudio denoise`, BioImage Model Zoo packages)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest

from aestudio.cli import main
from aestudio.inference.bundle import BundleError, ModelInfo, read_bundle
from aestudio.inference.ort import OrtPredictor
from aestudio.nets import list_nets
from tests.conftest import calibration_images


def _ops(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_int8_bundle_is_close_to_float32_and_says_so(bundles, int8_bundles) -> None:
    src, q = bundles("denoising_ae"), int8_bundles("denoising_ae")
    info = read_bundle(q)
    assert info.precision == "int8" and read_bundle(src).precision == "float32"
    assert "QuantizeLinear" in _ops(q / "model.onnx") and "QuantizeLinear" not in _ops(src / "model.onnx")
    # Fine-tuning and --init-from read the float32 weights, unchanged.
    assert _sha(q / "weights.safetensors") == _sha(src / "weights.safetensors")
    facts = info.quantization
    assert facts["files"] == ["model"] and facts["calibration"]["images"] > 0 and facts["quantized_nodes"] > 0
    # New inputs (not the calibration set): the int8 graph follows the float32 one closely, but is not it.
    x = np.concatenate(calibration_images(1, n=4, size=40, seed=7))
    ref, got = OrtPredictor(src).predict(x), OrtPredictor(q).predict(x)
    rmse = float(np.sqrt(np.mean((got - ref) ** 2)))
    assert 0 < rmse < 0.02, rmse
    assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.99
    # The figures model.json keeps are what the graphs do.
    assert 0 < facts["error_vs_float32"]["rmse"] < 0.02 and facts["error_vs_float32"]["psnr_vs_float32_db"] > 30
    assert facts["timings"]["int8_ms"] > 0 and facts["timings"]["float32_ms"] > 0


def test_segmentation_int8_keeps_most_pixels_classes(int8_bundles) -> None:
    facts = read_bundle(int8_bundles("unet")).quantization
    assert facts["error_vs_float32"]["mask_agreement"] > 0.9


def test_a_bundle_claiming_int8_loads_and_runs(int8_bundles, tmp_path: Path) -> None:
    q = int8_bundles("denoising_ae")
    pred = OrtPredictor(q, profile="interactive")
    out = pred.run_image(np.random.default_rng(0).random((37, 53), dtype=np.float32))
    assert out.shape == (37, 53, 1) and np.all(np.isfinite(out)) and 0 <= out.min() and out.max() <= 1
    assert pred.with_profile("batch").info.precision == "int8"
    # model.json is checked like every other field: a dtype it does not know is refused, naming it.
    data = json.loads((q / "model.json").read_text())
    data["quantization"]["dtype"] = "int4"
    with pytest.raises(BundleError, match="int4"):
        ModelInfo.from_dict(data)
    data["quantization"] = {"dtype": "int8", "files": ["encoder"]}
    with pytest.raises(BundleError, match="encoder"):
        ModelInfo.from_dict(data)


def test_float32_model_json_has_no_quantization_key(bundles) -> None:
    """Older aestudio versions refuse unknown keys: a float32 bundle's model.json stays as it was."""
    assert "quantization" not in json.loads((bundles("denoising_ae") / "model.json").read_text())


def test_an_int8_bundle_is_not_quantized_again(int8_bundles, tmp_path: Path) -> None:
    from aestudio.export.quantize import QuantizeError, quantize_bundle

    with pytest.raises(QuantizeError, match="already int8"):
        quantize_bundle(int8_bundles("denoising_ae"), tmp_path / "again", calibration_images(1))


def test_export_int8_flag_calibrates_on_the_run_and_denoise_runs_it(tmp_path: Path, capsys) -> None:
    from aestudio.config import NoiseConfig, TrainConfig
    from aestudio.data import io
    from aestudio.nets import default_config
    from aestudio.training import train

    run = tmp_path / "run"
    cfg = default_config("denoising_ae", channels=8, image_size=8)
    for _ in train("denoising_ae", cfg, "digits", TrainConfig(epochs=1, max_steps=2, batch_size=16,
                                                              noise=NoiseConfig("gaussian", 0.1)), run):
        pass
    out = tmp_path / "int8"
    killed = tmp_path / ".int8.export-999999999-0a1b2c3d"  # what an int8 export killed mid-way leaves behind
    (killed / "bundle").mkdir(parents=True)
    assert main(["export", str(run), "--int8", "-o", str(out)]) == 0
    assert not killed.exists()  # cleaned: its process is gone
    said = capsys.readouterr().out
    assert "int8 bundle written" in said and "dB PSNR against float32" in said
    info = read_bundle(out)
    assert info.precision == "int8" and "run" in info.quantization["calibration"]["source"]
    assert info.training["data_spec"] == "digits" and info.parity_error["max"] < 1e-4  # the float32 export's check
    assert not any(p.name.startswith(".int8.") for p in tmp_path.iterdir())  # its temp bundles are gone
    images = tmp_path / "in"
    images.mkdir()
    io.write_image(images / "a.png", np.random.default_rng(0).random((20, 24)))
    assert main(["denoise", "--model", str(out), str(images), "-o", str(tmp_path / "den")]) == 0
    assert "runs an int8 graph" in capsys.readouterr().err
    assert (tmp_path / "den" / "a_denoised.png").is_file()
    # A package is made from the int8 bundle, not in one step (one line, exit 2).
    assert main(["export", str(run), "--int8", "--format", "bioimageio", "-o", str(tmp_path / "m.zip")]) == 2
    assert "export it first" in capsys.readouterr().err


def test_int8_bundle_packages_for_the_bioimage_model_zoo(int8_bundles, tmp_path: Path) -> None:
    pytest.importorskip("bioimageio.spec")
    import warnings

    from aestudio.export.bioimageio import write_package
    from aestudio.inference.bioimageio_predictor import PackagePredictor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zip_path = write_package(int8_bundles("denoising_ae"), tmp_path / "m.zip")
    image = np.random.default_rng(1).random((32, 32), dtype=np.float32)
    package = PackagePredictor(zip_path, task="denoise")
    with zipfile.ZipFile(zip_path) as z:  # the int8 graph is what travels
        graph = onnx.load_from_string(z.read(next(n for n in z.namelist() if n.endswith(".onnx"))))
    assert "QuantizeLinear" in {n.op_type for n in graph.graph.node}
    got = package.run_image(image)
    want = OrtPredictor(int8_bundles("denoising_ae")).run_image(image)
    # The package's input scaling moves values by ~1e-6, which can flip an int8 rounding (a float32 graph
    # agrees to 2e-5, tests/interop): close on the whole, a few pixels one activation step apart.
    diff = np.abs(got - want)
    assert diff.mean() < 1e-3 and diff.max() < 0.02, (diff.mean(), diff.max())


def test_calibration_inputs_are_the_runs_training_inputs_with_its_noise(tmp_path: Path) -> None:
    """A denoiser is calibrated on what it saw in training: its data with its noise, clipped to [0, 1]."""
    from aestudio.config import NoiseConfig, TrainConfig
    from aestudio.export.quantize import calibration_inputs
    from aestudio.nets import default_config
    from aestudio.training import train

    def run(name: str, noise: NoiseConfig) -> list[np.ndarray]:
        cfg = default_config("denoising_ae", channels=4, image_size=8)
        for _ in train("denoising_ae", cfg, "digits", TrainConfig(epochs=1, max_steps=1, batch_size=16, noise=noise),
                       tmp_path / name):
            pass
        return calibration_inputs(tmp_path / name, 12)

    def on_digit_levels(xs: list[np.ndarray]) -> float:  # scikit-learn's digits take 17 grey levels
        v = np.concatenate([x.ravel() for x in xs]) * 16
        return float(np.mean(np.abs(v - np.round(v)) < 1e-4))

    clean, noisy = run("clean", NoiseConfig("gaussian", 0.0)), run("noisy", NoiseConfig("gaussian", 0.2))
    assert len(noisy) == 12 and all(x.shape == (1, 1, 8, 8) and x.dtype == np.float32 for x in noisy)
    assert on_digit_levels(clean) == 1.0
    assert on_digit_levels(noisy) < 0.7  # zeros and ones from the clip stay on the levels, the rest does not
    assert min(float(x.min()) for x in noisy) >= 0 and max(float(x.max()) for x in noisy) <= 1


@pytest.mark.parametrize("name", list_nets())
def test_every_family_quantizes_and_runs(name: str, int8_bundles) -> None:
    """Where --int8 fits: every registered family's graph quantizes, runs, and records its error."""
    q = int8_bundles(name)
    info = read_bundle(q)
    assert info.precision == "int8" and info.quantization["quantized_nodes"] > 0
    size = info.fixed_size or 32
    out = OrtPredictor(q).predict(np.concatenate(calibration_images(info.in_channels, n=2, size=size, seed=3)))
    assert np.all(np.isfinite(out)) and out.shape[0] == 2
    err = info.quantization["error_vs_float32"]
    assert ("mask_agreement" in err) == (info.task.value == "segment") and err["rmse"] > 0
