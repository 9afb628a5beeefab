"""Staged zoo recipes: one training run in phases, and shipping it part-way from a copy of its state.

A recipe may carry ``stages`` after its ``train`` arguments: each stage runs the run up to a
step, the first by the ``train`` command itself (``--max-steps``), the later ones by
``aestudio train --resume`` with the stage's own flags (``--bf16``, ``--lr 1e-4``, ...). A
stage ends at an absolute ``until_step`` or after ``steps`` more than the stage before it. The
photo-denoiser's recipe is lr 1e-3 in float32, then lr 1e-3 in bfloat16, then a short
"settle" at lr 1e-4 (the weights of an lr-1e-3 run swing by 1-3 dB from one hundred steps to
the next; a few hundred steps at 1e-4 settle them; docs/DESIGN-notes.md).

Runs resume exactly, so a build interrupted in any stage resumes in that stage, and a build
*from a run part-way* (``--from-run RUN``) is the same recipe with the run standing in for the
stages it has done: the builder copies RUN's checkpoint files (never writing RUN itself),
checks that RUN was trained as the recipe says, records RUN's step as the end of the stage RUN
is in, and runs only what follows (the settle). This module plans and checks; ``build.py``
runs the commands.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FROM_RUN_MARK = ".zoo-from-run.json"  # in a copy: which run and step it was copied from
# What a run folder's checkpoint is (the .prev versions let a resume roll back a copy taken
# while the source was mid-checkpoint; see aestudio.training.runs.recover_run).
STATE_FILES = ("run.json", "model.safetensors", "optimizer.safetensors", "best.safetensors", "metrics.jsonl")
PREV_FILES = ("model.safetensors.prev", "optimizer.safetensors.prev", "best.safetensors.prev")


@dataclass(frozen=True)
class Stage:
    until: int  # the run's global step at the stage's end
    resume: tuple[str, ...]  # the stage's own flags on `train --resume` (the first stage: none, it is the train command)
    note: str
    relative: bool  # ends `steps` after the stage before (the settle) rather than at an absolute step


def _flag(args: list[str], flag: str) -> str | None:
    value = None
    for i, a in enumerate(args[:-1]):
        if a == flag:
            value = args[i + 1]
    return value


def plan(recipe: dict[str, Any], *, tiny: bool = False) -> list[Stage]:
    """The recipe's stages with their end steps (``tiny``: one step each, for tests)."""
    out: list[Stage] = []
    prev = 0
    for i, s in enumerate(recipe.get("stages") or []):
        if tiny:
            until = prev + 1
        elif "until_step" in s:
            until = int(s["until_step"])
        elif "steps" in s:
            until = prev + int(s["steps"])
        else:
            raise SystemExit(f"zoo_build: {recipe['name']}: stage {i + 1} needs 'until_step' or 'steps'")
        if until <= prev:
            raise SystemExit(f"zoo_build: {recipe['name']}: stage {i + 1} ends at step {until}, not after {prev}")
        resume = tuple(str(a) for a in s.get("resume", []))
        if i == 0 and resume:
            raise SystemExit(f"zoo_build: {recipe['name']}: the first stage is the train command; put its flags in 'train'")
        out.append(Stage(until, resume, str(s.get("note", "")), "steps" in s and "until_step" not in s))
        prev = until
    return out


def stage_command(stage_index: int, stage: Stage, *, train_args: list[str], run_dir: Path, started: bool,
                  epochs: str) -> list[str]:
    """The ``aestudio`` arguments (after the program) that take the run to the end of a stage."""
    if stage_index == 0 and not started:
        return ["train", *train_args, "--max-steps", str(stage.until), "--out", str(run_dir), "--no-progress"]
    return ["train", "--resume", "--out", str(run_dir), "--epochs", epochs, *stage.resume,
            "--max-steps", str(stage.until), "--no-progress"]


def shown_commands(stages: list[Stage], train_args: list[str], run: str) -> list[str]:
    """The stages as a person would type them (for the card and model.json)."""
    import shlex

    epochs = _flag(train_args, "--epochs") or "10"
    return [shlex.join(["aestudio", *stage_command(i, s, train_args=train_args, run_dir=Path(run), started=i > 0,
                                                   epochs=epochs)][:-1])  # without --no-progress
            for i, s in enumerate(stages)]


