"""Zoomed in, the Label tab predicts only the view: no seam where it meets the older prediction around
it, and Accept takes a prediction of the whole image from one set of weights, not that patchwork."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from aestudio.gui.panels import label_jobs
from aestudio.gui.panels.label_jobs import SnapshotNets, predict_image
from tests.gui.guitools import open_scene

WAIT = 30_000


@pytest.fixture
def panel(qtbot):
    from tests.gui.guitools import label_panel

    yield from label_panel(qtbot)


def _publish(trainer, *, noise: float = 0.0, only_class: int | None = None) -> None:
    """The trainer publishes a new snapshot (as a training step would): its weights moved by ``noise``,
    or a head that says ``only_class`` everywhere."""
    import torch

    with torch.no_grad():
        for p in trainer.net.parameters():
            p.add_(torch.randn_like(p) * noise)
        if only_class is not None:
            head = trainer.net.head
            head.weight.zero_()
            head.bias.fill_(-20.0)
            head.bias[only_class] = 20.0
    trainer.step += 1
    trainer._publish()


def _zoom_and_predict(qtbot, panel, trainer, **publish):
    """Whole-image prediction, then zoomed into the top-left corner with new weights: the view's part."""
    panel.refresh_prediction()
    qtbot.waitUntil(lambda: panel.prediction is not None and panel.prediction.region is None, timeout=WAIT)
    whole = panel.prediction
    panel.canvas.zoom_at(6.0, QPointF(40, 30))
    _publish(trainer, **publish)
    qtbot.waitUntil(lambda: panel.prediction is not whole and panel.prediction.step == trainer.step, timeout=WAIT)
    part = panel.prediction
    assert part.region is not None and part.region == panel.predict_region()
    return whole, part


