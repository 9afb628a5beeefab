"""model.json round trip and bundle validation (no torch needed here)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from aestudio.config import Task
from aestudio.inference.bundle import (
    BundleError,
    LatentKind,
    ModelInfo,
    is_bundle,
    read_bundle,
    write_model_json,
)


def _info(**kw) -> ModelInfo:
    base = ModelInfo(
        name="vae on digits",
        net="vae",
        task=Task.GENERATE,
        in_channels=1,
        image_size=28,
        latent_dim=8,
        latent_kind=LatentKind.GAUSSIAN,
        metrics={"mse": 0.01},
        parity_error={"model": 1e-7, "max": 1e-7},
        files={"model": "model.onnx", "encoder": "encoder.onnx", "decoder": "decoder.onnx"},
    )
    return replace(base, **kw)


def _write(folder: Path, info: ModelInfo) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_model_json(folder, info)
    for name in info.files.values():
        (folder / name).write_bytes(b"x")
    return folder


def test_round_trip_preserves_every_field(tmp_path: Path) -> None:
    info = _info(class_names=[], training={"epochs": 3, "data_spec": "digits"})
    folder = _write(tmp_path / "b", info)
    assert is_bundle(folder)
    assert read_bundle(folder) == info
    assert ModelInfo.from_json(info.to_json()) == info


def test_segment_round_trip_and_derived_facts(tmp_path: Path) -> None:
    info = _info(
        net="unet", task=Task.SEGMENT, image_size="any", size_multiple=8, latent_dim=None, latent_kind=None,
        class_names=["bg", "disc", "square"], class_colors=[[0, 0, 0], [255, 0, 0], [0, 255, 0]], files={"model": "model.onnx"},
    )  # fmt: skip
    back = read_bundle(_write(tmp_path / "s", info))
    assert back.fixed_size is None and back.num_classes == 3 and back.output_name == "logits"
    assert not back.has_latent


def test_missing_model_json_names_the_file_and_fix(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"model\.json: missing.*aestudio export"):
        read_bundle(tmp_path)
    assert not is_bundle(tmp_path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: json.dumps([1, 2]), "expected a JSON object"),
        (lambda d: json.dumps(d | {"format": "other"}), "'format'"),
        (lambda d: json.dumps(d | {"format_version": 99}), "format_version 99 is not supported"),
        (lambda d: json.dumps(d | {"task": "paint"}), "'task'"),
        (lambda d: json.dumps(d | {"surprise": 1}), "unknown key"),
        (lambda d: json.dumps({k: v for k, v in d.items() if k != "in_channels"}), "in_channels"),
        (lambda d: json.dumps(d | {"latent_kind": None}), "latent_dim' and 'latent_kind"),
        (lambda d: json.dumps(d | {"image_size": -3}), "image_size"),
        (lambda d: json.dumps(d | {"files": {"model": "../escape.onnx"}}), "plain name"),
        (lambda d: json.dumps(d | {"value_range": [1, 0]}), "value_range"),
    ],
)
def test_invalid_model_json_is_a_bundle_error(tmp_path: Path, mutate, message: str) -> None:
    folder = _write(tmp_path / "b", _info())
    data = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(mutate(data))
    with pytest.raises(BundleError, match=message) as err:
        read_bundle(folder)
    assert "model.json" in str(err.value)


def test_listed_file_missing_or_empty(tmp_path: Path) -> None:
    folder = _write(tmp_path / "b", _info())
    (folder / "decoder.onnx").unlink()
    with pytest.raises(BundleError, match=r"decoder\.onnx: missing"):
        read_bundle(folder)
    (folder / "decoder.onnx").write_bytes(b"")
    with pytest.raises(BundleError, match="empty file"):
        read_bundle(folder)


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    folder = _write(tmp_path / "b", _info())
    write_model_json(folder, _info(name="again"))
    assert read_bundle(folder).name == "again"
    assert sorted(p.name for p in folder.iterdir()) == ["decoder.onnx", "encoder.onnx", "model.json", "model.onnx"]