def from_run_stage(stages: list[Stage]) -> int:
    """The stage a part-way run stands in for: the last one with an absolute end (the settle follows it)."""
    absolute = [i for i, s in enumerate(stages) if not s.relative]
    if not absolute or absolute[-1] == len(stages) - 1:
        raise SystemExit("zoo_build: --from-run needs a recipe whose last stage is relative ('steps': the settle)")
    return absolute[-1]


def effective_args(train_args: list[str], stages: list[Stage], upto: int) -> list[str]:
    """The train arguments in force during stage ``upto`` (later flags win, as on a resume)."""
    out = list(train_args)
    for s in stages[1:upto + 1]:
        out += list(s.resume)
    return out


def run_mismatches(args: list[str], run: dict[str, Any]) -> list[str]:
    """Where a run's run.json differs from what the arguments ``args`` would have trained."""
    from aestudio.config import parse_noise

    net, params = run.get("net", {}), run.get("net", {}).get("params", {})
    train, data = run.get("train", {}), run.get("data", {}).get("options", {})
    have: dict[str, tuple[Any, type]] = {
        "--model": (net.get("name"), str),
        "--channels": (params.get("in_channels"), int),
        "--width": (params.get("channels"), int),
        "--layers": (len(params.get("dilations") or ()), int),
        "--unshuffle": (params.get("unshuffle", 1), int),
        "--image-size": (data.get("image_size"), int),
        "--batch-size": (train.get("batch_size"), int),
        "--seed": (train.get("seed"), int),
        "--lr": (train.get("lr"), float),
    }
    out = []
    for flag, (value, kind) in have.items():
        given = _flag(args, flag)
        if given is not None and kind(given) != value:
            out.append(f"{flag} {given} (the run has {value})")
    given = _flag(args, "--noise")
    if given is not None:
        want, noise = parse_noise(given), train.get("noise") or {}
        if (want.kind, want.strength, want.strength_max) != (noise.get("kind"), noise.get("strength"),
                                                             noise.get("strength_max")):
            out.append(f"--noise {given} (the run has {noise})")
    bf16 = next((a == "--bf16" for a in reversed(args) if a in ("--bf16", "--no-bf16")), None)
    if bf16 is not None and bool(train.get("bf16")) != bf16:
        out.append(f"{'--bf16' if bf16 else '--no-bf16'} (the run has bf16 {train.get('bf16')})")
    return out


def copy_run(source: Path, dest: Path, *, tries: int = 3) -> dict[str, Any]:
    """Copy a run's checkpoint into ``dest`` (new), consistent even if ``source`` is training; returns its run.json.

    Only reads ``source``. A copy taken while the source writes a checkpoint can mix two steps:
    the copy is rolled back to run.json's step from the ``.prev`` versions (as a resume would),
    and copied again if that cannot make it whole.
    """
    from aestudio.training.checkpoint import read_meta
    from aestudio.training.runs import recover_run

    for attempt in range(tries):
        shutil.rmtree(dest, ignore_errors=True)  # ours: made below on an earlier attempt
        dest.mkdir(parents=True)
        for name in (*STATE_FILES, *PREV_FILES):
            if (source / name).is_file():
                shutil.copy2(source / name, dest / name)
        run = json.loads((dest / "run.json").read_text(encoding="utf-8"))
        recover_run(dest)
        steps = {name: (read_meta(dest / name) or {}).get("step") for name in ("model.safetensors", "optimizer.safetensors")}
        if all(s == run.get("step") for s in steps.values()):
            return run
        time.sleep(5 * (attempt + 1))
    raise SystemExit(f"zoo_build: {source} changed while being copied (steps {steps}, run.json {run.get('step')}); "
                     "try again, or stop the run first")


def from_run_record(copy: Path) -> dict[str, Any] | None:
    mark = copy / FROM_RUN_MARK
    return json.loads(mark.read_text(encoding="utf-8")) if mark.is_file() else None


def recorded_recipe(recipe: dict[str, Any], stage_index: int, step: int) -> dict[str, Any]:
    """The recipe with stage ``stage_index`` ending at ``step`` (what a build from a run part-way shipped)."""
    out = json.loads(json.dumps(recipe))
    out["stages"][stage_index]["until_step"] = int(step)
    out["stages"][stage_index].pop("steps", None)
    return out
