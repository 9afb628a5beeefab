"""Rebuild a shipped zoo model from its recipe: ``python -m aestudio.zoo.build NAME``.

A recipe is ``models/recipes/NAME.json``: the exact ``aestudio train`` arguments
(data spec, seed, epochs, ...), an optional data preparation step, and the
words of the model card. The build runs the real CLI (``aestudio train`` then
``aestudio export``) in child processes, times them, and writes the bundle to
``models/NAME`` with a ``README.md`` card (what it was trained on, what it is
for, limits, metrics, the commands, wall time). ``--tiny`` shrinks the run
(one short epoch, little data) for tests; with ``--out`` it writes elsewhere.
A recipe with ``stages`` trains in phases (``aestudio.zoo.stages``), and
``--from-run RUN`` ships it from a run part-way (a copy of RUN's state; RUN is
only read): ``python -m aestudio.zoo.build photo-denoiser photo-denoiser-rgb
--from-run zoo-training/photo-denoiser-v2/run``.

Run it niced on a shared machine, with one thread per process:
``OMP_NUM_THREADS=1 nice -n 5 python -m aestudio.zoo.build photo-denoiser``. (Measured
here: with 2 threads on 2 cores loaded by other jobs, an epoch of the digits VAE
took 225 s instead of 7 s with 1 thread: the threads wait for each other.)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from aestudio._child import aestudio_command
from aestudio._fs import atomic_write_text
from aestudio.inference.bundle import read_bundle, utc_now, write_model_json
from aestudio.zoo import stages
from aestudio.zoo.catalog import CARD

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]  # aestudio/zoo/build.py -> the checkout
MODELS = ROOT / "models"
RECIPES = MODELS / "recipes"
PHOTOS = "{photos}"  # placeholder in a recipe's data spec: the prepared photo tiles
TINY_ARGS = ["--epochs", "1", "--max-steps", "3"]
TINY_PHOTO_TILES = 48


def recipe_path(name: str) -> Path:
    return RECIPES / f"{name}.json"


def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES.glob("*.json"))


def load_recipe(name: str) -> dict[str, Any]:
    path = recipe_path(name)
    if not path.is_file():
        raise SystemExit(f"zoo_build: no recipe {path}; recipes: {', '.join(list_recipes())}")
    recipe = json.loads(path.read_text(encoding="utf-8"))
    for key in ("name", "title", "summary"):
        if key not in recipe:
            raise SystemExit(f"zoo_build: {path} lacks {key!r}")
    if "train" not in recipe and "derive" not in recipe:
        raise SystemExit(f"zoo_build: {path} needs 'train' (arguments of aestudio train) or 'derive'")
    return recipe


def _flag(args: list[str], flag: str, default: str | None = None) -> str | None:
    """The value after the last ``flag`` in an argument list."""
    value = default
    for i, a in enumerate(args[:-1]):
        if a == flag:
            value = args[i + 1]
    return value


def _prepare(recipe: dict[str, Any], work: Path, tiny: bool) -> dict[str, str]:
    """Run the recipe's data preparation; returns the placeholders to fill in its arguments."""
    prep = recipe.get("prepare")
    if not prep:
        return {}
    from aestudio.zoo.photos import PHOTO_SETS, PhotoSourceMissing, write_photo_set

    if prep in PHOTO_SETS:
        folder = work / "photos"
        if not folder.is_dir() or not any(folder.iterdir()):
            try:
                write_photo_set(prep, folder, limit=TINY_PHOTO_TILES if tiny else None)
            except PhotoSourceMissing as exc:
                raise SystemExit(f"zoo_build: {exc}") from None
        return {PHOTOS: str(folder)}
    raise SystemExit(f"zoo_build: unknown prepare step {prep!r} (known: {', '.join(PHOTO_SETS)})")


def _fill(args: list[str], values: dict[str, str]) -> list[str]:
    out = []
    for a in args:
        for key, value in values.items():
            a = a.replace(key, value)
        out.append(a)
    return out


def _run(cmd: list[str]) -> float:
    log.info("$ %s", shlex.join(cmd))
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"zoo_build: command failed with exit code {proc.returncode}: {shlex.join(cmd)}")
    return seconds


