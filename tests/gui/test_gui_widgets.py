"""Small widgets: config forms for every family, curve data validation, previews, names."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from aestudio.config import NoiseConfig, ReconLoss, TrainConfig
from aestudio.gui.config_form import ConfigForm, label_for
from aestudio.gui.curves import CurvesView, RunSeries, clean_xy
from aestudio.gui.images import array_to_qimage, mask_to_qimage
from aestudio.gui.presets import preset_for
from aestudio.gui.preview_grid import PreviewGrid
from aestudio.gui.workspace import new_run_dir, slug
from aestudio.nets import get_spec, list_nets
from aestudio.training.events import Preview


@pytest.mark.parametrize("name", list_nets())
def test_every_family_gets_a_form_that_round_trips_its_defaults(qtbot, name: str) -> None:
    cls = get_spec(name).config_cls
    form = ConfigForm(cls, exclude=("in_channels",))
    qtbot.addWidget(form)
    assert form.field_names(), f"{name}: no editable fields"
    assert form.build() == cls()


def test_train_form_parses_types_and_names_bad_fields(qtbot) -> None:
    form = ConfigForm(TrainConfig)
    qtbot.addWidget(form)
    assert form.build() == TrainConfig()
    form.set_values({"lr": 3e-4, "noise": "gaussian:0-0.2", "recon_loss": ReconLoss.BCE, "max_steps": 7})
    cfg = form.build()
    assert cfg.lr == pytest.approx(3e-4) and cfg.recon_loss is ReconLoss.BCE and cfg.max_steps == 7
    assert cfg.noise == NoiseConfig("gaussian", 0.0, 0.2)
    form.set_values({"max_steps": None})
    assert form.build().max_steps is None
    form.editor("noise").setText("lasers:3")
    with pytest.raises(ValueError, match="Noise"):
        form.values()


def test_the_train_tabs_advanced_form_switches_cpu_bfloat16(qtbot) -> None:
    from aestudio.gui.train_panel import TRAIN_ADVANCED

    form = ConfigForm(TrainConfig, include=TRAIN_ADVANCED)
    qtbot.addWidget(form)
    box = form.editor("bf16")
    assert form.values()["bf16"] is False
    assert label_for("bf16") == "Bfloat16 on the CPU"
    box.setChecked(True)
    assert TrainConfig(**form.values()).bf16 is True
    # --ema's field (it was CLI-only): off by default, typed like the CLI's DECAY
    assert label_for("ema") == "EMA decay" and form.values()["ema"] == 0.0
    form.editor("ema").setText("0.99")
    assert TrainConfig(**form.values()).ema == 0.99


def test_field_help_metadata_becomes_tooltips(qtbot) -> None:
    """Help text lives in the config dataclasses' field metadata (issue 15), inherited fields included."""
    from aestudio.config import field_help
    from aestudio.nets.vae import VAEConfig

    comments = field_help(TrainConfig)
    assert "Adam" in comments["lr"]
    form = ConfigForm(TrainConfig)
    qtbot.addWidget(form)
    assert form.editor("lr").toolTip() == comments["lr"]
    vae_help = field_help(VAEConfig)
    assert "grayscale" in vae_help["in_channels"] and vae_help["beta"]  # from NetConfig, and its own
    net_form = ConfigForm(VAEConfig)
    qtbot.addWidget(net_form)
    assert net_form.editor("beta").toolTip() == vae_help["beta"]


def test_presets_pick_the_documented_families() -> None:
    assert preset_for("digits").net == "conv_ae" and preset_for("digits").net_params["latent_dim"] == 16
    assert preset_for("digits").train_params["epochs"] == 30
    assert preset_for("shapes").net == "vae"
    assert preset_for("shapes-seg").net == "unet"
    assert preset_for("folder:/x").net in list_nets()
    for kind in ("digits", "shapes", "shapes-seg", "folder:/x", "pairs:a,b", "mnist:/m", "unknown"):
        preset = preset_for(kind)
        fields = get_spec(preset.net).config_cls.__dataclass_fields__
        assert set(preset.net_params) <= set(fields), f"{kind}: preset names fields {preset.net} lacks"


