"""Export every registered net, check the bundle, and compare ORT against torch through the predictors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from aestudio.config import Task
from aestudio.export import exporter as export_mod
from aestudio.export.exporter import ExportError, export_net
from aestudio.export.torch_predictor import TorchPredictor
from aestudio.inference.bundle import read_bundle
from aestudio.inference.ort import OrtPredictor
from aestudio.nets import get_spec, list_nets


@pytest.mark.parametrize("name", list_nets())
# Export mechanics (atomic folders, metadata, refusal) are tested with the fast TorchScript
# exporter on dense_ae, where it is exact; the registry test uses the default (dynamo) exporter.


def test_export_and_parity(name: str, bundles) -> None:
    folder = bundles(name)
    info = read_bundle(folder)
    spec = get_spec(name)
    expected = {"model.json", "model.onnx", "weights.safetensors"} | ({"encoder.onnx", "decoder.onnx"} if spec.has_latent else set())
    assert {p.name for p in folder.iterdir()} == expected
    assert info.net == name and info.task.value == spec.task.value
    assert info.parity_error["max"] <= 1e-4 and info.parity_error["model"] > 0  # random weights: not trivially equal
    assert (info.image_size == "any") == spec.fully_convolutional
    # Tensor names and dynamic axes as the format promises.
    model = onnx.load(str(folder / "model.onnx"))
    (inp,) = model.graph.input
    assert inp.name == "image" and [o.name for o in model.graph.output] == [info.output_name]
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].dim_value  # dynamic batch
    assert bool(dims[2].dim_param) == spec.fully_convolutional
    if spec.has_latent:
        enc = onnx.load(str(folder / "encoder.onnx"))
        outs = sorted(o.name for o in enc.graph.output)
        assert outs == (["logvar", "mu"] if info.latent_kind.value == "gaussian" else ["z"])

    ort_p, torch_p = OrtPredictor(folder), TorchPredictor.from_bundle(folder)
    rng = np.random.default_rng(0)
    size = info.fixed_size or 40
    batch = rng.random((8, info.in_channels, size, size), dtype=np.float32)
    np.testing.assert_allclose(ort_p.predict(batch), torch_p.predict(batch), atol=1e-4)
    image = (rng.random((37, 45, 3)) * 255).astype(np.uint8)  # odd size, RGB, uint8
    out_o, out_t = ort_p.run_image(image), torch_p.run_image(image)
    np.testing.assert_allclose(out_o, out_t, atol=1e-4)
    if info.task is Task.SEGMENT:
        assert out_o.shape == (info.num_classes, 37, 45)
        mask, probs = ort_p.segment(image)
        assert mask.shape == (37, 45) and mask.dtype == np.int64 and mask.max() < info.num_classes
        np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    else:
        assert out_o.shape == (37, 45, info.in_channels) and 0 <= out_o.min() and out_o.max() <= 1
    if spec.has_latent:
        z = ort_p.encode(batch)
        assert z.shape == (8, info.latent_dim)
        np.testing.assert_allclose(z, torch_p.encode(batch), atol=1e-4)
        np.testing.assert_allclose(ort_p.decode(z), torch_p.decode(z), atol=1e-4)


def test_model_json_records_timings_and_training(tmp_path: Path, tiny_net) -> None:
    net, cfg = tiny_net("dense_ae")
    info = export_net(net, "dense_ae", cfg, tmp_path / "b", exporter="torchscript", metadata={"name": "demo", "metrics": {"mse": 0.5}, "training": {"epochs": 2}})
    data = json.loads((tmp_path / "b" / "model.json").read_text())
    assert data["format"] == "aestudio-bundle" and data["format_version"] == 1 and data["name"] == "demo"
    for graph in ("model", "encoder", "decoder"):
        t = data["timings"][graph]
        assert t["torch_ms"] > 0 and t["ort_ms"] > 0
    assert data["metrics"] == {"mse": 0.5} and data["training"] == {"epochs": 2}
    assert info.exporter.startswith("torch ") and data["created"]


def test_parity_failure_leaves_no_half_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_net) -> None:
    monkeypatch.setattr(export_mod, "PARITY_TOLERANCE", -1.0)  # every real error is now "too large"
    net, cfg = tiny_net("dense_ae")
    with pytest.raises(ExportError, match="differs from torch"):
        export_net(net, "dense_ae", cfg, tmp_path / "b", exporter="torchscript", measure_timings=False)
    assert list(tmp_path.iterdir()) == []  # neither the bundle nor a temp folder


def test_refuses_to_overwrite_a_user_folder_but_replaces_a_bundle(tmp_path: Path, tiny_net) -> None:
    user = tmp_path / "photos"
    user.mkdir()
    (user / "keep.txt").write_text("mine")
    net, cfg = tiny_net("dense_ae")
    with pytest.raises(ExportError, match="not a bundle; refusing"):
        export_net(net, "dense_ae", cfg, user, exporter="torchscript", measure_timings=False)
    assert (user / "keep.txt").read_text() == "mine"
    export_net(net, "dense_ae", cfg, tmp_path / "b", exporter="torchscript", measure_timings=False, metadata={"name": "one"})
    export_net(net, "dense_ae", cfg, tmp_path / "b", exporter="torchscript", measure_timings=False, metadata={"name": "two"})
    assert read_bundle(tmp_path / "b").name == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "photos"]


def test_real_sample_inputs_are_checked(tmp_path: Path, tiny_net) -> None:
    net, cfg = tiny_net("unet")
    with pytest.raises(ValueError, match="sample_inputs must be"):
        export_net(net, "unet", cfg, tmp_path / "b", sample_inputs=np.zeros((2, 3, 32, 32), np.float32))
    real = np.random.default_rng(0).random((3, 1, 35, 42)).astype(np.float32)  # cropped to multiples of 4
    info = export_net(net, "unet", cfg, tmp_path / "b", sample_inputs=real, measure_timings=False)
    assert info.parity_error["max"] <= 1e-4
