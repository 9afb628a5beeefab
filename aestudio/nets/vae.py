"""``vae``: the convolutional variational autoencoder (beta-VAE), with the pytorch/examples API.

``encode(x) -> (mu, logvar)``, ``decode(z) -> image``; ``forward`` decodes the
mean (deterministic, what gets exported) while ``forward_train`` decodes a
reparameterised sample. Shares the conv autoencoder's padding and depth rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from aestudio.config import NetConfig, Task, help_text
from aestudio.nets.conv_ae import ConvAutoencoder
from aestudio.nets.registry import NetSpec, register_net

# exp(10) is a variance of ~22,000 on a prior of 1: beyond that the value is
# numerical runaway, not information, and exp() would soon overflow.
_LOGVAR_LIMIT = 10.0


@dataclass(frozen=True)
class VAEConfig(NetConfig):
    latent_dim: int = field(default=10, metadata=help_text("enough for the shapes sprites' 5 factors with room to spare; each is a slider"))
    beta: float = field(default=1.0, metadata=help_text('KL weight; 1 is the ELBO, > 1 trades reconstruction for disentangled factors'))
    base_channels: int = field(default=16, metadata=help_text('as conv_ae, so encoders are interchangeable'))
    depth: int = field(default=3, metadata=help_text('as conv_ae; lowered automatically for tiny images'))


class VAE(ConvAutoencoder):
    """encoder -> (mu, logvar) -> z = mu + sigma * eps -> decoder -> sigmoid."""

    net_name = "vae"

    def __init__(self, *, beta: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if beta < 0:
            raise ValueError(f"vae: beta must be >= 0, got {beta}")
        self.beta = beta

    def _code_outputs(self) -> int:
        return 2 * self.latent_dim  # mu and logvar from one linear layer

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        mu, logvar = self.bottleneck.encode(self.features(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-_LOGVAR_LIMIT, _LOGVAR_LIMIT)

    def forward(self, x: Tensor) -> Tensor:
        mu, _ = self.encode(x)
        return self.decode(mu)

    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward_train(self, x: Tensor) -> dict[str, Tensor]:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return {"output": self.decode(z), "mu": mu, "logvar": logvar, "z": z}

    @staticmethod
    def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
        """KL(q(z|x) || N(0, I)) per sample, summed over latent dims, in nats."""
        return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)

    def extra_losses(
        self, x: Tensor, out: dict[str, Tensor], *, kl_scale: float = 1.0
    ) -> dict[str, Tensor]:
        """``{"kl": beta * kl_scale * KL / (C*H*W)}``.

        Divided by the values per image because the trainer's reconstruction
        loss is a per-value mean; without it beta=1 would not be the ELBO's balance.
        """
        if "mu" in out and "logvar" in out:
            mu, logvar = out["mu"], out["logvar"]
        else:
            mu, logvar = self.encode(x)
        values = math.prod(x.shape[1:])
        kl = self.kl_divergence(mu, logvar).mean() / values
        return {"kl": self.beta * kl_scale * kl}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images decoded from the prior N(0, I), [n, C, H, W] in [0, 1]."""
        param = next(self.parameters())
        # Draw on the generator's device (a CPU generator cannot fill a CUDA tensor), then move.
        device = generator.device if generator is not None else param.device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.decode(z.to(param))


def _vae(cfg: VAEConfig) -> VAE:
    return VAE(
        in_channels=cfg.in_channels,
        image_size=cfg.image_size,
        latent_dim=cfg.latent_dim,
        base_channels=cfg.base_channels,
        depth=cfg.depth,
        beta=cfg.beta,
    )


@register_net(
    NetSpec(
        name="vae",
        task=Task.GENERATE,
        config_cls=VAEConfig,
        has_latent=True,
        description="Convolutional variational autoencoder (beta-VAE): sample and slide the latents",
    )
)
def vae(cfg: VAEConfig | None = None, /, **overrides: Any) -> VAE:
    """A VAE from ``cfg`` (defaults when None), e.g. ``vae(beta=4.0)``."""
    return _vae(replace(cfg or VAEConfig(), **overrides))