def test_the_view_part_fades_into_the_older_prediction_without_a_seam(qtbot, panel, tmp_path) -> None:
    from aestudio.training.live import LiveTrainer

    open_scene(qtbot, panel, tmp_path)
    trainer = panel.trainer = LiveTrainer(3, 2, panel.live_config)
    _publish(trainer, only_class=0)  # the older prediction: class 0 everywhere
    whole, part = _zoom_and_predict(qtbot, panel, trainer, only_class=1)  # the newer: class 1 everywhere
    assert (whole.mask == 0).all()
    colors = list(panel.project.classes.colors)
    c0, c1 = (label_jobs.prediction_layer(np.array([[k]], np.uint8), colors)[0, 0] for k in (0, 1))
    # What the canvas shows: inside the view only the newer prediction ...
    buf = panel.canvas._layer_buf
    assert buf is not None and np.array_equal(buf, part.layer_prediction)
    vt, vl, vb, vr = panel.canvas.visible_rect()
    assert (buf[vt:vb, vl:vr] == c1).all() and (part.mask[vt:vb, vl:vr] == 1).all()
    # ... and across the region's edge (inside the image, so there is an older prediction beyond it) the
    # colour changes by small steps, not at once: a hard edge there was the seam.
    t, left, b, r = part.region
    assert b < 240 and r < 320
    rgba = buf.view(np.uint8).reshape(*buf.shape, 4).astype(int)
    full_step = np.abs(np.frombuffer(np.uint32(c1).tobytes(), np.uint8).astype(int)
                       - np.frombuffer(np.uint32(c0).tobytes(), np.uint8).astype(int)).max()
    assert full_step > 100
    row = rgba[(t + b) // 2, :]  # across the right edge
    col = rgba[:, (left + r) // 2]  # across the bottom edge
    for line in (row, col):
        jumps = np.abs(np.diff(line, axis=0)).max()
        assert jumps <= full_step / label_jobs.FEATHER + 2, jumps
    assert (buf[b + 1:, :] == c0).all() and (buf[:, r + 1:] == c0).all()  # beyond the region: the older one


def test_blend_weights_fade_in_from_inner_edges_only() -> None:
    w = label_jobs.blend_weights((100, 100), (0, 20, 60, 100), feather=10)
    assert w.shape == (60, 80)
    assert w[0, 40] == 1.0 and w[30, -1] == 1.0  # the image's own top and right borders: nothing beyond
    assert w[30, 0] < 0.1 and w[-1, 40] < 0.1  # the left and bottom edges lie inside the image: faded
    assert w[30, 10] == 1.0 and w[49, 40] == 1.0


def test_accept_all_zoomed_in_accepts_a_whole_image_prediction_from_the_current_weights(qtbot, panel, tmp_path) -> None:
    from aestudio.training.live import LiveTrainer

    open_scene(qtbot, panel, tmp_path)
    trainer = panel.trainer = LiveTrainer(3, 2, panel.live_config)
    whole, part = _zoom_and_predict(qtbot, panel, trainer, noise=0.3)
    snapshot = trainer.snapshot()
    full = predict_image(SnapshotNets(), "a.png", panel.image, snapshot, 3, trainer.num_classes, trainer.cfg,
                         list(panel.project.classes.colors))
    t, left, b, r = part.region
    outside = np.ones(part.mask.shape, bool)
    outside[t:b, left:r] = False
    stale = outside & (full.mask != whole.mask)
    assert stale.sum() > 100  # what is shown outside the view is the older weights' (else nothing to prove)

    panel.accept_btn.click()
    qtbot.waitUntil(lambda: (panel.project.mask(0) != 255).all(), timeout=WAIT)
    accepted = panel.project.mask(0)
    assert (accepted == full.mask).mean() > 0.995  # the current weights' prediction of the whole image
    assert (accepted[stale] == full.mask[stale]).mean() > 0.99  # not the older one shown outside the view
    assert panel.prediction.region is None and panel.prediction.step == snapshot[0]  # and it is shown
    assert f"step {snapshot[0]}" in panel.status.text() and "whole image" in panel.status.text()


def test_accept_class_waits_for_the_whole_image_too_and_keeps_painted_pixels(qtbot, panel, tmp_path) -> None:
    from aestudio.training.live import LiveTrainer

    open_scene(qtbot, panel, tmp_path)
    trainer = panel.trainer = LiveTrainer(3, 2, panel.live_config)
    _publish(trainer, only_class=0)
    _zoom_and_predict(qtbot, panel, trainer, only_class=1)  # the view says 1, the rest (older) says 0
    stroke = panel.project.stroke(0, 0)
    stroke.dab(200, 300, 3)  # painted background, outside the view
    stroke.end()
    panel.select_class(1)
    panel.accept_class_btn.click()
    qtbot.waitUntil(lambda: (panel.project.mask(0) == 1).sum() > 1000, timeout=WAIT)
    mask = panel.project.mask(0)
    # class 1 everywhere the person had not painted, also outside the view (the current weights say 1 there)
    assert (mask[230:, :200] == 1).all() and mask[200, 300] == 0


def test_a_failed_whole_image_prediction_accepts_nothing_later(qtbot, panel, tmp_path, monkeypatch) -> None:
    from aestudio.training.live import LiveTrainer

    open_scene(qtbot, panel, tmp_path)
    trainer = panel.trainer = LiveTrainer(3, 2, panel.live_config)
    _zoom_and_predict(qtbot, panel, trainer, noise=0.3)
    real = panel.nets.probs

    def broken(*args, **kwargs):
        raise MemoryError("no room for the whole image")

    monkeypatch.setattr(panel.nets, "probs", broken)
    errors: list[str] = []
    panel.notify.connect(lambda level, text, details: errors.append(text))
    panel.accept_btn.click()
    qtbot.waitUntil(lambda: bool(errors), timeout=WAIT)
    assert "no room" in errors[0] and "nothing was accepted" in panel.status.text()
    monkeypatch.setattr(panel.nets, "probs", real)
    panel.canvas.fit()  # the next whole-image prediction comes, and is only shown
    qtbot.waitUntil(lambda: panel.prediction.region is None, timeout=WAIT)
    assert (panel.project.mask(0) == 255).all()
