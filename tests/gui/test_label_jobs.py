"""The Label tab's export job: the bundle holds the live trainer's own U-Net (the config from
``training.live.live_net_config``, the weights of the snapshot) and runs in the torch-free runtime."""

from __future__ import annotations

import numpy as np

from aestudio.gui.panels.label_jobs import export_bundle
from aestudio.inference.bundle import read_bundle
from aestudio.inference.ort import OrtPredictor
from aestudio.nets.registry import net_config_from_dict
from aestudio.training.live import LiveConfig, LiveTrainer, live_net_config


def test_export_writes_the_live_trainers_net_with_its_config(tmp_path) -> None:
    cfg = LiveConfig(depth=2, base_channels=8)  # not the defaults: the bundle must carry these
    trainer = LiveTrainer(channels=1, num_classes=1, cfg=cfg)  # one class trains as two (background + it)
    out = export_bundle(trainer.snapshot(), 1, 1, cfg, tmp_path / "bundle", "cells", ["cell"], [(255, 0, 0)])
    info = read_bundle(out)
    expected = live_net_config(1, 1, cfg)
    assert (expected.num_classes, expected.depth, expected.base_channels) == (2, 2, 8)
    assert net_config_from_dict(info.net_config) == ("unet", expected)
    assert info.class_names == ["cell", "class 1"]
    logits = OrtPredictor(out).predict(np.random.default_rng(0).random((1, 1, 16, 16), dtype=np.float32))
    assert logits.shape == (1, 2, 16, 16)
