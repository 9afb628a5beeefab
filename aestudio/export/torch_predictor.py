"""The torch predictor: the :class:`~aestudio.inference.predictor.Predictor` interface over an nn.Module.

Used during training (previews from the live net, before any export) and as
the eager baseline the benchmarks compare ONNX Runtime against. Also builds
the :class:`ModelInfo` that describes a registered net, which export reuses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aestudio.config import NetConfig, Task
from aestudio.inference.bundle import (
    DECODER_OUTPUT,
    LATENT_LOGVAR,
    LATENT_MU,
    LATENT_Z,
    BundleError,
    BundleFile,
    LatentKind,
    ModelInfo,
    read_bundle,
)
from aestudio.inference.predictor import Predictor
from aestudio.nets.registry import (
    build_net,
    get_spec,
    net_config_from_dict,
    net_config_to_dict,
    size_multiple,
)
from aestudio.palette import default_palette


def _latent_kind(net: nn.Module, in_channels: int, image_size: int) -> LatentKind:
    """A VAE's encode returns (mu, logvar); probe once rather than trust the family name."""
    p = next(net.parameters(), None)
    x = torch.zeros(1, in_channels, image_size, image_size, device=p.device if p is not None else "cpu")
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net.encode(x)  # type: ignore[operator]
    finally:
        net.train(was_training)
    return LatentKind.GAUSSIAN if isinstance(out, (tuple, list)) else LatentKind.Z


def info_for_net(
    net: nn.Module,
    net_name: str,
    net_cfg: NetConfig,
    *,
    name: str | None = None,
    class_names: list[str] | None = None,
    class_colors: list[list[int]] | None = None,
) -> ModelInfo:
    """The facts about a registered net that ``model.json`` records (no metrics or timings yet)."""
    spec = get_spec(net_name)
    task = Task(spec.task)
    fixed = not spec.fully_convolutional
    multiple = size_multiple(net_name, net_cfg)
    latent_dim = int(net.latent_dim) if spec.has_latent else None  # type: ignore[arg-type]
    kind = _latent_kind(net, net_cfg.in_channels, net_cfg.image_size) if spec.has_latent else None
    names: list[str] = []
    if task is Task.SEGMENT:
        k = int(getattr(net_cfg, "num_classes", 0))
        names = list(class_names) if class_names else ["background", *(f"class {i}" for i in range(1, k))]
        if len(names) != k:
            raise ValueError(f"{len(names)} class names for a {k}-class {net_name}; pass one name per class")
    colors = [list(map(int, c)) for c in class_colors] if class_colors and names else [list(c) for c in default_palette(len(names))]
    return ModelInfo(
        name=name or net_name,
        net=net_name,
        task=task,
        in_channels=int(net_cfg.in_channels),
        image_size=int(net_cfg.image_size) if fixed else "any",
        size_multiple=multiple,
        latent_dim=latent_dim,
        latent_kind=kind,
        class_names=names,
        class_colors=colors if names else [],
        net_config=net_config_to_dict(net_name, net_cfg),
    )


class TorchPredictor(Predictor):
    """Runs an nn.Module with the same interface, validation and image handling as :class:`OrtPredictor`."""

    def __init__(self, net: nn.Module, info: ModelInfo, *, device: str | torch.device | None = None) -> None:
        super().__init__(info)
        self.net = net
        p = next(net.parameters(), None)
        self.device = torch.device(device) if device is not None else (p.device if p is not None else torch.device("cpu"))
        if p is not None and p.device != self.device:
            net.to(self.device)

    @classmethod
    def from_net(cls, net: nn.Module, net_name: str, net_cfg: NetConfig, **info_kw: Any) -> TorchPredictor:
        return cls(net, info_for_net(net, net_name, net_cfg, **info_kw))

    @classmethod
    def from_bundle(cls, path: str | os.PathLike[str], *, device: str | None = None) -> TorchPredictor:
        """Rebuild the net from a bundle's ``net_config`` and ``weights.safetensors`` (no unpickling)."""
        from safetensors.torch import load_file

        info = read_bundle(path)
        weights = info.files.get(BundleFile.WEIGHTS.value)
        if not weights or not info.net_config:
            raise BundleError(f"{Path(path) / 'model.json'}: no torch weights or net config in this bundle; re-export it with `aestudio export RUN_DIR`")
        try:
            net_name, cfg = net_config_from_dict(info.net_config)
            net = build_net(net_name, cfg)
            net.load_state_dict(load_file(str(Path(path) / weights)), strict=True)
        except (KeyError, ValueError, RuntimeError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BundleError(f"{Path(path) / weights}: cannot rebuild the torch net ({first}); re-export the bundle") from None
        return cls(net.eval(), info, device=device)

    @property
    def provider(self) -> str:
        return f"torch:{self.device}"

    def _run(self, graph: BundleFile, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        (x,) = feeds.values()
        t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        was_training = self.net.training
        self.net.eval()  # dropout/batch-norm statistics must not move while predicting
        try:
            with torch.no_grad():
                if graph is BundleFile.MODEL:
                    out = {self._output_name: self.net(t)}
                elif graph is BundleFile.ENCODER:
                    r = self.net.encode(t)  # type: ignore[operator]
                    out = {LATENT_MU: r[0], LATENT_LOGVAR: r[1]} if isinstance(r, (tuple, list)) else {LATENT_Z: r}
                else:
                    out = {DECODER_OUTPUT: self.net.decode(t)}  # type: ignore[operator]
        finally:
            self.net.train(was_training)
        return {k: v.detach().float().cpu().numpy() for k, v in out.items()}
