"""Fixtures: tiny nets with random (not default-initialised) weights, exported once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aestudio.nets import build_net, default_config, get_spec

# Small configs keep export and parity fast; the fields exist in each family's config.
TINY: dict[str, dict] = {
    "dense_ae": {"image_size": 16},
    "conv_ae": {"image_size": 16},
    "sparse_ae": {"image_size": 16},
    "contractive_ae": {"image_size": 16},
    "vae": {"image_size": 16},
    "denoising_ae": {"channels": 8},
    "unet": {"base_channels": 8, "depth": 2, "num_classes": 3},
}


def tiny_net(name: str, **overrides) -> tuple[torch.nn.Module, object]:
    """A net of family ``name`` whose weights are all random, so no output is trivially exact
    (the denoiser's last layer and batch-norm statistics start at zero/one by default)."""
    fields = set(get_spec(name).config_cls.__dataclass_fields__)
    kw = {k: v for k, v in TINY.get(name, {}).items() if k in fields} | overrides
    cfg = default_config(name, **kw)
    torch.manual_seed(0)
    net = build_net(name, cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.8, 1.2)
    return net.eval(), cfg


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory):
    """``bundles(name) -> Path``: the net exported once per test session."""
    from aestudio.inference.export import export_net

    root = tmp_path_factory.mktemp("bundles")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            net, cfg = tiny_net(name)
            export_net(net, name, cfg, root / name, measure_timings=False)
            cache[name] = root / name
        return cache[name]

    return get


@pytest.fixture(name="tiny_net")
def _tiny_net_fixture():
    return tiny_net
