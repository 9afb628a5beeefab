"""Hostile input, class 1: tiny inputs that demand huge memory, processes or time (issue 18).

Every number that sizes a resource passes :mod:`aestudio.limits` where it
enters (a config dataclass, an image header, a file's size, a model's declared
shape), so each case here is refused at once, by name, before anything is
allocated. Sparse files (``truncate``) stand in for huge ones: gigabytes on
paper, nothing on disk.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from PIL import Image
from rel_helpers import REPO, last_json, run_python

from aestudio import cli
from aestudio.limits import LimitError

# ----------------------------------------------------------------- numbers from flags and files


@pytest.mark.parametrize(("argv", "says"), [
    (["--model", "conv_ae", "--latent-dim", "10000000000"], "--latent-dim is 10000000000; it must be between 1 and 4,096"),
    (["--model", "unet", "--data", "shapes-seg", "--classes", "100000000"], "--classes is 100000000"),
    (["--model", "dense_ae", "--workers", "10000"], "--workers 10000: this machine gives aestudio"),
    (["--model", "dense_ae", "--batch-size", "100000000"], "--batch-size is 100000000"),
    (["--model", "dense_ae", "--seed", "-1"], "--seed is -1"),
    (["--model", "dense_ae", "--seed", str(10**23)], "--seed is 100000000000000000000000"),
    (["--model", "dense_ae", "--noise", "blur:100000"], "blur strength (sigma in pixels) is 100000"),
    (["--model", "dense_ae", "--noise", "speckle:0-nan"], "must be a finite number, not nan"),
    (["--model", "dense_ae", "--noise", "gaussian:nan"], "must be a finite number, not nan"),
    (["--model", "dense_ae", "--noise", "saltpepper:2"], "saltpepper strength (a probability) is 2"),
    (["--model", "dense_ae", "--noise", "poisson:0"], "poisson strength"),
    (["--model", "unet", "--data", "shapes-seg", "--image-size", "10000000"], "--image-size is 10000000"),
], ids=["latent-1e10", "classes-1e8", "workers-10000", "batch-1e8", "seed--1", "seed-1e23", "blur-100000",
        "speckle-nan", "gaussian-nan", "saltpepper-2", "poisson-0", "image-size-1e7"])
def test_sizing_flags_are_bounded_before_anything_is_created(tmp_path: Path, capsys, argv: list[str], says: str) -> None:
    if "--data" not in argv:
        argv = [*argv, "--data", "digits"]
    code = cli.main(["train", *argv, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert says in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()  # refused before the run folder is made


def test_workers_are_bounded_by_this_machines_cores() -> None:
    from aestudio.limits import max_workers
    from aestudio.training.orphans import bounded_workers

    assert max_workers() >= 1
    assert bounded_workers(10_000) == max_workers()  # a run.json from a bigger machine
    assert bounded_workers(0) == 0


@pytest.mark.parametrize(("param", "says"), [
    ("latent_dim=1e10", "latent_dim is 10000000000"),
    ("image_size=-8", "image_size is -8"),
    ("image_size=abc", "image_size must be a whole number, not 'abc'"),
    ("latent_dim=true", "latent_dim must be a whole number, not True"),
])
def test_import_pt_params_are_checked(tmp_path: Path, capsys, param: str, says: str) -> None:
    import torch

    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pt")
    code = cli.main(["import-pt", str(tmp_path / "w.pt"), "--net", "conv_ae", "--param", param,
                     "-o", str(tmp_path / "b"), "--allow-pickle"])
    err = capsys.readouterr().err
    assert code == 2 and says in err and "Traceback" not in err, err


def test_the_same_bounds_hold_for_every_config_door() -> None:
    from aestudio.config import NoiseConfig, TrainConfig, from_dict
    from aestudio.nets.registry import default_config, net_config_from_dict

    with pytest.raises(LimitError, match="latent_dim is -4"):
        net_config_from_dict({"name": "conv_ae", "params": {"latent_dim": -4}})
    with pytest.raises(LimitError, match="in_channels is 10000000000000"):
        default_config("dense_ae", in_channels=10**13)
    with pytest.raises(LimitError, match="in_channels must be a whole number, not True"):
        default_config("dense_ae", in_channels=True)
    with pytest.raises(LimitError, match="num_workers is 10000"):
        from_dict(TrainConfig, {"num_workers": 10_000})
    with pytest.raises(LimitError, match="blur"):
        NoiseConfig("blur", 100_000.0)
    NoiseConfig("blur", 1.5)  # sane values pass
    TrainConfig(lr=1e12)  # a huge rate is allowed: it diverges, which is reported (test_faults)


# ----------------------------------------------------------------- files whose headers ask for gigabytes


def test_a_5kb_strip_png_is_refused_from_its_header_naming_the_file(tmp_path: Path) -> None:
    from aestudio.data.io import ImageLoadError, probe_image, read_image

    f = tmp_path / "strip.png"
    Image.new("L", (5_000_000, 1)).save(f)  # 1 x 5,000,000 px: below Pillow's bomb limit
    assert f.stat().st_size < 20_000
    for reader in (read_image, probe_image):
        with pytest.raises(ImageLoadError, match=r"strip\.png: the header declares a 5,000,000 x 1 image"):
            reader(f)


def test_a_folder_holding_the_strip_trains_on_the_rest(tmp_path: Path) -> None:
    """In a folder: data set, the strip is a bad file named in the report, not 15.7 GB requested."""
    from aestudio.data.specs import open_data

    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(6):
        Image.fromarray(np.full((12, 12), i * 40, np.uint8)).save(images / f"ok{i}.png")
    Image.new("L", (5_000_000, 1)).save(images / "strip.png")
    data = open_data(f"folder:{images}", image_size=8, val_fraction=0.0)
    items = [data.train[i] for i in range(len(data.train))]
    assert len(items) == 7
    bad = [str(b.path) for b in data.bad_files]
    assert any("strip.png" in b for b in bad), bad


@pytest.mark.parametrize(("value", "mode"), [(65535, "I;16"), (2_000_000_000, "I")], ids=["16-bit-65535", "2e9"])
def test_mask_values_beyond_the_class_limit_are_refused(tmp_path: Path, value: int, mode: str) -> None:
    from aestudio.data.io import ImageLoadError, read_mask

    f = tmp_path / "mask.png" if mode == "I;16" else tmp_path / "mask.tif"
    arr = np.zeros((4, 4), np.uint16 if mode == "I;16" else np.int32)
    arr[0, 0] = value
    Image.fromarray(arr).save(f)
    with pytest.raises(ImageLoadError, match=rf"mask\.(png|tif): mask value {value:,} is not a class index"):
        read_mask(f)


def test_a_pairs_set_with_a_huge_mask_value_names_the_file(tmp_path: Path) -> None:
    from aestudio.data.base import DataError
    from aestudio.data.specs import open_data

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / "images" / f"a{i}.png")
        m = np.zeros((8, 8), np.int32)
        m[0, 0] = 2_000_000_000 if i == 0 else 1
        Image.fromarray(m, mode="I").save(tmp_path / "masks" / f"a{i}.tif")
    t0 = time.perf_counter()
    try:
        data = open_data(f"pairs:{tmp_path / 'images'},{tmp_path / 'masks'}", image_size=8)
    except DataError as exc:
        assert "a0.tif" in str(exc), exc
    else:
        assert data.num_classes <= 255
        assert any("a0.tif" in str(b.path) for b in data.bad_files)
    assert time.perf_counter() - t0 < 10


def test_a_sparse_3gib_safetensors_is_refused_before_reading(tmp_path: Path) -> None:
    from aestudio.training.checkpoint import CheckpointError, load_tensors

    f = tmp_path / "model.safetensors"
    with open(f, "wb") as fh:
        fh.write((64).to_bytes(8, "little"))
        fh.truncate(3 * 1024**3)
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"model\.safetensors: the weights file is 3\.0 GiB"):
        load_tensors(f)
    assert time.perf_counter() - t0 < 2  # never read whole


# ----------------------------------------------------------------- models that declare huge shapes


def _graph(path: Path, shape: list, *, external: str | None = None, batch: int | str = "n") -> Path:
    w = helper.make_tensor("W", TensorProto.FLOAT, [1, 1, 1, 1], [2.0])
    if external is not None:
        w = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[1, 1, 1, 1], data_location=TensorProto.EXTERNAL)
        for k, v in (("location", external), ("offset", "0")):
            entry = w.external_data.add()
            entry.key, entry.value = k, v
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "W"], ["out"])], "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, *shape])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch, *shape])], initializer=[w])
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return path


PROBE = """
import json, sys
from aestudio.inference.ort import OrtPredictor, ForeignModelDescription
try:
    OrtPredictor(sys.argv[1], description=ForeignModelDescription(task="reconstruct", value_range=(0, 1)))
    out = {"loaded": True}
