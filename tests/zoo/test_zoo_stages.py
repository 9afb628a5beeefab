"""Staged zoo recipes and shipping one from a run part-way (`python -m aestudio.zoo.build NAME --from-run RUN`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from aestudio.cli import main
from aestudio.inference.bundle import read_bundle
from aestudio.zoo import build as zoo_build
from aestudio.zoo import stages

TOY_TRAIN = ["--model", "denoising_ae", "--data", "digits", "--image-size", "8", "--noise", "gaussian:0-0.2",
             "--width", "8", "--layers", "3", "--unshuffle", "2", "--epochs", "20", "--batch-size", "16",
             "--lr", "1e-3", "--seed", "0"]


def _bf16() -> list[str]:
    from aestudio.training.loop import cpu_has_bf16

    return ["--bf16"] if cpu_has_bf16() else []


def _toy_recipe(folder: Path) -> dict:
    recipe = {"name": "toy-denoiser", "title": "Toy denoiser", "summary": "A staged recipe on digits.",
              "train": TOY_TRAIN,
              "stages": [{"until_step": 2, "note": "float32"},
                         {"until_step": 4, "resume": _bf16(), "note": "the long run's phase"},
                         {"steps": 2, "resume": ["--lr", "1e-4"], "note": "settle"}],
              "export": ["--which", "last"]}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "toy-denoiser.json").write_text(json.dumps(recipe))
    return recipe


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_plan_ends_each_stage_where_the_recipe_says() -> None:
    recipe = {"name": "r", "stages": [{"until_step": 10}, {"until_step": 30, "resume": ["--bf16"]},
                                      {"steps": 5, "resume": ["--lr", "1e-4"]}]}
    plan = stages.plan(recipe)
    assert [s.until for s in plan] == [10, 30, 35] and [s.relative for s in plan] == [False, False, True]
    assert stages.from_run_stage(plan) == 1
    assert [s.until for s in stages.plan(recipe, tiny=True)] == [1, 2, 3]
    assert stages.effective_args(["--lr", "1e-3"], plan, 2)[-2:] == ["--lr", "1e-4"]
    assert stages.effective_args(["--lr", "1e-3"], plan, 1) == ["--lr", "1e-3", "--bf16"]
    first = stages.stage_command(0, plan[0], train_args=["--model", "m"], run_dir=Path("R"), started=False, epochs="9")
    assert first == ["train", "--model", "m", "--max-steps", "10", "--out", "R", "--no-progress"]
    # An interrupted first stage resumes in that stage; a later one resumes with its own flags.
    again = stages.stage_command(0, plan[0], train_args=["--model", "m"], run_dir=Path("R"), started=True, epochs="9")
    assert again == ["train", "--resume", "--out", "R", "--epochs", "9", "--max-steps", "10", "--no-progress"]
    settle = stages.stage_command(2, plan[2], train_args=[], run_dir=Path("R"), started=True, epochs="9")
    assert settle[-5:] == ["--lr", "1e-4", "--max-steps", "35", "--no-progress"]
    recorded = stages.recorded_recipe(recipe, 1, 31)
    assert [s.until for s in stages.plan(recorded)] == [10, 31, 36] and recipe["stages"][1]["until_step"] == 30
    with pytest.raises(SystemExit, match="not after 10"):
        stages.plan({"name": "r", "stages": [{"until_step": 10}, {"until_step": 10}]})
    with pytest.raises(SystemExit, match="last stage is relative"):
        stages.from_run_stage(stages.plan({"name": "r", "stages": [{"until_step": 10}]}))


def test_run_mismatches_name_each_setting_a_run_was_not_trained_with() -> None:
    run = {"net": {"name": "denoising_ae", "params": {"in_channels": 1, "channels": 48, "dilations": [1] * 13,
                                                      "unshuffle": 2}},
           "data": {"options": {"image_size": 64}},
           "train": {"batch_size": 32, "seed": 0, "lr": 1e-3, "bf16": True,
                     "noise": {"kind": "gaussian", "strength": 0.0, "strength_max": 0.216}}}
    recipe = json.loads((zoo_build.RECIPES / "photo-denoiser.json").read_text())
    plan = stages.plan(recipe)
    args = stages.effective_args(recipe["train"], plan, stages.from_run_stage(plan))
    assert stages.run_mismatches(args, run) == []
    for path, value, flag in ((("net", "params", "channels"), 64, "--width"), (("train", "lr"), 1e-4, "--lr"),
                              (("train", "noise", "strength_max"), 0.196, "--noise"), (("train", "bf16"), False, "--bf16"),
                              (("net", "params", "dilations"), [1] * 9, "--layers")):
        other = json.loads(json.dumps(run))
        node = other
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        (problem,) = stages.run_mismatches(args, other)
        assert problem.startswith(flag)


@pytest.mark.slow
def test_staged_build_and_shipping_from_a_run_part_way(tmp_path: Path, monkeypatch) -> None:
    """From scratch the stages run in order; from a run part-way only the settle runs, on a copy, and the recipe
    records the run's step. The run is never written; a run trained otherwise is refused, naming the setting."""
    monkeypatch.setattr(zoo_build, "RECIPES", tmp_path / "recipes")
    _toy_recipe(tmp_path / "recipes")

    bundle = zoo_build.build("toy-denoiser", out_root=tmp_path / "zoo", work=tmp_path / "work")
    info = read_bundle(bundle)
    zoo = info.training["zoo"]
    assert info.training["weights"] == "last" and zoo["steps"] == 6
    assert [c.split("--max-steps ")[1].split()[0] for c in zoo["stage_commands"]] == ["2", "4", "6"]
    assert "--resume" in zoo["stage_commands"][2] and "--lr 1e-4" in zoo["stage_commands"][2]
    run = json.loads((tmp_path / "work" / "run" / "run.json").read_text())
    assert run["step"] == 6 and run["train"]["lr"] == 1e-4 and run["train"]["bf16"] == bool(_bf16())

    # The long run, part-way through the lr-1e-3 phase, one step past where the recipe's phase ended.
    source = tmp_path / "long-run"
    common = [*TOY_TRAIN, "--no-progress"]
    assert main(["train", *common, "--max-steps", "2", "--out", str(source)]) == 0
    assert main(["train", "--resume", "--out", str(source), *_bf16(), "--max-steps", "5", "--no-progress"]) == 0
    before = _digest(source)

    shipped = zoo_build.build("toy-denoiser", out_root=tmp_path / "zoo2", work=tmp_path / "work2", from_run=source)
    assert _digest(source) == before  # only read
    zoo2 = read_bundle(shipped).training["zoo"]
    assert zoo2["from_run"]["step"] == 5 and zoo2["steps"] == 7 and "--from-run" in zoo2["ship_command"]
    copy = json.loads((tmp_path / "work2" / "ship-run" / "run.json").read_text())
    assert copy["step"] == 7 and copy["train"]["lr"] == 1e-4
    recorded = json.loads((tmp_path / "zoo2" / "recipes" / "toy-denoiser.json").read_text())
    assert [s.until for s in stages.plan(recorded)] == [2, 5, 7]
    assert "step 5" in (shipped / "README.md").read_text()
    # The bundle holds the settle's last weights, not the copy's start.
    from safetensors.torch import load_file

    from aestudio.training.checkpoint import load_weights

    last, meta = load_weights(tmp_path / "work2" / "ship-run" / "model.safetensors")
    held = load_file(shipped / "weights.safetensors")
    assert meta["step"] == 7 and all(bool((held[k] == v).all()) for k, v in last.items())

    # A settled run is not the lr-1e-3 phase; a wider net is not this recipe's.
    with pytest.raises(SystemExit, match=r"--lr 1e-3 \(the run has 0.0001\)"):
        zoo_build.build("toy-denoiser", out_root=tmp_path / "zoo3", work=tmp_path / "work3",
                        from_run=tmp_path / "work2" / "ship-run")
    wide = tmp_path / "wide"
    assert main(["train", *common, "--width", "12", "--max-steps", "3", "--out", str(wide)]) == 0
    with pytest.raises(SystemExit, match=r"--width 8 \(the run has 12\)"):
        zoo_build.build("toy-denoiser", out_root=tmp_path / "zoo3", work=tmp_path / "work3", from_run=wide)
    assert not (tmp_path / "zoo3" / "toy-denoiser").exists()
    # --work inside the run would write there: refused before any copy.
    with pytest.raises(SystemExit, match="would write into the run"):
        zoo_build.build("toy-denoiser", out_root=tmp_path / "zoo3", work=source, from_run=source)
    assert _digest(source) == before


