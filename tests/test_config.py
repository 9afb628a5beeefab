"""Config dataclasses: JSON round trip, strictness, noise spec parsing."""

import json

import pytest

from aestudio.config import (
    NoiseConfig,
    ReconLoss,
    TrainConfig,
    from_dict,
    noise_to_spec,
    parse_noise,
    to_dict,
)


def test_train_config_json_round_trip() -> None:
    cfg = TrainConfig(epochs=3, lr=5e-4, recon_loss=ReconLoss.BCE, noise=parse_noise("gaussian:0-0.2"), max_steps=7)
    data = json.loads(json.dumps(to_dict(cfg)))
    assert data["recon_loss"] == "bce"
    back = from_dict(TrainConfig, data)
    assert back == cfg
    assert isinstance(back.noise, NoiseConfig) and back.recon_loss is ReconLoss.BCE


def test_unknown_field_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown field.*epochz"):
        from_dict(TrainConfig, {"epochz": 3})


def test_missing_fields_take_defaults() -> None:
    assert from_dict(TrainConfig, {"epochs": 2}) == TrainConfig(epochs=2)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("gaussian:0.1", NoiseConfig("gaussian", 0.1)),
        ("gaussian:0-0.2", NoiseConfig("gaussian", 0.0, 0.2)),
        ("salt-pepper:0.05", NoiseConfig("saltpepper", 0.05)),
        ("poisson:30", NoiseConfig("poisson", 30.0)),
        ("none", NoiseConfig()),
        (None, NoiseConfig()),
    ],
)
def test_parse_noise(spec: str | None, expected: NoiseConfig) -> None:
    assert parse_noise(spec) == expected
    assert parse_noise(noise_to_spec(expected)) == expected


@pytest.mark.parametrize("spec", ["fog:0.1", "gaussian", "gaussian:x", "gaussian:0.3-0.1"])
def test_parse_noise_errors_name_the_fix(spec: str) -> None:
    with pytest.raises(ValueError, match="gaussian|e.g."):
        parse_noise(spec)
