"""The Reconstruct tab's anomaly scan, Qt-free (aestudio.explore.image_metrics.scan_errors)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from aestudio.explore.image_metrics import SCAN_BATCH, scan_errors


class _Halver:
    """A stand-in model that outputs half its input, batched like an OrtPredictor."""

    def __init__(self, fits: bool = True) -> None:
        self.info = SimpleNamespace(name="halver", value_range=(0.0, 1.0), task=None)
        self.fits = fits
        self.batches: list[int] = []

    def check_batch(self, x: np.ndarray) -> None:
        if not self.fits:
            raise ValueError("needs a multiple of 8")

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.batches.append(len(x))
        return x * 0.5

    def run_image(self, image: np.ndarray, progress: object = None) -> np.ndarray:
        return image * 0.5


@pytest.mark.parametrize("fits", [True, False])
def test_scan_errors_are_each_images_mse_in_batches(fits: bool) -> None:
    images = np.random.default_rng(0).random((SCAN_BATCH + 5, 1, 6, 6)).astype(np.float32)
    model, seen = _Halver(fits), []
    errors = scan_errors(model, images, lambda done, total: seen.append((done, total)))
    expected = ((images * 0.5 - images) ** 2).reshape(len(images), -1).mean(axis=1)
    np.testing.assert_allclose(errors, expected, rtol=1e-5)
    assert seen[0] == (0, len(images)) and seen[-1] == (len(images), len(images))
    assert model.batches == ([SCAN_BATCH, 5] if fits else [])  # image by image when a batch does not fit


def test_a_progress_callback_can_cancel_the_scan() -> None:
    class Stop(Exception):
        pass

    def cancel(done: int, total: int) -> None:
        if done:
            raise Stop

    with pytest.raises(Stop):
        scan_errors(_Halver(), np.zeros((3 * SCAN_BATCH, 1, 4, 4), np.float32), cancel)
