"""train()/resume(): a stopped and resumed run ends with the same weights as an uninterrupted one."""

from __future__ import annotations

import threading

import pytest
import torch
from training_fakes import image_bundle

from aestudio.config import FinishReason, NoiseConfig, TrainConfig
from aestudio.nets import default_config
from aestudio.training import runner
from aestudio.training.checkpoint import load_weights
from aestudio.training.events import StepEnded
from aestudio.training.runs import RunError, history, load_net, read_run


@pytest.fixture
def fake_data(monkeypatch):
    """train()/resume() open this bundle whatever the spec (the real specs have their own tests)."""
    bundle = image_bundle(n_train=40, n_val=8, size=16)
    opened = []

    def fake_open(spec, **kw):
        opened.append((spec, kw))
        return bundle

    monkeypatch.setattr(runner, "_open", fake_open)
    return opened


def _cfg(**kw) -> TrainConfig:
    base = {"epochs": 2, "batch_size": 16, "lr": 2e-3, "device": "cpu", "preview_count": 2, "seed": 3}
    base.update(kw)
    return TrainConfig(**base)


def _run(out, stop_at=None, **cfg):
    stop = threading.Event()
    net_cfg = default_config("vae", latent_dim=4, base_channels=4, depth=2)
    events = []
    for ev in runner.train("vae", net_cfg, "fake", _cfg(**cfg), out, stop=stop):
        events.append(ev)
        if stop_at is not None and isinstance(ev, StepEnded) and ev.step == stop_at:
            stop.set()
    return events


def _weights(folder):
    return load_weights(folder / "model.safetensors")[0]


# The VAE samples its code with the torch RNG every step, so these runs also
# prove that the RNG state is saved and restored, not just weights and Adam.
@pytest.mark.parametrize("stop_at", [2, 3, 5])  # mid-epoch, at an epoch boundary, mid second epoch
def test_stop_and_resume_match_an_uninterrupted_run(tmp_path, fake_data, stop_at) -> None:
    full = _run(tmp_path / "full", epochs=2)
    assert full[-1].reason is FinishReason.DONE
    part = _run(tmp_path / "part", stop_at=stop_at, epochs=2)
    assert part[-1].reason is FinishReason.STOPPED and part[-1].step == stop_at
    info = read_run(tmp_path / "part")
    assert info.status.value == "stopped" and info.step == stop_at
    events = list(runner.resume(tmp_path / "part"))
    assert events[0].start_step == stop_at
    assert events[-1].reason is FinishReason.DONE and events[-1].step == full[-1].step == 6
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ha, hb = history(tmp_path / "full"), history(tmp_path / "part")
    assert [h["epoch"] for h in hb] == [1, 2]
    for x, y in zip(ha, hb, strict=True):
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-6, abs=1e-9)
        assert x["mse"] == pytest.approx(y["mse"], rel=1e-6, abs=1e-9)


def test_resume_with_more_epochs_and_a_step_limit(tmp_path, fake_data) -> None:
    _run(tmp_path / "r", epochs=1)
    ev = list(runner.resume(tmp_path / "r", epochs=3, max_steps=5))
    assert ev[-1].reason is FinishReason.DONE and ev[-1].step == 5
    ev = list(runner.resume(tmp_path / "r"))  # no limit now: runs on to the epoch target
    info = read_run(tmp_path / "r")
    assert ev[-1].step == 9 and info.epoch == 3 and info.train_cfg.epochs == 3 and info.train_cfg.max_steps is None
    with pytest.raises(RunError, match="--epochs 3 or more"):
        runner.resume(tmp_path / "r", epochs=2)


def test_train_refuses_existing_folder(tmp_path, fake_data) -> None:
    _run(tmp_path / "r", epochs=1)
    with pytest.raises(RunError, match="use --resume or another --out"):
        _run(tmp_path / "r", epochs=1)
    other = tmp_path / "notrun"
    other.mkdir()
    (other / "x.txt").write_text("keep me")
    with pytest.raises(RunError, match="another --out"):
        _run(other, epochs=1)
    assert (other / "x.txt").read_text() == "keep me"


