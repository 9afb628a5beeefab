"""Hostile input, classes 3 and 4: one line naming the file, the field and the fix, never a traceback (issue 18).

Hostile JSON (deep nesting, giant integers, wrong types) in every file aestudio
reads, OS errors anywhere in the CLI, symlink loops and unreadable folders,
bundles whose card lies, TIFF kinds Pillow cannot open, per-command mistakes
checked once before any image, and names that could drive a terminal.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from rel_helpers import tiny_run

from aestudio import cli


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("run") / "run")


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "9" * 5000

# ----------------------------------------------------------------- hostile JSON


@pytest.mark.parametrize(("edit", "says"), [
    (lambda t: t.replace('"epoch": ', f'"deep": {DEEP}, "epoch": ', 1), "nested more than 64 levels"),
    (lambda t: t.replace('"step": ', f'"huge": {HUGE}, "step": ', 1), "5,000-digit integer"),
    (lambda t: json.dumps({**json.loads(t), "epoch": "x"}), "field 'epoch' must be a whole number, not text ('x')"),
    (lambda t: json.dumps({**json.loads(t), "data": "digits"}), "field 'data' must be an object"),
    (lambda t: json.dumps({**json.loads(t), "metrics": [1, 2]}), "field 'metrics' must be an object, not a list"),
    (lambda t: json.dumps({**json.loads(t), "version": "1"}), "field 'version' must be a whole number"),
    (lambda t: json.dumps({**json.loads(t), "net": {"name": "conv_ae", "params": {"latent_dim": -4}}}), "latent_dim is -4"),
], ids=["deep", "5000-digits", "epoch-x", "data-str", "metrics-list", "version-str", "latent-dim--4"])
def test_hostile_run_json_is_one_line_naming_the_file_and_field(trained_run: Path, tmp_path: Path, capsys, edit, says) -> None:
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    f = run / "run.json"
    f.write_text(edit(f.read_text()))
    for argv in (["info", str(run)], ["eval", str(run)], ["export", str(run), "-o", str(tmp_path / "b")]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "run.json" in err and says in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err


def test_a_deeply_nested_metrics_line_is_skipped_not_a_crash(trained_run: Path, tmp_path: Path, capsys) -> None:
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(DEEP + "\n")
        fh.write('{"epoch": ' + HUGE + "}\n")
    assert cli.main(["info", str(run)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(("field", "value", "says"), [
    ("name", "DEEP", "nested more than 64 levels"),
    ("in_channels", "HUGE", "5,000-digit integer"),
    ("metrics", [1, 2], "field 'metrics' must be an object"),
    ("name", 5, "field 'name' must be text"),
])
def test_hostile_model_json_is_a_bundle_error_naming_the_field(bundles, tmp_path: Path, field, value, says) -> None:
    from aestudio.inference.bundle import BundleError, read_bundle

    b = Path(shutil.copytree(bundles("conv_ae"), tmp_path / "b"))
    card = json.loads((b / "model.json").read_text())
    card[field] = "__X__"
    text = json.dumps(card).replace('"__X__"', {"DEEP": DEEP, "HUGE": HUGE}.get(value, json.dumps(value)) if isinstance(value, str) else json.dumps(value))
    (b / "model.json").write_text(text)
    with pytest.raises(BundleError, match="model.json") as err:
        read_bundle(b)
    assert says in str(err.value)


@pytest.mark.parametrize(("meta", "says"), [
    ('{"aestudio": "' + "[" * 5000 + "]" * 5000 + '"}', "nested more than 64 levels"),
    ('{"aestudio": "[1, 2]"}', "metadata must be a JSON object"),
    ('["not", "a", "dict"]', "'__metadata__' must map names to text"),
], ids=["deep", "list", "metadata-list"])
def test_hostile_safetensors_metadata_is_a_checkpoint_error(tmp_path: Path, meta: str, says: str) -> None:
    from aestudio.training.checkpoint import CheckpointError, load_tensors

    header = ('{"__metadata__": ' + meta + ', "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}').encode()
    f = tmp_path / "model.safetensors"
    f.write_bytes(len(header).to_bytes(8, "little") + header + b"\x00" * 4)
    with pytest.raises(CheckpointError, match=r"model\.safetensors") as err:
        load_tensors(f)
    assert says in str(err.value), err.value


# ----------------------------------------------------------------- OS errors, everywhere in the CLI


def test_read_only_file_system_at_run_creation_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    real_mkdir = Path.mkdir

    def ro_mkdir(self, *a, **kw):
        if self.name == "run":
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *a, **kw)

    monkeypatch.setattr(Path, "mkdir", ro_mkdir)
    code = cli.main(["train", "--model", "dense_ae", "--data", "digits", "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert f"{tmp_path / 'run'}: Read-only file system; that place is on a read-only file system" in err, err


def test_full_disk_in_sample_is_one_line(bundles, tmp_path: Path, capsys, monkeypatch) -> None:
    vae = bundles("vae")  # exported before the disk "fills"

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "grid.png"))

    monkeypatch.setattr("aestudio.data.io.atomic_write", full)
    code = cli.main(["sample", "--model", str(vae), "-n", "2", "-o", str(tmp_path / "grid.png")])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device; the disk is full" in err and "grid.png" in err, err


def test_full_disk_during_export_is_not_called_an_operator_problem(trained_run: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    from aestudio.export import exporter

    def full(*a, **kw):
        raise RuntimeError("export failed") from OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(exporter, "_export_one", full)
    code = cli.main(["export", str(trained_run), "-o", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and "the disk is full" in err and "op ONNX cannot express" not in err, err


# ----------------------------------------------------------------- inputs that are links or locked


def test_a_self_referencing_symlink_is_skipped_and_named(bundles, tmp_path: Path, capsys, caplog) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((16, 16), 90, np.uint8)).save(src / "a.png")
    os.symlink("loop.png", src / "loop.png")
    with caplog.at_level(logging.WARNING):
        code = cli.main(["reconstruct", "--model", str(bundles("conv_ae")), str(src), "-o", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "a_recon.png").is_file()
    assert any("loop.png: a symbolic link pointing to itself; skipped" in r.getMessage() for r in caplog.records)


def test_an_unreadable_subfolder_is_skipped_and_named(tmp_path: Path, caplog, monkeypatch) -> None:
    """chmod 000 (simulated: the suite runs as root, for whom it does not block)."""
    from aestudio.data.io import iter_image_files

    (tmp_path / "locked").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    real = os.scandir

    def scandir(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with caplog.at_level(logging.WARNING):
        files = list(iter_image_files([tmp_path]))
    assert files == [tmp_path / "a.png"]
    assert any("locked: cannot be read (Permission denied); skipped" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------- bundles whose card lies


@pytest.mark.parametrize(("field", "value", "says"), [("latent_dim", 3, "says latent_dim 3"),
                                                      ("image_size", 20, "says image_size 20")])
def test_a_card_that_lies_is_caught_against_the_graph(bundles, tmp_path: Path, capsys, field, value, says) -> None:
    b = Path(shutil.copytree(bundles("vae"), tmp_path / "vae"))
    _edit_json(b / "model.json", lambda d: d.__setitem__(field, value))
    code = cli.main(["sample", "--model", str(b), "-n", "2", "-o", str(tmp_path / "g.png")])
    err = capsys.readouterr().err
    assert code == 2 and says in err and "the graph has" in err and "Traceback" not in err, err


# ----------------------------------------------------------------- TIFF kinds


@pytest.mark.parametrize("kind", ["rgb-f32", "rgb-f64", "grey-i16", "rgb-i16", "grey-u32", "f32-3e38", "rgb-f32-3e38", "f32-nan"])
def test_tiffs_pillow_cannot_read_load_finite_in_0_1(tmp_path: Path, kind: str) -> None:
    from aestudio.data.io import probe_image, read_image

    rng = np.random.default_rng(0)
    data = {
        "rgb-f32": rng.random((8, 8, 3)).astype(np.float32),
        "rgb-f64": rng.random((8, 8, 3)),
        "grey-i16": (rng.random((8, 8)) * 2000 - 1000).astype(np.int16),
        "rgb-i16": (rng.random((8, 8, 3)) * 1000).astype(np.int16),
        "grey-u32": (rng.random((8, 8)) * 1e6).astype(np.uint32),
        "f32-3e38": np.array([[3e38, -3e38], [0, 1]], np.float32),
        "rgb-f32-3e38": np.stack([np.array([[3e38, -3e38], [0, 1]], np.float32)] * 3, -1),
        "f32-nan": np.array([[np.nan, 1], [0, 0.5]], np.float32),
    }[kind]
    f = tmp_path / f"{kind}.tif"
    tifffile.imwrite(f, data, photometric="rgb" if data.ndim == 3 else "minisblack")
    img = read_image(f)
    assert img.dtype == np.float32 and img.shape[:2] == data.shape[:2] and img.shape[2] == (3 if data.ndim == 3 else 1)
    assert np.isfinite(img).all() and img.min() >= 0 and img.max() <= 1
    assert img.max() > img.min()  # the picture survived (not all one value)
    assert probe_image(f).channels == img.shape[2]


# ----------------------------------------------------------------- per-command mistakes, once


@pytest.mark.parametrize(("argv", "says"), [
    (["--value-range", "1,0"], "low before high"),
    (["--value-range", "nan,inf"], "two finite numbers"),
    (["--noise", "gaussian:nan"], "finite number"),
    (["--noise", "saltpepper:2"], "saltpepper strength"),
    (["--noise", "poisson:0"], "poisson strength"),
    (["--seed", "-1"], "between 0 and"),
])
def test_per_command_mistakes_are_refused_before_any_image(bundles, tmp_path: Path, capsys, argv, says) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16), 40 * i, np.uint8)).save(src / f"{i}.png")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["denoise", "--model", str(bundles("denoising_ae")), str(src), "-o", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and says in err and err.count("error") == 1, err
    assert not (tmp_path / "out").exists()


def test_sizes_of_sample_interpolate_and_eval_are_bounded(bundles, trained_run: Path, tmp_path: Path, capsys) -> None:
    for argv in (["sample", "--model", str(bundles("vae")), "-n", "100000000", "-o", str(tmp_path / "g.png")],
                 ["eval", str(trained_run), "--batch-size", "0"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        assert "must be between" in capsys.readouterr().err


# ----------------------------------------------------------------- names


def test_escape_sequences_in_a_model_name_never_reach_the_terminal(bundles, tmp_path: Path) -> None:
    from aestudio.inference.bundle import read_bundle

    b = Path(shutil.copytree(bundles("conv_ae"), tmp_path / "b"))
    _edit_json(b / "model.json", lambda d: d.__setitem__("name", "\x1b]0;pwned\x07\x1b[2Jevil\u202e"))
    name = read_bundle(b).name
    assert "\x1b" not in name and "\x07" not in name and "\u202e" not in name and "evil" in name


def test_a_bare_shipped_name_means_the_shipped_model_not_a_folder_here(tmp_path: Path, monkeypatch, caplog) -> None:
    from aestudio.zoo.catalog import find_model, model_names, resolve_model

    if not model_names():
        pytest.skip("no shipped models in this checkout")
    name = model_names()[0]
    (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert resolve_model(name) == find_model(name).path
    assert any("using the shipped model" in r.getMessage() for r in caplog.records)
    assert resolve_model(f"./{name}") == Path(f"./{name}")


def test_folder_spec_given_a_file_says_so(tmp_path: Path) -> None:
    from aestudio.data.base import DataError
    from aestudio.data.specs import open_data

    f = tmp_path / "a.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(f)
    with pytest.raises(DataError, match=r"is a file, not a folder; give the folder that holds the images"):
        open_data(f"folder:{f}")


def test_foreign_model_messages_name_the_flag_not_a_class(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    from aestudio.inference.ort import OrtPredictor

    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["out"])], "g",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", "c", "h", "w"])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", "c", "h", "w"])])
    f = tmp_path / "open.onnx"
    f.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    with pytest.raises(ValueError) as err:
        OrtPredictor(f)
    assert "--channels" in str(err.value) and "ForeignModelDescription" not in str(err.value)


def test_a_decoder_that_outputs_nan_is_blamed_not_the_user(bundles, tmp_path: Path, capsys) -> None:
    import onnx
    from onnx import numpy_helper

    b = Path(shutil.copytree(bundles("vae"), tmp_path / "vae"))
    model = onnx.load(str(b / "decoder.onnx"))
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size > 1:
            init.CopyFrom(numpy_helper.from_array(np.full_like(arr, np.nan), init.name))
    onnx.save(model, str(b / "decoder.onnx"))
    code = cli.main(["sample", "--model", str(b), "-n", "2", "-o", str(tmp_path / "g.png")])
    err = capsys.readouterr().err
    assert code == 2 and "decoder turned finite codes into NaN" in err and "re-export" in err, err


def test_a_foreign_model_with_a_rank_3_output_says_what_is_supported(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    from aestudio.inference.ort import ForeignModelDescription, OrtPredictor

    graph = helper.make_graph([helper.make_node("Squeeze", ["image", "axes"], ["out"])], "g",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, "h", "w"])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", "h", "w"])],
                              initializer=[helper.make_tensor("axes", TensorProto.INT64, [1], [1])])
    f = tmp_path / "r3.onnx"
    f.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    with pytest.raises(ValueError, match=r"r3\.onnx: output 'out' has shape .*re-export it with such an output"):
        OrtPredictor(f, description=ForeignModelDescription(task="reconstruct", value_range=(0, 1)))
