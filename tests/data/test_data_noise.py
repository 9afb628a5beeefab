"""Noise functions: shape, range, dtype, determinism, strength ordering, inputs untouched."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aestudio.config import NoiseConfig, parse_noise
from aestudio.data import noise
from aestudio.data.noise import NoiseKind

# kind -> (weak, strong) strengths; for poisson fewer photons is stronger.
LEVELS = {
    "gaussian": (0.02, 0.2),
    "saltpepper": (0.01, 0.2),
    "speckle": (0.05, 0.5),
    "poisson": (200.0, 5.0),
    "mask": (0.02, 0.4),
    "block": (0.05, 0.5),
    "blur": (0.5, 2.5),
}


def _texture(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A mid-grey image with texture, so every corruption (blur too) changes it."""
    rng = np.random.default_rng(seed)
    return (0.3 + 0.4 * rng.random(shape)).astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def test_kinds_match_the_config_parser() -> None:
    for kind in NoiseKind:
        if kind is not NoiseKind.NONE:
            assert parse_noise(f"{kind.value}:0.1").kind == kind.value
    assert set(LEVELS) == {k.value for k in NoiseKind} - {"none"}


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 9), min_size=2, max_size=4).map(tuple),
    kind=st.sampled_from(sorted(LEVELS)),
    seed=st.integers(0, 2**32 - 1),
    ranged=st.booleans(),
)
def test_shape_range_dtype_determinism_and_input_untouched(shape, kind, seed, ranged) -> None:
    x = np.random.default_rng(seed).random(shape)  # float64 input: output must still be float32
    original = x.copy()
    weak, strong = sorted(LEVELS[kind])
    cfg = NoiseConfig(kind=kind, strength=weak, strength_max=strong if ranged else None)
    y1 = noise.apply_noise(x, cfg, np.random.default_rng(seed))
    y2 = noise.apply_noise(x, cfg, np.random.default_rng(seed))
    assert y1.shape == x.shape and y1.dtype == np.float32
    assert y1.min() >= 0.0 and y1.max() <= 1.0
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(x, original)


@pytest.mark.parametrize("kind", sorted(set(LEVELS) - {"blur"}))
def test_different_seeds_differ(kind: str) -> None:
    x = _texture((3, 16, 16))
    cfg = NoiseConfig(kind=kind, strength=LEVELS[kind][1])
    a = noise.apply_noise(x, cfg, np.random.default_rng(1))
    b = noise.apply_noise(x, cfg, np.random.default_rng(2))
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("kind", sorted(LEVELS))
def test_stronger_noise_lowers_psnr(kind: str) -> None:
    x = _texture((2, 3, 32, 32))
    weak, strong = LEVELS[kind]
    p_weak = _psnr(noise.apply_noise(x, NoiseConfig(kind, weak), np.random.default_rng(0)), x)
    p_strong = _psnr(noise.apply_noise(x, NoiseConfig(kind, strong), np.random.default_rng(0)), x)
    assert p_strong < p_weak - 3.0  # a clear gap, not a rounding difference


def test_none_is_identity_copy() -> None:
    x = _texture((4, 4))
    y = noise.apply_noise(x, NoiseConfig(), np.random.default_rng(0))
    np.testing.assert_array_equal(x, y)
    assert y is not x


def test_pixel_corruptions_hit_all_channels_together() -> None:
    x = np.full((3, 32, 32), 0.5, dtype=np.float32)
    for fn in (noise.mask_pixels, noise.salt_pepper):
        y = fn(x, 0.3, np.random.default_rng(0))
        changed = y != 0.5
        assert changed.any()
        assert (changed == changed[:1]).all()  # the same pixels in every channel


def test_block_masking_covers_the_requested_fraction() -> None:
    x = np.ones((2, 1, 64, 64), dtype=np.float32)
    y = noise.mask_blocks(x, 0.25, np.random.default_rng(0), block=8)
    for item in y:
        assert (item == 0).mean() == pytest.approx(0.25)
    assert not np.array_equal(y[0], y[1])  # each image of the batch gets its own blocks
    zeros = y[0, 0] == 0
    blocks = zeros.reshape(8, 8, 8, 8).mean(axis=(1, 3))
    assert set(np.unique(blocks)) <= {0.0, 1.0}  # whole 8x8 blocks, aligned to the grid


def test_poisson_mean_is_unbiased() -> None:
    x = np.full((64, 64), 0.4, dtype=np.float32)
    y = noise.poisson(x, 50.0, np.random.default_rng(0))
    assert y.mean() == pytest.approx(0.4, abs=0.01)


def test_blur_preserves_flat_images_and_smooths_only_spatially() -> None:
    flat = np.full((3, 9, 9), 0.7, dtype=np.float32)
    np.testing.assert_allclose(noise.blur(flat, 2.0), 0.7, atol=1e-6)
    x = np.zeros((2, 9, 9), dtype=np.float32)
    x[0, 4, 4] = 1.0
    y = noise.blur(x, 1.0)
    assert y[1].max() == 0.0  # nothing leaks across channels
    assert y[0].sum() == pytest.approx(1.0, rel=1e-5)  # energy kept away from the borders
    assert y[0, 4, 4] < 1.0 and y[0, 4, 5] > 0.0


def test_strength_range_varies_per_batch_item() -> None:
    x = np.full((16, 1, 32, 32), 0.5, dtype=np.float32)
    y = noise.apply_noise(x, NoiseConfig("gaussian", 0.0, 0.3), np.random.default_rng(0))
    stds = (y - x).reshape(16, -1).std(axis=1)
    assert stds.min() < 0.08 and stds.max() > 0.15


@pytest.mark.parametrize(
    "call",
    [
        lambda x, r: noise.gaussian(x, -0.1, r),
        lambda x, r: noise.salt_pepper(x, 1.5, r),
        lambda x, r: noise.poisson(x, 0.0, r),
        lambda x, r: noise.mask_blocks(x, 0.2, r, block=0),
        lambda x, r: noise.gaussian(np.zeros(5), 0.1, r),
    ],
)
def test_invalid_arguments_raise(call) -> None:
    with pytest.raises(ValueError):
        call(np.zeros((4, 4)), np.random.default_rng(0))
