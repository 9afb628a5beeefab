"""The live trainer's start-up: strokes are grown to regions once per batch, at a bounded cost."""

from __future__ import annotations

import numpy as np

from aestudio.data import regions
from aestudio.data.regions import UNLABELLED, grow, segments
from aestudio.training.live import LiveConfig, LiveTrainer


def _scene(size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size] / size
    truth = ((yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.08).astype(np.uint8)
    image = np.where(truth[..., None] == 1, 0.8, 0.2).astype(np.float32).repeat(3, -1)
    image += rng.normal(0, 0.03, image.shape).astype(np.float32)
    return np.clip(image, 0, 1), truth


def test_the_first_batch_segments_each_image_once(monkeypatch) -> None:
    calls: list[tuple[int, ...]] = []
    real = regions.segments

    def counted(image, *args, **kwargs):
        calls.append(np.shape(image))
        return real(image, *args, **kwargs)

    monkeypatch.setattr(regions, "segments", counted)
    image, truth = _scene(64)
    sparse = np.full(truth.shape, UNLABELLED, np.uint8)
    sparse[30:34, 28:36] = 1
    sparse[2:4, 2:20] = 0
    trainer = LiveTrainer(3, 2, LiveConfig(crop=32, batch_size=8, base_channels=4, depth=2))
    trainer.set_example("a", image, sparse)
    targets = trainer._batch()[-1]  # painted, grown, ... per pixel
    assert len(calls) == 1  # was 8: each of the batch's crops segmented the image again
    assert int((targets[:, 1] != UNLABELLED).sum()) > int((targets[:, 0] != UNLABELLED).sum())
    trainer._batch()
    assert len(calls) == 1  # the grown labels are kept until the strokes change
    sparse[40:42, 40:44] = 1
    trainer.update_mask("a", sparse)
    trainer._batch()
    assert len(calls) == 1  # new strokes: grown again from the regions already made


def test_large_images_are_segmented_shrunk_to_a_bounded_size(monkeypatch) -> None:
    import skimage.segmentation

    seen: list[tuple[int, ...]] = []
    real = skimage.segmentation.felzenszwalb

    def spy(image, **kwargs):
        seen.append(image.shape[:2])
        return real(image, **kwargs)

    monkeypatch.setattr(skimage.segmentation, "felzenszwalb", spy)
    image, truth = _scene(203)  # not a multiple of the factor: the last rows and columns are covered too
    ids = segments(image, max_pixels=60 * 60)
    assert seen[-1] == (50, 50)  # shrunk by 4 (whole blocks): at most 60 x 60 pixels segmented
    assert ids.shape == (203, 203) and ids.dtype == np.int32
    sparse = np.full(truth.shape, UNLABELLED, np.uint8)
    sparse[95:105, 90:110] = 1
    sparse[5:10, 5:60] = 0
    grown = grow(sparse, ids)
    labelled = grown != UNLABELLED
    assert labelled.mean() > 0.5 and (grown[labelled] == truth[labelled]).mean() > 0.97
    small, _ = _scene(60)
    segments(small, max_pixels=60 * 60)
    assert seen[-1] == (60, 60)  # within the bound: segmented as it is


def test_steps_run_on_one_thread_while_a_prediction_shares_the_cores(monkeypatch) -> None:
    import threading

    import torch

    image, truth = _scene(32)
    sparse = np.full(truth.shape, UNLABELLED, np.uint8)
    sparse[14:18, 14:18] = 1
    sparse[1:3, 1:20] = 0
    trainer = LiveTrainer(3, 2, LiveConfig(crop=16, batch_size=2, base_channels=4, depth=2, regions=0.0))
    trainer.set_example("a", image, sparse)
    seen: list[int] = []
    real = trainer._train_step

    def step(*args):
        seen.append(torch.get_num_threads())
        if len(seen) == 2:
            trainer.sharing.set()  # a prediction starts (on the panel's prediction thread)
        if len(seen) == 4:
            trainer.sharing.clear()
        return real(*args)

    monkeypatch.setattr(trainer, "_train_step", step)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        stop = threading.Event()
        for _event in trainer.events(stop):
            if len(seen) >= 6:
                stop.set()
        assert seen[:6] == [2, 2, 1, 1, 2, 2]
        assert torch.get_num_threads() == 2  # the run leaves the thread as it found it
        # Its step log (what the Label tab's refresh schedule reads): each step after the first, and which
        # ones the prediction overlapped (it began inside step 2 and ended inside step 4).
        logged = trainer.step_log.steps()
        assert [x.shared for x in logged] == [True, True, True, False, False] and all(x.seconds > 0 for x in logged)
        assert [x.threads for x in logged] == seen[1:6]  # and the threads each ran on
    finally:
        torch.set_num_threads(before)
