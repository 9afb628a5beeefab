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


def _trained_snapshot(channels: int, classes: int, cfg: LiveConfig):
    """A snapshot after a few real steps: BatchNorm statistics and weights away from their initial values."""
    import threading

    rng = np.random.default_rng(1)
    trainer = LiveTrainer(channels, classes, cfg)
    img = rng.random((40, 36, channels), dtype=np.float32)
    mask = np.full((40, 36), 255, np.uint8)
    mask[:8], mask[30:] = 0, 1
    mask[15:20, 5:30] = classes - 1
    trainer.set_example("a", img, mask)
    stop = threading.Event()
    for n, _ in enumerate(trainer.events(stop)):
        if n >= 4:
            stop.set()
    return trainer.snapshot()


def test_onnx_session_predicts_what_the_torch_net_does_for_every_snapshot(monkeypatch) -> None:
    """The Label tab predicts in ONNX Runtime with the snapshot's weights swapped into a graph exported
    once; it must give the torch net's probabilities, for a second snapshot too (not the first's weights),
    whole and in tiles."""
    from aestudio.export import live_session
    from aestudio.export.live_session import SnapshotSession, fewest_tiles
    from aestudio.training.live import net_from_snapshot, predict_probs

    cfg = LiveConfig(crop=32, batch_size=2, base_channels=4, depth=2, regions=0.0)
    first = _trained_snapshot(3, 3, cfg)
    session = SnapshotSession(3, 3, cfg)
    image = np.random.default_rng(2).random((45, 70, 3), dtype=np.float32)
    for step, state in (first, _trained_snapshot(3, 3, LiveConfig(crop=32, batch_size=2, base_channels=4, depth=2,
                                                                     seed=5, regions=0.0))):
        session.load(step + 1000 * (state is not first[1]), state, threads=1)
        expected = predict_probs(net_from_snapshot(3, 3, state, cfg), image)
        np.testing.assert_allclose(session.predict_probs(image), expected, atol=1e-4)
    assert fewest_tiles(1024, 8) == 368 and fewest_tiles(500, 8) == 500  # 3 x 3 tiles, not 3 x 3 of 512
    monkeypatch.setattr(live_session, "MAX_TILE", 40)  # tiles of 40 px over the 45 x 70 image
    np.testing.assert_allclose(session.predict_probs(image), expected, atol=2e-2)


def test_predict_image_reports_its_cpu_time_and_falls_back_to_torch(monkeypatch) -> None:
    from aestudio.export import live_session
    from aestudio.gui.panels.label_jobs import SnapshotNets, predict_image

    cfg = LiveConfig(crop=32, batch_size=2, base_channels=4, depth=2, regions=0.0)
    snap = _trained_snapshot(1, 2, cfg)
    image = np.random.default_rng(3).random((32, 40, 1), dtype=np.float32)
    onnx = predict_image(SnapshotNets(), "k", image, snap, 1, 2, cfg, [(0, 0, 0), (255, 0, 0)], training=True)
    assert onnx.cpu_s > 0 and onnx.mask.shape == (32, 40)

    def broken(*_a, **_k):
        raise ValueError("no graph")

    monkeypatch.setattr(live_session, "SnapshotSession", broken)
    nets = SnapshotNets()
    torch_made = predict_image(nets, "k", image, snap, 1, 2, cfg, [(0, 0, 0), (255, 0, 0)], training=True)
    assert nets.session(1, 2, cfg) is None  # the failure is remembered: torch from now on
    np.testing.assert_allclose(torch_made.entropy, onnx.entropy, atol=1e-4)
    assert np.array_equal(torch_made.mask, onnx.mask)


def test_onnx_session_runs_a_half_resolution_live_unet() -> None:
    """LiveConfig.input_stride 2 (the U-Net at half resolution, logits upsampled) runs in ONNX Runtime too."""
    from aestudio.export.live_session import SnapshotSession
    from aestudio.training.live import net_from_snapshot, predict_probs

    cfg = LiveConfig(crop=32, batch_size=2, base_channels=4, depth=2, regions=0.0, input_stride=2)
    step, state = _trained_snapshot(1, 2, cfg)
    session = SnapshotSession(1, 2, cfg)
    session.load(step, state, threads=1)
    image = np.random.default_rng(4).random((37, 50, 1), dtype=np.float32)
    expected = predict_probs(net_from_snapshot(1, 2, state, cfg), image)
    np.testing.assert_allclose(session.predict_probs(image), expected, atol=1e-4)