def test_copy_of_a_run_caught_mid_checkpoint_is_rolled_back_to_its_committed_step(tmp_path: Path) -> None:
    """A copy of the long run taken while it writes a checkpoint: the weights and Adam state are already the
    next step's, run.json (the commit point) is not. The copy is rolled back to run.json's step from the
    .prev versions, so the settle resumes a whole checkpoint; the source is only read."""
    import shutil

    from aestudio.training.checkpoint import read_meta

    source = tmp_path / "run"
    assert main(["train", *TOY_TRAIN, "--max-steps", "2", "--no-progress", "--out", str(source)]) == 0
    at2 = tmp_path / "at2"
    shutil.copytree(source, at2)
    assert main(["train", "--resume", "--out", str(source), "--max-steps", "3", "--no-progress"]) == 0
    # Mid-checkpoint: the replaced files kept as .prev (step 2), the new ones written (step 3), run.json not yet.
    shutil.copy(at2 / "run.json", source / "run.json")
    for name in ("model.safetensors", "optimizer.safetensors"):
        shutil.copy(at2 / name, source / (name + ".prev"))
    assert (read_meta(source / "model.safetensors") or {})["step"] == 3
    before = _digest(source)
    run = stages.copy_run(source, tmp_path / "copy")
    assert run["step"] == 2 and _digest(source) == before
    for name in ("model.safetensors", "optimizer.safetensors"):
        assert (read_meta(tmp_path / "copy" / name) or {})["step"] == 2
    assert main(["train", "--resume", "--out", str(tmp_path / "copy"), "--max-steps", "3", "--no-progress"]) == 0
