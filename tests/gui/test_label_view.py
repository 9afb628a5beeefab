"""The Label tab predicts only the view when zoomed in, and the overlay lands where the view is."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from aestudio.gui.panels import label as label_mod
from aestudio.gui.panels.label_jobs import SnapshotNets, predict_image
from tests.gui.guitools import open_scene

WAIT = 30_000


@pytest.fixture
def panel(qtbot):
    from tests.gui.guitools import label_panel

    yield from label_panel(qtbot)


def _new_weights(trainer) -> None:
    """The trainer publishes a new snapshot (as a training step would), with weights that differ."""
    import torch

    with torch.no_grad():
        for p in trainer.net.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    trainer.step += 1
    trainer._publish()


def test_zoomed_in_only_the_view_is_predicted_and_the_overlay_is_placed_right(qtbot, panel, tmp_path) -> None:
    from aestudio.training.live import LiveTrainer

    open_scene(qtbot, panel, tmp_path)
    trainer = panel.trainer = LiveTrainer(3, 2, panel.live_config)
    panel.refresh_prediction()
    qtbot.waitUntil(lambda: panel.prediction is not None, timeout=WAIT)
    whole = panel.prediction
    assert whole.region is None and panel.predict_region() is None  # the whole image is in view

    panel.canvas.zoom_at(6.0, QPointF(40, 30))  # zoom in near the top-left corner
    view = panel.canvas.visible_rect()
    assert view is not None and view[2] < 120 and view[3] < 160  # a corner of it
    t, left, b, r = view
    m = label_mod.VIEW_MARGIN
    assert panel.predict_region() == (max(0, t - m), max(0, left - m), b + m, r + m)
    _new_weights(trainer)
    qtbot.waitUntil(lambda: panel.prediction is not whole and panel.prediction.step == trainer.step,
                    timeout=WAIT)  # the view change asked for it (debounced), no other call
    part = panel.prediction
    assert part.region == panel.predict_region()
    # Inside the view: what a whole-image prediction from the same weights says; outside the region:
    # the last prediction, untouched.
    t2, l2, b2, r2 = part.region
    full = predict_image(SnapshotNets(), "a.png", panel.image, trainer.snapshot(), 3, trainer.num_classes,
                         trainer.cfg, list(panel.project.classes.colors))
    agree = (part.mask[t:b, left:r] == full.mask[t:b, left:r]).mean()
    assert agree > 0.99
    assert np.allclose(part.entropy[t:b, left:r], full.entropy[t:b, left:r], atol=2e-3)
    outside = np.ones(part.mask.shape, bool)
    outside[t2:b2, l2:r2] = False
    assert np.array_equal(part.mask[outside], whole.mask[outside])
    assert np.array_equal(part.layer_prediction[outside], whole.layer_prediction[outside])
    # The canvas shows exactly this prediction's layer, the view's part at its place in the image.
    buf = panel.canvas._layer_buf
    assert buf is not None and buf.shape == (240, 320) and np.array_equal(buf, part.layer_prediction)
    same = part.mask[t:b, left:r] == full.mask[t:b, left:r]
    assert np.array_equal(buf[t:b, left:r][same], full.layer_prediction[t:b, left:r][same])

    # Panning to the other corner: what comes into view is predicted (same weights, new region).
    made = panel.predictions_made
    canvas = panel.canvas
    canvas.offset = QPointF(canvas.width() - 320 * canvas.scale, canvas.height() - 240 * canvas.scale)
    canvas.view_changed.emit()
    qtbot.waitUntil(lambda: panel.predictions_made > made, timeout=WAIT)
    t3, l3, b3, r3 = panel.prediction.region
    assert (b3, r3) == (240, 320) and panel.prediction.covers(panel.predict_region())
    kept = np.ones(part.mask.shape, bool)
    kept[t3:b3, l3:r3] = False
    assert kept[t2:b2, l2:r2].any() and np.array_equal(panel.prediction.mask[kept], part.mask[kept])
    # Zoomed out again: the whole image is predicted (its step already shown in part is not enough).
    made = panel.predictions_made
    canvas.fit()
    qtbot.waitUntil(lambda: panel.predictions_made > made, timeout=WAIT)
    assert panel.prediction.region is None


def test_the_graph_export_starts_when_an_image_is_shown_before_any_training(qtbot, panel, tmp_path) -> None:
    from aestudio.export.live_session import graph_path
    from aestudio.training.live import live_net_config

    panel.nets.cache = tmp_path / "graphs"
    panel.nets.bf16 = False  # a CPU without native bfloat16 (with it, no graph is needed: none is exported)
    open_scene(qtbot, panel, tmp_path, 48, 64)
    assert panel.trainer is None
    shape = live_net_config(3, 2, panel.live_config)
    qtbot.waitUntil(lambda: shape in panel.nets._exports, timeout=WAIT)  # the child is exporting it
    child = panel.nets._exports[shape]
    assert str(graph_path(shape, panel.nets.cache)) in child.args
    panel.nets.close()  # the test needs no graph: stop the child
    child.wait(10)


def test_no_graph_is_exported_where_the_prediction_runs_in_bfloat16(qtbot, panel, tmp_path) -> None:
    panel.nets.cache = tmp_path / "graphs"
    panel.nets.bf16 = True  # as on a CPU with native bfloat16
    open_scene(qtbot, panel, tmp_path, 48, 64)
    qtbot.waitUntil(lambda: panel._graph_asked and not panel.runner.busy, timeout=WAIT)
    assert not panel.nets._exports and not (tmp_path / "graphs").exists()


def test_a_stroke_while_training_has_its_neighbourhood_predicted_first(qtbot, panel, tmp_path) -> None:
    from PySide6.QtCore import Qt

    from tests.gui.test_panel_label import _drag

    open_scene(qtbot, panel, tmp_path)
    panel.size_slider.setValue(4)
    qtbot.keyClick(panel.canvas, Qt.Key.Key_2)
    _drag(qtbot, panel, [(100, 120), (110, 200)])  # inside the object
    qtbot.keyClick(panel.canvas, Qt.Key.Key_1)
    _drag(qtbot, panel, [(10, 10), (10, 300)])  # background
    panel.start_training()
    qtbot.waitUntil(lambda: panel.prediction is not None and panel.prediction.step > 0, timeout=WAIT)
    # No refresh of the whole view comes any more: what follows the stroke is its neighbourhood's.
    panel.schedule.finished = lambda now, step: now + 3600.0
    panel._next_refresh = time.monotonic() + 3600.0
    qtbot.waitUntil(lambda: not panel.runner.busy, timeout=WAIT)
    made, step = panel.predictions_made, panel.trainer.step
    _drag(qtbot, panel, [(200, 40), (205, 60)])  # background, bottom left
    qtbot.waitUntil(lambda: panel.local_predictions >= 1, timeout=WAIT)
    p = panel.prediction
    m = label_mod.LOCAL_MARGIN
    assert p.region is not None and p.step > step  # weights that learnt from the stroke
    t, left, b, r = p.region
    assert t <= 200 - m + 3 and left <= max(0, 40 - m) and b == 240 and r >= 60 + m - 3
    assert (b - t) * (r - left) <= label_mod.VIEW_SHARE * 240 * 320
    assert panel.predictions_made == made  # not one of the schedule's refreshes
    panel.stop_training()
    qtbot.waitUntil(lambda: not panel.worker.running, timeout=WAIT)
