"""Fixtures for the BioImage Model Zoo tests: packages written once per session from tiny bundles."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def packages(bundles, tmp_path_factory: pytest.TempPathFactory):
    """``packages(name) -> Path``: the tiny ``name`` bundle written as a package once per session."""
    pytest.importorskip("bioimageio.spec")
    from aestudio.export.bioimageio import write_package

    root = tmp_path_factory.mktemp("packages")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # bioimageio.spec's notes about FAIR metadata
                cache[name] = write_package(bundles(name), root / f"{name}.zip")
        return cache[name]

    return get