def per_channel_graph(gray_onnx: Path, channels: int = 3) -> Any:
    """A C-channel ONNX model that runs a 1-channel image model on each channel separately.

    ``image`` [N, C, H, W] -> Reshape [N*C, 1, H, W] -> the grey graph -> Reshape [N, C, H, W].
    For independent per-channel noise this is the textbook way to reuse a grey denoiser.
    """
    import onnx
    from onnx import TensorProto, helper

    from aestudio.inference.bundle import INPUT_IMAGE, OUTPUT_IMAGE

    model = onnx.load(str(gray_onnx))
    graph = model.graph
    inner_in, inner_out = "zoo_gray_image", "zoo_gray_reconstruction"
    for node in graph.node:
        node.input[:] = [inner_in if n == INPUT_IMAGE else n for n in node.input]
        node.output[:] = [inner_out if n == OUTPUT_IMAGE else n for n in node.output]
    consts = [
        helper.make_tensor("zoo_lead_1", TensorProto.INT64, [2], [-1, 1]),
        helper.make_tensor("zoo_lead_c", TensorProto.INT64, [2], [-1, channels]),
        helper.make_tensor("zoo_two", TensorProto.INT64, [1], [2]),
        helper.make_tensor("zoo_four", TensorProto.INT64, [1], [4]),
    ]
    graph.initializer.extend(consts)
    pre = [
        helper.make_node("Shape", [INPUT_IMAGE], ["zoo_shape"]),
        helper.make_node("Slice", ["zoo_shape", "zoo_two", "zoo_four"], ["zoo_hw"]),
        helper.make_node("Concat", ["zoo_lead_1", "zoo_hw"], ["zoo_shape_1"], axis=0),
        helper.make_node("Reshape", [INPUT_IMAGE, "zoo_shape_1"], [inner_in]),
    ]
    post = [
        helper.make_node("Concat", ["zoo_lead_c", "zoo_hw"], ["zoo_shape_c"], axis=0),
        helper.make_node("Reshape", [inner_out, "zoo_shape_c"], [OUTPUT_IMAGE]),
    ]
    nodes = pre + list(graph.node) + post
    del graph.node[:]
    graph.node.extend(nodes)
    for value in (graph.input[0], graph.output[0]):
        value.type.tensor_type.shape.dim[1].ClearField("dim_param")
        value.type.tensor_type.shape.dim[1].dim_value = channels
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model


