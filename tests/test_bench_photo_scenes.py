"""bench label_quality's set of the issue (bench/photo_scenes.py): fixed content, masks on the
photo edges they were cut along, and no class given away by its texture's brightness."""

from __future__ import annotations

import numpy as np

from bench.photo_scenes import render


def _boundary_contrast(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean colour jump between horizontal neighbours whose mask values differ, over the mean jump."""
    grey = image.astype(np.float32).mean(-1)
    jump = np.abs(np.diff(grey, axis=1))
    edge = np.diff(mask.astype(np.int16), axis=1) != 0
    return float(jump[edge].mean() / jump.mean())


def test_scenes_are_fixed_and_masks_follow_the_pasted_photo_edges() -> None:
    a_img, a_mask = render(5, 64)
    b_img, b_mask = render(5, 64)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_mask, b_mask)
    c_img, _ = render(6, 64)
    assert not np.array_equal(a_img, c_img)
    right, wrong = [], []
    for i in range(8):
        image, mask = render(i, 64)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8 and mask.shape == (64, 64)
        assert set(np.unique(mask)) <= {0, 1, 2, 3} and (mask > 0).any()
        right.append(_boundary_contrast(image, mask))
        wrong.append(_boundary_contrast(image, mask.T))  # a mask that does not belong to the image
    # Every object is a different photo crop: its outline is where the picture jumps.
    assert np.mean(right) > 2.0 > np.mean(wrong), (right, wrong)


def test_no_class_is_told_by_its_brightness() -> None:
    means: dict[int, list[float]] = {c: [] for c in range(4)}
    for i in range(40):
        image, mask = render(1000 + i, 64)
        grey = image.astype(np.float32).mean(-1) / 255
        for c in range(4):
            if (mask == c).sum() > 20:
                means[c].append(float(grey[mask == c].mean()))
    overall = [np.mean(v) for v in means.values()]
    assert all(len(v) >= 5 for v in means.values())
    assert max(overall) - min(overall) < 0.1, overall  # the same photo crops fill every class
