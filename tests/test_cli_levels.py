"""A pairs: set of 16-bit micrographs trains a U-Net from the CLI, and ``aestudio segment`` runs it
on them with the same own-range stretch (aestudio.data.levels): what it segments and draws is the
stretched image, not the nearly black one read by 65535."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aestudio.cli import main
from aestudio.data.io import read_image, read_mask
from aestudio.data.levels import read_stretched
from tests.data.test_levels_labelling import deep_images, square_mask


def test_pairs_of_16_bit_images_train_and_segment_with_the_same_stretch(tmp_path: Path, capsys) -> None:
    from aestudio.explore.segmentation import FolderSettings, segment_work
    from aestudio.inference.ort import OrtPredictor, SessionProfile

    paths = deep_images(tmp_path / "images")
    (tmp_path / "masks").mkdir()
    for name in paths:
        square_mask(tmp_path / "masks" / f"{name}.png")
    run = tmp_path / "run"
    assert main(["train", "--model", "unet", "--data", f"pairs:{tmp_path / 'images'},{tmp_path / 'masks'}",
                 "--max-steps", "2", "--base-channels", "4", "--depth", "2", "--crop-size", "32",
                 "--no-progress", "--out", str(run)]) == 0
    assert "16-bit images stretched by their own min/max" in capsys.readouterr().err  # the run says so
    assert main(["export", str(run), "--which", "last"]) == 0
    out = tmp_path / "seg"
    assert main(["segment", "--model", str(run / "bundle"), str(tmp_path / "images"), "-o", str(out), "--overlay"]) == 0

    pred = OrtPredictor(run / "bundle", profile=SessionProfile.BATCH)
    colors = np.asarray(pred.info.class_colors, dtype=np.uint8).reshape(-1, 3)
    alphas = np.full(len(colors), 0.5, np.float32)
    alphas[:1] = 0.0
    work = segment_work(pred, FolderSettings(colors, alphas, threshold=None, overlays=True, outlines=False))
    for name, path in paths.items():
        stretched = work.compute(read_stretched(path))
        dark = work.compute(read_image(path))
        assert np.array_equal(read_mask(out / f"{name}_mask.png"), stretched["_mask.png"].mask)
        overlay = read_image(out / f"{name}_overlay.png")
        np.testing.assert_allclose(overlay, stretched["_overlay.png"], atol=1e-6)  # drawn over the stretched image
        assert np.abs(overlay - dark["_overlay.png"]).max() > 0.3  # not over the nearly black one
