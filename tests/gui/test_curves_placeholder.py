"""The Train tab's plot area before its plots are built (the first seconds after launch): it says
what will be drawn there, in the plots' places, and gives way to the plots when they are built."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from aestudio.gui.curves import PLACEHOLDER, CurvesView


def test_the_plot_area_explains_itself_until_the_plots_are_built(qtbot) -> None:
    view = CurvesView(deferred=True)
    qtbot.addWidget(view)
    view.resize(700, 330)
    view.show()
    qtbot.waitExposed(view)
    assert not view.plot_built
    text = view.placeholder_text()
    for title, hint in PLACEHOLDER:
        assert title in text and hint in text
    slot = view._slot
    labels = slot.findChildren(QLabel)
    assert len(labels) == 2 * len(PLACEHOLDER) and all(label.isVisible() for label in labels)
    # Nothing cut off: every label lies inside the area and has the height its (wrapped) text needs.
    for label in labels:
        box = label.geometry()
        assert slot.rect().contains(box), (label.text(), box, slot.rect())
        assert box.height() >= label.heightForWidth(box.width()) if label.wordWrap() else box.height() >= label.sizeHint().height()
    # The titles sit side by side, the loss on the left, as the plots will.
    heads = [label for label in labels if label.text() in {t for t, _ in PLACEHOLDER}]
    assert [h.text() for h in sorted(heads, key=lambda h: h.x())] == [t for t, _ in PLACEHOLDER]
    area = slot.geometry()
    view.build_plot()
    assert view.plot_built and view.placeholder_text() == ""
    qtbot.waitUntil(lambda: view.graphics.isVisible())
    assert view.graphics.geometry().top() == area.top()  # the plots take the placeholder's place
