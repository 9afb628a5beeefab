"""fit(): event order, learning, stop/pause, divergence, out-of-memory, failures."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from training_fakes import TinyAE, TinySeg, image_bundle, make_run, seg_bundle

from aestudio.config import FinishReason, TrainConfig
from aestudio.training import loop
from aestudio.training.device import DeviceError
from aestudio.training.events import (
    BatchSizeReduced,
    CheckpointSaved,
    EpochEnded,
    Paused,
    RunStarted,
    StepEnded,
    TrainFinished,
)
from aestudio.training.loop import fit
from aestudio.training.runs import read_record


def _cfg(**kw) -> TrainConfig:
    base = {"epochs": 2, "batch_size": 16, "lr": 3e-3, "device": "cpu", "preview_count": 4}
    base.update(kw)
    return TrainConfig(**base)


def test_events_order_and_learning() -> None:
    torch.manual_seed(0)
    events = list(fit(TinyAE(), image_bundle(), _cfg(epochs=6)))
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], TrainFinished)
    assert events[-1].reason is FinishReason.DONE
    assert events[0].steps_per_epoch == 3 and events[0].train_size == 48
    steps = [e for e in events if isinstance(e, StepEnded)]
    assert [s.step for s in steps] == list(range(1, 19))
    assert all(s.total_steps == 18 for s in steps)
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    assert [e.epoch for e in epochs] == list(range(6))
    assert epochs[-1].train_loss < epochs[0].train_loss
    assert {"mse", "psnr", "ssim"} <= set(epochs[-1].metrics)
    prev = epochs[-1].preview
    assert prev is not None and prev.inputs.shape == (4, 1, 8, 8) and prev.outputs.shape == (4, 1, 8, 8)
    assert prev.inputs.dtype == np.float32 and prev.clean is None
    assert events[-1].metrics == epochs[-1].metrics


def test_segmentation_fit_reports_iou_and_preview_masks() -> None:
    torch.manual_seed(0)
    events = list(fit(TinySeg(), seg_bundle(), _cfg(epochs=3, lr=1e-2)))
    assert events[-1].reason is FinishReason.DONE
    ep = [e for e in events if isinstance(e, EpochEnded)]
    assert {"miou", "iou_background", "iou_blob", "dice_blob"} <= set(ep[-1].metrics)
    assert ep[-1].train_loss < ep[0].train_loss
    assert ep[-1].preview.masks.shape == (4, 16, 16) and ep[-1].preview.targets.dtype == np.int64


def test_stop_writes_checkpoint_and_finishes_stopped(tmp_path) -> None:
    stop = threading.Event()
    run = make_run(tmp_path)
    events = []
    for ev in fit(TinyAE(), image_bundle(), _cfg(epochs=5), stop, run=run):
        events.append(ev)
        if isinstance(ev, StepEnded) and ev.step == 4:
            stop.set()
    assert events[-1].reason is FinishReason.STOPPED and events[-1].step == 4
    assert isinstance(events[-2], CheckpointSaved)
    rec = read_record(tmp_path)
    assert rec["status"] == "stopped" and rec["step"] == 4 and rec["epoch"] == 1
    assert rec["position"]["epoch_pos"] == 16  # one batch into the second epoch
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "optimizer.safetensors").is_file()


def test_pause_and_continue() -> None:
    pause = threading.Event()
    seen = []
    gen = fit(TinyAE(), image_bundle(), _cfg(epochs=1), pause=pause)
    for ev in gen:
        seen.append(type(ev).__name__ if not isinstance(ev, Paused) else f"Paused({ev.paused})")
        if isinstance(ev, StepEnded) and ev.step == 1:
            pause.set()
            threading.Timer(0.15, pause.clear).start()
    i = seen.index("Paused(True)")
    assert seen[i - 1] == "StepEnded" and seen[i + 1] == "Paused(False)" and seen[i + 2] == "StepEnded"
    assert seen[-1] == "TrainFinished"


def test_stop_while_paused_ends_stopped() -> None:
    pause, stop = threading.Event(), threading.Event()
    events = []
    for ev in fit(TinyAE(), image_bundle(), _cfg(epochs=1), stop, pause=pause):
        events.append(ev)
        if isinstance(ev, StepEnded):
            pause.set()
            threading.Timer(0.1, stop.set).start()
    assert events[-1].reason is FinishReason.STOPPED and events[-1].step == 1


def test_huge_lr_diverges_and_keeps_last_good_checkpoint(tmp_path) -> None:
    run = make_run(tmp_path)
    bundle = image_bundle()
    # One good epoch first, then make the optimizer explode.
    net = TinyAE()
    gen = fit(net, bundle, _cfg(epochs=4), run=run)
    events = []
    for ev in gen:
        events.append(ev)
        if isinstance(ev, CheckpointSaved) and ev.epoch == 1:
            good = {f: (tmp_path / f).read_bytes() for f in ("model.safetensors", "optimizer.safetensors", "best.safetensors")}
            with torch.no_grad():
                net.enc[1].weight.fill_(float("nan"))
    last = events[-1]
    assert last.reason is FinishReason.DIVERGED
    assert "nan" in last.message.lower() and "last good checkpoint" in last.message
    for f, data in good.items():
        assert (tmp_path / f).read_bytes() == data, f
    rec = read_record(tmp_path)
    assert rec["status"] == "diverged" and rec["epoch"] == 1 and rec["step"] == 3


def test_divergence_in_the_last_step_of_an_epoch_is_not_saved(tmp_path, monkeypatch) -> None:
    """Finite loss but non-finite weights after the step: the epoch checkpoint must refuse them."""
    run = make_run(tmp_path)
    real = loop.train_step

    def poisoned(trainer, x_in, target, w):
        out = real(trainer, x_in, target, w)
        if trainer.step == 2:  # the third step, the last of epoch 1
            with torch.no_grad():
                next(trainer.net.parameters()).fill_(float("inf"))
        return out

    monkeypatch.setattr(loop, "train_step", poisoned)
    events = list(fit(TinyAE(), image_bundle(), _cfg(epochs=2), run=run))
    assert events[-1].reason is FinishReason.DIVERGED
    assert not (tmp_path / "model.safetensors").exists()  # nothing good was ever written


def test_oom_halves_batch_and_retries(monkeypatch) -> None:
    real = loop.train_step
    calls = {"n": 0}

    def flaky(trainer, x_in, target, w):
        calls["n"] += 1
        if x_in.shape[0] > 4:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real(trainer, x_in, target, w)

    monkeypatch.setattr(loop, "train_step", flaky)
    events = list(fit(TinyAE(), image_bundle(), _cfg(epochs=1, batch_size=16)))
    reduced = [e for e in events if isinstance(e, BatchSizeReduced)]
    assert [(e.old, e.new) for e in reduced] == [(16, 8), (8, 4)]
    assert events[-1].reason is FinishReason.DONE
    steps = [e for e in events if isinstance(e, StepEnded)]
    assert len(steps) == 12  # all 48 images, in batches of 4


def test_oom_gives_up_after_max_retries(monkeypatch) -> None:
    def always(trainer, x_in, target, w):
        raise torch.OutOfMemoryError("CUDA out of memory (injected)")

    monkeypatch.setattr(loop, "train_step", always)
    events = list(fit(TinyAE(), image_bundle(), _cfg(epochs=1, batch_size=16, max_oom_retries=2)))
    assert sum(isinstance(e, BatchSizeReduced) for e in events) == 2
    assert events[-1].reason is FinishReason.FAILED
    assert "out of memory" in events[-1].message and "--batch-size" in events[-1].message


def test_exception_inside_training_is_reported_not_raised(tmp_path) -> None:
    class Broken(TinyAE):
        def forward_train(self, x):
            raise RuntimeError("boom inside the net")

    run = make_run(tmp_path)
    events = list(fit(Broken(), image_bundle(), _cfg(), run=run))
    assert isinstance(events[0], RunStarted)
    fin = events[-1]
    assert fin.reason is FinishReason.FAILED and "boom inside the net" in fin.message
    assert "Traceback" in fin.details
    assert read_record(tmp_path)["status"] == "failed"


def test_bad_arguments_raise_before_any_event() -> None:
    with pytest.raises(DeviceError, match="cuda:7"):
        fit(TinyAE(), image_bundle(), _cfg(device="cuda:7"))
    with pytest.raises(DeviceError, match="unknown device"):
        fit(TinyAE(), image_bundle(), _cfg(device="tpu"))
    empty = image_bundle(n_train=0)
    with pytest.raises(ValueError, match="no training images"):
        fit(TinyAE(), empty, _cfg())


def test_max_steps_ends_mid_epoch_as_done(tmp_path) -> None:
    run = make_run(tmp_path)
    events = list(fit(TinyAE(), image_bundle(), _cfg(epochs=3, max_steps=4), run=run))
    assert events[-1].reason is FinishReason.DONE and events[-1].step == 4
    assert "mse" in events[-1].metrics
    rec = read_record(tmp_path)
    assert rec["status"] == "done" and rec["step"] == 4 and rec["position"]["epoch_pos"] == 16


def test_closing_the_generator_keeps_a_checkpoint(tmp_path) -> None:
    run = make_run(tmp_path)
    gen = fit(TinyAE(), image_bundle(), _cfg(epochs=3), run=run)
    for ev in gen:
        if isinstance(ev, StepEnded) and ev.step == 2:
            break
    gen.close()
    rec = read_record(tmp_path)
    assert rec["status"] == "stopped" and rec["step"] == 2


def test_mid_epoch_checkpoints(tmp_path) -> None:
    run = make_run(tmp_path)
    events = list(fit(TinyAE(), image_bundle(), _cfg(epochs=1, checkpoint_every_steps=2), run=run))
    saved = [(e.epoch, e.step) for e in events if isinstance(e, CheckpointSaved)]
    assert saved == [(0, 2), (1, 3)]  # one mid-epoch, then the epoch end
    assert read_record(tmp_path)["position"]["epoch_pos"] == 0
