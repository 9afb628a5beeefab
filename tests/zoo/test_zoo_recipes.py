"""Recipes run end to end at a tiny size (train -> export -> card), and the wheel carries the zoo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from zootools import RECIPES, ROOT

from aestudio.inference.bundle import read_bundle
from aestudio.zoo import build as zoo_build


def test_recipes_parse_and_name_their_seed_and_epochs() -> None:
    for name in zoo_build.list_recipes():
        recipe = zoo_build.load_recipe(name)
        if "derive" in recipe:
            assert (RECIPES / f"{recipe['derive']['from']}.json").is_file()
            continue
        args = recipe["train"]
        for flag in ("--model", "--data", "--seed", "--epochs"):
            assert flag in args, f"{name}: the recipe must state {flag}"


@pytest.mark.slow
def test_tiny_build_end_to_end(tmp_path: Path) -> None:
    """The cheapest trained recipe through the real CLI, then a card; under a minute on 2 cores."""
    bundle = zoo_build.build("digits-conv-ae", out_root=tmp_path / "zoo", work=tmp_path / "work", tiny=True)
    info = read_bundle(bundle)
    assert info.name == "Digits conv autoencoder" and info.net == "conv_ae"
    zoo = info.training["zoo"]
    assert zoo["tiny"] and zoo["seed"] == 0 and zoo["steps"] <= 3
    assert zoo["train_command"].startswith("aestudio train --model conv_ae --data digits")
    card = (bundle / "README.md").read_text()
    assert "Tiny test build" in card and "python -m aestudio.zoo.build digits-conv-ae" in card

    # After an exporter change: export the kept run again; the build record survives.
    (bundle / "model.onnx").write_bytes(b"stale")
    again = zoo_build.reexport("digits-conv-ae", tmp_path / "work" / "run", out_root=tmp_path / "zoo")
    info2 = read_bundle(again)
    assert info2.training["zoo"]["train_command"] == zoo["train_command"] and info2.parity_error["max"] <= 1e-4
    assert (again / "model.onnx").stat().st_size > 1000
    with pytest.raises(SystemExit, match="not the run"):
        other = tmp_path / "other"
        shutil.copytree(tmp_path / "work" / "run", other)
        run = json.loads((other / "run.json").read_text())
        (other / "run.json").write_text(json.dumps(run | {"step": run["step"] + 1}))
        zoo_build.reexport("digits-conv-ae", other, out_root=tmp_path / "zoo")


@pytest.mark.slow
def test_tiny_photo_build_and_colour_derivation(tmp_path: Path) -> None:
    """Photo preparation, a few steps on 48 tiles, export, then the per-channel colour bundle."""
    out = tmp_path / "zoo"
    zoo_build.build("photo-denoiser", out_root=out, work=tmp_path / "work", tiny=True)
    rgb = zoo_build.build("photo-denoiser-rgb", out_root=out, tiny=True)
    info = read_bundle(rgb)
    assert info.in_channels == 3 and info.parity_error["model"] < 1e-4
    assert len(list((tmp_path / "work" / "photos").glob("*.png"))) == zoo_build.TINY_PHOTO_TILES


@pytest.mark.slow
def test_wheel_ships_the_zoo_and_the_samples(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "aestudio", src / "aestudio", ignore=ignore)
    shutil.copytree(ROOT / "models", src / "models", ignore=ignore)
    shutil.copytree(ROOT / "resources" / "samples", src / "resources" / "samples")
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("aestudio-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for bundle in (p for p in (ROOT / "models").iterdir() if (p / "model.json").is_file()):
        files = json.loads((bundle / "model.json").read_text())["files"].values()
        for f in [*files, "model.json", "README.md"]:
            assert f"aestudio_models/{bundle.name}/{f}" in names, f"{bundle.name}/{f} missing from the wheel"
    for p in (ROOT / "resources" / "samples").iterdir():
        assert f"aestudio_samples/{p.name}" in names
    assert "aestudio/zoo/catalog.py" in names

    # Installed (unpacked) without the checkout: the lookup finds the packages.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("from aestudio.zoo import catalog as zoo; ms = zoo.list_models(); "
            "print(len(ms), ms and ms[0].path, len(zoo.sample_images()))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    count, path, samples = run.stdout.split()
    assert int(count) >= 1 and str(site) in path and int(samples) >= 6