def derive(name: str, recipe: dict[str, Any], out_root: Path) -> Path:
    """Build a per-channel colour bundle from an already built grey bundle (no training)."""
    import numpy as np
    import onnx

    from aestudio.export.torch_predictor import TorchPredictor
    from aestudio.inference.ort import OrtPredictor

    source = out_root / recipe["derive"]["from"]
    gray = read_bundle(source)
    start = time.perf_counter()
    tmp = out_root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    onnx.save(per_channel_graph(source / gray.files["model"]), str(tmp / "model.onnx"))
    # Parity: the colour graph in ORT against the grey net in torch, channel by channel.
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 48, 40), dtype=np.float32)
    torch_gray = TorchPredictor.from_bundle(source)
    expect = torch_gray.predict(x.reshape(6, 1, 48, 40)).reshape(2, 3, 48, 40)
    info = replace(gray, name=recipe["title"], in_channels=3, files={"model": "model.onnx"},
                   timings={}, metrics={}, bfloat16={})  # a graph only: no torch weights to run in bfloat16
    write_model_json(tmp, info)
    got = OrtPredictor(tmp).predict(x)
    parity = float(np.abs(got - expect).max())
    # Held-out colour photo at sigma 25: PSNR of the noisy and of the denoised image.
    from aestudio.zoo.photos import load_photo

    clean = load_photo("skimage:astronaut").astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape).astype(np.float32), 0, 1)
    out = OrtPredictor(tmp).predict(noisy)
    psnr = lambda a: float(10 * np.log10(1.0 / np.mean((a - clean) ** 2)))  # noqa: E731
    training = dict(gray.training)
    zoo = dict(training.get("zoo", {}))
    zoo.update({"recipe": f"models/recipes/{name}.json", "build_command": f"python -m aestudio.zoo.build {name}",
                "derived_from": recipe["derive"]["from"], "derive_wall_seconds": round(time.perf_counter() - start, 1)})
    training["zoo"] = zoo
    info = replace(info, parity_error={"model": parity},
                   metrics={"psnr_astronaut_sigma25_noisy": round(psnr(noisy), 3),
                            "psnr_astronaut_sigma25": round(psnr(out), 3)},
                   training=training)
    write_model_json(tmp, info)
    lines = [f"# {recipe['title']} (`{name}`)", "", recipe["summary"], "",
             f"- **Net:** `{info.net}` applied per channel (RGB, any size; task `{info.task.value}`)",
             f"- **Trained on:** {recipe.get('trained_on', '')}", f"- **For:** {recipe.get('purpose', '')}", "",
             "## Limits", "", *[f"- {item}" for item in recipe.get("limits", [])], "",
             "## Metrics", "", "| metric | value |", "|---|---|",
             *[f"| {k} | {_fmt(v)} |" for k, v in info.metrics.items()], "",
             f"ONNX (colour graph) vs torch (grey net per channel) max abs difference: {parity:.2g}", "",
             "## How it was made", "",
             f"- Rebuild: `python -m aestudio.zoo.build {name}` (recipe `models/recipes/{name}.json`) after "
             f"`{recipe['derive']['from']}`: no training; the grey model's graph is wrapped in Reshape nodes "
             "([N, 3, H, W] -> [3N, 1, H, W] and back) by `aestudio.zoo.build.per_channel_graph`.",
             "- The grey model's own recipe: "
             + " -> ".join(f"`{c}`" for c in (zoo.get("stage_commands") or [zoo.get("train_command", "")])),
             *([f"- The grey model was shipped from its long run's state at step {zoo['from_run'].get('step')} "
                "(see its card)"] if zoo.get("from_run") else []), ""]
    (tmp / CARD).write_text("\n".join(lines), encoding="utf-8")
    target = out_root / name
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    log.info("derived %s from %s (parity %.2g)", target, source, parity)
    return target


