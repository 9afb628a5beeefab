"""Untrusted files: pickled checkpoints never run, bad ONNX files never crash, bad inputs never reach ORT.

Every door a weights file can come through is tried with a pickle whose
``__reduce__`` would create a marker file: the library call, its opt-in, the
CLI commands on a run folder, ``import-pt``, and a drop on the app
(``engine.load_model``). ONNX files are opened in a child process each, so a
crash inside ONNX Runtime fails the test instead of killing the session.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from rel_helpers import last_json, run_python, tiny_run, write_payload_pickle

from aestudio.cli import entry as cli
from aestudio.training.checkpoint import CheckpointError, load_legacy_pt


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("run") / "run")


@pytest.fixture
def poisoned_run(trained_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of a real run whose weight files were replaced by a payload pickle."""
    run = Path(shutil.copytree(trained_run, tmp_path / "poisoned"))
    marker = tmp_path / "PWNED"
    for name in ("model.safetensors", "best.safetensors"):
        write_payload_pickle(run / name, marker, zip_format=True)
    return run, marker


# ----------------------------------------------------------------- the library door


@pytest.mark.parametrize("zip_format", [False, True], ids=["pickle-stream", "torch-zip"])
def test_legacy_pt_payload_never_runs_with_or_without_opt_in(tmp_path: Path, zip_format: bool) -> None:
    marker = tmp_path / "PWNED"
    evil = write_payload_pickle(tmp_path / "evil.pt", marker, zip_format=zip_format)
    with pytest.raises(CheckpointError, match=r"evil\.pt: legacy pickle.*import-pt .*--allow-pickle"):
        load_legacy_pt(evil)
    with pytest.raises(CheckpointError, match=r"evil\.pt: refused or unreadable as a weights-only checkpoint"):
        load_legacy_pt(evil, allow=True)  # weights_only=True refuses builtins.open
    assert not marker.exists()


def test_the_flag_the_message_names_exists() -> None:
    """load_legacy_pt's message points at `aestudio import-pt ... --allow-pickle`: it must parse."""
    parser = cli.build_parser()
    args = parser.parse_args(["import-pt", "x.pt", "--net", "conv_ae", "-o", "b", "--allow-pickle"])
    assert args.allow_pickle and args.func.__name__ == "cmd_import_pt"


# ----------------------------------------------------------------- the CLI doors


@pytest.mark.parametrize("argv", [["eval", "{run}"], ["export", "{run}", "-o", "{tmp}/bundle"], ["info", "{run}"]],
                         ids=["eval", "export", "info"])
