"""Paths: outputs never overwrite inputs, and names taken from files never escape the output folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aestudio.cli import entry as cli
from aestudio.data.io import write_image


def _png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (16, 16), dtype=np.uint8)).save(path, format="PNG")
    return path


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    _png(root / "a.png", 1)
    _png(root / "b.png", 2)
    _png(root / "sub" / "c.png", 3)
    return root


@pytest.mark.parametrize("command", ["denoise", "reconstruct", "segment"])
def test_out_equal_to_the_input_folder_is_refused(bundles, photos: Path, capsys, command: str) -> None:
    model = bundles("unet" if command == "segment" else "denoising_ae")
    before = _snapshot(photos)
    assert cli.main([command, "--model", str(model), str(photos), "-o", str(photos)]) == 2
    err = capsys.readouterr().err
    assert "is the input folder" in err and "choose another folder" in err
    assert _snapshot(photos) == before


def test_results_inside_the_input_folder_never_replace_inputs(bundles, photos: Path, capsys) -> None:
    model = bundles("denoising_ae")
    _png(photos / "a_denoised.png", 9)  # an input that has the name an output would get
    before = _snapshot(photos)
    assert cli.main(["denoise", "--model", str(model), str(photos), "-o", str(photos / "results")]) == 0
    assert (photos / "results" / "a_denoised.png").is_file()  # not photos/a_denoised.png, an input
    after = _snapshot(photos)
    assert {k: v for k, v in after.items() if not k.startswith("results")} == before
    again = cli.main(["denoise", "--model", str(model), str(photos), "-o", str(photos / "results")])
    assert again == 0  # earlier results inside the input folder are not taken as inputs
    assert {k: v for k, v in _snapshot(photos).items() if not k.startswith("results")} == before


def test_an_explicit_file_next_to_the_output_is_processed_not_skipped(bundles, photos: Path, capsys) -> None:
    model = bundles("denoising_ae")
    assert cli.main(["reconstruct", "--model", str(model), str(photos / "a.png"), "-o", str(photos)]) == 0
    assert (photos / "a_recon.png").is_file() and (photos / "a.png").is_file()


def test_odd_names_stay_inside_and_never_collide(bundles, tmp_path: Path, capsys) -> None:
    model = bundles("denoising_ae")
    src = tmp_path / "in"
    names = ["..png", "...png", "-rf.png", "a b.png", "a_b.png", "a.jpg", "a.png", "caf\u00e9.png", "\u65e5\u672c.png",
             "x" * 200 + ".png", "new\nline.png", "$(touch PWNED).png", "C:\\evil.png"]
    for i, name in enumerate(names):
        _png(src / name, i)
    before = _snapshot(src)
    out = tmp_path / "out"
    assert cli.main(["reconstruct", "--model", str(model), str(src), "-o", str(out)]) == 0, capsys.readouterr().err
    written = sorted(p for p in out.rglob("*") if p.is_file())
    visible = [n for n in names if not n.startswith(".")]  # hidden files (..png) are skipped like '._x.png'
    assert len(written) == len(visible) == len({p.name for p in written})  # one result each, none overwritten
    for p in written:
        assert p.resolve().parent == out.resolve() and not p.name.startswith(".")
        assert "/" not in p.name and "\\" not in p.name and "\n" not in p.name and len(p.name) <= 130
    assert _snapshot(src) == before and not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_symlinks_in_the_input_never_lead_writes_outside(bundles, tmp_path: Path, capsys) -> None:
    model = bundles("denoising_ae")
    outside = tmp_path / "outside"
    _png(outside / "secret.png", 5)
    secret_before = _snapshot(outside)
    src = tmp_path / "in"
    _png(src / "a.png")
    (src / "link.png").symlink_to(outside / "secret.png")  # a file link: read, named by the link
    (src / "linkdir").symlink_to(outside, target_is_directory=True)  # a folder link: not followed
    out = tmp_path / "out"
    assert cli.main(["reconstruct", "--model", str(model), str(src), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["a_recon.png", "link_recon.png"]
    assert _snapshot(outside) == secret_before and sorted(p.name for p in outside.iterdir()) == ["secret.png"]


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_a_planted_link_in_the_output_folder_is_refused(bundles, tmp_path: Path, capsys) -> None:
    model = bundles("denoising_ae")
    victim = _png(tmp_path / "victim.png", 7)
    before = victim.read_bytes()
    src = tmp_path / "in"
    _png(src / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_recon.png").symlink_to(victim)  # a result name that points outside
    assert cli.main(["reconstruct", "--model", str(model), str(src), "-o", str(out)]) == 2
    assert "would be written outside" in capsys.readouterr().err
    assert victim.read_bytes() == before


def test_write_image_refuses_existing_files_and_dangling_links(tmp_path: Path) -> None:
    img = np.zeros((4, 4), np.float32)
    target = _png(tmp_path / "keep.png")
    before = target.read_bytes()
    with pytest.raises(FileExistsError, match="keep.png: already exists"):
        write_image(target, img)
    assert target.read_bytes() == before
    if os.name != "nt":
        (tmp_path / "dangling.png").symlink_to(tmp_path / "nowhere" / "x.png")
        with pytest.raises(FileExistsError):
            write_image(tmp_path / "dangling.png", img)
        assert not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == sorted(
        ["keep.png", "dangling.png"] if os.name != "nt" else ["keep.png"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
