"""Finding the zoo: listing, short names (also in the CLI), overrides, sample images and their licences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from zootools import RECIPES, ROOT

from aestudio.zoo import catalog as zoo


def test_every_recipe_has_a_shipped_bundle_with_a_card() -> None:
    names = {m.name: m for m in zoo.list_models()}
    recipes = sorted(p.stem for p in RECIPES.glob("*.json"))
    assert recipes, "no recipes in models/recipes"
    for name in recipes:
        recipe = json.loads((RECIPES / f"{name}.json").read_text())
        assert recipe["name"] == name
        assert name in names, f"{name}: recipe without a bundle; run python -m aestudio.zoo.build {name}"
        card = (names[name].path / "README.md").read_text()
        assert "Limits" in card and "How it was made" in card and "aestudio.zoo.build" in card
        assert names[name].summary, f"{name}: the card has no summary paragraph"


def test_zoo_is_small() -> None:
    total = sum(p.stat().st_size for p in (ROOT / "models").rglob("*") if p.is_file())
    # Every conv model is trained at base width 8 (--base-channels 8); the photo denoiser (274k parameters,
    # 1.05 MiB of float32 weights) ships them three times: its graph, its torch weights (fine-tuning) and the
    # colour graph. 6.9 MiB in all, the largest graph 1.13 MiB. The limits leave a little room, not another
    # model's worth.
    assert total < 7.5 * 2**20, f"models/ holds {total / 2**20:.1f} MiB; keep the zoo small"
    for onnx in (ROOT / "models").rglob("*.onnx"):
        assert onnx.stat().st_size < 1.25 * 2**20, f"{onnx} is {onnx.stat().st_size / 2**20:.2f} MiB"


def test_default_and_task_models_are_shipped() -> None:
    assert zoo.default_model() is not None and zoo.default_model().name == zoo.DEFAULT_MODEL
    for task, name in zoo.MODEL_FOR_TASK.items():
        model = zoo.model_for_task(task)
        assert model is not None and model.name == name and model.task == task


def test_resolve_short_names_paths_and_errors(tmp_path: Path) -> None:
    model = zoo.list_models()[0]
    assert zoo.resolve_model(model.name) == model.path
    assert zoo.resolve_model(model.name.upper()) == model.path  # case-insensitive
    assert zoo.resolve_model(str(model.path)) == model.path  # a path wins
    with pytest.raises(zoo.ZooError, match=model.name):  # the message lists what is shipped
        zoo.resolve_model("no-such-model")
    with pytest.raises(zoo.ZooError, match="no such file"):
        zoo.resolve_model(str(tmp_path / "missing" / "bundle"))


def test_env_override_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    model = zoo.list_models()[0]
    shutil.copytree(model.path, tmp_path / model.name)
    monkeypatch.setenv(zoo.ZOO_ENV, str(tmp_path))
    assert zoo.zoo_dirs()[0] == tmp_path.resolve()
    assert zoo.find_model(model.name).path == tmp_path / model.name


def test_zoo_module_stays_torch_free() -> None:
    import subprocess
    import sys

    code = ("import sys; from aestudio.zoo import catalog as zoo; zoo.list_models(); zoo.sample_images(); "
            "assert 'torch' not in sys.modules and 'PySide6' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_samples_are_shipped_with_licences() -> None:
    samples = zoo.sample_images()
    assert len(samples) >= 6
    licences = (zoo.samples_dir() / "LICENSES.md").read_text()
    for p in samples:
        assert f"`{p.name}`" in licences, f"{p.name} has no source/licence line in LICENSES.md"
        assert p.stat().st_size < 200_000


def test_cli_commands_take_short_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from zootools import sample

    from aestudio.cli import main

    out = tmp_path / "grid.png"
    assert main(["sample", "--model", "shapes-vae", "-n", "4", "-o", str(out)]) == 0
    assert out.is_file()
    seg_out = tmp_path / "seg"
    assert main(["segment", "--model", "shapes-seg-unet", str(sample("shapes-seg-1.png")), "-o", str(seg_out)]) == 0
    assert any(seg_out.iterdir())
    den_out = tmp_path / "den"
    assert main(["denoise", "--model", "photo-denoiser", str(sample("photo-camera.png")), "--noise", "gaussian:0.1",
                 "-o", str(den_out)]) == 0
    assert any(den_out.iterdir())


def test_cli_unknown_name_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    from aestudio.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["sample", "--model", "no-such-model", "-o", "x.png"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "shipped models:" in err and "Traceback" not in err
