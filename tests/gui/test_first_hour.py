"""Issue 16, a new user's first hour: layout that stays put, and the window on a laptop screen."""

from __future__ import annotations

import tempfile
from pathlib import Path

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
    qtbot.waitUntil(lambda: panel.family_box.count() > 0, timeout=60000)  # the families load in the background

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


def test_a_conv_ae_trains_on_noisy_inputs_when_asked_as_the_cli_can(window, qtbot, monkeypatch) -> None:
    # `aestudio train --model conv_ae --noise gaussian:0.2` is a denoising run; the form hid Noise
    # for conv_ae, so the app could not start one. A check box asks for it; Noise then shows.
    from aestudio.gui import engine

    panel = window.train_panel
    form = panel.train_form
    qtbot.waitUntil(lambda: panel.family_box.count() > 0, timeout=60000)
    panel.set_data("digits", 8)
    panel.family_box.setCurrentText("conv_ae")
    assert panel.noisy_inputs.isVisibleTo(panel) and not panel.noisy_inputs.isChecked()
    assert not form.row_visible("noise")
    panel.noisy_inputs.setChecked(True)
    assert form.row_visible("noise")
    # Ticking it with Noise at none fills in the denoiser preset's noise (else the box did nothing).
    assert form.values()["noise"].kind == "gaussian"
    form.set_values({"noise": "gaussian:0.2"})

    started = []
    monkeypatch.setattr(panel, "_launch", lambda source, *_a, **_k: started.append(source))
    monkeypatch.setattr(engine, "train", lambda net, net_cfg, spec, cfg, run_dir, **_k: (net, cfg))
    panel.start()
    net, cfg = started[0](None, None)
    assert net == "conv_ae" and (cfg.noise.kind, cfg.noise.strength) == ("gaussian", 0.2)

    panel.noisy_inputs.setChecked(False)  # unticked: Noise hides and goes back to none
    assert not form.row_visible("noise") and form.values()["noise"].kind == "none"
    panel.family_box.setCurrentText("unet")  # segmentation adds no noise: no box
    assert not panel.noisy_inputs.isVisibleTo(panel) and not form.row_visible("noise")
    panel.family_box.setCurrentText("denoising_ae")  # the denoiser always trains on noise: no box, Noise shown
    assert not panel.noisy_inputs.isVisibleTo(panel) and form.row_visible("noise")


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


def test_a_long_run_summary_leaves_the_shipped_names_whole(window, qtbot) -> None:
    # A run's "4 ep · stopped · ONNX" sized the Details column and cut every name to "photo…oiser".
    from PySide6.QtWidgets import QTreeWidgetItem

    from aestudio.gui.models_panel import DETAILS_SHARE

    window.resize(1366, 740)
    window.models_panel.refresh()
    tree = window.models_panel.tree
    runs = tree.topLevelItem(0)
    runs.addChild(QTreeWidgetItem(["conv_ae-digits-20261207-140404", "40 ep · stopped · ONNX"]))
    runs.setExpanded(True)
    tree.fit_columns()
    qtbot.wait(50)
    width = tree.viewport().width()
    assert tree.header().sectionSize(1) <= width * DETAILS_SHARE + 1
    fm = tree.fontMetrics()
    name_room = tree.header().sectionSize(0) - 2 * tree.indentation() - 6
    assert fm.horizontalAdvance("photo-denoiser-rgb") <= name_room, (name_room, width)