def build(name: str, *, out_root: Path = MODELS, work: Path | None = None, tiny: bool = False,
          from_run: Path | None = None) -> Path:
    """Train, export and card one recipe; returns the bundle folder ``out_root/name``.

    ``from_run``: ship a staged recipe from that run's state part-way (a copy of it; the run is
    only read): the run stands in for the stages it has done, the rest (the settle) runs here,
    and ``out_root/recipes/NAME.json`` records the run's step (``aestudio.zoo.stages``).
    """
    recipe = load_recipe(name)
    if "derive" in recipe:
        return derive(name, recipe, out_root)
    if from_run is not None and "stages" not in recipe:
        raise SystemExit(f"zoo_build: {name} has no stages; --from-run ships a staged recipe part-way")
    if from_run is not None and work is not None:
        inside = Path(from_run).resolve()
        if work.resolve() == inside or inside in work.resolve().parents:
            raise SystemExit(f"zoo_build: --work {work} would write into the run {from_run}; choose another --work")
    own_work = work is None
    work = Path(tempfile.mkdtemp(prefix=f"zoo-{name}-")) if work is None else work
    work.mkdir(parents=True, exist_ok=True)
    values = _prepare(recipe, work, tiny)
    if "stages" in recipe:
        run_dir, shown, recipe, resumed, train_seconds = _train_stages(name, recipe, work, values, tiny, from_run)
        train_args = list(recipe["train"])
    else:
        run_dir = work / "run"
        train_args = list(recipe["train"]) + (TINY_ARGS if tiny else [])
        resumed = (run_dir / "run.json").is_file()
        if resumed:
            # An interrupted build (Ctrl-C checkpoints): resume exactly where it stopped. Without
            # a learning-rate schedule, stopping and resuming equals one uninterrupted run.
            epochs = _flag(train_args, "--epochs", "10") or "10"
            train_cmd = [*aestudio_command(), "train", "--resume", "--out", str(run_dir),
                         "--epochs", epochs, "--no-progress"]
        else:
            train_cmd = [*aestudio_command(), "train", *_fill(train_args, values),
                         "--out", str(run_dir), "--no-progress"]
        train_seconds = _run(train_cmd)
        shown = [shlex.join(["aestudio", "train", *train_args, "--out", f"runs/{name}"])]
    bundle = out_root / name
    export_extra = [str(a) for a in recipe.get("export", [])]
    export_cmd = [*aestudio_command(), "export", str(run_dir), "-o", str(bundle), *export_extra]
    export_seconds = _run(export_cmd)

    info = read_bundle(bundle)
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    metrics_file = run_dir / "metrics.jsonl"  # absent when a tiny run stops before an epoch ends
    lines = metrics_file.read_text(encoding="utf-8").splitlines() if metrics_file.is_file() else []
    history = [json.loads(line) for line in lines if line.strip()]
    epoch_seconds = sum(float(h.get("seconds", 0.0)) for h in history)
    shown_export = ["aestudio", "export", f"runs/{name}", "-o", f"models/{name}", *export_extra]
    zoo = {
        "recipe": f"models/recipes/{name}.json",
        "build_command": f"python -m aestudio.zoo.build {name}" + (" --tiny" if tiny else ""),
        "train_command": shown[0],
        "export_command": shlex.join(shown_export),
        "data": recipe.get("data", _flag(train_args, "--data")),
        "seed": int(_flag(train_args, "--seed", "0") or 0),
        "epochs": run.get("epoch"),
        "steps": run.get("step"),
        "train_wall_seconds": round(train_seconds, 1) if not resumed else round(epoch_seconds, 1),
        "train_epoch_seconds": round(epoch_seconds, 1),  # the trainer's own clock, summed over epochs
        "resumed": resumed,
        "export_wall_seconds": round(export_seconds, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} logical cores, "
                   f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        "tiny": tiny,
    }
    if len(shown) > 1:
        zoo["stage_commands"] = shown
        zoo["stage_notes"] = [str(s.get("note", "")) for s in recipe["stages"]]
    if from_run is not None:
        mark = stages.from_run_record(run_dir) or {}
        source = Path(str(mark.get("source", "")))
        if source.is_relative_to(ROOT):  # the committed state: name it as in the repository, not this checkout
            mark = mark | {"source": source.relative_to(ROOT).as_posix()}
        zoo["from_run"] = {k: v for k, v in mark.items() if k != "data_spec"}  # the spec named a temp folder
        zoo["ship_command"] = f"python -m aestudio.zoo.build {name} --from-run RUN" + (" --tiny" if tiny else "")
        zoo["train_wall_seconds"] = round(train_seconds, 1)  # this build's own training: the stages after the run's step
        zoo["resumed"] = False
    training = dict(info.training)
    training["zoo"] = zoo
    info = replace(info, name=recipe["title"], training=training)
    write_model_json(bundle, info)
    (bundle / CARD).write_text(card_text(recipe, info, zoo), encoding="utf-8")
    if from_run is not None:  # the recipe as shipped: the run's step ends the stage it was in
        (out_root / "recipes").mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_root / "recipes" / f"{name}.json", json.dumps(recipe, indent=2, ensure_ascii=False) + "\n")
    if own_work:
        shutil.rmtree(work, ignore_errors=True)
    log.info("built %s in %.0f s (train %.0f s)", bundle, train_seconds + export_seconds, train_seconds)
    return bundle


