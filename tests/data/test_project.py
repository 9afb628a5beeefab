"""The Qt-free labelling project: add images, paint, undo/redo, save, reopen, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from aestudio.data.base import UNLABELLED
from aestudio.data.io import read_mask, write_image, write_mask
from aestudio.data.project import PROJECT_FILE, LabelProject, ProjectError
from aestudio.data.specs import open_data


@pytest.fixture
def sources(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    rng = np.random.default_rng(0)
    write_image(folder / "colour.png", rng.random((30, 40, 3)))
    Image.fromarray((rng.random((25, 20)) * 65535).astype(np.uint16)).save(folder / "deep.png")  # 16-bit grey
    write_image(folder / "photo.jpg", rng.random((20, 20, 3)))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return folder


def test_add_paint_undo_redo_save_reopen(tmp_path, sources) -> None:
    project = LabelProject.create(tmp_path / "proj", ["background", "cell"])
    report = project.add_images([sources])
    assert sorted(report.added) == ["colour.png", "deep.png", "photo.jpg"]
    assert [p.name for p, _ in report.failed] == ["broken.png"] and "broken.png" in report.failed[0][1]
    i = project.index_of("colour.png")
    assert project.mask(i).shape == (30, 40) and (project.mask(i) == UNLABELLED).all()

    stroke = project.stroke(i, 1)
    stroke.dab(10, 10, 3)
    stroke.dab(10, 30, 3)  # a fast drag: the segment between the dabs is painted too
    assert stroke.end() is not None
    painted = project.mask_copy(i)
    assert (painted[10, 10:31] == 1).all() and painted[0, 0] == UNLABELLED
    erase = project.stroke(i, UNLABELLED)
    erase.dab(10, 20, 2)
    erase.end()
    assert project.mask(i)[10, 20] == UNLABELLED
    project.undo(i)
    assert np.array_equal(project.mask(i), painted)
    project.undo(i)
    assert (project.mask(i) == UNLABELLED).all()
    project.redo(i)
    assert np.array_equal(project.mask(i), painted)
    project.save(i)
    project.add_class("debris")
    project.rename_class(1, "nucleus")
    project.recolor_class(1, (1, 2, 3))
    project.set_model({"weights": "model/weights.safetensors"})

    again = LabelProject.open(tmp_path / "proj")
    assert [it.name for it in again.items] == [it.name for it in project.items]
    assert np.array_equal(again.mask(again.index_of("colour.png")), painted)
    assert again.classes.names == ("background", "nucleus", "debris") and again.classes.colors[1] == (1, 2, 3)
    assert again.model_path("weights") == tmp_path / "proj" / "model" / "weights.safetensors"
    # The project is a pairs: data spec as it stands, with its class names.
    data = open_data(again.data_spec())
    assert data.class_names == ["background", "nucleus", "debris"]


def test_fill_and_accept(tmp_path, sources) -> None:
    project = LabelProject.create(tmp_path / "proj", ["bg", "a", "b"])
    project.add_images([sources / "colour.png"])
    s = project.stroke(0, 1)  # a closed rectangle outline of class 1, in one stroke
    for y, x in ((5, 5), (5, 29), (20, 29), (20, 5), (5, 5)):
        s.dab(y, x, 0.5)
    s.end()
    project.fill(0, 12, 15, 2)
    m = project.mask(0)
    assert m[12, 15] == 2 and m[3, 3] == UNLABELLED and m[5, 10] == 1  # inside only
    prediction = np.zeros_like(m, dtype=np.int64)
    prediction[:, 35:] = 2
    project.accept(0, prediction, only_class=2)
    assert (project.mask(0)[:, 35:] == 2).all() and project.mask(0)[0, 0] == UNLABELLED
    project.accept(0, prediction)
    assert project.mask(0)[0, 0] == 0 and project.mask(0)[12, 15] == 2 and project.mask(0)[5, 10] == 1  # painted kept
    project.undo(0)
    assert project.mask(0)[0, 0] == UNLABELLED


def test_bad_input_names_the_file_and_keeps_labels(tmp_path, sources) -> None:
    project = LabelProject.create(tmp_path / "proj", ["bg", "fg"])
    project.add_images([sources / "colour.png", sources / "photo.jpg"])
    # A mask edited elsewhere: wrong size, and one with a value beyond the classes.
    wrong = np.zeros((5, 5), np.int64)
    write_mask(project.items[0].mask_path, wrong, overwrite=True)
    beyond = np.full((20, 20), UNLABELLED, np.int64)
    beyond[0, 0] = 7
    write_mask(project.items[1].mask_path, beyond, overwrite=True)
    again = LabelProject.open(tmp_path / "proj")
    assert "mask is 5x5 but its image colour.png is 40x30" in again.items[0].problem.message
    assert "holds class value 7" in again.items[1].problem.message and "add classes up to 8" in again.items[1].problem.message
    with pytest.raises(ProjectError, match="colour.png"):
        again.mask(0)
    again.save_all()
    assert read_mask(again.items[0].mask_path).shape == (5, 5)  # never overwritten
    for _ in range(6):
        again.add_class("")
    assert again.items[1].problem is None and again.mask(1)[0, 0] == 7  # fits now, nothing lost

    (tmp_path / "proj" / PROJECT_FILE).write_text("{broken")
    with pytest.raises(ProjectError, match=f"{PROJECT_FILE}: cannot be read"):
        LabelProject.open(tmp_path / "proj")
    (tmp_path / "proj" / PROJECT_FILE).write_text(json.dumps({"format": "aestudio-label-project", "version": 1,
                                                               "model": "x"}))
    with pytest.raises(ProjectError, match='"model" must be an object or null'):
        LabelProject.open(tmp_path / "proj")
    with pytest.raises(ProjectError, match="not an empty folder"):
        LabelProject.create(tmp_path / "proj")


def test_accept_brush_copies_the_prediction_under_the_brush_only(tmp_path, sources) -> None:
    project = LabelProject.create(tmp_path / "proj", ["bg", "a", "b"])
    project.add_images([sources / "colour.png"])
    s = project.stroke(0, 1)
    s.dab(10, 10, 2)
    s.end()
    prediction = np.full((30, 40), 2, np.int64)
    brush = project.accept_stroke(0, prediction)
    brush.dab(10, 8, 4)
    brush.dab(10, 20, 4)
    brush.end()
    m = project.mask(0)
    assert m[10, 10] == 1  # painted before: kept
    assert m[10, 15] == 2 and m[10, 5] == 2  # under the brush: the prediction
    assert m[25, 35] == UNLABELLED  # elsewhere: untouched
    project.undo(0)  # one step
    assert m[10, 15] == UNLABELLED and m[10, 10] == 1
