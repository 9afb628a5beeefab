"""The app and BioImage Model Zoo packages: a dropped package becomes the active model; the File
menu exports the active model as a package (in a child process, like bundle exports)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bioimageio.spec")

from aestudio.gui.drops import DropKind, classify  # noqa: E402


def test_a_package_is_classified_as_a_model(packages, tmp_path: Path) -> None:
    assert classify(packages("unet")).kind is DropKind.PACKAGE
    plain = tmp_path / "photos.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("a.txt", "not a model")
    assert classify(plain).kind is DropKind.UNSUPPORTED


def test_dropped_package_loads_and_segments(window, qtbot, packages) -> None:
    pkg = packages("unet")
    window.open_paths([pkg])
    qtbot.waitUntil(lambda: window.active_model is not None, timeout=30000)
    model = window.active_model
    assert model.path == pkg and model.info.task.value == "segment"
    assert "BioImage Model Zoo package" in model.runtime
    mask, probs = model.predictor.segment(np.random.default_rng(0).random((40, 52)).astype(np.float32))
    assert mask.shape == (40, 52) and probs.shape == (3, 40, 52)


def test_export_menu_writes_a_package(window, qtbot, bundles, tmp_path: Path) -> None:
    target = tmp_path / "out" / "den.zip"
    target.parent.mkdir()
    assert "export_package" in window.actions
    window.export_package_to(bundles("denoising_ae"), target)
    qtbot.waitUntil(lambda: target.is_file(), timeout=120000)
    from aestudio.inference.bioimageio_package import read_package

    assert read_package(target).config["task"] == "denoise"


def test_open_model_file_menu_loads_a_package(window, qtbot, packages, monkeypatch) -> None:
    from aestudio.gui import main_window

    pkg = packages("denoising_ae")
    monkeypatch.setattr(main_window.QFileDialog, "getOpenFileName", lambda *a, **k: (str(pkg), ""))
    window.actions["open_package"].trigger()
    qtbot.waitUntil(lambda: window.active_model is not None, timeout=30000)
    assert window.active_model.path == pkg and window.active_model.info.task.value == "denoise"
