"""Windows narrower than a 1366 x 768 laptop's: the Train tab degrades gracefully (nothing cut)."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize
from PySide6.QtWidgets import QWidget


def _cut_by(widget: QWidget, top: QWidget) -> QWidget | None:
    """The first ancestor (up to ``top``) whose area does not hold all of ``widget``, else None."""
    rect, w = widget.rect(), widget
    while w is not top:
        parent = w.parentWidget()
        rect = QRect(w.mapToParent(rect.topLeft()), rect.size())
        if not parent.rect().contains(rect):
            return parent
        w = parent
    return None


def test_train_tab_caption_keeps_to_two_lines_and_the_plots_stay_whole(window, qtbot) -> None:
    """Below ~1100 px the caption over the plots wrapped to 7 lines and pushed the plots' bottom axes
    out of their area. Now it takes two lines at most (eliding, the full text in its tooltip), at the
    laptop size as before and down to the window's narrowest."""
    from aestudio.gui.main_window import default_window_size

    panel = window.train_panel
    window.show_panel(panel)
    panel.build_deferred()
    curves = panel.curves
    full = curves.caption.text()
    idle = panel.run_label.text()
    running = ("unet-label-project-20261207-101500-run-with-a-long-name — training on cpu · CPU (2 threads) · "
               "1,234,567 parameters · 1,437 train / 360 validation images")
    laptop = default_window_size(QSize(1366, 768 - 28))
    for width in (laptop.width(), 1100, 1000, window.minimumSizeHint().width()):
        window.resize(width, laptop.height())
        qtbot.wait(50)
        assert window.width() == max(width, window.minimumSizeHint().width())
        line = curves.caption.fontMetrics().lineSpacing()
        assert curves.caption.height() <= 2 * line + 4, f"caption {curves.caption.height()} px high at {width}"
        for title in (idle, running):  # a run's title wraps to two or three lines in a narrow window
            panel.run_label.setText(title)
            qtbot.wait(30)
            cut = _cut_by(curves.graphics, window)
            assert cut is None, f"the plots are cut by {type(cut).__name__} at {width} px under {title[:20]!r}"
            assert _cut_by(panel.compare.list, window) is None and _cut_by(panel.metrics, window) is None
        assert curves.caption.toolTip() == full
        if width == laptop.width():  # as before at the laptop size: the whole caption, on two lines
            assert curves.caption.elided() == full
        else:
            assert curves.caption.elided().endswith("…") or curves.caption.elided() == full
