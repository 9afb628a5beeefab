"""Run folders and checkpoint files: atomic writes, validation, safetensors round trips, no pickle."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch
from training_fakes import TinyAE, make_run

from aestudio.config import TrainConfig
from aestudio.training import atomic
from aestudio.training.checkpoint import (
    CheckpointError,
    TrainingState,
    load_legacy_pt,
    load_training_state,
    load_weights,
    save_training_state,
    save_weights,
)
from aestudio.training.runs import RunError, RunFolder, history, read_record, read_run


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path) -> None:
    target = tmp_path / "f.json"
    atomic.atomic_write_json(target, {"a": 1, "nan": float("nan")})
    atomic.atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_failed_atomic_write_keeps_old_file_and_no_temp(tmp_path, monkeypatch) -> None:
    target = tmp_path / "run.json"
    target.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic.atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_non_finite_metrics_become_null(tmp_path) -> None:
    atomic.atomic_write_json(tmp_path / "m.json", {"psnr": float("inf"), "x": [float("nan"), 1.0]})
    assert json.loads((tmp_path / "m.json").read_text()) == {"psnr": None, "x": [None, 1.0]}


def test_run_json_round_trip(tmp_path) -> None:
    cfg = TrainConfig(epochs=3, lr=5e-4, seed=9)
    run = RunFolder.create(tmp_path / "r", {
        "net": {"name": "conv_ae", "params": {"latent_dim": 12, "image_size": 16}},
        "data": {"spec": "digits", "options": {"image_size": 16, "channels": None}, "kind": "labels"},
        "train": cfg.to_dict(), "num_params": 1234, "compression_ratio": 21.3,
    })
    run.update(epoch=2, step=40, status="stopped", metrics={"mse": 0.01},
               best={"metric": "mse", "mode": "min", "value": 0.01, "epoch": 2, "step": 40})
    run.append_metrics({"epoch": 1, "mse": 0.02})
    run.append_metrics({"epoch": 2, "mse": 0.01})
    info = read_run(tmp_path / "r")
    assert info.net_name == "conv_ae" and info.net_cfg.latent_dim == 12 and info.net_cfg.image_size == 16
    assert info.train_cfg == cfg
    assert (info.epoch, info.step, info.status.value) == (2, 40, "stopped")
    assert info.num_params == 1234 and info.compression_ratio == 21.3
    assert info.best["value"] == 0.01 and info.data_spec == "digits" and info.data_options["image_size"] == 16
    assert [h["mse"] for h in info.history] == [0.02, 0.01]
    rec = read_record(tmp_path / "r")
    assert rec["format"] == "aestudio-run" and rec["version"] == 1 and rec["created"] <= rec["updated"]


def test_history_skips_torn_lines_and_keeps_last_duplicate(tmp_path) -> None:
    run = make_run(tmp_path)
    run.append_metrics({"epoch": 1, "mse": 0.5})
    run.append_metrics({"epoch": 1, "mse": 0.4})  # a redo after a crash between append and run.json
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 2, "ms')  # torn by a crash
    assert history(tmp_path) == [{"epoch": 1, "mse": 0.4}]


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda d: None, "no such run folder"),
        (lambda d: d.mkdir(), "run.json is missing"),
        (lambda d: (d.mkdir(), (d / "run.json").write_text("{oops")), "damaged JSON"),
        (lambda d: (d.mkdir(), (d / "run.json").write_text('{"format": "other"}')), "not an aestudio run"),
        (lambda d: (d.mkdir(), (d / "run.json").write_text('{"format": "aestudio-run", "version": 99}')), "upgrade aestudio"),
        (lambda d: (d.mkdir(), (d / "run.json").write_text('{"format": "aestudio-run", "version": 1}')), "missing field"),
    ],
)
def test_read_run_errors_name_the_file_and_the_fix(tmp_path, setup, match) -> None:
    folder = tmp_path / "run"
    setup(folder)
    with pytest.raises(RunError, match=match) as err:
        read_run(folder)
    assert str(folder) in str(err.value)


def test_unknown_net_in_run_json(tmp_path) -> None:
    RunFolder.create(tmp_path / "r", {"net": {"name": "nosuchnet", "params": {}}, "data": {"spec": "x"},
                                      "train": {}})
    with pytest.raises(RunError, match="nosuchnet"):
        read_run(tmp_path / "r")


def test_weights_round_trip_and_damage(tmp_path) -> None:
    net = TinyAE()
    save_weights(tmp_path / "w.safetensors", net.state_dict(), step=7, epoch=1)
    state, meta = load_weights(tmp_path / "w.safetensors")
    assert meta["step"] == 7 and meta["epoch"] == 1
    for k, v in net.state_dict().items():
        assert torch.equal(state[k], v)
    (tmp_path / "w.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="w.safetensors"):
        load_weights(tmp_path / "w.safetensors")


def test_optimizer_state_round_trip_continues_identically(tmp_path) -> None:
    torch.manual_seed(0)
    net = TinyAE().eval()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-4)
    x = torch.rand(4, 1, 8, 8)

    def step(n, o):
        o.zero_grad()
        ((n(x) - x) ** 2).mean().backward()
        o.step()

    for _ in range(3):
        step(net, opt)
    save_training_state(tmp_path / "o.safetensors", TrainingState(
        optimizer=opt.state_dict(), torch_rng=torch.get_rng_state(), sampler_rng=torch.Generator().get_state(),
        sampler_epoch_start=torch.Generator().get_state(), numpy_rng={"bit_generator": "PCG64", "state": {"state": 1, "inc": 3},
                                                                       "has_uint32": 0, "uinteger": 0}, step=3))
    st = load_training_state(tmp_path / "o.safetensors")
    assert st.step == 3 and torch.equal(st.torch_rng, torch.get_rng_state())
    twin = TinyAE().eval()
    twin.load_state_dict(net.state_dict())
    opt2 = torch.optim.Adam(twin.parameters(), lr=1.0)
    opt2.load_state_dict(st.optimizer)
    assert opt2.param_groups[0]["lr"] == 1e-2
    step(net, opt)
    step(twin, opt2)
    for a, b in zip(net.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_legacy_pt_refused_without_opt_in_and_pickle_never_runs(tmp_path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as fh:
        pickle.dump({"w": _Evil(str(marker))}, fh)
    with pytest.raises(CheckpointError, match="allow=True"):
        load_legacy_pt(evil)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused or unreadable"):
        load_legacy_pt(evil, allow=True)  # weights_only=True refuses the payload
    assert not marker.exists()
    good = tmp_path / "good.pt"
    torch.save({"state_dict": TinyAE().state_dict()}, good)
    with pytest.raises(CheckpointError):
        load_legacy_pt(good)
    state = load_legacy_pt(good, allow=True)
    assert set(state) == set(TinyAE().state_dict())


def test_fsync_dir_is_called(tmp_path, monkeypatch) -> None:
    calls = []
    real = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    atomic.atomic_write_bytes(tmp_path / "x", b"1")
    assert len(calls) == (2 if os.name != "nt" else 1)  # the file, then the folder
