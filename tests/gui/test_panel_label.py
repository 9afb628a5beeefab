"""The Label tab: paint with real mouse events, undo/redo, save and reopen, train live, accept, export."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from aestudio.data.io import read_mask, write_image
from aestudio.gui.panels.label import LabelPanel
from aestudio.training.live import LiveConfig

WAIT = 30_000
UNLABELLED = 255


def _image(path: Path, h: int = 48, w: int = 64) -> Path:
    rng = np.random.default_rng(0)
    img = rng.random((h, w, 3)).astype(np.float32) * 0.3
    img[12:36, 16:48] += 0.6  # a bright object on a dark background
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.clip(img, 0, 1))
    return path


@pytest.fixture
def panel(qtbot):
    from tests.gui.guitools import label_panel

    yield from label_panel(qtbot)


def _open_with_image(qtbot, panel: LabelPanel, tmp_path: Path) -> None:
    assert panel.create_project(tmp_path / "proj")
    panel.on_images([_image(tmp_path / "src" / "a.png")])
    qtbot.waitUntil(lambda: panel.image is not None, timeout=WAIT)


def _point(panel: LabelPanel, y: float, x: float) -> QPoint:
    return panel.canvas.to_widget(y + 0.5, x + 0.5).toPoint()


def _drag(qtbot, panel: LabelPanel, points: list[tuple[float, float]]) -> None:
    canvas = panel.canvas
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=_point(panel, *points[0]))
    for p in points[1:]:
        qtbot.mouseMove(canvas, _point(panel, *p))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=_point(panel, *points[-1]))


def test_paint_undo_redo_save_and_reopen(qtbot, panel, tmp_path) -> None:
    _open_with_image(qtbot, panel, tmp_path)
    project = panel.project
    panel.size_slider.setValue(4)
    qtbot.keyClick(panel.canvas, Qt.Key.Key_2)  # the second class: "foreground"
    assert panel.class_index == 1
    _drag(qtbot, panel, [(20, 20), (20, 30), (24, 40)])
    mask = project.mask(0)
    assert mask[20, 25] == 1 and mask[0, 0] == UNLABELLED
    painted = mask.copy()
    qtbot.keyClick(panel.canvas, Qt.Key.Key_1)
    _drag(qtbot, panel, [(44, 5), (44, 60)])
    assert project.mask(0)[44, 30] == 0
    qtbot.keyClick(panel.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(project.mask(0), painted)
    qtbot.keyClick(panel.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert project.mask(0)[44, 30] == 0
    both = project.mask_copy(0)
    # The brush size keys, and the overlay shows the painted class colour.
    qtbot.keyClick(panel.canvas, Qt.Key.Key_BracketRight)
    assert panel.size_slider.value() > 4
    assert panel.canvas._labels[20, 25] != 0 and panel.canvas._labels[0, 0] == 0
    # Saved as painted (atomically, by the saver thread) and restored by reopening.
    assert panel.saver.flush()
    assert np.array_equal(read_mask(project.items[0].mask_path), both)
    root = project.root
    panel.close_project()
    assert panel.open_project(root)
    qtbot.waitUntil(lambda: panel.image is not None, timeout=WAIT)
    assert np.array_equal(panel.project.mask(0), both)
    # Fill: erase a region then fill it back with a class.
    panel.set_tool("fill")
    qtbot.keyClick(panel.canvas, Qt.Key.Key_2)
    panel.set_tool("fill")
    qtbot.mouseClick(panel.canvas, Qt.MouseButton.LeftButton, pos=_point(panel, 2, 2))
    assert panel.project.mask(0)[2, 2] == 1


def test_train_live_refresh_accept_export(qtbot, panel, tmp_path) -> None:
    _open_with_image(qtbot, panel, tmp_path)
    panel.size_slider.setValue(4)
    qtbot.keyClick(panel.canvas, Qt.Key.Key_2)
    _drag(qtbot, panel, [(20, 20), (24, 40)])  # inside the object
    qtbot.keyClick(panel.canvas, Qt.Key.Key_1)
    _drag(qtbot, panel, [(4, 4), (4, 60)])  # background
    _drag(qtbot, panel, [(44, 4), (44, 60)])
    panel.pretrain_box.setChecked(True)  # the encoder first learns from every image of the project
    panel.pretrain_seconds = 0.5
    qtbot.mouseClick(panel.train_btn, Qt.MouseButton.LeftButton)
    assert panel.worker is not None and panel.worker.running
    qtbot.waitUntil(lambda: panel.prediction is not None and panel.prediction.step > 0, timeout=WAIT)
    first = panel.prediction.step
    assert panel.trainer.pretrained > 0
    made = panel.predictions_made
    qtbot.waitUntil(lambda: panel.predictions_made > made and panel.prediction.step > first, timeout=WAIT)
    # A new stroke while training reaches the trainer (its copy of the mask has it).
    _drag(qtbot, panel, [(30, 20), (30, 30)])
    ex = panel.trainer._examples["a.png"]
    assert int(ex.mask[30, 25]) == 0
    qtbot.mouseClick(panel.train_btn, Qt.MouseButton.LeftButton)  # Stop
    qtbot.waitUntil(lambda: panel.worker is not None and not panel.worker.running, timeout=WAIT)
    assert panel.prediction.mask.shape == (48, 64)
    assert 0.0 <= float(panel.prediction.entropy.min()) and float(panel.prediction.entropy.max()) <= 1.0
    # Accept the prediction into the unlabelled pixels; the painted ones are kept.
    before = panel.project.mask_copy(0)
    panel.layer_box.setCurrentIndex(1)  # the uncertainty view
    qtbot.waitUntil(lambda: panel.prediction is not None and panel.prediction.key == "a.png", timeout=WAIT)
    expected = panel.prediction.layer_uncertainty
    assert panel.canvas._layer_buf is not None and np.array_equal(panel.canvas._layer_buf, expected)
    alpha = (expected >> 24).astype(np.float64) / 255.0  # opacity follows the entropy
    assert np.allclose(alpha, panel.prediction.entropy, atol=1 / 255 + 1e-6)
    # The accept brush: the prediction under one stroke, one undo step.
    qtbot.keyClick(panel.canvas, Qt.Key.Key_A)
    assert panel.tool == "accept"
    _drag(qtbot, panel, [(40, 10), (40, 20)])
    assert panel.project.mask(0)[40, 15] == panel.prediction.mask[40, 15]
    assert panel.project.mask(0)[12, 2] == UNLABELLED
    qtbot.keyClick(panel.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(panel.project.mask(0), before)
    panel.accept_prediction(None)
    after = panel.project.mask(0)
    assert (after != UNLABELLED).all()
    painted = before != UNLABELLED
    assert np.array_equal(after[painted], before[painted])
    # The model is saved in the project; training again continues from its step.
    qtbot.waitUntil(lambda: panel.project.model_path("weights") is not None
                    and panel.project.model_path("weights").is_file(), timeout=WAIT)
    step = panel.trainer.step
    panel.export_model()
    qtbot.waitUntil(lambda: getattr(panel, "exported", None) is not None, timeout=60_000)
    from aestudio.inference.bundle import read_bundle

    info = read_bundle(panel.exported)
    assert info.class_names == ["background", "foreground"]
    assert panel.trainer.step == step
    # The bundle segments a folder from the command line like any other.
    from aestudio.cli import main

    out = tmp_path / "segmented"
    assert main(["segment", "--model", str(panel.exported), str(tmp_path / "src"), "-o", str(out)]) == 0
    written = read_mask(out / "a_mask.png")
    assert written.shape == (48, 64) and set(np.unique(written)) <= {0, 1}


def test_window_opens_a_dropped_project_in_the_label_tab(qtbot, window, tmp_path) -> None:
    from aestudio.data.project import LabelProject
    from tests.gui.guitools import drop_paths

    project = LabelProject.create(tmp_path / "proj", ["sky", "tree"])
    project.add_images([_image(tmp_path / "src" / "a.png")])
    drop_paths(window, [project.root])
    label = window.current_explore_panel()
    assert label is not None and label.title == "Label"
    qtbot.waitUntil(lambda: label.image is not None, timeout=WAIT)
    assert label.project.root == project.root and label.class_list.count() == 2
    # The Label tab fits the smallest supported screen.
    window.resize(1366, 768)
    assert label.minimumSizeHint().width() <= 1366 and label.minimumSizeHint().height() <= 700


def test_recent_projects_reopen(qtbot, panel, tmp_path, settings_dir) -> None:
    from aestudio.data.project import LabelProject

    first = LabelProject.create(tmp_path / "one", ["bg", "fg"]).root
    second = LabelProject.create(tmp_path / "two", ["sky", "sea", "sand"]).root
    assert panel.open_project(first) and panel.open_project(second)
    assert panel.recent_projects()[:2] == [second, first]
    panel._fill_recent()
    actions = {a.text(): a for a in panel.recent_menu.actions()}
    actions["one"].trigger()
    assert panel.project.root == first and panel.class_list.count() == 2


def _class_view(panel: LabelPanel) -> tuple[list, bool]:
    """(rows of the class list in view, each a list of class indices; whether every row is whole)."""
    lst = panel.class_list
    area = lst.viewport().rect()
    rects = {i: lst.visualItemRect(lst.item(i)) for i in range(lst.count())}
    shown = {i: r for i, r in rects.items() if r.intersects(area)}
    rows: dict[int, list[int]] = {}
    for i, r in shown.items():
        rows.setdefault(r.top(), []).append(i)
    return [rows[k] for k in sorted(rows)], all(area.contains(r) for r in shown.values())


def _column_scrolls(panel: LabelPanel) -> bool:
    side = panel._side_scroll
    return side.widget().sizeHint().height() > side.viewport().height()


def test_the_class_list_grows_with_the_classes_up_to_the_room(qtbot, panel, tmp_path) -> None:
    # The list was 3 rows high whatever the room: 4 classes scrolled beside empty space.
    panel.resize(1300, 1000)
    assert panel.create_project(tmp_path / "proj")
    lst = panel.class_list
    row = lst.sizeHintForRow(0)
    qtbot.wait(20)
    assert [r for r, in _class_view(panel)[0]] == [0, 1] and lst.viewport().height() == 2 * row
    for i in range(8):
        panel.add_class(f"extra {i}")
        qtbot.wait(10)
        rows, whole = _class_view(panel)
        assert whole, "a class row is cut"
        assert sorted(i for r in rows for i in r) == list(range(lst.count())), f"{lst.count()} classes do not all show"
        assert lst.verticalScrollBar().maximum() == 0 and not _column_scrolls(panel)
    assert len(_class_view(panel)[0]) == 10, "ten rows in a tall window"

    # Less room (a shorter window): the rows that fit, two columns when the names fit, then a scroll by whole rows.
    side = panel._side_scroll
    others = side.widget().sizeHint().height() - lst.height()
    room_for_4 = others + 4 * row + 2 * lst.frameWidth() + row // 2  # 4 rows and a half: 8 of 10 classes
    panel.resize(1300, panel.height() - side.viewport().height() + room_for_4)
    qtbot.waitUntil(lambda: lst.height() < 10 * row, timeout=3000)
    qtbot.wait(20)
    rows, whole = _class_view(panel)
    assert whole and len(rows) == 4 and not _column_scrolls(panel)
    assert all(len(r) == 2 for r in rows), "two columns rather than a scroll"
    bar = lst.verticalScrollBar()
    if bar.maximum() > 0:  # still more classes than fit: it scrolls, whole rows in view at every step
        for value in range(bar.minimum(), bar.maximum() + 1):
            bar.setValue(value)
            assert _class_view(panel)[1], "a row is cut while scrolling"
    else:
        assert sorted(i for r in rows for i in r) == list(range(10))
    # Keys still pick classes in the grid.
    panel.select_class(7)
    assert panel.class_index == 7 and lst.currentRow() == 7


def test_images_dropped_on_the_label_tab_are_announced_once(qtbot, window, tmp_path, settings_dir) -> None:
    # The window said "1 image(s) sent to Label." and the panel "Added 1 image(s) to the
    # project." for the same drop: two banners stacked over the sample strip.
    from tests.gui.guitools import drop_paths

    label = next(window._panel(i) for i in range(window.tabs.count()) if window._panel(i).title == "Label")
    window.show_panel(label)
    before = len(window.messages.history)
    drop_paths(window, [_image(tmp_path / "src" / "a.png")])
    qtbot.waitUntil(lambda: label.project is not None and label.image_list.count() == 1, timeout=WAIT)
    texts = [m.text for m in window.messages.history[before:]]
    # The drop also started the project: one banner says both (it said them in two, stacked).
    assert len(texts) == 1 and "Started a label project in" in texts[0] and "with 1 image(s)" in texts[0], texts
    before = len(window.messages.history)
    drop_paths(window, [_image(tmp_path / "src" / "b.png")])
    qtbot.waitUntil(lambda: label.image_list.count() == 2, timeout=WAIT)
    texts = [m.text for m in window.messages.history[before:]]
    assert texts == ["Added 1 image(s) to the project."], texts


def _paint_both_classes(qtbot, panel: LabelPanel) -> None:
    panel.size_slider.setValue(4)
    qtbot.keyClick(panel.canvas, Qt.Key.Key_2)
    _drag(qtbot, panel, [(20, 20), (24, 40)])  # inside the object
    qtbot.keyClick(panel.canvas, Qt.Key.Key_1)
    _drag(qtbot, panel, [(4, 4), (4, 60)])  # background


def test_grow_strokes_box_sets_the_config_train_builds(qtbot, panel, tmp_path) -> None:
    """On by default as LiveConfig; unticked, Train builds a trainer on the strokes only (regions 0);
    ticked again while training, the running trainer grows strokes from its next step."""
    _open_with_image(qtbot, panel, tmp_path)
    _paint_both_classes(qtbot, panel)
    box = panel.grow_box
    assert box.isChecked() and LiveConfig().regions > 0
    assert "superpixel" in box.toolTip() and "--grow-strokes" in box.toolTip()
    box.click()  # off, before the first Train
    qtbot.mouseClick(panel.train_btn, Qt.MouseButton.LeftButton)
    trainer = panel.trainer
    assert trainer is not None and trainer.cfg.regions == 0.0
    assert trainer.cfg.crop == panel.live_config.crop  # the rest of the config is kept
    qtbot.waitUntil(lambda: trainer.step >= 2, timeout=WAIT)
    assert trainer._examples["a.png"].grown is None  # strokes only: nothing was grown
    box.click()  # on again, live
    assert trainer.cfg.regions == panel.live_config.regions > 0
    step = trainer.step
    qtbot.waitUntil(lambda: trainer.step >= step + 2 and trainer._examples["a.png"].grown is not None, timeout=WAIT)
    qtbot.mouseClick(panel.train_btn, Qt.MouseButton.LeftButton)  # Stop
    qtbot.waitUntil(lambda: not panel.worker.running, timeout=WAIT)
    box.click()  # off: the next Train continues the same trainer on strokes only
    qtbot.mouseClick(panel.train_btn, Qt.MouseButton.LeftButton)
    assert panel.trainer is trainer and trainer.cfg.regions == 0.0
    qtbot.mouseClick(panel.train_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.worker.running, timeout=WAIT)


def test_pretrain_box_is_off_and_says_why_and_what_it_uses(panel) -> None:
    box = panel.pretrain_box
    assert not box.isChecked()
    tip = box.toolTip()
    assert "unlabelled" in box.text() and "unlabelled" in tip and "measured worse" in tip and "0.07" in tip


def test_refreshes_while_training_follow_the_schedule(qtbot, panel, tmp_path, monkeypatch) -> None:
    """While training, the next refresh waits for the panel's RefreshSchedule (fed with each prediction's
    start and end and the trainer's step log); a stroke inside that time is refreshed when it ends."""
    _open_with_image(qtbot, panel, tmp_path)
    _paint_both_classes(qtbot, panel)
    qtbot.mouseClick(panel.train_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.prediction is not None and panel.prediction.step > 0, timeout=WAIT)
    qtbot.waitUntil(lambda: panel.predictions_made >= 3, timeout=WAIT)
    assert len(panel.schedule._spans) >= 2 and panel.trainer.step_log.steps()  # each refresh and step was logged
    # A schedule that never allows another: once the ones in flight are in, none follows, strokes or not.
    monkeypatch.setattr(panel.schedule, "finished", lambda now, step: now + 3600.0)
    made = panel.predictions_made
    qtbot.waitUntil(lambda: panel.predictions_made > made, timeout=WAIT)
    qtbot.waitUntil(lambda: not panel.runner.busy, timeout=WAIT)
    qtbot.wait(100)  # the last result's callback
    made = panel.predictions_made
    _drag(qtbot, panel, [(30, 20), (30, 30)])
    qtbot.wait(1500)  # the stroke's 0.4 s refresh comes and is deferred
    assert panel.predictions_made == made
    panel._next_refresh = time.monotonic()  # the schedule allows it now: the stroke's refresh comes
    qtbot.waitUntil(lambda: panel.predictions_made > made, timeout=WAIT)
    # While a prediction of this image runs, no second one is queued behind it (its result sets the
    # budget); one of another image (the person switched) is.
    submitted: list[str] = []
    monkeypatch.setattr(type(panel.runner), "busy", property(lambda _self: True))
    monkeypatch.setattr(panel.runner, "submit", lambda _fn, _nets, key, *a, **k: submitted.append(key))
    panel._next_refresh, panel.prediction = 0.0, None
    panel._inflight_key = panel.key
    panel.refresh_prediction()
    assert submitted == []
    panel._inflight_key = "another.png"
    panel.refresh_prediction()
    assert submitted == [panel.key]
    monkeypatch.undo()
    qtbot.mouseClick(panel.train_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.worker.running, timeout=WAIT)
