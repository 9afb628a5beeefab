"""Classifying dropped and command-line paths (no Qt needed)."""

from __future__ import annotations

import json
from pathlib import Path

from guitools import write_png

from aestudio.gui.drops import DropKind, classify, classify_all


def test_kinds(tmp_path: Path) -> None:
    image = write_png(tmp_path / "a.png")
    folder = tmp_path / "photos"
    folder.mkdir()
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not really onnx")
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({}))
    assert classify(image).kind is DropKind.IMAGE
    assert classify(tmp_path / "A.PNG").kind is DropKind.MISSING
    assert classify(folder).kind is DropKind.FOLDER
    assert classify(text).kind is DropKind.UNSUPPORTED
    assert classify(onnx).kind is DropKind.ONNX
    assert classify(run).kind is DropKind.RUN
    assert classify(run / "run.json").kind is DropKind.RUN  # dropping the file inside means the run


def test_unsupported_reason_names_the_file_and_what_works(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("x")
    reason = classify(text).reason
    assert "notes.txt" in reason and ".png" in reason and "bundle" in reason
    assert str(tmp_path / "gone.png") in classify(tmp_path / "gone.png").reason


def test_upper_case_suffix_is_an_image(tmp_path: Path) -> None:
    assert classify(write_png(tmp_path / "B.PNG")).kind is DropKind.IMAGE


def test_classify_all_keeps_order(tmp_path: Path) -> None:
    paths = [write_png(tmp_path / f"{i}.png", seed=i) for i in range(3)]
    groups = classify_all(reversed(paths))
    assert [i.path for i in groups[DropKind.IMAGE]] == list(reversed(paths))
    assert groups[DropKind.FOLDER] == []
