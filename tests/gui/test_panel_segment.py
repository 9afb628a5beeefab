"""The Segment panel: drop -> mask over the image, legend, threshold, IoU/Dice, export, folder runs."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import Qt

from aestudio.config import Task
from aestudio.data.io import read_image, read_mask, write_mask
from aestudio.explore.segmentation import to_rgb_u8
from aestudio.gui import engine
from aestudio.gui.messages import Level
from aestudio.gui.panels.segment import EMPTY_NO_MODEL, SegmentPanel
from aestudio.gui.workers import TaskRunner

WAIT = 20_000


def _png(path: Path, h: int, w: int, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    # smooth blobs + noise so a random net predicts a mix of classes
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([np.sin(6 * xx + seed), np.cos(5 * yy), np.sin(4 * (xx + yy))], axis=2) * 0.4 + 0.5
    img = np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((img * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def panel(qtbot):
    tasks = TaskRunner()
    p = SegmentPanel(tasks)
    qtbot.addWidget(p)
    p.resize(1100, 700)
    p.show()
    messages: list[tuple] = []
    p.notify.connect(lambda level, text, details: messages.append((level, text, details)))
    p.messages = messages
    yield p
    p.shutdown()
    p.folder_job.join(10)
    tasks.shutdown()


@pytest.fixture(scope="module")
def unet3(bundles):
    return engine.load_model(bundles("unet"))


@pytest.fixture(scope="module")
def unet2(tmp_path_factory):
    """A two-class U-Net run by torch (same predictor interface; no second ONNX export to wait for)."""
    from aestudio.export.torch_predictor import TorchPredictor
    from tests.conftest import tiny_net

    net, cfg = tiny_net("unet", num_classes=2)
    predictor = TorchPredictor.from_net(net, "unet", cfg)
    return engine.LoadedModel(path=tmp_path_factory.mktemp("unet2") / "model.onnx", info=predictor.info,
                              predictor=predictor, runtime="torch")


def _drop(qtbot, panel, paths):
    with qtbot.waitSignal(panel.shown, timeout=WAIT):
        panel.add_images([Path(p) for p in paths])


def _redraw(qtbot, panel, action):
    with qtbot.waitSignal(panel.shown, timeout=WAIT):
        action()


def test_empty_state_and_wrong_task(qtbot, panel, tmp_path):
    assert "Load a U-Net (segment) model" in EMPTY_NO_MODEL
    assert panel.view.canvas._placeholder == EMPTY_NO_MODEL
    assert not panel.folder_button.isEnabled()
    info = SimpleNamespace(task=Task.DENOISE, name="denoiser", class_names=[], class_colors=[])
    panel.set_model(engine.LoadedModel(path=tmp_path, info=info, predictor=None, runtime="test"))
    assert "not a segmentation model" in panel.banner.text()
    assert "not a segmentation model" in panel.view.canvas._placeholder
    assert not panel.folder_button.isEnabled()


def test_drop_opacity_and_visibility(qtbot, panel, unet3, tmp_path):
    path = _png(tmp_path / "photo.png", 45, 70)
    panel.set_model(unet3)
    for i in range(3):
        panel.set_class_visible(i, True)
    _drop(qtbot, panel, [path])
    image_u8 = to_rgb_u8(read_image(path))
    assert panel.mask.shape == (45, 70) and panel.mask.dtype == np.int64
    assert panel.overlay.shape == (45, 70, 3)
    assert not np.array_equal(panel.overlay, image_u8)
    shown = panel.view.qimage()
    assert (shown.width(), shown.height()) == (70, 45)
    assert panel.shares.sum() == pytest.approx(1.0)
    assert panel.legend.item(0, 1).text().endswith("%")

    _redraw(qtbot, panel, lambda: panel.opacity.setValue(0))
    np.testing.assert_array_equal(panel.overlay, image_u8)

    _redraw(qtbot, panel, lambda: panel.opacity.setValue(80))
    counts = np.bincount(panel.mask.ravel(), minlength=3)
    c = int(np.argmax(counts))
    region = panel.mask == c
    assert not np.array_equal(panel.overlay[region], image_u8[region])
    _redraw(qtbot, panel, lambda: panel.set_class_visible(c, False))
    np.testing.assert_array_equal(panel.overlay[region], image_u8[region])  # its colour is gone
    others = ~region
    if others.any():
        assert not np.array_equal(panel.overlay[others], image_u8[others])  # the other classes stay


def test_threshold_recomputes_two_class_mask_without_inference(qtbot, panel, unet2, tmp_path, monkeypatch):
    path = _png(tmp_path / "two.png", 48, 48, seed=3)
    calls = []
    real = unet2.predictor.segment
    monkeypatch.setattr(unet2.predictor, "segment", lambda img: calls.append(1) or real(img))
    panel.set_model(unet2)
    assert panel.threshold.isVisibleTo(panel)
    _drop(qtbot, panel, [path])
    assert calls  # the drop ran the model (after a warm-up call on a blank image)
    calls.clear()
    probs = panel._cache[panel.current.key].probs
    assert probs.shape == (2, 48, 48)
    np.testing.assert_array_equal(panel.mask, (probs[1] >= 0.5).astype(np.int64))
    # thresholds on either side of 0.5 that move some pixels across
    p1 = probs[1].ravel()
    candidates = [t for t in range(1, 100) if t != 50 and ((p1 >= t / 100) != (p1 >= 0.5)).any()]
    assert candidates, f"the test net's probabilities are all extreme: {p1.min()}..{p1.max()}"
    changed = False
    for t in sorted({candidates[0], candidates[-1]}):
        before = panel.mask.copy()
        _redraw(qtbot, panel, lambda t=t: panel.threshold.setValue(t))
        np.testing.assert_array_equal(panel.mask, (probs[1] >= t / 100).astype(np.int64))
        assert panel.threshold_label.text() == f"{t / 100:.2f}"
        changed |= not np.array_equal(before, panel.mask)
    assert changed
    assert calls == []  # no new inference: the slider reused the cached probabilities


def _iou_dice_reference(pred, truth, k):
    iou, dice = [], []
    for c in range(k):
        p, t = pred == c, truth == c
        inter, union = np.logical_and(p, t).sum(), np.logical_or(p, t).sum()
        iou.append(inter / union if union else np.nan)
        dice.append(2 * inter / (p.sum() + t.sum()) if union else np.nan)
    return np.array(iou), np.array(dice)


def test_ground_truth_scores_match_numpy_and_follow_threshold(qtbot, panel, unet2, tmp_path):
    path = _png(tmp_path / "img.png", 40, 40, seed=5)
    truth = np.zeros((40, 40), np.int64)
    truth[8:30, 5:25] = 1
    mask_path = write_mask(tmp_path / "truth.png", truth)
    panel.set_model(unet2)
    _drop(qtbot, panel, [path])
    _redraw(qtbot, panel, lambda: panel.load_truth(mask_path))
    iou, dice = _iou_dice_reference(panel.mask, truth, 2)
    np.testing.assert_allclose(panel.iou, iou, equal_nan=True)
    np.testing.assert_allclose(panel.dice, dice, equal_nan=True)
    assert panel.truth_view.isVisibleTo(panel)
    assert panel.scores.rowCount() == 2
    assert panel.scores.item(1, 1).text() == ("—" if np.isnan(iou[1]) else f"{iou[1]:.3f}")
    _redraw(qtbot, panel, lambda: panel.threshold.setValue(20))
    iou2, dice2 = _iou_dice_reference(panel.mask, truth, 2)
    np.testing.assert_allclose(panel.iou, iou2, equal_nan=True)
    np.testing.assert_allclose(panel.dice, dice2, equal_nan=True)
    # a mask of the wrong size is named, not scored
    write_mask(tmp_path / "small.png", truth[:20])
    _redraw(qtbot, panel, lambda: panel.load_truth(tmp_path / "small.png"))
    assert "40×20" in panel.truth_label.text() and panel.iou is None
    _redraw(qtbot, panel, panel.clear_truth)
    assert panel.iou is None and not panel.truth_view.isVisibleTo(panel)


def test_export_writes_index_and_overlay_and_refuses_the_input(qtbot, panel, unet3, tmp_path):
    path = _png(tmp_path / "in.png", 33, 50, seed=1)
    original = path.read_bytes()
    panel.set_model(unet3)
    _drop(qtbot, panel, [path])
    with qtbot.waitSignal(panel.saved, timeout=WAIT) as sig:
        panel.export_mask(tmp_path / "out" / "in_mask.png")
    np.testing.assert_array_equal(read_mask(sig.args[0]), panel.mask)
    with qtbot.waitSignal(panel.saved, timeout=WAIT) as sig:
        panel.export_overlay(tmp_path / "in_overlay.png")
    np.testing.assert_array_equal(to_rgb_u8(read_image(sig.args[0])), panel.overlay)
    panel.export_mask(path, overwrite=True)
    assert path.read_bytes() == original
    assert panel.messages[-1][0] is Level.ERROR and "overwrite the input" in panel.messages[-1][1]
    # an existing file is not replaced unless asked
    panel.export_mask(tmp_path / "out" / "in_mask.png")
    qtbot.waitUntil(lambda: panel.messages[-1][0] is Level.ERROR and "save the mask" in panel.messages[-1][1], timeout=WAIT)


def test_folder_writes_masks_names_bad_files_and_never_touches_inputs(qtbot, panel, unet3, tmp_path):
    src = tmp_path / "in"
    goods = [_png(src / "a.png", 32, 40, 1), _png(src / "b.png", 24, 24, 2), _png(src / "sub" / "c.png", 16, 48, 3)]
    (src / "bad.png").write_bytes(b"not an image at all")
    before = {p: p.read_bytes() for p in src.rglob("*")if p.is_file()}
    out = tmp_path / "out"
    panel.set_model(unet3)
    with qtbot.waitSignal(panel.folder_finished, timeout=WAIT) as sig:
        assert panel.segment_folder(src, out)
        assert panel.folder_cancel.isVisibleTo(panel)
    report = sig.args[0]
    assert report.total == 4 and not report.cancelled and not report.error
    assert report.profile == "batch"  # nothing trains: the model's all-cores twin did the work
    assert sorted(p.relative_to(out).as_posix() for p in report.written) == ["a_mask.png", "b_mask.png", "sub/c_mask.png"]
    for g in goods:
        rel = g.relative_to(src).parent
        mask = read_mask(out / rel / f"{g.stem}_mask.png")
        assert mask.shape == read_image(g).shape[:2]
        assert (out / rel / f"{g.stem}_overlay.png").is_file()
    assert [name for name, _ in report.bad] == ["bad.png"]
    assert "bad.png" in panel.folder_status.text()
    assert panel.messages[-1][0] is Level.WARNING and "bad.png" in panel.messages[-1][2]
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before
    # again into the same folder, started while the first job's thread is still returning (held
    # here for 0.3 s after it reported): accepted, nothing is overwritten, every good file skipped
    panel.folder_job.finished.connect(lambda _r: time.sleep(0.3), Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(panel.folder_finished, timeout=WAIT) as sig:
        assert panel.segment_folder(src, out)
    assert panel.folder_button.isEnabled()
    with qtbot.waitSignal(panel.folder_finished, timeout=WAIT) as sig:
        assert panel.segment_folder(src, out)
    assert sig.args[0].written == [] and len(sig.args[0].skipped) == 3
    assert not panel.segment_folder(src, src)  # refused: outputs would land among the inputs


def test_folder_cancel_stops_within_one_image(qtbot, panel, unet3, tmp_path):
    src = tmp_path / "many"
    for i in range(12):
        _png(src / f"im{i:02d}.png", 24, 24, i)
    panel.set_model(unet3)
    job = panel.folder_job
    # cancel from the worker right after the first image (a direct connection runs in its thread)
    job.progress.connect(lambda done, total, name: job.cancel() if done >= 1 else None,
                         Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(panel.folder_finished, timeout=WAIT) as sig:
        panel.segment_folder(src, tmp_path / "out")
    report = sig.args[0]
    assert report.cancelled and len(report.written) == 1 and report.total == 12
    assert "Cancelled" in panel.folder_status.text()
    assert panel.folder_button.isEnabled()


def test_browsing_the_data_set_uses_its_masks(qtbot, panel, unet3, monkeypatch):
    masks = np.zeros((3, 16, 16), np.int64)
    masks[:, 4:12, 4:12] = 2
    arrays = engine.DataArrays(spec="shapes-seg", split="val", images=np.random.default_rng(0).random((3, 3, 16, 16), dtype=np.float32),
                               masks=masks, class_names=("background", "a", "b"), class_colors=((0, 0, 0), (255, 0, 0), (0, 255, 0)))
    monkeypatch.setattr(engine, "data_arrays", lambda spec, **kw: arrays)
    panel.set_model(unet3)
    with qtbot.waitSignal(panel.shown, timeout=WAIT):
        panel.set_data(SimpleNamespace(spec="shapes-seg", kind="segmentation"))
    assert panel.data_index.maximum() == 2 and panel.next_button.isEnabled()
    assert panel.mask.shape == (16, 16) and panel.iou is not None
    np.testing.assert_allclose(panel.iou, _iou_dice_reference(panel.mask, masks[0], 3)[0], equal_nan=True)
    _redraw(qtbot, panel, panel.next_button.click)
    assert panel.current.name.endswith("#1")
    panel.set_data(SimpleNamespace(spec="digits", kind="labels"))
    assert not panel.next_button.isEnabled()


def test_overlay_maths():
    from aestudio.explore.segmentation import (
        boundaries,
        compose_overlay,
        iou_dice,
        mask_from_probs,
    )

    mask = np.zeros((8, 8), np.int64)
    mask[2:6, 2:6] = 1
    edge = boundaries(mask)
    assert edge[2, 2] and edge[1, 2] and not edge[4, 4] and not edge[0, 0]
    image = np.full((8, 8, 3), 100, np.uint8)
    colors = np.array([[0, 0, 0], [200, 0, 0]], np.uint8)
    out = compose_overlay(image, mask, colors, np.array([0.0, 0.25]), outline=1)
    assert (out[0, 0] == 100).all()  # class 0 hidden, even on its edge
    assert out[4, 4, 0] == 125 and out[2, 2, 0] == 150  # fill at 0.25, outline twice as opaque
    # two classes: the threshold decides; 255 in the truth is "void" and ignored
    probs = np.stack([1 - np.linspace(0, 1, 64), np.linspace(0, 1, 64)]).reshape(2, 8, 8).astype(np.float32)
    assert mask_from_probs(probs, 0.25).sum() > mask_from_probs(probs, 0.75).sum()
    truth = mask.copy()
    truth[0, :] = 255
    iou, dice = iou_dice(mask, truth, 2)
    np.testing.assert_allclose([iou[1], dice[1]], [1.0, 1.0])


def test_pairs_data_gives_dropped_images_their_masks(qtbot, panel, unet3, tmp_path, monkeypatch):
    images, masks = tmp_path / "images", tmp_path / "masks"
    path = _png(images / "cat.png", 24, 32)
    truth = np.zeros((24, 32), np.int64)
    truth[5:15, 5:20] = 2
    masks.mkdir()
    write_mask(masks / "cat.png", truth)
    other = _png(tmp_path / "elsewhere" / "cat.png", 24, 32)  # same stem, not in the data: no mask
    monkeypatch.setattr(engine, "data_arrays", lambda spec, **kw: (_ for _ in ()).throw(ValueError("not needed")))
    panel.set_model(unet3)
    panel.set_data(SimpleNamespace(spec=f"pairs:{images},{masks}", kind="segmentation"))
    with qtbot.waitSignal(panel.shown, timeout=WAIT):
        panel.add_images([path])
    qtbot.waitUntil(lambda: panel.iou is not None, timeout=WAIT)
    np.testing.assert_array_equal(panel.current.truth, truth)
    assert panel.truth_label.text().startswith("cat.png")
    _drop(qtbot, panel, [other])
    assert panel.current.truth is None and panel.iou is None
