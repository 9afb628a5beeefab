"""The registry: order, lookups, errors, config round trips."""

from __future__ import annotations

import json
from dataclasses import fields, replace

import pytest

from aestudio.config import NetConfig, Task
from aestudio.nets import (
    NetSpec,
    UnknownNetError,
    build_net,
    default_config,
    get_spec,
    list_nets,
    net_config_from_dict,
    net_config_to_dict,
    register_net,
    size_multiple,
)

EXPECTED = ["dense_ae", "conv_ae", "denoising_ae", "sparse_ae", "contractive_ae", "vae", "unet"]


def test_every_family_is_listed_in_order() -> None:
    assert list_nets() == EXPECTED


def test_duplicate_registration_raises() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_net(NetSpec(name="conv_ae", task=Task.RECONSTRUCT, config_cls=NetConfig))(
            lambda cfg: None
        )
    assert list_nets() == EXPECTED


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(UnknownNetError) as info:
        build_net("resnet")
    message = str(info.value)
    assert message.startswith("unknown net 'resnet'")  # no KeyError quoting around the message
    for name in EXPECTED:
        assert name in message
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", list_nets())
def test_spec_matches_the_family(name: str) -> None:
    spec = get_spec(name)
    assert spec.name == name
    assert issubclass(spec.config_cls, NetConfig)
    assert spec.description
    net = build_net(name)
    assert hasattr(net, "encode") == spec.has_latent
    assert hasattr(net, "decode") == spec.has_latent
    assert (spec.task is Task.SEGMENT) == (name == "unet")
    if spec.fully_convolutional:
        assert size_multiple(name, spec.config_cls()) == spec.size_multiple


@pytest.mark.parametrize("name", list_nets())
def test_every_config_field_has_a_default_and_round_trips_through_json(name: str) -> None:
    cfg = default_config(name)
    changed = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, bool):
            changed[f.name] = not value
        elif isinstance(value, (int, float)):
            changed[f.name] = value * 2 if value else 1
        elif isinstance(value, tuple):
            changed[f.name] = (*value, 1)
    cfg = replace(cfg, **changed)
    text = json.dumps(net_config_to_dict(name, cfg))
    back_name, back = net_config_from_dict(json.loads(text))
    assert back_name == name
    assert back == cfg
    assert type(back) is type(cfg)


def test_default_config_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="latnt_dim"):
        default_config("vae", latnt_dim=3)


def test_build_net_rejects_another_familys_config() -> None:
    # sparse_ae's config subclasses conv_ae's: building conv_ae from it would drop the L1 weight.
    with pytest.raises(TypeError, match="ConvAEConfig"):
        build_net("conv_ae", default_config("sparse_ae"))


def test_unet_size_multiple_follows_its_depth() -> None:
    assert size_multiple("unet", default_config("unet", depth=4)) == 16
    assert size_multiple("unet") == get_spec("unet").size_multiple == 8
    assert size_multiple("denoising_ae", default_config("denoising_ae")) == 1
