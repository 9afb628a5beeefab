"""'Learn this noise' staging: copies (never links or moves) a capped spread of the images."""

from __future__ import annotations

import numpy as np
import pytest

from aestudio.data.io import write_image
from aestudio.training.learn_noise import stage_images


def test_stage_copies_a_capped_spread_and_refuses_a_used_folder(tmp_path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    paths = []
    for i in range(5):
        paths.append(src / f"img{i}.png")
        write_image(paths[-1], np.full((16, 16, 1), i / 10, np.float32))
    (src / "notes.txt").write_text("not an image")
    out = stage_images([*paths, src / "notes.txt"], tmp_path / "stage", max_images=3)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["000-img0.png", "001-img2.png", "002-img4.png"]  # evenly spaced, numbered
    assert all(p.is_file() and not p.is_symlink() for p in out.iterdir())
    assert (out / "000-img0.png").read_bytes() == paths[0].read_bytes() and all(p.exists() for p in paths)
    with pytest.raises(ValueError, match="not empty"):
        stage_images(paths, out)
    with pytest.raises(ValueError, match="no noisy images"):
        stage_images([src / "notes.txt"], tmp_path / "other")
