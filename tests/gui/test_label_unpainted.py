"""The Label tab gives its trainer the project's unpainted images when pseudo-labels use them."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import Qt

from tests.gui.test_panel_label import WAIT, _image, _open_with_image, _paint_both_classes


@pytest.fixture
def panel(qtbot):
    from tests.gui.guitools import label_panel

    yield from label_panel(qtbot)


@pytest.mark.parametrize("share", [0.0, 0.5])
def test_unpainted_images_reach_the_trainer_only_when_pseudo_labels_take_them(qtbot, panel, tmp_path, share) -> None:
    panel.live_config = replace(panel.live_config, pseudo=1.0, unlabelled_share=share, batch_size=2)
    _open_with_image(qtbot, panel, tmp_path)
    panel.on_images([_image(tmp_path / "src" / "b.png")])  # never painted
    qtbot.waitUntil(lambda: len(panel.project.items) == 2, timeout=WAIT)
    _paint_both_classes(qtbot, panel)
    qtbot.mouseClick(panel.train_btn, Qt.MouseButton.LeftButton)
    trainer = panel.trainer
    qtbot.waitUntil(lambda: trainer.step >= 2, timeout=WAIT)
    qtbot.mouseClick(panel.train_btn, Qt.MouseButton.LeftButton)  # Stop
    qtbot.waitUntil(lambda: not panel.worker.running, timeout=WAIT)
    assert trainer.has_example("a.png")
    assert trainer.has_example("b.png") == (share > 0)
    if share > 0:
        assert trainer._examples["b.png"].labelled == 0  # nothing painted is invented for it
