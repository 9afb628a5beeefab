"""The live trainer's use of what is not painted: pseudo-labels on unlabelled pixels and images, and the
moving average of the weights it publishes (issue 13's "learn more from the same strokes")."""

from __future__ import annotations

import threading

import numpy as np
import torch

from aestudio.data.regions import UNLABELLED
from aestudio.training.live import LiveConfig, LiveTrainer, net_from_snapshot, pseudo_label_loss

TINY = {"crop": 32, "batch_size": 4, "base_channels": 4, "depth": 2}


def _image_and_strokes(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    image = np.full((size, size, 3), 0.2, np.float32)
    image[8:24, 8:24] = 0.8
    mask = np.full((size, size), UNLABELLED, np.uint8)
    mask[14:16, 12:20] = 1
    mask[2:4, 2:12] = 0
    return image, mask


def test_pseudo_label_loss_counts_only_sure_unlabelled_pixels_and_vanishes_when_the_student_agrees() -> None:
    torch.manual_seed(0)
    n, k, h, w = 2, 3, 6, 5
    teacher_logits = torch.randn(n, k, h, w) * 4
    probs = torch.softmax(teacher_logits, dim=1)
    unlabelled = torch.rand(n, h, w) < 0.5
    # A student sure of the teacher's top class everywhere: (almost) nothing to learn.
    agree = 40.0 * torch.nn.functional.one_hot(probs.argmax(1), k).permute(0, 3, 1, 2).float()
    assert float(pseudo_label_loss(agree, probs, unlabelled, 0.0)) < 1e-6
    # A student that disagrees learns, but only where the teacher is sure enough.
    student = torch.randn(n, k, h, w, requires_grad=True)
    loss = pseudo_label_loss(student, probs, unlabelled, 0.0)
    assert float(loss.detach()) > 0.1
    loss.backward()
    grad_at = student.grad.abs().sum(1) > 0
    assert not bool(grad_at[~unlabelled].any())  # painted (or grown) pixels get no pseudo-label
    assert bool(grad_at[unlabelled].all())
    assert float(pseudo_label_loss(student, probs, unlabelled, 1.01).detach()) == 0.0  # never sure enough
    sure = probs.max(1).values >= 0.9
    student.grad = None
    pseudo_label_loss(student, probs, unlabelled, 0.9).backward()
    assert torch.equal(student.grad.abs().sum(1) > 0, unlabelled & sure)


def test_blank_images_fill_their_share_of_the_batch_only_with_pseudo_labels_on() -> None:
    image, mask = _image_and_strokes()
    blank = np.full(mask.shape, UNLABELLED, np.uint8)
    for pseudo, expected_blank in ((0.0, 0), (1.0, 2)):
        trainer = LiveTrainer(3, 2, LiveConfig(**TINY, pseudo=pseudo, unlabelled_share=0.5, regions=0.0))
        trainer.set_example("painted", image, mask)
        trainer.set_example("blank", image * 0.5, blank)
        x, clean, targets = trainer._batch()
        assert x.shape == clean.shape and targets.shape[1] == 3
        wholly_unlabelled = (targets[:, 1] == UNLABELLED).flatten(1).all(1)
        assert int(wholly_unlabelled.sum()) == expected_blank
        # The painted crops keep every painted pixel as painted (a pseudo-label never replaces one).
        for t in targets[~wholly_unlabelled]:
            assert int((t[0] != UNLABELLED).sum()) == int((mask != UNLABELLED).sum())
        assert bool((targets[:, 2] == 0).all())  # 32-px crops of 32-px images: no padding


def test_the_published_weights_are_the_moving_average_and_training_with_pseudo_labels_runs() -> None:
    image, mask = _image_and_strokes()
    cfg = LiveConfig(**TINY, lr=5e-3, ema=0.9, pseudo=1.0, pseudo_threshold=0.5, unlabelled_share=0.25,
                     max_steps=6)
    trainer = LiveTrainer(3, 2, cfg)
    trainer.set_example("painted", image, mask)
    trainer.set_example("blank", image[::-1].copy(), np.full(mask.shape, UNLABELLED, np.uint8))
    events = list(trainer.events(threading.Event()))
    assert events[-1].reason.value == "done" and trainer.step == 6
    step, published = trainer.snapshot()
    own = trainer.net.state_dict()
    key = next(k for k in own if k.endswith("weight") and own[k].ndim == 4)
    assert not torch.equal(published[key], own[key])  # the average, not the last step's weights
    # Reproduce the average from the weights after each step (decay ramps up, capped at cfg.ema).
    replay = LiveTrainer(3, 2, cfg)
    replay.set_example("painted", image, mask)
    replay.set_example("blank", image[::-1].copy(), np.full(mask.shape, UNLABELLED, np.uint8))
    states = []
    stop = threading.Event()
    for e in replay.events(stop):
        if type(e).__name__ == "StepEnded":
            states.append({k: v.clone() for k, v in replay.net.state_dict().items()})
    average = states[0][key].clone()
    for n, s in enumerate(states[1:], start=1):
        decay = min(cfg.ema, (1 + n) / (10 + n))
        average = decay * average + (1 - decay) * s[key]
    torch.testing.assert_close(published[key], average)
    net = net_from_snapshot(3, 2, published, cfg)
    assert torch.isfinite(net(torch.from_numpy(image.transpose(2, 0, 1))[None])).all()


def test_without_ema_the_published_weights_are_the_trained_ones() -> None:
    image, mask = _image_and_strokes()
    trainer = LiveTrainer(3, 2, LiveConfig(**TINY, ema=0.0, max_steps=2))
    trainer.set_example("painted", image, mask)
    list(trainer.events(threading.Event()))
    published = trainer.snapshot()[1]
    for k, v in trainer.net.state_dict().items():
        assert torch.equal(published[k], v)


def test_new_strokes_restart_the_average_so_the_screen_follows_them() -> None:
    image, mask = _image_and_strokes()
    trainer = LiveTrainer(3, 2, LiveConfig(**TINY, ema=0.99, max_steps=5))
    trainer.set_example("painted", image, mask)
    list(trainer.events(threading.Event()))
    assert trainer._ema_updates == 4  # the first step made the average, four moved it
    more = mask.copy()
    more[20:22, 12:20] = 1
    trainer.update_mask("painted", more)
    assert trainer._ema_updates == 0  # the next steps weigh the new weights heavily again