def _train_stages(name: str, recipe: dict[str, Any], work: Path, values: dict[str, str], tiny: bool,
                  from_run: Path | None) -> tuple[Path, list[str], dict[str, Any], bool, float]:
    """Take the run through the recipe's stages; returns (run folder, commands shown, recipe as built,
    whether an interrupted build was resumed, training wall seconds)."""
    plan = stages.plan(recipe, tiny=tiny)
    train_args = list(recipe["train"]) + (["--epochs", str(len(plan) + 1)] if tiny else [])
    run_dir = work / "run"
    if from_run is not None:
        run_dir = _copy_from_run(recipe, plan, work, values, Path(from_run), tiny)
        k = stages.from_run_stage(plan)
        step = (stages.from_run_record(run_dir) or {})["step"]
        recipe = stages.recorded_recipe(recipe, k, step)
        if tiny:  # stage k ends at the tiny run's step, each later stage one step after it
            plan = [replace(s, until=step + i - k) if i >= k else s for i, s in enumerate(plan)]
        else:
            plan = stages.plan(recipe)
    resumed = from_run is None and (run_dir / "run.json").is_file()
    filled = _fill(train_args, values)
    epochs = _flag(train_args, "--epochs", "10") or "10"
    seconds = 0.0
    for i, stage in enumerate(plan):
        started = (run_dir / "run.json").is_file()
        step = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["step"] if started else 0
        if step >= stage.until:
            continue
        resume = list(stage.resume)
        if tiny and "--bf16" in resume:
            from aestudio.training.loop import cpu_has_bf16

            if not cpu_has_bf16():  # the tiny build checks the stages' plumbing, not the arithmetic
                resume.remove("--bf16")
                stage = replace(stage, resume=tuple(resume))
        cmd = stages.stage_command(i, stage, train_args=filled, run_dir=run_dir, started=started, epochs=epochs)
        seconds += _run([*aestudio_command(), *cmd])
    step = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["step"]
    if step != plan[-1].until:
        raise SystemExit(f"zoo_build: {run_dir} stopped at step {step}, not the last stage's {plan[-1].until} "
                         f"(the recipe's --epochs {epochs} too few?)")
    shown = stages.shown_commands(plan, train_args, f"runs/{name}")
    return run_dir, shown, recipe, resumed, seconds


def _copy_from_run(recipe: dict[str, Any], plan: list[Any], work: Path, values: dict[str, str], source: Path,
                   tiny: bool) -> Path:
    """A copy of ``source`` (read only) in ``work/ship-run``, checked against the recipe, its data spec
    pointed at the photos this build prepared (the same tiles); an earlier copy of the same run and
    step is reused, so an interrupted settle resumes."""
    copy = work / "ship-run"
    if not (source / "run.json").is_file():
        raise SystemExit(f"zoo_build: {source} is not a training run (no run.json); --from-run takes a run folder")
    record = stages.from_run_record(copy)
    source_step = json.loads((source / "run.json").read_text(encoding="utf-8")).get("step")
    if record is not None and record.get("source") == str(source.resolve()) and record.get("step") == source_step:
        log.info("continuing the earlier copy of %s (step %s) in %s", source, source_step, copy)
        return copy
    if copy.exists():
        if record is None:
            raise SystemExit(f"zoo_build: {copy} exists and is not a copy this builder made; choose another --work")
        shutil.rmtree(copy)  # our own earlier copy of another run or step
    run = stages.copy_run(source, copy)
    k = stages.from_run_stage(plan)
    earlier = plan[k - 1].until if k > 0 and not tiny else 0
    problems = stages.run_mismatches(stages.effective_args(list(recipe["train"]), plan, k), run)
    if tiny:
        from aestudio.training.loop import cpu_has_bf16

        if not cpu_has_bf16():  # the tiny source run was built without --bf16 here (see _train_stages)
            problems = [p for p in problems if not p.startswith("--bf16")]
    if run.get("step", 0) < earlier:
        problems.append(f"step {run.get('step')} is before the end of the stage before ({earlier})")
    if problems:
        shutil.rmtree(copy)
        raise SystemExit(f"zoo_build: {source} was not trained as {recipe['name']}'s recipe says: "
                         + "; ".join(problems))
    photos = values.get(PHOTOS)
    if photos is not None:  # the run names its own photo folder; the copy trains on this build's (the same tiles)
        count = sum(1 for _ in Path(photos).glob("*.png"))
        data = run.get("data", {})
        if count != int(data.get("train_size", 0)) + int(data.get("val_size", 0)):
            shutil.rmtree(copy)
            raise SystemExit(f"zoo_build: {photos} holds {count} tiles, the run trained on "
                             f"{data.get('train_size')} + {data.get('val_size')}; prepare the same photo set")
        run["data"]["spec"] = f"folder:{photos}"
        atomic_write_text(copy / "run.json", json.dumps(run, indent=2))
    mark = {"source": str(source.resolve()), "step": run.get("step"), "epoch": run.get("epoch"),
            "copied": utc_now(), "data_spec": run["data"]["spec"]}
    atomic_write_text(copy / stages.FROM_RUN_MARK, json.dumps(mark, indent=1))
    return copy


