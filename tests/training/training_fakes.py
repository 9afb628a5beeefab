"""Tiny nets and in-memory DataBundles for the training tests (no real data needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

from aestudio.data.base import DataKind


@dataclass
class FakeBundle:
    """Duck-typed like aestudio.data.specs.DataBundle."""

    spec: str
    train: Dataset
    val: Dataset
    channels: int
    image_size: int
    kind: DataKind = DataKind.IMAGES
    num_classes: int | None = None
    class_names: list[str] | None = None
    class_colors: list[Any] | None = None
    bad_files: list[tuple[str, str]] = field(default_factory=list)
    label_names: list[str] | None = None


def blob_images(n: int, size: int = 8, channels: int = 1, seed: int = 0) -> Tensor:
    """Smooth random images in [0, 1]: one Gaussian blob each (easy to learn)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    cy = torch.rand(n, generator=g) * (size - 1)
    cx = torch.rand(n, generator=g) * (size - 1)
    s = 1.0 + torch.rand(n, generator=g) * size / 4
    img = torch.exp(-((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2) / (2 * s[:, None, None] ** 2))
    return img[:, None].repeat(1, channels, 1, 1).clamp(0, 1)


def image_bundle(n_train: int = 48, n_val: int = 16, size: int = 8, channels: int = 1, seed: int = 0) -> FakeBundle:
    x = blob_images(n_train + n_val, size, channels, seed)
    labels = torch.full((n_train + n_val,), -1, dtype=torch.int64)
    return FakeBundle(spec="fake", train=TensorDataset(x[:n_train], labels[:n_train]),
                      val=TensorDataset(x[n_train:], labels[n_train:]), channels=channels, image_size=size)


def seg_bundle(n_train: int = 32, n_val: int = 8, size: int = 16, seed: int = 0) -> FakeBundle:
    x = blob_images(n_train + n_val, size, 1, seed)
    masks = (x[:, 0] > 0.5).long()
    return FakeBundle(spec="fake-seg", train=TensorDataset(x[:n_train], masks[:n_train]),
                      val=TensorDataset(x[n_train:], masks[n_train:]), channels=1, image_size=size,
                      kind=DataKind.SEGMENTATION, num_classes=2, class_names=["background", "blob"])


class TinyAE(nn.Module):
    """A dense AE on 8x8 with dropout, so training consumes the torch RNG
    (an exact resume must restore it)."""

    name = "tiny_ae"

    def __init__(self, size: int = 8, code: int = 8) -> None:
        super().__init__()
        self.size = size
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(size * size, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, code))
        self.dec = nn.Sequential(nn.Linear(code, 32), nn.ReLU(), nn.Linear(32, size * size), nn.Sigmoid())
        self.latent_dim = code

    def encode(self, x: Tensor) -> Tensor:
        return self.enc(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.dec(z).view(-1, 1, self.size, self.size)

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def forward_train(self, x: Tensor) -> dict[str, Tensor]:
        z = self.encode(x)
        return {"output": self.decode(z), "z": z}

    def extra_losses(self, x: Tensor, out: dict[str, Tensor], *, kl_scale: float = 1.0) -> dict[str, Tensor]:
        return {"l1": 1e-4 * out["z"].abs().mean()}


class TinySeg(nn.Module):
    name = "tiny_seg"

    def __init__(self, k: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, k, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward_train(self, x: Tensor) -> dict[str, Tensor]:
        return {"output": self(x)}


def make_run(tmp_path, net_name: str = "tiny_ae", cfg: Any = None, **extra: Any):
    """A RunFolder whose run.json names a registered net (dense_ae), for fit() tests."""
    from aestudio.config import TrainConfig, to_dict
    from aestudio.training.runs import RunFolder

    record = {"net": {"name": "dense_ae", "params": {}}, "data": {"spec": "fake", "options": {}},
              "train": to_dict(cfg or TrainConfig()), "num_params": 0, **extra}
    run = RunFolder.create(tmp_path, record)
    run.record["net"]["name"] = net_name
    return run


def collect(gen) -> list:
    return list(gen)