def test_cli_on_a_run_with_pickled_weights(poisoned_run, tmp_path: Path, capsys, argv: list[str]) -> None:
    run, marker = poisoned_run
    code = cli.main([a.format(run=run, tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    if argv[0] == "info":  # info reads run.json only; the weights are never opened
        assert code == 0
    else:
        assert code == 2, err
        assert "model.safetensors" in err or "best.safetensors" in err
        assert "PyTorch pickle checkpoint" in err and "never unpickles" in err
        assert "Traceback" not in err
    assert not marker.exists()
    assert not (tmp_path / "bundle").exists()


def test_import_pt_needs_the_opt_in_and_still_refuses_a_payload(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "PWNED"
    evil = write_payload_pickle(tmp_path / "evil.pt", marker, zip_format=True)
    assert cli.main(["import-pt", str(evil), "--net", "denoising_ae", "-o", str(tmp_path / "b")]) == 2
    assert "--allow-pickle" in capsys.readouterr().err
    assert cli.main(["import-pt", str(evil), "--net", "denoising_ae", "-o", str(tmp_path / "b"), "--allow-pickle"]) == 2
    err = capsys.readouterr().err
    assert "refused or unreadable as a weights-only checkpoint" in err and "Traceback" not in err
    assert not marker.exists() and not (tmp_path / "b").exists()


def test_import_pt_converts_a_trusted_state_dict_to_a_bundle(tmp_path: Path, capsys) -> None:
    import torch

    from aestudio.inference.ort import OrtPredictor
    from aestudio.nets import build_net, default_config

    cfg = default_config("denoising_ae", channels=8)
    net = build_net("denoising_ae", cfg).eval()
    torch.save({"state_dict": net.state_dict()}, tmp_path / "legacy.pth")
    wrong = ["import-pt", str(tmp_path / "legacy.pth"), "--net", "denoising_ae", "-o", str(tmp_path / "w"), "--allow-pickle"]
    assert cli.main(wrong) == 2  # default channels=32 do not fit
    assert "do not fit denoising_ae" in capsys.readouterr().err
    argv = ["import-pt", str(tmp_path / "legacy.pth"), "--net", "denoising_ae", "--param", "channels=8",
            "-o", str(tmp_path / "bundle"), "--allow-pickle"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    pred = OrtPredictor(tmp_path / "bundle")
    x = np.random.default_rng(0).random((1, 1, 16, 16), dtype=np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(pred.predict(x) - want).max() < 1e-4


# ----------------------------------------------------------------- the app's door


def test_dropping_pickles_on_the_app_never_runs_them(poisoned_run, tmp_path: Path) -> None:
    engine = pytest.importorskip("aestudio.gui.engine")
    from aestudio.inference.bundle import BundleError

    run, marker = poisoned_run
    evil_pt = write_payload_pickle(tmp_path / "evil.pt", marker)
    evil_onnx = write_payload_pickle(tmp_path / "evil.onnx", marker, zip_format=True)
    with pytest.raises(BundleError, match=r"evil\.pt: not an \.onnx file"):
        engine.load_model(evil_pt)
    with pytest.raises(BundleError, match=r"evil\.onnx: ONNX Runtime cannot load it"):
        engine.load_model(evil_onnx)
    with pytest.raises(RuntimeError, match=r"export of .*poisoned failed: .*PyTorch pickle checkpoint"):
        engine.load_model(run)  # a run is exported (in a child process) before loading
    assert not marker.exists()


# ----------------------------------------------------------------- ONNX files, each opened in a child process

PROBE = """
import json, sys
from aestudio.inference import ort as o
from aestudio.inference.ort import OrtPredictor, ForeignModelDescription
if len(sys.argv) > 2:
    o.MAX_ONNX_BYTES = int(sys.argv[2])
try:
    p = OrtPredictor(sys.argv[1], description=None if sys.argv[1].endswith("model") or not sys.argv[1].endswith(".onnx")
                     else ForeignModelDescription(task="reconstruct", value_range=(0, 1)))
    print(json.dumps({"loaded": True}))
except Exception as exc:
    print(json.dumps({"loaded": False, "type": type(exc).__name__, "message": str(exc)}))
"""


def _probe(path: Path, *extra: str) -> dict:
    return last_json(run_python(PROBE, str(path), *extra, timeout=60))


def _tiny_graph(path: Path, *, opset: int = 17, drop_initializer: bool = False, external: str | None = None,
                size: int | None = None) -> Path:
    w = helper.make_tensor("W", TensorProto.FLOAT, [1, 1, 1, 1], [2.0])
    if external is not None:
        w = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[1, 1, 1, 1], data_location=TensorProto.EXTERNAL)
        for k, v in (("location", external), ("offset", "0"), ("length", "4")):
            entry = w.external_data.add()
            entry.key, entry.value = k, v
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "W"], ["out"])], "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, size or "h", size or "w"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 1, size or "h", size or "w"])],
        initializer=[] if drop_initializer else [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path.write_bytes(model.SerializeToString())
    return path


def test_a_good_foreign_graph_loads_in_the_probe(tmp_path: Path) -> None:
    assert _probe(_tiny_graph(tmp_path / "ok.onnx")) == {"loaded": True}


def _truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


BAD_BUNDLES = {
    "truncated": _truncate,
    "wrong-opset": lambda p: p.write_bytes(_with_opset(p, 99)),
    "missing-initializer": lambda p: p.write_bytes(_without_initializer(p)),
    "random-bytes": lambda p: p.write_bytes(np.random.default_rng(1).bytes(5000)),
    "png-bytes": lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(500)),
    "zero-bytes": lambda p: p.write_bytes(b""),
}


def _with_opset(p: Path, version: int) -> bytes:
    m = onnx.load(str(p))
    m.opset_import[0].version = version
    return m.SerializeToString()


def _without_initializer(p: Path) -> bytes:
    m = onnx.load(str(p))
    del m.graph.initializer[0]
    return m.SerializeToString()


@pytest.mark.parametrize("case", sorted(BAD_BUNDLES))
def test_bad_model_onnx_in_a_bundle_is_a_clear_error(bundles, tmp_path: Path, case: str) -> None:
    b = Path(shutil.copytree(bundles("denoising_ae"), tmp_path / "model"))
    BAD_BUNDLES[case](b / "model.onnx")
    out = _probe(b)
    assert out["loaded"] is False and out["type"] == "BundleError", out
    assert "model.onnx" in out["message"] and ("re-export" in out["message"] or "opset" in out["message"]), out


@pytest.mark.parametrize("case", ["truncated", "wrong-opset", "missing-initializer", "random-bytes", "zero-bytes"])
def test_bad_foreign_onnx_is_a_clear_error(tmp_path: Path, case: str) -> None:
    f = _tiny_graph(tmp_path / "foreign.onnx")
    {"missing-initializer": lambda p: _tiny_graph(p, drop_initializer=True),
     "wrong-opset": lambda p: _tiny_graph(p, opset=99)}.get(case, BAD_BUNDLES.get(case))(f)
    out = _probe(f)
    assert out["loaded"] is False and out["type"] == "BundleError", out
    assert "foreign.onnx" in out["message"], out


def test_oversized_onnx_is_refused_before_onnx_runtime_reads_it(tmp_path: Path) -> None:
    f = tmp_path / "huge.onnx"
    with open(f, "wb") as fh:  # sparse: 3 GiB on paper, nothing on disk
        fh.truncate(3 * 1024**3)
    out = _probe(f)
    assert out["type"] == "BundleError" and "larger than an ONNX file can be" in out["message"], out
    small = _tiny_graph(tmp_path / "small.onnx")  # the limit applies to any file above it
    out = _probe(small, "64")
    assert out["type"] == "BundleError" and "limit" in out["message"], out


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd"], ids=["relative-escape", "absolute"])
def test_external_data_outside_the_model_folder_is_refused(tmp_path: Path, location: str) -> None:
    (tmp_path / "secret.bin").write_bytes(np.float32(3.0).tobytes())
    (tmp_path / "m").mkdir()
    out = _probe(_tiny_graph(tmp_path / "m" / "ext.onnx", external=location))
    assert out["loaded"] is False and out["type"] == "BundleError", out
    assert "ext.onnx" in out["message"] and "external data" in out["message"].lower(), out


@pytest.mark.parametrize("name", ["../outside.onnx", "/etc/passwd", "sub/model.onnx", "..", ""])
def test_model_json_cannot_point_outside_the_bundle(bundles, tmp_path: Path, name: str) -> None:
    import json

    b = Path(shutil.copytree(bundles("denoising_ae"), tmp_path / "model"))
    shutil.copy(b / "model.onnx", tmp_path / "outside.onnx")
    meta = json.loads((b / "model.json").read_text())
    meta["files"]["model"] = name
    (b / "model.json").write_text(json.dumps(meta))
    out = _probe(b)
    assert out["loaded"] is False and out["type"] == "BundleError", out
    assert "model.json" in out["message"], out


# ----------------------------------------------------------------- inputs never reach ONNX Runtime


WRONG_INPUTS = {
    "rank-3": lambda c, s: np.zeros((c, s, s), np.float32),
    "rank-5": lambda c, s: np.zeros((1, 1, c, s, s), np.float32),
    "float64": lambda c, s: np.zeros((1, c, s, s), np.float64),
    "uint8": lambda c, s: np.zeros((1, c, s, s), np.uint8),
    "channels": lambda c, s: np.zeros((1, c + 2, s, s), np.float32),
    "size": lambda c, s: np.zeros((1, c, s + 3, s), np.float32),
    "empty-batch": lambda c, s: np.zeros((0, c, s, s), np.float32),
    "nan": lambda c, s: np.full((1, c, s, s), np.nan, np.float32),
    "list": lambda c, s: [[0.0]],
}


@pytest.mark.parametrize("case", sorted(WRONG_INPUTS))
@pytest.mark.parametrize("model", ["conv_ae", "foreign-any-size", "foreign-fixed-size"])
def test_wrong_inputs_are_refused_before_onnx_runtime(bundles, tmp_path: Path, monkeypatch, model: str, case: str) -> None:
    from aestudio.inference.ort import ForeignModelDescription, OrtPredictor

    if model.startswith("foreign"):
        size = 16 if model.endswith("fixed-size") else None
        pred = OrtPredictor(_tiny_graph(tmp_path / "f.onnx", size=size), description=ForeignModelDescription(
            task="reconstruct", value_range=(0, 1), size_multiple=4))
    else:
        pred = OrtPredictor(bundles(model))
    c, s = pred.info.in_channels, pred.info.fixed_size or 16
    pred.predict(np.zeros((1, c, s, s), np.float32))  # the right input runs

    def never(*a, **k):
        raise AssertionError("reached ONNX Runtime")

    monkeypatch.setattr(pred, "_run", never)
    with pytest.raises(ValueError) as info:
        pred.predict(WRONG_INPUTS[case](c, s))
    assert pred.info.name in str(info.value) or "expects" in str(info.value)