except Exception as exc:
    out = {"loaded": False, "type": type(exc).__name__, "message": str(exc)}
# VmHWM: this process's own peak RSS. ru_maxrss survives exec and so includes the forking
# parent's size: in the full suite pytest is ~1.9 GB and the probe "peaked" at 1.9 GB.
out["peak_mib"] = next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps(out))
"""


def test_a_foreign_model_with_a_fixed_60000_square_input_is_refused(tmp_path: Path) -> None:
    out = last_json(run_python(PROBE, str(_graph(tmp_path / "big.onnx", [1, 60000, 60000])), timeout=180))
    assert not out["loaded"] and "big.onnx" in out["message"], out
    assert "declares a fixed 60000 x 60000 image" in out["message"], out


def test_a_foreign_model_with_batch_0_is_refused_by_name(tmp_path: Path) -> None:
    out = last_json(run_python(PROBE, str(_graph(tmp_path / "b0.onnx", [1, "h", "w"], batch=0)), timeout=180))
    assert not out["loaded"] and "b0.onnx" in out["message"] and "batch of 0" in out["message"], out


def test_external_data_of_3gib_is_refused_before_onnx_runtime_reads_it(tmp_path: Path) -> None:
    with open(tmp_path / "weights.bin", "wb") as fh:
        fh.truncate(3 * 1024**3)  # sparse
    model = _graph(tmp_path / "model.onnx", [1, "h", "w"], external="weights.bin")
    assert model.stat().st_size < 1000
    out = last_json(run_python(PROBE, str(model), timeout=180))
    assert not out["loaded"] and "model.onnx" in out["message"] and "external data" in out["message"], out
    assert out["peak_mib"] < 1500, out  # was 6.3 GB


@pytest.mark.parametrize(("field", "value", "says"), [
    ("size_multiple", 10**9, "'size_multiple' is 1000000000"),
    ("image_size", 10**7, "'image_size'"),
    ("in_channels", 10**13, "'in_channels' is 10000000000000"),
    ("in_channels", True, "'in_channels' must be a whole number, not true"),
    ("latent_dim", -4, "'latent_dim'"),
])
def test_model_json_with_absurd_sizes_is_refused_by_name(bundles, tmp_path: Path, field: str, value, says: str) -> None:
    import shutil

    from aestudio.inference.bundle import BundleError, read_bundle

    b = Path(shutil.copytree(bundles("conv_ae"), tmp_path / "b"))
    card = json.loads((b / "model.json").read_text())
    card[field] = value
    (b / "model.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="model.json") as err:
        read_bundle(b)
    assert says in str(err.value), err.value


# ----------------------------------------------------------------- time: a model that never returns


def _endless_loop(path: Path) -> Path:
    """image -> a Loop of 1e15 iterations (each an Identity) -> image: never returns."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["x_in"], ["x_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_out", TensorProto.FLOAT, None)])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["M", "cond", "image"], ["out"], body=body)], "endless",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        initializer=[helper.make_tensor("M", TensorProto.INT64, [], [10**15]),
                     helper.make_tensor("cond", TensorProto.BOOL, [], [True])])
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return path


