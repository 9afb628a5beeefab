"""The Label tab's image list at 1366x768: "7.6% painted" and "doubt 0.42" are never cut off (they were,
after a long file name, behind a horizontal scroll bar); a long name is shortened in the middle and
its tooltip holds it whole."""

from __future__ import annotations

import numpy as np
from PIL import Image

WAIT = 30_000
NAMES = ["IMG_20240612_153012.png", "cells_plate3_well_B07_t012.png", "a.png"]


def test_the_image_list_shows_painted_and_doubt_whole_at_the_laptop_size(qtbot, window, tmp_path) -> None:
    from PySide6.QtCore import Qt

    from aestudio.data.io import write_mask
    from aestudio.data.project import LabelProject

    (tmp_path / "src").mkdir()
    for name in NAMES:
        Image.fromarray((np.random.default_rng(0).random((48, 64)) * 255).astype(np.uint8)).save(tmp_path / "src" / name)
    project = LabelProject.create(tmp_path / "proj")
    project.add_images([tmp_path / "src" / n for n in NAMES])
    for item in project.items:
        mask = np.full((48, 64), 255, np.uint8)
        mask[:4] = 1  # 8.3% painted
        write_mask(item.mask_path, mask, project.palette(), overwrite=True)
    window.resize(1366, 768)
    window.open_paths([project.root])
    label = window.current_explore_panel()
    for i in range(len(NAMES)):
        label.show_image(i)
        qtbot.waitUntil(lambda i=i: label.current == i and label.image is not None, timeout=WAIT)
    for i in range(len(NAMES)):  # as "Rank by doubt" writes them
        label.image_list.item(i).setText(label._item_text(i, 0.42))
    qtbot.wait(50)

    view = label.image_list
    assert view.horizontalScrollBar().maximum() == 0 or not view.horizontalScrollBar().isVisible()
    metrics = view.fontMetrics()
    for i in range(view.count()):
        item = view.item(i)
        lines = item.text().split("\n")
        assert lines[1:] == ["8.3% painted", "doubt 0.42"], lines
        room = view.visualItemRect(item).width() - 8  # the item's text margins
        for line in lines[1:]:
            assert metrics.horizontalAdvance(line) <= room, f"{line!r} is cut: {room} px for it"
        assert item.toolTip().startswith(label.project.items[i].name)  # the whole name, whatever the list shows
    assert view.textElideMode() == Qt.TextElideMode.ElideMiddle  # a long name keeps its start and extension