def test_run_json_and_load_net(tmp_path, fake_data) -> None:
    events = _run(tmp_path / "r", epochs=2)
    info = read_run(tmp_path / "r")
    assert info.net_name == "vae" and info.net_cfg.latent_dim == 4
    assert info.net_cfg.image_size == 16 and info.net_cfg.in_channels == 1  # taken from the data
    assert info.train_cfg.epochs == 2 and info.train_cfg.seed == 3
    assert info.epoch == 2 and info.step == 6 and info.status.value == "done"
    assert info.num_params == sum(p.numel() for p in load_net(tmp_path / "r")[0].parameters())
    assert info.compression_ratio == pytest.approx(16 * 16 / 4)
    assert info.best["metric"] == "mse" and info.best["mode"] == "min"
    assert info.best["value"] == min(h["mse"] for h in info.history)
    assert "nelbo" in info.metrics and info.metrics["nelbo"] > 0
    assert info.metrics == events[-1].metrics
    net, _ = load_net(tmp_path / "r", which="last")
    assert not net.training
    assert fake_data[0][0] == "fake" and fake_data[0][1]["seed"] == 3


def test_resume_refuses_mixed_checkpoint_files(tmp_path, fake_data) -> None:
    _run(tmp_path / "r", stop_at=2, epochs=2)
    _run(tmp_path / "s", stop_at=4, epochs=2)
    (tmp_path / "r" / "model.safetensors").write_bytes((tmp_path / "s" / "model.safetensors").read_bytes())
    with pytest.raises(RunError, match="different checkpoints"):
        runner.resume(tmp_path / "r")


def test_denoising_gets_default_noise_and_noisy_preview(tmp_path, fake_data) -> None:
    pytest.importorskip("aestudio.data.noise")
    cfg = default_config("denoising_ae", channels=4, dilations=(1, 2))
    events = list(runner.train("denoising_ae", cfg, "fake", _cfg(epochs=1), tmp_path / "d"))
    assert events[-1].reason is FinishReason.DONE, events[-1].message
    info = read_run(tmp_path / "d")
    assert info.train_cfg.noise == runner.DEFAULT_DENOISE_NOISE
    prev = [e for e in events if hasattr(e, "preview")][-1].preview
    assert prev.clean is not None and not (prev.clean == prev.inputs).all()


def test_noise_is_part_of_the_exact_resume(tmp_path, fake_data) -> None:
    pytest.importorskip("aestudio.data.noise")
    noise = NoiseConfig("gaussian", 0.05, 0.2)

    def go(out, stop_at=None):
        stop = threading.Event()
        cfg = default_config("conv_ae", latent_dim=4, base_channels=4, depth=2)
        for ev in runner.train("conv_ae", cfg, "fake", _cfg(noise=noise), out, stop=stop):
            if stop_at and isinstance(ev, StepEnded) and ev.step == stop_at:
                stop.set()

    go(tmp_path / "a")
    go(tmp_path / "b", stop_at=4)
    list(runner.resume(tmp_path / "b"))
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def step_clock(monkeypatch):
    """The time limit's clock advances one second per optimizer step (a deterministic stand-in for wall time)."""
    from aestudio.training import loop

    now = [1000.0]
    real_step = loop.train_step

    def timed_step(*args, **kw):
        now[0] += 1.0
        return real_step(*args, **kw)

    monkeypatch.setattr(loop, "_monotonic", lambda: now[0])
    monkeypatch.setattr(loop, "train_step", timed_step)
    return now


def test_time_limit_stops_with_a_checkpoint_and_resumes_exactly(tmp_path, fake_data, step_clock) -> None:
    full = _run(tmp_path / "full", epochs=2)
    assert full[-1].reason is FinishReason.DONE and full[-1].step == 6
    # 4 "seconds" = 4 steps: the limit falls mid second epoch (3 steps per epoch).
    part = _run(tmp_path / "part", epochs=2, time_limit_minutes=4 / 60)
    assert part[-1].reason is FinishReason.STOPPED and part[-1].step == 4
    assert "time limit of 0.0667 min reached at step 4" in part[-1].message
    info = read_run(tmp_path / "part")
    assert info.status.value == "stopped" and info.step == 4 and "time limit" in info.message
    # The resume gets its own budget (none here) and runs to the epoch target.
    events = list(runner.resume(tmp_path / "part"))
    assert events[0].start_step == 4 and events[-1].reason is FinishReason.DONE and events[-1].step == 6
    assert read_run(tmp_path / "part").train_cfg.time_limit_minutes is None
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # A resume with a budget again stops on it, and says so.
    again = _run(tmp_path / "again", epochs=2, time_limit_minutes=1 / 60)
    assert again[-1].step == 1
    ev = list(runner.resume(tmp_path / "again", time_limit_minutes=2 / 60))
    assert ev[-1].reason is FinishReason.STOPPED and ev[-1].step == 3 and "time limit of 0.0333 min" in ev[-1].message


def test_time_limit_must_be_positive(tmp_path, fake_data) -> None:
    with pytest.raises(ValueError, match="time limit must be > 0"):
        _run(tmp_path / "r", time_limit_minutes=0.0)