def test_ctrl_c_stops_cli_inference_inside_a_model_that_never_returns(tmp_path: Path) -> None:
    model = _endless_loop(tmp_path / "endless.onnx")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "aestudio", "reconstruct", "--model", str(model),
                             str(tmp_path / "a.png"), "-o", str(tmp_path / "out")],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=str(REPO),
                            # As from a terminal: a suite started in the background (`pytest &` in a
                            # script) has SIGINT ignored, children inherit that, and Python keeps it.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(4)  # imports, session, and well into the loop
    assert proc.poll() is None, proc.stderr.read()
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("Ctrl-C did not stop the CLI inside an ONNX Runtime call")
    assert proc.returncode == 130, proc.stderr.read()
    assert time.perf_counter() - t0 < 10


def test_a_model_call_can_be_cancelled_or_timed_out(tmp_path: Path) -> None:
    import threading

    from aestudio.inference.ort import ForeignModelDescription as Desc
    from aestudio.inference.ort import ModelCallCancelled, OrtPredictor

    pred = OrtPredictor(_endless_loop(tmp_path / "endless.onnx"), description=Desc(task="reconstruct", value_range=(0, 1)))
    x = np.zeros((1, 1, 8, 8), np.float32)
    result: dict = {}

    def call() -> None:
        try:
            pred.predict(x)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            result["error"] = exc

    worker = threading.Thread(target=call)  # as the app's task runner calls it
    worker.start()
    time.sleep(0.5)
    assert pred.cancel() == 1
    worker.join(10)
    assert not worker.is_alive() and isinstance(result.get("error"), ModelCallCancelled), result
    pred.time_limit_s = 0.5
    t0 = time.perf_counter()
    with pytest.raises(ModelCallCancelled, match="0.5 s time limit"):
        pred.predict(x)
    assert time.perf_counter() - t0 < 5


# ----------------------------------------------------------------- orphaned DataLoader workers


ORPHAN = """
import os, sys, time, torch
from aestudio.training.orphans import worker_init

class Slow(torch.utils.data.Dataset):
    def __len__(self): return 4
    def __getitem__(self, i):
        print("worker", os.getpid(), flush=True)
        time.sleep(120)  # busy in __getitem__: torch's own watchdog never gets to look
        return torch.zeros(1)

loader = torch.utils.data.DataLoader(Slow(), batch_size=1, num_workers=1, worker_init_fn=worker_init())
it = iter(loader)
import threading
threading.Timer(3.0, lambda: os.kill(os.getpid(), 9)).start()  # the OOM killer's way
next(it)
"""


def test_dataloader_workers_die_with_their_parent() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", ORPHAN], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == -9, proc.stderr[-2000:]
    pids = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("worker")]
    assert pids, proc.stdout
    deadline = time.time() + 5
    while time.time() < deadline and _alive(pids[0]):
        time.sleep(0.1)
    alive = _alive(pids[0])
    if alive:
        os.kill(pids[0], 9)
    assert not alive, "the DataLoader worker outlived its killed parent"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
