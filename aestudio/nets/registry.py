"""The net registry: a decorator registers a builder with a spec the UI reads.

``@register_net(NetSpec(name="vae", task=Task.GENERATE, has_latent=True, config_cls=VAEConfig))``
above a builder ``def vae(cfg: VAEConfig) -> nn.Module``. ``list_nets()`` gives the
names in registration order, ``get_spec(name)`` the spec, ``build_net(name, cfg)``
a fresh module. Duplicate names raise, so two families can never shadow each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from aestudio.config import NetConfig, Task, from_dict, to_dict
from aestudio.errors import AestudioError


@dataclass(frozen=True)
class NetSpec:
    name: str  # registry key, also the CLI's --model value
    task: Task  # what the main output means
    config_cls: type[NetConfig]  # the family's config dataclass (the GUI builds its form from it)
    has_latent: bool = False  # True: the module has encode(x) / decode(z)
    fully_convolutional: bool = False  # True: any H and W (multiples of size_multiple) work
    size_multiple: int = (
        1  # with the default config; use size_multiple(name, cfg) for a given config
    )
    description: str = ""  # one line for menus and `aestudio info`


class UnknownNetError(AestudioError, KeyError, ValueError):
    """An unregistered net name. A KeyError for lookups, a ValueError for argument checks."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


_REGISTRY: dict[str, tuple[NetSpec, Callable[[Any], nn.Module]]] = {}


def register_net(
    spec: NetSpec,
) -> Callable[[Callable[[Any], nn.Module]], Callable[[Any], nn.Module]]:
    def wrap(builder: Callable[[Any], nn.Module]) -> Callable[[Any], nn.Module]:
        if spec.name in _REGISTRY:
            raise ValueError(f"a net named {spec.name!r} is already registered")
        _REGISTRY[spec.name] = (spec, builder)
        return builder

    return wrap


def list_nets() -> list[str]:
    _ensure_loaded()
    return list(_REGISTRY)


def get_spec(name: str) -> NetSpec:
    _ensure_loaded()
    try:
        return _REGISTRY[name][0]
    except KeyError:
        raise UnknownNetError(
            f"unknown net {name!r}; choose one of: {', '.join(_REGISTRY)}"
        ) from None


def default_config(name: str, **overrides: Any) -> NetConfig:
    """The family's config with defaults, updated by ``overrides`` (unknown keys raise)."""
    spec = get_spec(name)
    return from_dict(spec.config_cls, overrides)


def build_net(name: str, cfg: NetConfig | None = None) -> nn.Module:
    spec = get_spec(name)
    if cfg is None:
        cfg = spec.config_cls()
    # Exact type: sparse_ae's config subclasses conv_ae's, and a conv_ae built from
    # it would silently drop the sparsity weight.
    if type(cfg) is not spec.config_cls:
        raise TypeError(
            f"net {name!r} needs a {spec.config_cls.__name__}, got {type(cfg).__name__}"
        )
    return _REGISTRY[name][1](cfg)


def size_multiple(name: str, cfg: NetConfig | None = None) -> int:
    """H and W of inputs must be multiples of this for net ``name`` built from ``cfg``."""
    spec = get_spec(name)
    return (
        int(getattr(cfg, "size_multiple", spec.size_multiple))
        if cfg is not None
        else spec.size_multiple
    )


def net_config_to_dict(name: str, cfg: NetConfig) -> dict[str, Any]:
    return {"name": name, "params": to_dict(cfg)}


def net_config_from_dict(data: dict[str, Any]) -> tuple[str, NetConfig]:
    name = data["name"]
    return name, from_dict(get_spec(name).config_cls, data.get("params", {}))


def _ensure_loaded() -> None:
    # Importing the package registers every family (one module per family).
    import aestudio.nets  # noqa: F401
