"""Strokes grown to image regions (superpixel propagation) in the live trainer."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import torch

from aestudio.data.regions import UNLABELLED, grow, segments
from aestudio.training.live import (
    LiveConfig,
    LiveTrainer,
    net_from_snapshot,
    predict_probs,
    sparse_loss,
)


def _scene(size: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy dark background with a bright square (class 1) and a mid-grey disc (class 2)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    truth = np.zeros((size, size), np.uint8)
    truth[6:22, 6:22] = 1
    truth[(yy - 34) ** 2 + (xx - 32) ** 2 <= 9**2] = 2
    image = np.choose(truth, [0.15, 0.85, 0.5]).astype(np.float32)[..., None].repeat(3, -1)
    image += rng.normal(0, 0.03, image.shape).astype(np.float32)
    return np.clip(image, 0, 1), truth


def _strokes(truth: np.ndarray) -> np.ndarray:
    sparse = np.full(truth.shape, UNLABELLED, np.uint8)
    sparse[13:15, 10:18] = 1  # a short stroke inside the square
    sparse[33:35, 29:36] = 2  # inside the disc
    sparse[42:44, 4:12] = 0  # on the background
    assert (sparse[sparse != UNLABELLED] == truth[sparse != UNLABELLED]).all()
    return sparse


def test_grow_fills_regions_one_class_touches_and_keeps_painted_pixels() -> None:
    image, truth = _scene()
    sparse = _strokes(truth)
    grown = grow(sparse, segments(image))
    labelled = grown != UNLABELLED
    assert labelled.mean() > 5 * (sparse != UNLABELLED).mean()  # most of the scene, from 3 short strokes
    assert (grown[labelled] == truth[labelled]).mean() > 0.97
    # A region painted with two classes: the majority fills it, the minority's painted pixels stay theirs.
    regions = np.zeros(truth.shape, np.int32)
    mixed = np.full(truth.shape, UNLABELLED, np.uint8)
    mixed[0, :19] = 1
    mixed[1, 0] = 2  # 1 of 20 painted pixels: 95% is class 1
    out = grow(mixed, regions)
    assert out[1, 0] == 2 and out[10, 10] == 1 and (out[mixed != UNLABELLED] == mixed[mixed != UNLABELLED]).all()
    mixed[1, :5] = 2  # now 5 of 24: no class reaches 90%, the region stays unlabelled
    out = grow(mixed, regions)
    assert out[10, 10] == UNLABELLED and (out[mixed != UNLABELLED] == mixed[mixed != UNLABELLED]).all()


def test_loss_counts_grown_pixels_by_their_weight() -> None:
    painted = torch.full((1, 4, 4), UNLABELLED, dtype=torch.int64)
    painted[0, 0, 0] = 1
    grown = painted.clone()
    grown[0, 1:, :] = 0  # grown background the net gets wrong
    logits = torch.zeros(1, 2, 4, 4)
    logits[:, 1] = 5.0  # says class 1 everywhere: right on the painted pixel, wrong on the grown ones
    off = sparse_loss(logits, painted, painted, 0.5)
    weak = sparse_loss(logits, painted, grown, 0.1)
    strong = sparse_loss(logits, painted, grown, 1.0)
    assert float(off) < float(weak) < float(strong)


def test_trainer_batches_carry_grown_labels_and_the_switch_turns_them_off() -> None:
    image, truth = _scene()
    sparse = _strokes(truth)
    for weight in (0.5, 0.0):
        trainer = LiveTrainer(3, 3, LiveConfig(crop=48, batch_size=2, base_channels=4, depth=2, regions=weight))
        trainer.set_example("a", image, sparse)
        *_, targets = trainer._batch()
        painted, grown = targets[:, 0], targets[:, 1]
        keep = painted != UNLABELLED
        assert torch.equal(grown[keep], painted[keep])  # a painted pixel is never overwritten
        if weight:
            assert int((grown != UNLABELLED).sum()) > 5 * int(keep.sum())
        else:
            assert torch.equal(grown, painted)
    # Switched off between runs (a new cfg on the same trainer): the grown labels made before are not used.
    trainer = LiveTrainer(3, 3, LiveConfig(crop=48, batch_size=2, base_channels=4, depth=2))
    trainer.set_example("a", image, sparse)
    trainer._batch()
    trainer.cfg = replace(trainer.cfg, regions=0.0)
    *_, targets = trainer._batch()
    assert torch.equal(targets[:, 0], targets[:, 1])
    # New strokes: the grown labels are remade from them.
    trainer = LiveTrainer(3, 3, LiveConfig(crop=48, batch_size=1, base_channels=4, depth=2))
    trainer.set_example("a", image, sparse)
    trainer._batch()
    erased = sparse.copy()
    erased[13:15, 10:18] = UNLABELLED
    trainer.update_mask("a", erased)
    *_, targets = trainer._batch()
    assert not bool((targets[:, 1] == 1).any())  # the square's stroke is gone, so is its region


def test_tiny_run_with_grown_labels_beats_strokes_only() -> None:
    torch.set_num_threads(1)
    image, truth = _scene()
    sparse = _strokes(truth)
    scores = {}
    for weight in (0.0, 0.5):
        trainer = LiveTrainer(3, 3, LiveConfig(crop=48, batch_size=2, base_channels=8, depth=2, lr=5e-3,
                                               regions=weight, max_steps=40))
        trainer.set_example("a", image, sparse)
        for _ in trainer.events(threading.Event()):
            pass
        net = net_from_snapshot(3, 3, trainer.snapshot()[1], trainer.cfg)
        pred = predict_probs(net, image).argmax(0)
        scores[weight] = float((pred == truth).mean())
    assert scores[0.5] > scores[0.0] + 0.02, scores


def test_crops_are_turned_by_90_degrees_and_jittered_only_when_asked() -> None:
    image = np.full((32, 32, 3), 0.5, np.float32)
    mask = np.full((32, 32), UNLABELLED, np.uint8)
    mask[0, :10] = 1  # a horizontal stroke: flips keep it horizontal, only a quarter turn makes it vertical
    for rotate, jitter in ((True, 0.2), (False, 0.0)):
        trainer = LiveTrainer(3, 2, LiveConfig(crop=32, batch_size=8, base_channels=4, depth=2, regions=0.0,
                                               rotate=rotate, jitter=jitter))
        trainer.set_example("a", image, mask)
        vertical, changed = False, False
        for _ in range(4):
            x, _, targets = trainer._batch()
            painted = targets[:, 0] != UNLABELLED
            vertical |= bool((painted.sum(dim=-2) > 1).any())  # a column with more than one painted pixel
            changed |= not torch.allclose(x, torch.full_like(x, 0.5), atol=1e-3)
        assert vertical == rotate and changed == (jitter > 0)


def _pairs(folder, n: int = 2) -> str:
    from PIL import Image

    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in range(n):
        image, truth = _scene(seed=i)
        Image.fromarray((image * 255).round().astype(np.uint8)).save(folder / "images" / f"s{i}.png")
        Image.fromarray(_strokes(truth)).save(folder / "masks" / f"s{i}.png")
    return f"pairs:{folder / 'images'},{folder / 'masks'}"


def test_native_crops_grow_strokes_only_when_asked(tmp_path) -> None:
    from aestudio.data.crops import NativeScale
    from aestudio.data.specs import open_data

    spec = _pairs(tmp_path / "set", n=4)
    counts = {}
    for grow_on in (False, True):
        data = open_data(spec, native=NativeScale(crop=48, multiple=4, grow=grow_on), val_fraction=0.25)
        torch.manual_seed(0)
        _, mask = data.train[0]
        counts[grow_on] = int((mask != UNLABELLED).sum())
    assert counts[True] > 5 * counts[False]


def test_cli_grow_strokes_is_recorded_and_refused_where_it_cannot_apply(tmp_path, capsys) -> None:
    from aestudio.cli import main
    from aestudio.training.runs import read_run

    spec = _pairs(tmp_path / "set", n=4)
    out = tmp_path / "run"
    assert main(["train", "--model", "unet", "--data", spec, "--max-steps", "2", "--base-channels", "4", "--depth", "2",
                 "--crop-size", "32", "--grow-strokes", "--no-progress", "--out", str(out)]) == 0
    assert read_run(out).data_options["native"]["grow"] is True
    capsys.readouterr()
    assert main(["train", "--model", "unet", "--data", spec, "--image-size", "32", "--grow-strokes", "--max-steps", "1",
                 "--no-progress", "--out", str(tmp_path / "run2")]) != 0
    assert "--grow-strokes applies to a unet on pairs:" in capsys.readouterr().err


def test_cli_grow_strokes_saves_the_moving_average_and_resumes_exactly(tmp_path, monkeypatch) -> None:
    """The CLI's sparse-label path trained with the ordinary loop and saved the last step's weights,
    where the Label tab publishes the moving average (LiveConfig.ema = 0.99, measured better). Now the
    weights file, the best file and so the export hold that average, computed as the live trainer does
    from the trained weights; the trained weights ride in the training state, so a resume is exact."""
    from aestudio.cli import main
    from aestudio.training import loop
    from aestudio.training.checkpoint import load_training_state, load_weights
    from aestudio.training.runs import BEST_FILE, MODEL_FILE, load_net, read_run

    spec = _pairs(tmp_path / "set", n=4)
    args = ["train", "--model", "unet", "--data", spec, "--epochs", "3", "--batch-size", "2", "--base-channels", "4",
            "--depth", "2", "--crop-size", "32", "--grow-strokes", "--no-progress"]
    trained: list[dict[str, torch.Tensor]] = []
    real_step = loop.train_step

    def recording_step(trainer, *a, **kw):
        out = real_step(trainer, *a, **kw)
        trained.append({k: v.detach().clone() for k, v in trainer.net.state_dict().items()})
        return out

    monkeypatch.setattr(loop, "train_step", recording_step)
    whole = tmp_path / "whole"
    assert main([*args, "--out", str(whole)]) == 0
    monkeypatch.setattr(loop, "train_step", real_step)
    info = read_run(whole)
    assert info.train_cfg.ema == LiveConfig.ema == 0.99 and info.step == len(trained) > 3

    # The average as the live trainer makes it: the first step copies, then decay min(0.99, (1+n)/(10+n)).
    averages = []
    for n, state in enumerate(trained):
        if n == 0:
            ema = {k: v.clone() for k, v in state.items()}
        else:
            decay = min(0.99, (1 + n) / (10 + n))
            for k, v in state.items():
                ema[k] = ema[k].lerp(v, 1.0 - decay) if v.is_floating_point() else v.clone()
        averages.append({k: v.clone() for k, v in ema.items()})
    saved, _ = load_weights(whole / MODEL_FILE)
    for k in saved:
        torch.testing.assert_close(saved[k], averages[-1][k], rtol=0, atol=1e-6)
    state = load_training_state(whole / "optimizer.safetensors")
    assert state.ema_updates == info.step - 1 and all(torch.equal(state.net[k], trained[-1][k]) for k in state.net)
    assert any(not torch.equal(saved[k], trained[-1][k]) for k in saved if saved[k].is_floating_point())
    best_step = info.best["step"]
    best, _ = load_weights(whole / BEST_FILE)
    for k in best:
        torch.testing.assert_close(best[k], averages[best_step - 1][k], rtol=0, atol=1e-6)
    net, _ = load_net(whole, which="last")  # what `aestudio export` and eval load
    assert all(torch.equal(net.state_dict()[k], saved[k]) for k in saved)

    # Stopped after 3 steps (mid epoch) and resumed: bitwise the same average and trained weights.
    part = tmp_path / "part"
    assert main([*args, "--max-steps", "3", "--out", str(part)]) == 0
    assert main(["train", "--resume", "--out", str(part), "--no-progress"]) == 0
    assert read_run(part).step == info.step
    resumed, _ = load_weights(part / MODEL_FILE)
    assert all(torch.equal(resumed[k], saved[k]) for k in saved), "the average did not continue exactly"
    again = load_training_state(part / "optimizer.safetensors")
    assert all(torch.equal(again.net[k], state.net[k]) for k in state.net), "training did not continue exactly"

    # --ema 0 turns it off: the weights file is the trained weights, as for every other run.
    off = tmp_path / "off"
    assert main([*args, "--max-steps", "2", "--ema", "0", "--out", str(off)]) == 0
    assert read_run(off).train_cfg.ema == 0.0 and load_training_state(off / "optimizer.safetensors").net is None