def reexport(name: str, run_dir: Path | None = None, *, out_root: Path = MODELS) -> Path:
    """Export ``name`` again into ``out_root/name`` (after an exporter change), keeping its build record.

    From ``run_dir`` (the run the bundle was built from; checked by epoch and step), or, with
    no run, from the bundle's own ``weights.safetensors``: the same weights, the same net.
    """
    recipe = load_recipe(name)
    if "derive" in recipe:
        return derive(name, recipe, out_root)
    bundle = out_root / name
    old = read_bundle(bundle)
    zoo = dict(old.training.get("zoo") or {})
    if not zoo:
        raise SystemExit(f"zoo_build: {bundle} has no build record (training.zoo in model.json); build it instead")
    if run_dir is not None:
        if not (run_dir / "run.json").is_file():
            raise SystemExit(f"zoo_build: no finished run in {run_dir}")
        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        if (run.get("epoch"), run.get("step")) != (zoo.get("epochs"), zoo.get("steps")):
            raise SystemExit(f"zoo_build: {run_dir} (epoch {run.get('epoch')}, step {run.get('step')}) is not the run "
                             f"{bundle} was built from (epoch {zoo.get('epochs')}, step {zoo.get('steps')})")
        cmd = [*aestudio_command(), "export", str(run_dir), "-o", str(bundle)]
        zoo["export_wall_seconds"] = round(_run(cmd), 1)
        zoo["reexported"] = f"exported again from the same run on {utc_now()[:10]} (exporter change)"
    else:
        from aestudio.export.exporter import export_net
        from aestudio.export.torch_predictor import TorchPredictor
        from aestudio.nets.registry import net_config_from_dict

        start = time.perf_counter()
        net_name, cfg = net_config_from_dict(old.net_config)
        net = TorchPredictor.from_bundle(bundle).net
        meta = {"name": old.name, "metrics": old.metrics, "training": old.training}
        if old.class_names:
            meta |= {"class_names": list(old.class_names), "class_colors": [list(c) for c in old.class_colors or ()]}
        export_net(net, net_name, cfg, bundle, metadata=meta)
        zoo["export_wall_seconds"] = round(time.perf_counter() - start, 1)
        zoo["reexported"] = (f"exported again from the bundle's own weights on {utc_now()[:10]} "
                             "(exporter change; same weights, same net)")
    info = read_bundle(bundle)
    training = dict(info.training)
    training["zoo"] = zoo
    info = replace(info, name=recipe["title"], training=training)
    write_model_json(bundle, info)
    (bundle / CARD).write_text(card_text(recipe, info, zoo), encoding="utf-8")
    log.info("re-exported %s from %s", bundle, run_dir or "its own weights")
    return bundle


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _best_note(info: Any) -> str:
    if isinstance(info.training, dict) and info.training.get("weights") == "last":
        return "; the bundle holds the run's last weights (the end of its last stage)"
    best = info.training.get("best") if isinstance(info.training, dict) else None
    if not isinstance(best, dict) or "epoch" not in best:
        return ""
    return (f"; the bundle holds the best validation checkpoint ({best.get('metric')} at epoch {best['epoch']}, "
            f"step {best.get('step')})")


def _command_lines(zoo: dict[str, Any]) -> list[str]:
    commands = zoo.get("stage_commands") or [zoo["train_command"]]
    notes = zoo.get("stage_notes") or [""] * len(commands)
    return [f"  - `{c}`" + (f": {n}" if n else "") for c, n in zip(commands, notes, strict=False)]


def _from_run_lines(zoo: dict[str, Any]) -> list[str]:
    mark = zoo.get("from_run")
    if not mark:
        return []
    return [f"- Shipped from a run part-way (`{zoo.get('ship_command')}`): a copy of the run's state at step "
            f"{mark.get('step')} (epoch {mark.get('epoch')}) stood in for the stages up to that step (the recipe "
            "records it); this build ran only the stages after it and the export, so the training wall time "
            "below is theirs. The run itself was only read."]