def test_curve_data_is_cleaned_before_it_reaches_pyqtgraph(qtbot) -> None:
    x, y = clean_xy([0, 1, 2, 3, 4], [1.0, np.nan, np.inf, -1.0, 0.5], positive=True)
    assert list(x) == [0, 4] and list(y) == [1.0, 0.5]
    view = CurvesView()
    qtbot.addWidget(view)
    view.show()
    for i, loss in enumerate([0.5, float("nan"), float("inf"), 0.0, -3.0, 0.1]):
        view.add_step(i / 10, loss)
    view.add_epoch(1, float("nan"), {"mse": float("inf"), "psnr": 20.0})
    view.redraw()
    qtbot.wait(50)  # let it paint: a bad array would raise inside paint()
    assert view.point_counts()["steps"] == 2
    assert view.metric_box.currentText() == "psnr"
    history = [{"epoch": 1, "step": 10, "train_loss": 0.2, "seconds": 1.0, "batch_size": 8, "psnr": 15.0},
               {"epoch": 2, "step": 20, "train_loss": 0.1, "seconds": 1.0, "batch_size": 8, "psnr": 18.0}]
    series = RunSeries.from_history(history)
    assert series.epoch_x == [1.0, 2.0] and "batch_size" not in series.metrics
    view.add_overlay("old-run", series)
    assert view.overlay_names() == ["old-run"]
    view.remove_overlay("old-run")
    assert view.overlay_names() == []


def test_preview_grid_shows_rows_and_rejects_malformed_data(qtbot) -> None:
    grid = PreviewGrid()
    qtbot.addWidget(grid)
    rng = np.random.default_rng(0)
    images = rng.random((3, 1, 8, 8), dtype=np.float32)
    grid.set_preview(Preview(inputs=images, outputs=images), epoch=0)
    assert grid.rows == 2
    masks = rng.integers(0, 3, (3, 8, 8))
    grid.set_preview(Preview(inputs=images, masks=masks, targets=masks), epoch=1)
    assert grid.rows == 3
    grid.set_preview(Preview(inputs=np.zeros((2, 5, 5, 5, 5), np.float32)), epoch=2)
    assert grid.rows == 3  # the malformed preview was skipped, the last good one stays


def test_image_conversion_handles_layouts_and_bad_values() -> None:
    q = array_to_qimage(np.full((3, 4, 5), np.nan, np.float32))  # [C, H, W]
    assert (q.width(), q.height()) == (5, 4)
    assert array_to_qimage(np.ones((6, 7), np.float32)).width() == 7
    assert mask_to_qimage(np.array([[0, 1], [2, 40]])).width() == 2
    with pytest.raises(ValueError):
        array_to_qimage(np.zeros((2, 2, 2, 2)))


def test_run_names_are_readable_and_unique(tmp_path: Path) -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5)
    first = new_run_dir(tmp_path, "vae", "shapes", now=when)
    assert first.name == "vae-shapes-20260102-030405" and first.parent == tmp_path / "runs"
    first.mkdir(parents=True)
    assert new_run_dir(tmp_path, "vae", "shapes", now=when).name == "vae-shapes-20260102-030405-2"
    assert slug("folder:/home/me/My Photos/") == "folder-My-Photos"
    assert slug("pairs:/a/imgs,/a/masks") == "pairs-imgs"


def test_empty_curves_show_bare_axes_until_the_first_point(qtbot) -> None:
    view = CurvesView()
    qtbot.addWidget(view)
    left = view.loss_plot.getAxis("left")
    assert left.style["showValues"] is False  # no meaningless log ticks before a run
    assert view.metric_box.placeholderText()
    view.add_step(0.1, 0.5)
    view.redraw()
    assert left.style["showValues"] is True
    assert view.loss_plot.ctrl.logYCheck.isChecked()


def test_fixed_size_nets_start_at_the_data_size(qtbot, tmp_path: Path) -> None:
    from aestudio.gui.train_panel import TrainPanel

    panel = TrainPanel(tmp_path)
    qtbot.addWidget(panel)
    panel.set_data("digits", 8)
    assert panel.family_box.currentText() == "conv_ae"
    assert panel.net_form.values()["image_size"] == 8
    panel.family_box.setCurrentText("vae")  # a new family's form keeps the data's size
    assert panel.net_form.values()["image_size"] == 8


def test_the_style_is_applied_once_per_application(qapp) -> None:
    """A second window's start-up must not set the style sheet again: that re-polishes every live
    widget, a closing window's too, and crashed Qt when tests opened one window after another."""
    from aestudio.gui.app import application

    app = application()
    sheet = app.styleSheet()
    assert sheet  # the first call styled the application
    app.setStyleSheet(sheet + "\n/* marker */")
    try:
        assert application() is app
        assert app.styleSheet().endswith("/* marker */")  # left alone
    finally:
        app.setStyleSheet(sheet)
