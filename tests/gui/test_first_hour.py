"""Issue 16, a new user's first hour: layout that stays put, and the window on a laptop screen."""

from __future__ import annotations

from aestudio.gui.messages import Level


def test_messages_do_not_move_the_layout(window, qtbot) -> None:
    window.resize(1366, 740)
    qtbot.wait(50)
    tabs_before = window.tabs.geometry()
    inner_before = window.tabs.currentWidget().mapTo(window, window.tabs.currentWidget().rect().topLeft())
    window.notify(Level.WARNING, "A long warning about a dropped file that could not be opened; " * 3)
    window.notify(Level.INFO, "Active model: something.")
    qtbot.wait(50)
    assert window.messages.isVisible() and len(window.messages.visible_messages()) == 2
    assert window.tabs.geometry() == tabs_before
    assert window.tabs.currentWidget().mapTo(window, window.tabs.currentWidget().rect().topLeft()) == inner_before
    # The banner floats inside the window, tall enough for its wrapped rows, and on top.
    bar = window.messages
    top_left = bar.mapTo(window, bar.rect().topLeft())
    assert top_left.y() >= 0 and top_left.y() + bar.height() <= window.height()
    rows = [bar._layout.itemAt(i).widget() for i in range(bar._layout.count())]
    assert all(r.height() >= r.minimumSizeHint().height() for r in rows)
    window.messages.clear()
    qtbot.wait(20)
    assert not window.messages.isVisible() and window.tabs.geometry() == tabs_before


def test_the_colour_bar_title_clears_its_top_tick(qtbot) -> None:
    from aestudio.gui.panels.metrics_view import ColorBar

    bar = ColorBar()
    qtbot.addWidget(bar)
    bar.resize(64, 200)
    bar.set_scale(0.31)
    title = bar.title_rect()
    title_text = title.adjusted(0, 0, 0, -(title.height() - bar.fontMetrics().height()))
    ticks = bar.tick_rects()
    assert not title_text.intersects(ticks[2]), (title_text, ticks[2])  # the top tick: "0.31"
    for rect in [title, *ticks]:
        assert rect.left() >= 0 and rect.right() <= bar.width() and rect.top() >= 0 and rect.bottom() <= bar.height()
    assert bar.fontMetrics().horizontalAdvance(bar.TITLE) <= bar.width()
    bar.grab()  # paints without error


def test_the_source_combo_is_never_cut_by_a_long_file_name(qtbot) -> None:
    from PySide6.QtWidgets import QHBoxLayout, QWidget

    from aestudio.gui.panels.metrics_view import BrowseBar, ElidedLabel

    host = QWidget()
    qtbot.addWidget(host)
    row = QHBoxLayout(host)
    bar = BrowseBar()
    label = ElidedLabel("")
    row.addWidget(bar)
    row.addWidget(label, 1)
    bar.set_count(BrowseBar.DATA, 360, "digits (val)")
    bar.set_count(BrowseBar.FILES, 12)
    long_path = "/home/someone/Pictures/holidays/2026/a-very-long-folder-name/another-one/photo-0001.png"
    label.setText(long_path)
    host.resize(620, 40)
    host.show()
    qtbot.wait(20)
    fm = bar.combo.fontMetrics()
    widest = max(fm.horizontalAdvance(bar.combo.itemText(i)) for i in range(bar.combo.count()))
    assert bar.combo.width() >= widest + 20, (bar.combo.width(), widest)  # "Dropped images (12)" whole
    assert host.minimumSizeHint().width() <= 620  # the path does not widen the row ...
    assert label.text() == long_path and label.toolTip() == long_path  # ... it is elided, kept whole
    assert "…" in label.elided() and label.elided().endswith("photo-0001.png")


def test_the_denoising_verdict_never_contradicts_its_numbers() -> None:
    from aestudio.explore.image_metrics import denoise_verdict

    def v(dp: float, ds: float) -> str:
        return denoise_verdict({"psnr": 20.0, "ssim": 0.5}, {"psnr": 20.0 + dp, "ssim": 0.5 + ds})

    assert v(8.9, 0.469) == "Denoising improves this image (PSNR +8.9 dB, SSIM +0.469)."
    assert v(-15.6, -0.2).startswith("Denoising makes this image worse (PSNR -15.6 dB, SSIM -0.200)")
    assert v(-0.01, -0.0001) == "Denoising leaves this image about the same (PSNR +0.0 dB, SSIM +0.000)."
    assert v(-11.6, 0.02).startswith("Denoising gives a mixed result (PSNR -11.6 dB, SSIM +0.020)")
    for dp, ds in [(8.9, 0.4), (-15.6, -0.2), (-0.01, 0.0), (-11.6, 0.02), (0.04, -0.3)]:
        assert "-0.0 " not in v(dp, ds) and "gains -" not in v(dp, ds)


def test_train_fields_follow_the_family_and_presets_start_from_defaults(window, qtbot) -> None:
    panel = window.train_panel
    form = panel.train_form

    def family(name: str) -> None:
        panel.family_box.setCurrentText(name)
        qtbot.wait(10)

    family("conv_ae")
    assert not form.row_visible("kl_warmup_epochs") and not form.row_visible("noise")
    family("vae")
    assert form.row_visible("kl_warmup_epochs") and not form.row_visible("noise")
    form.set_values({"kl_warmup_epochs": 7})
    family("denoising_ae")
    assert form.row_visible("noise") and not form.row_visible("kl_warmup_epochs")
    assert form.values()["kl_warmup_epochs"] == 0  # hidden: back to its default, never acting unseen
    form.set_values({"noise": "gaussian:0.3"})
    family("conv_ae")
    assert str(getattr(form.values()["noise"].kind, "value", form.values()["noise"].kind)) == "none"

    # The KL warm-up a VAE starts with depends on the data only, not on what was opened before.
    panel.set_data("shapes", 32)
    assert panel.family_box.currentText() == "vae" and form.values()["kl_warmup_epochs"] == 5
    panel.set_data("digits", 8)
    family("vae")
    assert form.values()["kl_warmup_epochs"] == 0


def test_pause_reads_unpause_not_continue_beside_resume(window) -> None:
    panel = window.train_panel
    panel._pause_toggled(True)
    assert panel.pause_button.text() == "Unpause" and panel.resume_button.text() == "Resume"
    panel._pause_toggled(False)
    assert panel.pause_button.text() == "Pause"


def test_models_details_column_shows_its_text_whole(window, qtbot, bundles) -> None:
    import shutil

    from aestudio.gui.workspace import bundles_dir

    target = bundles_dir(window.workspace) / "my-denoiser"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(bundles("denoising_ae"), target)
    window.resize(1366, 740)
    window.models_panel.refresh()
    qtbot.wait(50)
    tree = window.models_panel.tree
    fm = tree.fontMetrics()
    column = tree.header().sectionSize(1)
    texts = []
    for i in range(tree.topLevelItemCount()):
        top = tree.topLevelItem(i)
        texts += [top.child(j).text(1) for j in range(top.childCount())]
    assert "denoise" in texts
    for text in texts:
        assert fm.horizontalAdvance(text) + 6 <= column, (text, column)  # the delegate keeps 3 px a side
