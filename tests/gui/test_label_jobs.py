"""The Label tab's export job: the bundle holds the live trainer's own U-Net (the config from
``training.live.live_net_config``, the weights of the snapshot) and runs in the torch-free runtime."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_an_exported_label_model_says_what_kind_of_images_it_learned_from(tmp_path) -> None:
    # A BioImage Model Zoo package made from the bundle scales its input by this (8-bit: /255).
    from aestudio.data.io import write_image

    (tmp_path / "images").mkdir()
    write_image(tmp_path / "images" / "a.png", np.full((16, 16, 1), 0.3, np.float32))
    cfg = LiveConfig(depth=2, base_channels=4)
    trainer = LiveTrainer(channels=1, num_classes=2, cfg=cfg)
    spec = f"pairs:{tmp_path / 'images'},{tmp_path / 'masks'}"
    out = export_bundle(trainer.snapshot(), 1, 2, cfg, tmp_path / "bundle", "cells", ["bg", "cell"],
                        [(0, 0, 0), (255, 0, 0)], spec)
    assert read_bundle(out).training["input_kind"] == "8-bit" and read_bundle(out).training["data_spec"] == spec


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
    """The Label tab predicts in ONNX Runtime with the snapshot's weights overriding the initializers of a
    graph exported once; it must give the torch net's probabilities, for a second snapshot too (not the
    first's weights), whole and in tiles."""
    from aestudio.export import live_session
    from aestudio.export.live_session import (
        SnapshotSession,
        export_graph,
        fewest_tiles,
        initializer_offsets,
    )
    from aestudio.training.live import net_from_snapshot, predict_probs

    cfg = LiveConfig(crop=32, batch_size=2, base_channels=4, depth=2, regions=0.0)
    net_cfg = live_net_config(3, 3, cfg)
    graph = export_graph(net_cfg)
    session = SnapshotSession(net_cfg, graph, initializer_offsets(graph))
    image = np.random.default_rng(2).random((45, 70, 3), dtype=np.float32)
    second = LiveConfig(crop=32, batch_size=2, base_channels=4, depth=2, seed=5, regions=0.0)
    for n, (step, state) in enumerate((_trained_snapshot(3, 3, cfg), _trained_snapshot(3, 3, second))):
        session.load(step + 1000 * n, state, threads=1)
        expected = predict_probs(net_from_snapshot(3, 3, state, cfg), image)
        np.testing.assert_allclose(session.predict_probs(image), expected, atol=1e-4)
        # Each snapshot's session draws on the one process-wide arena (not ~250 MB paged in afresh per refresh).
        assert session._session.get_session_options().get_session_config_entry("session.use_env_allocators") == "1"
    assert fewest_tiles(1024, 8) == 528 and fewest_tiles(500, 8) == 500  # 2 x 2 tiles of 528, not 3 x 3 of 368
    monkeypatch.setattr(live_session, "MAX_TILE", 40)  # tiles of 40 px over the 45 x 70 image
    np.testing.assert_allclose(session.predict_probs(image), expected, atol=2e-2)


def test_bfloat16_snapshot_predicts_what_the_float32_net_does(monkeypatch) -> None:
    """Where the CPU has native bfloat16 the Label tab predicts with the snapshot's net in bfloat16 (cheaper
    by a third than ONNX Runtime's float32 there): the same classes and nearly the same probabilities as
    float32, for a second snapshot too, whole and in tiles; SnapshotNets takes it without an exported graph."""
    from aestudio.export import live_session
    from aestudio.export.live_session import Bf16Snapshot, bf16_supported
    from aestudio.gui.panels.label_jobs import SnapshotNets
    from aestudio.training.live import net_from_snapshot, predict_probs

    cfg = LiveConfig(crop=32, batch_size=2, base_channels=4, depth=2, regions=0.0)
    net = Bf16Snapshot(live_net_config(3, 3, cfg))
    image = np.random.default_rng(2).random((45, 70, 3), dtype=np.float32)
    second = LiveConfig(crop=32, batch_size=2, base_channels=4, depth=2, seed=5, regions=0.0)
    for n, (step, state) in enumerate((_trained_snapshot(3, 3, cfg), _trained_snapshot(3, 3, second))):
        net.load(step + 1000 * n, state)
        expected = predict_probs(net_from_snapshot(3, 3, state, cfg), image)
        got = net.predict_probs(image)
        assert got.shape == expected.shape and got.dtype == np.float32
        assert np.abs(got - expected).max() < 0.03 and (got.argmax(0) == expected.argmax(0)).mean() > 0.99
    monkeypatch.setattr(live_session, "MAX_TILE", 40)
    assert np.abs(net.predict_probs(image) - expected).max() < 0.05
    nets = SnapshotNets()
    probs = nets.probs((7, state), 3, 3, cfg, image)
    assert nets.bf16 == bf16_supported() and probs.shape == (3, 45, 70)
    assert bool(nets._bf16) == nets.bf16 and bool(nets._exports) != nets.bf16  # bfloat16 needs no graph; else its export started
    nets.close()


