"""A fully convolutional denoiser trains on random crops of folder photos, not shrunken copies."""

from __future__ import annotations

import numpy as np
from PIL import Image

from aestudio.config import FinishReason, TrainConfig
from aestudio.data.io import read_image
from aestudio.nets import default_config
from aestudio.training import runner
from aestudio.training.runs import read_run


def test_denoiser_on_a_folder_trains_on_crops_and_resumes_alike(tmp_path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 56), dtype=np.uint8)).save(photos / f"p{i}.png")
    out = tmp_path / "run"
    cfg = TrainConfig(epochs=1, batch_size=2, max_steps=2, device="cpu", val_fraction=0.34)
    net_cfg = default_config("denoising_ae")
    events = list(runner.train("denoising_ae", net_cfg, f"folder:{photos}", cfg, out, image_size=16))
    assert events[-1].reason is FinishReason.DONE, events[-1].message
    info = read_run(out)
    assert info.data_options.get("patches") is True
    # The crops keep the photo's own pixels: a 16x16 crop of the 40x56 original
    # equals some window of it (a resized copy would not).
    from aestudio.data.specs import open_data

    data = open_data(f"folder:{photos}", image_size=16, val_fraction=0.34, seed=0, patches=True)
    crop = data.val[0][0][0].numpy()
    originals = [read_image(p)[..., 0] for p in sorted(photos.glob("*.png"))]
    found = any(
        np.allclose(img[y:y + 16, x:x + 16], crop, atol=1e-6)
        for img in originals for y in range(40 - 15) for x in range(56 - 15)
    )
    assert found
    resumed = list(runner.resume(out, epochs=2, max_steps=1))
    assert resumed[-1].reason in (FinishReason.DONE, FinishReason.STOPPED), resumed[-1].message
