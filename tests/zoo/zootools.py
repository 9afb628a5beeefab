"""Zoo test helpers: the shipped models and sample images, as found by the zoo lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from aestudio.zoo.catalog import list_models, sample_images

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "models" / "recipes"


def shipped_ids() -> list[str]:
    return [m.name for m in list_models()]


def sample(name: str) -> Path:
    for p in sample_images():
        if p.name == name:
            return p
    pytest.skip(f"sample image {name} is not installed")
