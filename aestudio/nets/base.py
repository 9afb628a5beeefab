"""The contract every net module follows (see docs/DESIGN-notes.md, "nets").

:class:`AutoencoderBase` gives the defaults (``forward_train`` = ``forward`` plus
the code, no extra losses, ``summary``) and the input check that fixed-size nets
share, so each family file holds only its architecture and its regulariser.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from aestudio.nets.blocks import count_params, is_exporting


class AutoencoderBase(nn.Module):
    """Base of every family. Subclasses set ``in_channels`` and, if they have a
    code, ``latent_dim``, ``image_size`` and implement ``encode``/``decode``."""

    in_channels: int
    has_code: bool = False  # True when encode/decode/latent_dim exist
    image_size: int | None = None  # None: fully convolutional
    latent_dim: int

    def forward_train(self, x: Tensor) -> dict[str, Tensor]:
        """What the trainer needs: ``"output"`` (= forward) and the code ``"z"``."""
        if not self.has_code:
            return {"output": self(x)}
        z = self.encode(x)
        return {"output": self.decode(z), "z": z}

    def extra_losses(
        self, x: Tensor, out: dict[str, Tensor], *, kl_scale: float = 1.0
    ) -> dict[str, Tensor]:
        """The family's regularisers, already weighted; none by default."""
        return {}

    def code_values(self) -> int | None:
        return self.latent_dim if self.has_code else None

    def summary(self) -> dict[str, Any]:
        """``num_params``, ``code_values`` and ``compression_ratio`` (input values / code values)."""
        code = self.code_values()
        ratio = None
        if code is not None and self.image_size is not None:
            ratio = self.in_channels * self.image_size**2 / code
        return {"num_params": count_params(self), "code_values": code, "compression_ratio": ratio}

    def check_input(self, x: Tensor, name: str) -> None:
        """Raise a ValueError naming the fix when ``x`` does not fit this net.

        Skipped during export (see :func:`is_exporting`): the exported graph
        keeps its dynamic axes, and the predictor checks sizes itself.
        """
        if is_exporting():
            return
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{name} expects a batch [N, {self.in_channels}, H, W], got shape {list(x.shape)}; "
                f"convert images to {self.in_channels} channel(s) or rebuild with in_channels={x.shape[1] if x.dim() == 4 else '?'}"
            )
        if self.image_size is not None and tuple(x.shape[-2:]) != (
            self.image_size,
            self.image_size,
        ):
            h, w = x.shape[-2:]
            raise ValueError(
                f"{name} was built for {self.image_size}x{self.image_size} images, got {h}x{w}; "
                f"resize your images to {self.image_size}x{self.image_size} or rebuild with image_size={h}"
            )