def test_a_graph_that_does_not_take_the_weights_is_refused() -> None:
    from aestudio.export.live_session import SnapshotSession, export_graph, initializer_offsets

    cfg = LiveConfig(crop=32, batch_size=2, base_channels=4, depth=2)
    net_cfg = live_net_config(1, 2, cfg)
    graph = export_graph(net_cfg)
    index = initializer_offsets(graph)
    wrong = dict(index)
    a, b = next((a, b) for a in index for b in index if a < b and index[a][1] == index[b][1])
    wrong[a], wrong[b] = index[b], index[a]  # two weights of one size, each written in the other's place
    name = a
    with pytest.raises(ValueError, match="does not take"):
        SnapshotSession(net_cfg, graph, wrong)
    with pytest.raises(ValueError, match="do not match"):
        SnapshotSession(net_cfg, graph, {k: v for k, v in index.items() if k != name})
    SnapshotSession(net_cfg, graph, index)  # the right places: accepted


def test_the_graph_is_exported_in_a_child_and_torch_predicts_until_then(tmp_path) -> None:
    """The first prediction starts the export in a child process (the app never imports onnx, whose
    initialisation held the GIL for seconds) and is made with torch; once the child is done the
    session is ONNX Runtime, with the same prediction. A broken cached graph falls back to torch."""
    from aestudio.export.live_session import SnapshotSession, graph_path
    from aestudio.gui.panels.label_jobs import SnapshotNets, predict_image

    cfg = LiveConfig(crop=32, batch_size=2, base_channels=4, depth=2, regions=0.0)
    snap = _trained_snapshot(1, 2, cfg)
    image = np.random.default_rng(3).random((32, 40, 1), dtype=np.float32)
    colors = [(0, 0, 0), (255, 0, 0)]
    nets = SnapshotNets()
    nets.cache = tmp_path
    nets.bf16 = False  # the ONNX Runtime path (a CPU without native bfloat16)
    first = predict_image(nets, "k", image, snap, 1, 2, cfg, colors, training=True)
    assert first.cpu_s > 0 and first.mask.shape == (32, 40)
    net_cfg = live_net_config(1, 2, cfg)
    assert nets._exports[net_cfg].wait(timeout=240) == 0, graph_path(net_cfg, tmp_path).with_suffix(".log").read_text()
    onnx = predict_image(nets, "k", image, snap, 1, 2, cfg, colors, training=True)
    assert isinstance(nets.session(1, 2, cfg), SnapshotSession)
    np.testing.assert_allclose(onnx.entropy, first.entropy, atol=1e-4)
    assert np.array_equal(onnx.mask, first.mask)
    broken = SnapshotNets()
    broken.cache = tmp_path / "broken"
    graph_path(net_cfg, broken.cache).parent.mkdir()
    graph_path(net_cfg, broken.cache).write_bytes(b"not a graph")
    again = predict_image(broken, "k", image, snap, 1, 2, cfg, colors, training=True)
    assert broken.session(1, 2, cfg) is None and np.array_equal(again.mask, first.mask)


def test_onnx_session_runs_a_half_resolution_live_unet() -> None:
    """LiveConfig.input_stride 2 (the U-Net at half resolution, logits upsampled) runs in ONNX Runtime too."""
    from aestudio.export.live_session import SnapshotSession, export_graph, initializer_offsets
    from aestudio.training.live import net_from_snapshot, predict_probs

    cfg = LiveConfig(crop=32, batch_size=2, base_channels=4, depth=2, regions=0.0, input_stride=2)
    step, state = _trained_snapshot(1, 2, cfg)
    net_cfg = live_net_config(1, 2, cfg)
    graph = export_graph(net_cfg)
    session = SnapshotSession(net_cfg, graph, initializer_offsets(graph))
    session.load(step, state, threads=1)
    image = np.random.default_rng(4).random((37, 50, 1), dtype=np.float32)
    expected = predict_probs(net_from_snapshot(1, 2, state, cfg), image)
    np.testing.assert_allclose(session.predict_probs(image), expected, atol=1e-4)