def test_loss_axis_tick_labels_never_overlap(qtbot) -> None:
    # Issue 16: "0.1", "0.09", "0.08", "0.07" overlapped on the log loss axis of a short plot.
    import pyqtgraph as pg
    from PySide6.QtGui import QImage, QPainter

    from aestudio.gui.curves import CurvesView

    view = CurvesView()
    qtbot.addWidget(view)
    view.resize(700, 230)
    view.show()
    for i in range(200):
        view.add_step(i / 20, 0.3 * (0.02 / 0.3) ** (i / 200))  # 0.3 down to 0.02
    view.redraw()
    qtbot.wait(50)
    axis = view.loss_plot.getAxis("left")
    image = QImage(200, 800, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        plain = pg.AxisItem.generateDrawSpecs(axis, painter)[2]
        ours = axis.generateDrawSpecs(painter)[2]
    finally:
        painter.end()

    def overlapping(specs) -> int:
        rects = [s[0] for s in specs]
        return sum(rects[i].intersects(rects[j]) for i in range(len(rects)) for j in range(i + 1, len(rects)))

    assert overlapping(plain) > 0  # the case really crowds pyqtgraph's own axis
    assert overlapping(ours) == 0
    labels = [s[2] for s in ours]
    assert {"0.1", "0.3"} <= set(labels) and len(labels) >= 4


def test_every_panel_fits_a_1366x768_laptop_with_models_images_and_a_mask(window, qtbot, monkeypatch) -> None:
    """The issue's panels at the size the window opens with on a 1366x768 screen (28 px taken by a
    desktop panel): no tab scrolls, Segment keeps its data-set arrows with a mask loaded, the
    histogram markers and the source combo are whole."""
    from PySide6.QtCore import QSize

    from aestudio.gui.main_window import default_window_size
    from aestudio.zoo import catalog as zoo

    size = default_window_size(QSize(1366, 768 - 28))
    assert size.width() + 24 <= 1366 and size.height() + 40 <= 768 - 28  # room for the frame and title
    assert size.width() >= window.minimumSizeHint().width() and size.height() >= window.minimumSizeHint().height()
    window.resize(size)
    qtbot.wait(50)
    assert window.size() == size
    samples = {p.stem: p for p in zoo.sample_images()}
    cases = [("Reconstruct", "digits-conv-ae", "digits", None), ("Noise lab", "photo-denoiser", "digits", "photo-camera"),
             ("Segment", "shapes-seg-unet", "shapes-seg", "shapes-seg-1"), ("Latent", "shapes-vae", "shapes", "shapes-1")]
    tabs = {window.tabs.tabText(i): i for i in range(window.tabs.count())}
    for title, model, spec, sample in cases:
        window.tabs.setCurrentIndex(tabs[title])
        panel = window.current_explore_panel()
        if window.data_panel.spec != spec:
            window.data_panel.open_spec(spec)
            qtbot.waitUntil(lambda s=spec: window.data_panel.summary is not None and window.data_panel.summary.spec == s,
                            timeout=60000)
        path = zoo.find_model(model).path
        window.load_model(path)
        qtbot.waitUntil(lambda p=path: window.active_model is not None and window.active_model.path == p, timeout=60000)
        if sample:
            window.open_paths([samples[sample]])
            qtbot.waitUntil(lambda p=panel: bool(p.images), timeout=30000)
        if title == "Segment":  # a data-set image brings its mask: the score table appears
            qtbot.waitUntil(lambda p=panel: p.data_index.isEnabled(), timeout=60000)
            panel.data_index.setValue(3)
            qtbot.waitUntil(lambda p=panel: p.scores.rowCount() > 0 and p.scores.isVisibleTo(p), timeout=30000)
        if title == "Reconstruct":
            qtbot.waitUntil(lambda p=panel: p.errors is not None and p.shown_line.isVisible(), timeout=60000)
        qtbot.wait(300)
        area = window.tabs.currentWidget()
        assert not area.verticalScrollBar().isVisible(), f"{title} scrolls at {size.width()}x{size.height()}"
        assert not area.horizontalScrollBar().isVisible(), f"{title} scrolls sideways"
        if title == "Segment":
            for button in (panel.prev_button, panel.next_button):
                top_left = button.mapTo(area.viewport(), button.rect().topLeft())
                assert top_left.y() + button.height() <= area.viewport().height(), "data-set arrows cut"
        if hasattr(panel, "browse"):
            combo = panel.browse.combo
            fm = combo.fontMetrics()
            assert combo.width() >= fm.horizontalAdvance(combo.currentText()) + 20, (title, combo.currentText())
        if title == "Reconstruct":
            vb = panel.plot.getPlotItem().getViewBox().sceneBoundingRect()
            shown = panel.shown_line.label.sceneBoundingRect()
            assert vb.contains(shown), "the 'shown' marker's label is cut"
            assert not shown.intersects(panel.threshold_line.label.sceneBoundingRect())
        if title == "Latent":  # the map's axis names are whole (the left one was cut to "(x0.0")
            qtbot.waitUntil(lambda p=panel: p.map.stack.currentWidget() is p.map.plot, timeout=60000)
            for name in ("left", "bottom"):
                axis = panel.map.plot.getAxis(name)
                along = axis.size().height() if name == "left" else axis.size().width()
                assert axis.label.boundingRect().width() <= along, f"Latent map's {name} label is cut"
        window.grab().save(str(Path(tempfile.gettempdir()) / f"aestudio-fit-{title.replace(' ', '-').lower()}.png"))


def test_the_banner_keeps_warnings_over_newer_infos(window, qtbot) -> None:
    from aestudio.gui.messages import MAX_VISIBLE

    window.notify(Level.ERROR, "Export failed: boom")
    for i in range(MAX_VISIBLE + 2):
        window.notify(Level.INFO, f"info {i}")
    shown = [m.text for m in window.messages.visible_messages()]
    assert len(shown) == MAX_VISIBLE and shown[0] == "Export failed: boom" and shown[-1] == f"info {MAX_VISIBLE + 1}"
    assert len(window.messages.history) == MAX_VISIBLE + 3


def test_start_is_in_view_on_the_train_tab_at_the_laptop_size(window, qtbot) -> None:
    from PySide6.QtCore import QSize

    from aestudio.gui.main_window import default_window_size

    window.resize(default_window_size(QSize(1366, 768 - 28)))
    window.show_panel(window.train_panel)
    qtbot.wait(50)
    panel = window.train_panel
    for button in (panel.start_button, panel.pause_button, panel.stop_button, panel.resume_button):
        assert button.isVisible()
        bottom = button.mapTo(panel, button.rect().bottomLeft()).y()
        assert bottom <= panel.height(), f"{button.text()} is below the tab's edge"
        assert not panel._settings_scroll.isAncestorOf(button)  # never scrolled out of view


def test_the_label_tab_fits_the_laptop_size_with_its_model_buttons_in_view(window, qtbot, tmp_path) -> None:
    """At the window's 1366x768 size, with a project and an image open, the Label tab's tool
    column does not scroll: Train, Accept and Export stay in sight beside the canvas."""
    import numpy as np
    from PySide6.QtCore import QSize
    from PySide6.QtWidgets import QScrollArea

    from aestudio.data.io import write_image
    from aestudio.gui.main_window import default_window_size
    from aestudio.gui.panels.label import LabelPanel

    window.resize(default_window_size(QSize(1366, 768 - 28)))
    tabs = {window.tabs.tabText(i): i for i in range(window.tabs.count())}
    window.tabs.setCurrentIndex(tabs["Label"])
    panel = window.current_explore_panel()
    assert isinstance(panel, LabelPanel)
    assert panel.create_project(tmp_path / "proj")
    img = np.zeros((64, 64), np.float32)
    img[16:48, 16:48] = 1.0
    write_image(tmp_path / "a.png", img)
    panel.on_images([tmp_path / "a.png"])
    qtbot.waitUntil(lambda: panel.image is not None, timeout=30000)
    qtbot.wait(200)
    area = window.tabs.currentWidget()
    if isinstance(area, QScrollArea):
        assert not area.verticalScrollBar().isVisible(), "the Label tab scrolls"
    side = next(s for s in panel.findChildren(QScrollArea) if s.isAncestorOf(panel.train_btn))
    assert not side.verticalScrollBar().isVisible(), (
        f"the tool column scrolls: {side.widget().sizeHint().height()} px in {side.viewport().height()}")
    for button in (panel.train_btn, panel.accept_btn, panel.export_btn, panel.recent_btn):
        assert button.isVisible() and not button.visibleRegion().isEmpty(), button.text()
    fm = panel.recent_btn.fontMetrics()
    assert panel.recent_btn.width() >= fm.horizontalAdvance("Recent") + 24  # text and menu arrow
    window.grab().save(str(tmp_path.parent / "aestudio-fit-label.png"))
    # Classes: the list grows with them (it was 3 rows whatever the room), in two columns when
    # rows run out; the tool column still does not scroll and no row is cut.
    lst = panel.class_list
    for total, all_shown in ((5, True), (10, False)):
        while lst.count() < total:
            panel.add_class(f"class {lst.count()}")
        qtbot.wait(100)
        area = lst.viewport().rect()
        shown = [i for i in range(lst.count()) if lst.visualItemRect(lst.item(i)).intersects(area)]
        assert all(area.contains(lst.visualItemRect(lst.item(i))) for i in shown), "a class row is cut"
        assert not side.verticalScrollBar().isVisible(), f"the tool column scrolls with {total} classes"
        assert len(shown) == total if all_shown else len(shown) >= 8, (total, shown)
        window.grab().save(str(tmp_path.parent / f"aestudio-fit-label-{total}-classes.png"))


def test_the_data_summary_counts_one_image_in_the_singular() -> None:
    from aestudio.gui.data_panel import DataSummary, describe

    def text(train: int, val: int) -> str:
        return describe(DataSummary(spec="folder:x", train_size=train, val_size=val, channels=1, image_size=64,
                                    kind="images", class_names=[], bad_files=[], files=[], samples=[]))

    assert "<b>1</b> image ·" in text(1, 0)
    assert "<b>2</b> images ·" in text(1, 1)
