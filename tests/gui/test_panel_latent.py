"""The Latent panel, driven as a user would: sliders, the map, drops, interpolation, saving."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from aestudio.explore.latent_codes import kl_per_dim, nearest
from aestudio.gui import engine
from aestudio.gui.panels import latent as latent_module
from aestudio.gui.panels.latent import LatentPanel
from aestudio.gui.workers import TaskRunner

LIMIT = 240  # data items encoded per test: enough for a map, t-SNE stays ~1 s


@pytest.fixture
def make_panel(qtbot, bundles, monkeypatch):
    monkeypatch.setattr(latent_module, "DATA_LIMIT", LIMIT)
    made: list[tuple[LatentPanel, TaskRunner]] = []

    def make(net: str | None = "vae", data: str | None = "digits", wait: bool = True) -> LatentPanel:
        from aestudio.gui.app import application

        application()
        tasks = TaskRunner(max_workers=2)
        panel = LatentPanel(tasks)
        qtbot.addWidget(panel)
        panel.resize(1150, 780)
        panel.show()
        made.append((panel, tasks))
        if data is not None:
            panel.set_data(SimpleNamespace(spec=data))
        if net is not None:
            panel.set_model(engine.load_model(bundles(net)))
            if wait and data is not None:
                qtbot.waitUntil(lambda: panel.codes is not None, timeout=20000)
                settle(qtbot, panel)
        return panel

    yield make
    for panel, tasks in made:
        panel.shutdown()
        tasks.shutdown()


def settle(qtbot, panel: LatentPanel) -> None:
    """Wait until no decode is running or waiting and its result has been shown."""
    qtbot.waitUntil(lambda: not panel.live.busy, timeout=5000)
    qtbot.wait(20)


def decode(panel: LatentPanel, z: np.ndarray) -> np.ndarray:
    return panel.model.predictor.decode(np.asarray(z, np.float32).reshape(1, -1))[0]


def write_digit(path: Path, image_chw: np.ndarray) -> Path:
    from aestudio.data.io import write_image

    return write_image(path, np.repeat(np.repeat(image_chw[0], 3, axis=0), 3, axis=1))


# ---------------------------------------------------------------- empty states


def test_empty_states(make_panel):
    panel = make_panel(net=None)
    assert panel.stack.currentWidget() is panel.empty_page
    assert "No model" in panel.empty_state.text()
    # A model without a code (a U-Net); only its description matters here.
    info = SimpleNamespace(name="unet on shapes-seg", net="unet", task="segment", has_latent=False,
                           latent_dim=None, latent_kind=None, training={})
    panel.set_model(engine.LoadedModel(Path("unet"), info, predictor=None, runtime="none"))
    assert panel.stack.currentWidget() is panel.empty_page
    assert "has no code" in panel.empty_state.text()


def test_no_data_still_slides_the_prior(make_panel, qtbot):
    panel = make_panel(data=None)
    assert panel.stack.currentWidget() is panel.page
    assert panel.codes is None and "Open a data set" in panel.map.placeholder.text()
    assert panel.sliders.dim == panel.model.info.latent_dim
    settle(qtbot, panel)
    np.testing.assert_allclose(panel.decoded.array, decode(panel, np.zeros(panel.sliders.dim)), atol=1e-6)


# ---------------------------------------------------------------- sliders


def test_slider_move_decodes_the_slider_code(make_panel, qtbot):
    panel = make_panel()
    before = panel.decoded.array
    slider = panel.sliders.row_slider(0)
    slider.setValue(2.5)
    qtbot.waitUntil(lambda: panel.decoded.array is not before, timeout=5000)
    settle(qtbot, panel)
    z = panel.sliders.code()
    assert z[int(panel.sliders.order[0])] == pytest.approx(2.5)
    assert not np.allclose(panel.decoded.array, before)
    np.testing.assert_allclose(panel.decoded.array, decode(panel, z), atol=1e-6)
    assert "edited" in panel.decoded.caption.text()


def test_a_drag_while_training_decodes_every_other_frame_and_ends_on_the_last_code(make_panel, qtbot, monkeypatch):
    panel = make_panel()
    settle(qtbot, panel)
    monkeypatch.setattr(latent_module, "training_active", lambda: True)
    submitted = []
    submit = panel.live.submit
    monkeypatch.setattr(panel.live, "submit", lambda fn, pred, z, **kw: (submitted.append(z.copy()), submit(fn, pred, z, **kw)))
    slider = panel.sliders.row_slider(0)
    for i in range(12):  # a fast drag: 12 moves within one throttle window
        slider.setValue(-2.0 + 0.3 * i)
    qtbot.waitUntil(lambda: len(submitted) >= 2, timeout=5000)  # the first move now, the last one after 33 ms
    settle(qtbot, panel)
    assert len(submitted) == 2
    z = panel.sliders.code()
    np.testing.assert_allclose(submitted[-1], z)
    qtbot.waitUntil(lambda: np.allclose(panel.decoded.array, decode(panel, z), atol=1e-6), timeout=5000)
    monkeypatch.setattr(latent_module, "training_active", lambda: False)
    slider.setValue(0.5)
    slider.setValue(0.7)
    assert len(submitted) == 4  # nothing trains: every move decodes at once


def test_sliders_ranked_by_kl_and_span_the_prior(make_panel):
    panel = make_panel()
    codes = panel.codes
    full = panel.model.predictor.encode_full(codes.images)
    kl = kl_per_dim(full["mu"], full["logvar"])
    np.testing.assert_array_equal(panel.sliders.order, np.argsort(-kl, kind="stable"))
    for dim, s in enumerate(panel.sliders.sliders):
        assert s.minimum() <= -3.0 + 1e-6 and s.maximum() >= 3.0 - 1e-6, dim
    panel.random_code()
    assert not np.allclose(panel.sliders.code(), 0.0)
    panel.reset_code()
    np.testing.assert_array_equal(panel.sliders.code(), np.zeros(panel.sliders.dim))


def test_plain_code_ranges_reset_and_random(make_panel, qtbot):
    panel = make_panel(net="conv_ae")
    codes = panel.codes
    np.testing.assert_allclose(codes.ranges.center, codes.codes.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(panel.sliders.order, np.argsort(-codes.codes.var(axis=0), kind="stable"))
    panel.random_code()
    z = panel.sliders.code()
    assert np.any(np.all(np.isclose(codes.codes, z, atol=1e-6), axis=1)), "Random picks a data item's code"
    settle(qtbot, panel)
    np.testing.assert_allclose(panel.decoded.array, decode(panel, z), atol=1e-6)


# ---------------------------------------------------------------- the map


def test_map_one_point_per_item_coloured_by_label(make_panel):
    panel = make_panel()
    codes = panel.codes
    assert len(codes) == LIMIT and codes.labels is not None
    assert panel.map.point_count() == len(codes)
    colors = panel.map.point_colors()
    assert sorted(colors) == list(range(len(codes)))
    by_label: dict[int, set] = {}
    for i, rgba in colors.items():
        by_label.setdefault(int(codes.labels[i]), set()).add(rgba)
    assert all(len(v) == 1 for v in by_label.values()), "one colour per label"
    assert len({next(iter(v)) for v in by_label.values()}) == len(by_label), "labels get different colours"
    for i in (0, 17, LIMIT - 1):
        pos = panel.map.spot(i).pos()
        assert (pos.x(), pos.y()) == pytest.approx(tuple(codes.xy_pca[i]), abs=1e-5)


def test_click_on_a_point_puts_its_code_on_the_sliders(make_panel, qtbot):
    panel = make_panel()
    i = 7
    spot = panel.map.spot(i)
    item = next(it for it in panel.map.items if spot in list(it.points()))
    panel.map.plot.getPlotItem().getViewBox().autoRange(padding=0.1)
    qtbot.wait(30)
    scene_pos = item.mapToScene(spot.pos())
    view_pos = panel.map.plot.mapFromScene(scene_pos)
    with qtbot.waitSignal(panel.map.clicked, timeout=3000) as sig:
        QTest.mouseClick(panel.map.plot.viewport(), Qt.MouseButton.LeftButton, pos=view_pos)
    picked = sig.args[0]
    # The click hits the point (or one drawn on top of it at the same place).
    assert np.allclose(panel.codes.xy_pca[picked], panel.codes.xy_pca[i], atol=0.2)
    np.testing.assert_allclose(panel.sliders.code(), panel.codes.codes[picked], atol=1e-6)
    settle(qtbot, panel)
    np.testing.assert_allclose(panel.decoded.array, decode(panel, panel.codes.codes[picked]), atol=1e-6)
    assert panel.map.preview.array is not None


def _view_pos(panel, x: float, y: float):
    from PySide6.QtCore import QPointF

    scene = panel.map._view().mapViewToScene(QPointF(x, y))
    return panel.map.plot.mapFromScene(scene)


def test_a_click_on_empty_map_space_picks_the_nearest_point(make_panel, qtbot):
    # Issue 16: clicking between the dots did nothing.
    panel = make_panel()
    view = panel.map._view()
    view.autoRange(padding=0.3)
    qtbot.wait(30)
    xy = panel.codes.xy_pca
    (x0, x1), (y0, y1) = view.viewRange()
    corner = (x0 + 0.03 * (x1 - x0), y1 - 0.03 * (y1 - y0))  # top-left: no dot there (padding)
    expected = int(np.argmin(np.hypot((xy[:, 0] - corner[0]) / view.viewPixelSize()[0],
                                      (xy[:, 1] - corner[1]) / view.viewPixelSize()[1])))
    with qtbot.waitSignal(panel.map.clicked, timeout=3000) as sig:
        QTest.mouseClick(panel.map.plot.viewport(), Qt.MouseButton.LeftButton, pos=_view_pos(panel, *corner))
    assert sig.args[0] == expected
    np.testing.assert_allclose(panel.sliders.code(), panel.codes.codes[expected], atol=1e-6)


def test_the_hovered_preview_clears_when_the_pointer_leaves_the_dots(make_panel, qtbot):
    panel = make_panel()
    view = panel.map._view()
    view.autoRange(padding=0.3)
    qtbot.wait(30)
    i = 5
    panel.map._scene_moved(view.mapViewToScene(_as_point(panel.codes.xy_pca[i])))
    assert panel.map.preview.array is not None and panel.map._hover_index == i
    (x0, x1), (y0, y1) = view.viewRange()
    panel.map._scene_moved(view.mapViewToScene(_as_point((x0 + 0.02 * (x1 - x0), y1 - 0.02 * (y1 - y0)))))
    assert panel.map.preview.array is None and panel.map._hover_index == -1


def _as_point(xy):
    from PySide6.QtCore import QPointF

    return QPointF(float(xy[0]), float(xy[1]))


def test_the_current_code_cross_stays_inside_the_plot(make_panel, qtbot):
    panel = make_panel()
    qtbot.wait(30)
    (x0, x1), (y0, y1) = panel.map._view().viewRange()
    panel.map.set_current(np.array([x1 + 100 * (x1 - x0), (y0 + y1) / 2]))  # an extreme slider value
    x, y = panel.map.current_position()
    assert x0 < x < x1 and y0 < y < y1 and panel.map.current_off_map
    panel.map.set_current(np.array([(x0 + x1) / 2, (y0 + y1) / 2]))
    assert panel.map.current_position() == pytest.approx(((x0 + x1) / 2, (y0 + y1) / 2))
    assert not panel.map.current_off_map


def _folder_of(tmp_path: Path, n: int) -> str:
    from aestudio.data.io import write_image

    folder = tmp_path / f"{n}-images"
    folder.mkdir()
    rng = np.random.default_rng(n)
    for i in range(n):
        write_image(folder / f"im{i}.png", (rng.random((16, 16)) * 255).astype(np.uint8))
    return f"folder:{folder}"


@pytest.mark.parametrize("n", [1, 2, 3])
def test_a_folder_of_a_few_images_maps_them_all_or_says_why_not(make_panel, qtbot, tmp_path, n):
    # A folder of 2 images drew a "map" of one code with "0% of variance" axes (the other image
    # was held out for validation); a map now needs 3 codes, and a small folder gives all of its images.
    panel = make_panel(data=_folder_of(tmp_path, n))
    assert len(panel.codes) == n, "a folder too small for a map is mapped whole (train and validation)"
    if n < 3:
        assert panel.map.stack.currentWidget() is panel.map.placeholder
        text = panel.map.placeholder.text()
        assert "at least 3 codes" in text and f"gave {n}" in text and "Add images" in text
        assert panel.map.point_count() == 0 and not panel.map.preview.isVisible()  # nothing to hover
        panel.map.set_current(np.zeros(2))  # the sliders still move and nothing is drawn for them
        assert panel.map.current_position() is None
    else:
        assert panel.map.stack.currentWidget() is panel.map.plot
        assert panel.map.point_count() == 3 and panel.map.preview.isVisible()
        left = panel.map.plot.getAxis("left").labelText
        assert left.startswith("PC2 (") and "0%)" != left[-3:]
        tsne = panel.map.projection_box.model().item(1)
        assert not tsne.isEnabled() and "at least 5 codes" in tsne.toolTip()  # offered only where it can run
    # The sliders work without the map: a move decodes the new code.
    panel.sliders.row_slider(0).setValue(1.5)
    settle(qtbot, panel)
    np.testing.assert_allclose(panel.decoded.array, decode(panel, panel.sliders.code()), atol=1e-6)


def test_identical_codes_make_no_map(tmp_path):
    from aestudio.explore.latent_codes import map_problem

    assert map_problem(np.ones((5, 4), np.float32)).startswith("All 5 codes are the same")
    assert "at least 3 codes; the data gave 2" in map_problem(np.random.default_rng(0).random((2, 4)))
    assert map_problem(np.random.default_rng(0).random((3, 4))) is None


def test_the_axis_labels_fit_the_smallest_map(make_panel, qtbot):
    # The left label ("PC2 (12% of variance) (x0.001)") was longer than a short map is tall: cut to "(x0.0".
    panel = make_panel()
    plot = panel.map.plot
    plot.setFixedSize(plot.minimumSize())
    qtbot.wait(50)
    plot.grab()  # lays the scene out
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        along = axis.size().height() if name == "left" else axis.size().width()
        assert axis.label.boundingRect().width() <= along, f"{name} label {axis.labelText!r} is cut"
        assert "(x" not in axis.labelString(), "no scale factor after the axis name"


def test_hover_shows_the_items_image(make_panel):
    panel = make_panel()
    item = panel.map.items[0]
    spot = item.points()[0]
    item.sigHovered.emit(item, [spot], None)
    np.testing.assert_array_equal(panel.map.preview.array, panel.codes.images[int(spot.data())])


def test_tsne_on_demand_in_the_background(make_panel, qtbot):
    panel = make_panel()
    assert panel.map.projection_box.model().item(1).isEnabled()
    panel.map.projection_box.setCurrentText("t-SNE")
    assert panel.map.busy.isVisibleTo(panel.map)
    qtbot.waitUntil(lambda: panel.map.projection == "t-SNE", timeout=30000)
    assert not panel.map.busy.isVisibleTo(panel.map)
    assert panel.map.point_count() == len(panel.codes)
    assert np.isfinite(panel.map.xy).all()
    panel.map.projection_box.setCurrentText("PCA")
    assert panel.map.projection == "PCA"


# ---------------------------------------------------------------- drops, neighbours, interpolation


def test_drop_marks_the_image_and_lists_nearest_codes(make_panel, qtbot, tmp_path):
    panel = make_panel()
    path = write_digit(tmp_path / "digit.png", panel.codes.images[11])
    panel.add_images([path])
    qtbot.waitUntil(lambda: len(panel.drops) == 1, timeout=5000)
    pred = panel.model.predictor
    z = pred.encode(pred.prepare_image(engine.read_image(path))[0])[0]
    np.testing.assert_allclose(panel.sliders.code(), z, atol=1e-6)
    drawn = panel.map._drop_item.points()
    assert len(drawn) == 1
    xy = panel.codes.pca.project(z)[0]
    assert (drawn[0].pos().x(), drawn[0].pos().y()) == pytest.approx(tuple(xy), abs=1e-5)
    dist = np.linalg.norm(panel.codes.codes - z, axis=1)
    np.testing.assert_array_equal(np.sort(dist[panel.neighbours]), np.sort(dist)[:8])
    assert list(panel.neighbours) == list(nearest(panel.codes.codes, z, 8)[0])
    assert panel.neighbour_row.panes[0].array is not None


def test_interpolation_strip_between_the_last_two_drops(make_panel, qtbot, tmp_path):
    panel = make_panel()
    paths = [write_digit(tmp_path / f"d{i}.png", panel.codes.images[i]) for i in (3, 40)]
    panel.add_images(paths)
    qtbot.waitUntil(lambda: panel.interp.frames is not None, timeout=5000)
    za, zb = (d.code for d in panel.drops[-2:])
    frames = panel.interp.frames
    assert len(frames) == panel.interp.frames_box.value()
    np.testing.assert_allclose(frames[0], decode(panel, za), atol=1e-6)
    np.testing.assert_allclose(frames[-1], decode(panel, zb), atol=1e-6)
    panel.interp.t_slider.setValue(panel.interp.t_slider.maximum())
    qtbot.waitUntil(lambda: panel.interp.between.caption.text() == "t = 1.00", timeout=5000)
    np.testing.assert_allclose(panel.interp.between.array, decode(panel, zb), atol=1e-6)
    # Current -> A takes the sliders' code.
    panel.pick_item(5)
    panel.interp.take_a.click()
    qtbot.waitUntil(lambda: panel.interp.frames is not None
                    and np.allclose(panel.interp.frames[0], decode(panel, panel.codes.codes[5]), atol=1e-6),
                    timeout=5000)


def test_saved_files_read_back(make_panel, qtbot, tmp_path):
    from aestudio.data.io import read_image

    panel = make_panel()
    panel.add_images([write_digit(tmp_path / f"d{i}.png", panel.codes.images[i]) for i in (1, 2)])
    qtbot.waitUntil(lambda: panel.interp.frames is not None, timeout=5000)
    settle(qtbot, panel)
    one, grid, strip = tmp_path / "one.png", tmp_path / "grid.png", tmp_path / "strip.png"
    panel.save_image(one)
    panel.save_samples(grid, seed=3)
    panel.save_strip(strip)
    qtbot.waitUntil(lambda: one.exists() and grid.exists() and strip.exists(), timeout=5000)
    back = read_image(one)
    assert back.shape == (16, 16, 1)
    np.testing.assert_allclose(back[:, :, 0], panel.decoded.array[0], atol=1 / 255 + 1e-6)
    assert read_image(grid).shape == (8 * 18 + 2, 8 * 18 + 2, 1)
    n = len(panel.interp.frames)
    assert read_image(strip).shape == (18 + 2, n * 18 + 2, 1)
    before = one.read_bytes()
    panel.save_image(one)  # never overwrites without being asked: a warning, same file
    qtbot.wait(200)
    assert one.read_bytes() == before


# ---------------------------------------------------------------- model and data changes


def test_new_model_recomputes_and_stale_codes_are_dropped(make_panel, qtbot, bundles):
    panel = make_panel(wait=False)
    panel.set_model(engine.load_model(bundles("conv_ae")))  # before the VAE's codes arrive
    qtbot.waitUntil(lambda: panel.codes is not None, timeout=20000)
    qtbot.wait(300)  # the VAE's job, if it finished late, must not replace these
    assert panel.codes.codes.shape[1] == panel.model.info.latent_dim == panel.sliders.dim
    np.testing.assert_allclose(panel.codes.codes[:4], panel.model.predictor.encode(panel.codes.images[:4]),
                               atol=1e-5)
    panel.set_data(SimpleNamespace(spec="shapes"))
    assert panel.codes is None
    qtbot.waitUntil(lambda: panel.codes is not None, timeout=20000)
    assert panel.codes.spec == "shapes" and panel.codes.factors is not None
    choices = [panel.map.colour_box.itemText(i) for i in range(panel.map.colour_box.count())]
    assert choices == ["label", "shape", "scale", "rotation", "x", "y"]
    panel.map.colour_box.setCurrentText("x")  # a continuous factor: a colour ramp
    assert panel.map.point_count() == len(panel.codes)


def test_codes_wait_until_the_tab_is_shown(qtbot, bundles, monkeypatch):
    from aestudio.gui.app import application

    monkeypatch.setattr(latent_module, "DATA_LIMIT", 60)
    application()
    tasks = TaskRunner(max_workers=1)
    panel = LatentPanel(tasks)  # never shown yet: another tab is current
    qtbot.addWidget(panel)
    try:
        panel.set_data(SimpleNamespace(spec="digits"))
        panel.set_model(engine.load_model(bundles("vae")))
        qtbot.wait(300)
        assert panel.codes is None and tasks.pending == 0
        panel.show()
        qtbot.waitUntil(lambda: panel.codes is not None, timeout=20000)
        assert len(panel.codes) == 60
    finally:
        panel.shutdown()
        tasks.shutdown()
