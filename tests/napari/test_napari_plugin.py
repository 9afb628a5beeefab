"""The napari plug-in (aestudio[napari]): manifest, Qt-free logic, reader, and the dock widget.

napari's own viewer fixture (make_napari_viewer) needs OpenGL, which offscreen Qt
here and in CI lacks (vispy fails on the first layer), so the widget is tested on
napari's Qt-free ``ViewerModel`` (skipped where napari is not installed) and the
logic without napari at all.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from aestudio.inference.ort import OrtPredictor
from aestudio.napari._logic import model_path_kind, open_model, read_model_sample, run_on_layer
from aestudio.napari._reader import get_reader
from aestudio.zoo.catalog import find_model

MANIFEST = Path(__file__).resolve().parents[2] / "aestudio" / "napari" / "napari.yaml"


def test_manifest_is_valid_for_npe2_and_its_commands_import():
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    assert manifest.name == "aestudio"
    manifest.validate_imports()  # every python_name resolves to a real object
    widget, reader = manifest.contributions.widgets[0], manifest.contributions.readers[0]
    assert widget.command == "aestudio.run_model" and reader.accepts_directories
    if sys.version_info >= (3, 11):
        import tomllib

        project = tomllib.loads((MANIFEST.parents[2] / "pyproject.toml").read_text())["project"]
        assert project["entry-points"]["napari.manifest"]["aestudio"] == "aestudio.napari:napari.yaml"
        assert "napari" in project["optional-dependencies"]


def test_denoiser_on_a_large_uint16_layer_is_tiled_and_matches_the_predictor():
    path = find_model("photo-denoiser").path
    img = (np.random.default_rng(0).random((600, 700)) * 60000).astype(np.uint16)
    seen = []
    result = run_on_layer(open_model(path), img, name="cells", progress=lambda d, t: seen.append((d, t)))
    assert result.kind == "image" and result.data.shape == (600, 700) and result.data.dtype == np.float32
    assert seen[-1][0] == seen[-1][1] > 1  # tiles, all done
    want = OrtPredictor(path, profile="batch").run_image(img)[..., 0]
    np.testing.assert_allclose(result.data, want, atol=1e-6)
    assert result.meta["name"] == "cells denoised"


def test_segmentation_gives_a_labels_layer_and_stacks_run_per_plane():
    pred = open_model("shapes-seg-unet")
    rgb = np.random.default_rng(1).random((3, 64, 80, 3)).astype(np.float32)  # a stack of RGB planes
    result = run_on_layer(pred, rgb, rgb=True, name="stack")
    assert result.kind == "labels" and result.data.shape == (3, 64, 80) and result.data.dtype == np.uint8
    mask, _ = pred.segment(rgb[1])
    np.testing.assert_array_equal(result.data[1], mask)
    assert result.meta["metadata"]["class_names"] == pred.info.class_names
    with pytest.raises(ValueError, match="2D images"):
        run_on_layer(pred, np.zeros((2, 2, 8, 8, 3), np.float32), rgb=True)


def test_float_layers_outside_unit_range_are_scaled():
    pred = open_model("photo-denoiser")
    img = np.random.default_rng(2).random((40, 40)).astype(np.float32)
    a = run_on_layer(pred, img * 1000 + 5).data
    b = run_on_layer(pred, (img * 1000 + 5 - (img * 1000 + 5).min()) / np.ptp(img * 1000 + 5)).data
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_reader_opens_bundles_runs_and_packages_with_their_sample(packages, tmp_path):
    bundle = find_model("shapes-seg-unet").path
    assert model_path_kind(bundle) == "bundle" and get_reader(str(bundle)) is not None
    layers = get_reader(str(bundle))(str(bundle))
    (sample, smeta, skind), (labels, lmeta, lkind) = layers
    assert skind == "image" and lkind == "labels" and sample.shape[:2] == labels.shape
    assert smeta["rgb"] and "shapes-seg-unet" in smeta["name"]
    assert get_reader(str(tmp_path)) is None  # an ordinary folder is someone else's
    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG")
    assert get_reader(str(png)) is None
    plain = tmp_path / "photos.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("a.txt", "no model")
    assert get_reader(str(plain)) is None
    pkg_layers = read_model_sample(packages("denoising_ae"))  # a package: its own test input
    assert [k for _, _, k in pkg_layers] == ["image", "image"] and pkg_layers[0][0].shape == (64, 64)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"data": {"spec": "digits"}}')
    assert model_path_kind(run) == "run"
    only_sample = read_model_sample(run)  # no bundle yet: the sample alone, and the log says why
    assert len(only_sample) == 1 and only_sample[0][0].ndim == 2


def test_dock_widget_runs_off_the_gui_thread_and_adds_a_layer(qtbot):
    pytest.importorskip("napari")
    from napari.components import ViewerModel

    from aestudio.napari._widget import ModelWidget

    viewer = ViewerModel()
    viewer.add_image(np.random.default_rng(3).random((48, 64)).astype(np.float32), name="noisy")
    widget = ModelWidget(viewer)
    qtbot.addWidget(widget)
    assert widget.layer_box.currentText() == "noisy"
    assert any("photo-denoiser" in widget.model_box.itemText(i) for i in range(widget.model_box.count()))
    widget.set_model(find_model("photo-denoiser").path)
    widget.run()
    assert not widget.run_button.isEnabled()  # the click returned at once; the work is on a worker
    qtbot.waitUntil(lambda: len(viewer.layers) == 2, timeout=30000)
    assert viewer.layers[1].name == "noisy denoised" and viewer.layers[1].data.shape == (48, 64)
    qtbot.waitUntil(widget.run_button.isEnabled, timeout=5000)
    viewer.add_image(np.zeros((32, 32, 3), np.float32), name="rgb", rgb=True)
    assert widget.layer_box.count() == 3  # follows the viewer's layers
    widget.set_model(find_model("shapes-seg-unet").path)
    widget.layer_box.setCurrentText("rgb")
    widget.run()
    qtbot.waitUntil(lambda: len(viewer.layers) == 4, timeout=30000)
    assert type(viewer.layers[3]).__name__ == "Labels"