def card_text(recipe: dict[str, Any], info: Any, zoo: dict[str, Any]) -> str:
    """The model card: README.md beside model.json."""
    name = recipe["name"]
    size = "any size" if info.image_size == "any" else f"{info.image_size}x{info.image_size}"
    channels = {1: "grayscale", 3: "RGB"}.get(info.in_channels, f"{info.in_channels}-channel")
    lines = [
        f"# {recipe['title']} (`{name}`)",
        "",
        recipe["summary"],
        "",
        f"- **Net:** `{info.net}` ({channels}, {size}; task `{info.task.value}`)",
        f"- **Trained on:** {recipe.get('trained_on', zoo['data'])}",
        f"- **For:** {recipe.get('purpose', '')}",
        "",
        "## Limits",
        "",
        *[f"- {item}" for item in recipe.get("limits", [])],
        "",
        "## Metrics (validation split, exported weights)",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {_fmt(v)} |" for k, v in info.metrics.items() if not k.startswith(("iou_", "dice_"))],
        "",
        "ONNX vs torch max abs difference (parity): "
        + ", ".join(f"{k} {v:.2g}" for k, v in info.parity_error.items()),
        "",
        "## How it was made",
        "",
        f"- Rebuild: `{zoo['build_command']}` (recipe `{zoo['recipe']}`), which runs:",
        *_command_lines(zoo),
        f"  - `{zoo['export_command']}`",
        *_from_run_lines(zoo),
        f"- Data: {zoo['data']}",
        *([f"- Rebuilding needs {recipe['install']}"] if recipe.get("install") else []),
        *([f"- Cost: {recipe['rebuild']}"] if recipe.get("rebuild") else []),
        f"- Seed {zoo['seed']}, {zoo['epochs']} epochs ({zoo['steps']} steps)" + _best_note(info),
        f"- Wall time: training {zoo['train_wall_seconds']:.0f} s"
        + (" (summed over epochs; the build was interrupted once and resumed exactly)" if zoo.get("resumed") else "")
        + f", export {zoo['export_wall_seconds']:.0f} s "
        f"({zoo['machine']}; the machine was shared with other jobs, so an idle machine is faster)",
    ]
    if zoo.get("reexported"):
        lines.append(f"- ONNX graphs {zoo['reexported']}")
    if zoo["tiny"]:
        lines += ["", "**Tiny test build: not a usable model.**"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aestudio.zoo.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="recipes to build (models/recipes/NAME.json)")
    parser.add_argument("--all", action="store_true", help="build every recipe")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    parser.add_argument("--out", type=Path, default=MODELS, help="folder for the bundles (default models/)")
    parser.add_argument("--work", type=Path, default=None, help="folder for runs and prepared data (default: a temp folder, removed)")
    parser.add_argument("--tiny", action="store_true", help="a few steps on little data (tests); use with --out")
    parser.add_argument("--from-run", type=Path, default=None, metavar="RUN",
                        help="ship a staged recipe from this run's state part-way: a copy of RUN (only read) stands in "
                             "for the stages up to its step, then the rest (the settle) runs and the bundle is exported; "
                             "the recipe records RUN's step. Derived recipes named after it are built from the result")
    parser.add_argument("--card-only", action="store_true",
                        help="rewrite README.md from the recipe's words and model.json (no training)")
    parser.add_argument("--reexport", action="store_true",
                        help="export again after an exporter change, keeping the build record; no training: "
                             "from the finished run in --work/NAME/run, or without --work from the bundle's own weights")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.list:
        for name in list_recipes():
            print(f"{name}: {load_recipe(name)['summary']}")
        return 0
    names = list_recipes() if args.all else args.names
    if not names:
        parser.error("name a recipe, or pass --all or --list")
    if args.from_run is not None and not any("stages" in load_recipe(n) for n in names):
        parser.error("--from-run needs a staged recipe among the names (one with 'stages', e.g. photo-denoiser)")
    for name in names:
        if args.card_only:
            recipe, info = load_recipe(name), read_bundle(args.out / name)
            if "derive" in recipe:
                raise SystemExit(f"zoo_build: {name} is derived; rebuild it instead (no training needed)")
            (args.out / name / CARD).write_text(card_text(recipe, info, info.training["zoo"]), encoding="utf-8")
            continue
        if args.reexport:
            reexport(name, None if args.work is None else args.work / name / "run", out_root=args.out)
            continue
        work = None if args.work is None else args.work / name
        build(name, out_root=args.out, work=work, tiny=args.tiny,
              from_run=args.from_run if "stages" in load_recipe(name) else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
