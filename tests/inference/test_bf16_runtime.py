"""The bfloat16 runtime (aestudio.export.bf16_runtime): measured at export, chosen only where the record and
the CPU allow it, close to float32, and used by `aestudio denoise/segment --precision` and the app's batch work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aestudio.cli import main
from aestudio.export import bf16_runtime
from aestudio.export.bf16_runtime import Bf16Predictor, choose_bf16
from aestudio.inference.bundle import ModelInfo, read_bundle
from aestudio.inference.ort import OrtPredictor
from aestudio.inference.precision import MIN_PSNR_DB, record_ok

native = pytest.mark.skipif(not bf16_runtime.bf16_native(), reason="this CPU has no native bfloat16")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12)))


def test_export_records_what_bfloat16_does_to_the_model_graph(bundles) -> None:
    den, seg = read_bundle(bundles("denoising_ae")), read_bundle(bundles("unet"))
    for info in (den, seg):
        rec = info.bfloat16
        assert rec["psnr_vs_float32_db"] > MIN_PSNR_DB and 0 < rec["max_abs_error"] < 0.05, rec
        assert rec["first_conv"] == "float32" and "random" in rec["checked_on"]
    assert 0.999 <= seg.bfloat16["class_agreement"] <= 1.0 and "class_agreement" not in den.bfloat16
    # Models that are not image-to-image at any size keep the exact graph, and say nothing.
    assert read_bundle(bundles("vae")).bfloat16 == {}
    assert "bfloat16" not in json.loads((bundles("vae") / "model.json").read_text())


@native
def test_the_twin_runs_close_to_float32_and_not_identical(bundles) -> None:
    ref = OrtPredictor(bundles("denoising_ae"), profile="batch")
    twin, why = choose_bf16(ref, "auto")
    assert isinstance(twin, Bf16Predictor) and "bfloat16" in why and twin.provider.startswith("torch bfloat16")
    img = np.random.default_rng(3).random((70, 45), dtype=np.float32)
    a, b = ref.run_image(img), twin.run_image(img)
    assert a.shape == b.shape == (70, 45, 1)
    assert 0 < float(np.abs(a - b).max()) < 0.05
    assert _psnr(b, a) > MIN_PSNR_DB
    # A big image is tiled as ONNX Runtime's predictor tiles it (the same seams, the same blend).
    twin.tiling.tile, twin.tiling.overlap = 64, 16
    ref.tiling.tile, ref.tiling.overlap = 64, 16
    big = np.random.default_rng(4).random((150, 97), dtype=np.float32)
    assert _psnr(twin.run_image(big), ref.run_image(big)) > MIN_PSNR_DB
    # The twin is built once per bundle; float32 asked for is the predictor itself.
    assert choose_bf16(ref, "auto")[0] is twin and choose_bf16(ref, "float32")[0] is ref


@native
def test_a_segmenters_twin_gives_the_same_classes(bundles) -> None:
    ref = OrtPredictor(bundles("unet"), profile="batch")
    twin, _ = choose_bf16(ref, "bfloat16")
    img = np.random.default_rng(5).random((64, 80, ref.info.in_channels), dtype=np.float32)
    (ra, _), (tb, _) = ref.segment(img), twin.segment(img)
    assert np.mean(ra == tb) > 0.999


def test_auto_keeps_float32_where_the_record_or_the_cpu_says_no(bundles, monkeypatch, tmp_path: Path) -> None:
    ref = OrtPredictor(bundles("denoising_ae"), profile="batch")
    info = read_bundle(bundles("denoising_ae"))
    assert record_ok(info) is None
    # A record below the bar, no record, an int8 graph: auto stays float32 and says why; insisting fails.
    for bad, phrase in ((info.bfloat16 | {"psnr_vs_float32_db": MIN_PSNR_DB - 1}, "dB PSNR"), ({}, "no bfloat16 check")):
        changed = ModelInfo.from_dict(json.loads(info.to_json()) | {"bfloat16": bad})
        assert phrase in record_ok(changed)
    assert "int8" in record_ok(ModelInfo.from_dict(json.loads(info.to_json()) | {"quantization": {"dtype": "int8"}}))
    monkeypatch.setattr(bf16_runtime, "bf16_native", lambda: False)
    same, why = choose_bf16(ref, "auto")
    assert same is ref and "no native bfloat16" in why
    with pytest.raises(ValueError, match="no native bfloat16.*--precision float32"):
        choose_bf16(ref, "bfloat16")


@native
def test_cli_precision(bundles, tmp_path: Path, capsys) -> None:
    from aestudio.data.io import write_image

    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    write_image(src / "a.png", (rng.random((40, 56)) * 255).astype(np.uint8))
    model = str(bundles("denoising_ae"))
    assert main(["denoise", "--model", model, str(src), "-o", str(tmp_path / "auto")]) == 0
    assert "runs in bfloat16" in capsys.readouterr().err
    assert main(["denoise", "--model", model, "--precision", "float32", str(src), "-o", str(tmp_path / "f32")]) == 0
    assert "bfloat16" not in capsys.readouterr().err
    from aestudio.data.io import read_image

    a, b = read_image(tmp_path / "auto" / "a_denoised.png"), read_image(tmp_path / "f32" / "a_denoised.png")
    assert a.shape == b.shape and 0 < np.abs(a - b).max() <= 3 / 255  # 8-bit files: a few levels at most
    # A model without the record: insisting is a one-line error naming the bundle and the fix.
    assert main(["segment", "--model", str(bundles("vae")), "--precision", "bfloat16", str(src), "-o", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "cannot run in bfloat16" in err and "--precision float32" in err and len(err.strip().splitlines()) == 1


def test_app_batch_work_takes_the_twin_only_while_nothing_trains(bundles, monkeypatch) -> None:
    from aestudio.explore import sessions
    from aestudio.gui import engine

    calls = []
    monkeypatch.setattr(engine, "_bf16_twin", lambda p: calls.append(p) or ("twin", p))
    ref = OrtPredictor(bundles("denoising_ae"), profile="interactive")
    try:
        engine.install_batch_runtime("auto")
        assert sessions.for_work(ref, heavy=True) == ("twin", ref.with_profile("batch"))
        assert sessions.for_work(ref, heavy=False) is ref  # sliders and previews keep the exact graph
        sessions.count_run(+1)
        try:
            assert sessions.for_work(ref, heavy=True) is ref  # a run trains: one thread, no twin
        finally:
            sessions.count_run(-1)
        engine.install_batch_runtime("float32")
        assert sessions.for_work(ref, heavy=True) is ref.with_profile("batch")
    finally:
        engine.install_batch_runtime("float32")
    assert len(calls) == 1


def test_a_denoisers_check_on_real_images_includes_them_noisy(tmp_path: Path) -> None:
    """The real images of a supervised denoiser's run are its clean targets, where its output hardly moves."""
    from aestudio.export.exporter import export_net
    from tests.conftest import calibration_images, tiny_net

    net, cfg = tiny_net("denoising_ae")
    real = np.concatenate(calibration_images(1, n=3, size=40, noise=0.0))
    rec = export_net(net, "denoising_ae", cfg, tmp_path / "b", sample_inputs=real, measure_timings=False).bfloat16
    assert rec["checked_on"] == "3 real image(s) 40x40, clean and with Gaussian noise sigma 0.1"
    assert MIN_PSNR_DB < rec["psnr_vs_float32_db"] < 99


def test_models_panel_tooltip_says_when_bfloat16_is_allowed(bundles) -> None:
    from aestudio.gui.models_panel import bundle_tooltip

    den = bundle_tooltip(bundles("denoising_ae"))
    assert "bfloat16 allowed" in den and f"{read_bundle(bundles('denoising_ae')).bfloat16['psnr_vs_float32_db']} dB" in den
    assert "bfloat16" not in bundle_tooltip(bundles("vae"))
