"""``contractive_ae``: the convolutional autoencoder penalised by its encoder Jacobian's Frobenius norm."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from aestudio.config import Task, help_text
from aestudio.nets.conv_ae import ConvAEConfig, ConvAutoencoder
from aestudio.nets.registry import NetSpec, register_net


@dataclass(frozen=True)
class ContractiveAEConfig(ConvAEConfig):
    contractive: float = field(default=1e-4, metadata=help_text('weight on ||dz/dx||_F^2 (a sum over C*H*W*latent entries, so it is small)'))
    jacobian_probes: int = field(default=1, metadata=help_text('random probes per step; 1 is unbiased and cheapest, more only lower the noise'))


class ContractiveAutoencoder(ConvAutoencoder):
    """:class:`ConvAutoencoder` plus ``contractive * ||dz/dx||_F^2`` in ``extra_losses``.

    The exact squared Frobenius norm needs one vector-Jacobian product per
    code unit (latent_dim backward passes, or latent_dim x the memory with
    torch.func.vmap). Instead we use Hutchinson's estimator: for a random v
    with E[v v^T] = I, E ||v^T J||^2 = trace(J J^T) = ||J||_F^2. One VJP with
    ``create_graph=True`` per probe makes the penalty differentiable at about
    the cost of one extra backward pass; being unbiased, its noise averages out
    over SGD steps like minibatch noise. Rademacher probes (+-1) rather than
    Gaussian ones because their variance is lower (they drop the diagonal term).

    In train mode BatchNorm couples samples, so the estimate also picks up the
    small cross-sample terms dz_i/dx_j (i != j), which is harmless for a
    regulariser; in eval mode it is exactly the per-sample Jacobian.
    """

    net_name = "contractive_ae"

    def __init__(self, *, contractive: float, jacobian_probes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if contractive < 0 or jacobian_probes < 1:
            raise ValueError("contractive_ae needs contractive >= 0 and jacobian_probes >= 1")
        self.contractive = contractive
        self.jacobian_probes = jacobian_probes

    def forward_train(self, x: Tensor) -> dict[str, Tensor]:
        # Encode from a leaf that requires grad, so extra_losses can reuse this
        # forward pass for the Jacobian instead of running the encoder again.
        if torch.is_grad_enabled() and self.contractive > 0 and not x.requires_grad:
            x = x.detach().requires_grad_(True)
        z = self.encode(x)
        return {"output": self.decode(z), "z": z, "input": x}

    def jacobian_penalty(self, x: Tensor, z: Tensor | None = None) -> Tensor:
        """Unbiased estimate of mean over the batch of ||dz/dx||_F^2.

        ``z`` must have been computed from ``x`` (a tensor requiring grad); when
        omitted, the encoder runs on a fresh leaf copy of ``x``.
        """
        if z is None or not x.requires_grad or not z.requires_grad:
            x = x.detach().requires_grad_(True)
            z = self.encode(x)
        total = x.new_zeros(())
        for _ in range(self.jacobian_probes):
            v = torch.randint_like(z, 2).mul_(2).sub_(1)  # Rademacher: +-1
            # create_graph keeps the graph (so further probes can reuse it) and
            # makes the penalty differentiable w.r.t. the weights.
            (vjp,) = torch.autograd.grad(z, x, grad_outputs=v, create_graph=True)
            total = total + vjp.pow(2).flatten(1).sum(1).mean()
        return total / self.jacobian_probes

    def extra_losses(
        self, x: Tensor, out: dict[str, Tensor], *, kl_scale: float = 1.0
    ) -> dict[str, Tensor]:
        if self.contractive == 0:
            return {"contractive": x.new_zeros(())}
        leaf = out.get("input")
        if leaf is not None:
            return {"contractive": self.contractive * self.jacobian_penalty(leaf, out.get("z"))}
        return {"contractive": self.contractive * self.jacobian_penalty(x)}


def _contractive_ae(cfg: ContractiveAEConfig) -> ContractiveAutoencoder:
    return ContractiveAutoencoder(
        in_channels=cfg.in_channels,
        image_size=cfg.image_size,
        latent_dim=cfg.latent_dim,
        base_channels=cfg.base_channels,
        depth=cfg.depth,
        contractive=cfg.contractive,
        jacobian_probes=cfg.jacobian_probes,
    )


@register_net(
    NetSpec(
        name="contractive_ae",
        task=Task.RECONSTRUCT,
        config_cls=ContractiveAEConfig,
        has_latent=True,
        description="Convolutional autoencoder penalising the encoder Jacobian (robust codes)",
    )
)
def contractive_ae(
    cfg: ContractiveAEConfig | None = None, /, **overrides: Any
) -> ContractiveAutoencoder:
    """A contractive autoencoder from ``cfg`` (defaults when None), e.g. ``contractive_ae(contractive=1e-3)``."""
    return _contractive_ae(replace(cfg or ContractiveAEConfig(), **overrides))
