"""``sparse_ae``: the convolutional autoencoder with an L1 penalty on its code."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from torch import Tensor

from aestudio.config import Task, help_text
from aestudio.nets.conv_ae import ConvAEConfig, ConvAutoencoder
from aestudio.nets.registry import NetSpec, register_net


@dataclass(frozen=True)
class SparseAEConfig(ConvAEConfig):
    latent_dim: int = field(default=32, metadata=help_text("a wider code than conv_ae's: the L1 term decides how many units each image uses"))
    sparsity: float = field(default=1e-3, metadata=help_text('L1 weight on the mean |z|; ~1e-3 silences units without hurting reconstruction much'))


class SparseAutoencoder(ConvAutoencoder):
    """:class:`ConvAutoencoder` plus ``sparsity * mean |z|`` in ``extra_losses``.

    The code stays linear (no ReLU): the L1 term alone drives unused units to
    zero, and signed codes keep latent sliders symmetric in the studio.
    """

    net_name = "sparse_ae"

    def __init__(self, *, sparsity: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if sparsity < 0:
            raise ValueError(f"sparse_ae: sparsity must be >= 0, got {sparsity}")
        self.sparsity = sparsity

    def extra_losses(
        self, x: Tensor, out: dict[str, Tensor], *, kl_scale: float = 1.0
    ) -> dict[str, Tensor]:
        z = out["z"] if "z" in out else self.encode(x)
        return {"sparsity": self.sparsity * z.abs().mean()}


def _sparse_ae(cfg: SparseAEConfig) -> SparseAutoencoder:
    return SparseAutoencoder(
        in_channels=cfg.in_channels,
        image_size=cfg.image_size,
        latent_dim=cfg.latent_dim,
        base_channels=cfg.base_channels,
        depth=cfg.depth,
        sparsity=cfg.sparsity,
    )


@register_net(
    NetSpec(
        name="sparse_ae",
        task=Task.RECONSTRUCT,
        config_cls=SparseAEConfig,
        has_latent=True,
        description="Convolutional autoencoder with an L1 penalty on the code",
    )
)
def sparse_ae(cfg: SparseAEConfig | None = None, /, **overrides: Any) -> SparseAutoencoder:
    """A sparse autoencoder from ``cfg`` (defaults when None), e.g. ``sparse_ae(sparsity=1e-2)``."""
    return _sparse_ae(replace(cfg or SparseAEConfig(), **overrides))
