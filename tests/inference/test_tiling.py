"""Tiling: full coverage, smooth blending without seams, agreement with untiled runs, bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from aestudio.inference.tiling import axis_window, plan_tiles, tiled_apply, tiled_map


def _box3(batch: np.ndarray) -> np.ndarray:
    """A 3x3 mean filter with zero padding, applied twice: like a small conv net, it is wrong
    within 2 px of any edge it sees, which is exactly what blending has to hide."""
    out = batch
    for _ in range(2):
        p = np.pad(out, ((0, 0), (0, 0), (1, 1), (1, 1)))
        h, w = out.shape[2:]
        out = sum(p[:, :, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)) / 9.0
    return out.astype(np.float32)


@pytest.mark.parametrize(("length", "tile", "overlap", "multiple"), [(100, 32, 8, 1), (64, 64, 8, 8), (250, 64, 16, 8), (10, 64, 8, 1)])
def test_plan_covers_image_and_keeps_overlap(length: int, tile: int, overlap: int, multiple: int) -> None:
    plan = plan_tiles(length, length, tile=tile, overlap=overlap, multiple=multiple)
    covered = np.zeros(length, bool)
    for s in plan.ys:
        covered[s : s + plan.tile_h] = True
    assert covered.all()
    assert plan.ys[0] == 0 and plan.ys[-1] + plan.tile_h == length
    for a, b in zip(plan.ys, plan.ys[1:], strict=False):
        assert a + plan.tile_h - b >= overlap  # neighbours share at least the overlap
    assert plan.tile_h % multiple == 0 or plan.tile_h == length


def test_window_ramps_only_towards_neighbours() -> None:
    first = axis_window(100, 0, 40, 8)
    middle = axis_window(100, 30, 40, 8)
    assert first[0] == 1.0 and first[-1] < 0.05  # border side flat, neighbour side ramps down
    assert middle[0] < 0.05 and middle[-1] < 0.05 and middle[20] == 1.0
    assert (middle > 0).all()  # never zero: every pixel keeps a defined weight
    assert np.all(np.diff(middle[:8]) >= 0) and np.all(np.diff(middle[2:8]) > 0)  # margin, then a smooth rise


def test_pointwise_function_is_reproduced_exactly() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((3, 137, 201), dtype=np.float32)
    out = tiled_apply(img, lambda b: b * 2.0 + 1.0, tile=48, overlap=12, tile_batch=3)
    np.testing.assert_allclose(out, img * 2.0 + 1.0, atol=1e-5)


def test_conv_like_function_has_no_seams() -> None:
    rng = np.random.default_rng(1)
    img = rng.random((1, 160, 160), dtype=np.float32)
    full = _box3(img[None])[0]
    tiled = tiled_apply(img, _box3, tile=64, overlap=16, tile_batch=2)
    inner = (slice(None), slice(2, -2), slice(2, -2))
    # A single 3x3 box's edge error is ~1/3 of the signal; blending must bring it far below.
    assert np.abs(tiled - full)[inner].max() < 0.02
    # No seam: the error along tile boundaries is no larger than elsewhere by much.
    err = np.abs(tiled - full)[0]
    assert err[:, 40:50].max() < 0.02 and err[40:50, :].max() < 0.02


def test_wrong_function_output_shape_is_an_error() -> None:
    with pytest.raises(ValueError, match="tile function returned shape"):
        tiled_apply(np.zeros((1, 64, 64), np.float32), lambda b: b[:, :, :-1], tile=32, overlap=8)
    with pytest.raises(ValueError, match="multiple of 8"):
        tiled_apply(np.zeros((1, 60, 64), np.float32), lambda b: b, tile=32, overlap=8, multiple=8)


def test_memory_is_bounded_by_the_output_plus_a_few_tiles() -> None:
    img = np.random.default_rng(2).random((3, 1024, 1024), dtype=np.float32)
    out_bytes = img.nbytes  # the output has the input's shape here
    tile, batch = 128, 2
    tracemalloc.start()
    try:
        tiled_apply(img, lambda b: b * 0.5, tile=tile, overlap=16, tile_batch=batch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    tile_bytes = 3 * tile * tile * 4
    # Output + a handful of tile-sized temporaries; a stack of all 81 tiles would be ~16 MB more.
    assert peak < out_bytes + 12 * batch * tile_bytes


def test_tiled_map_crops_and_writes_channels_last() -> None:
    rng = np.random.default_rng(4)
    img = rng.random((2, 96, 128), dtype=np.float32)
    full = tiled_apply(img, _box3, tile=48, overlap=16, multiple=16)

    def read(y: int, x: int, out: np.ndarray) -> None:
        out[...] = img[:, y : y + out.shape[1], x : x + out.shape[2]]

    calls: list[tuple[int, int]] = []
    hwc = tiled_map(read, 2, 96, 128, _box3, crop=(90, 117), channels_last=True, tile=48, overlap=16,
                    multiple=16, progress=lambda d, t: calls.append((d, t)))
    assert hwc.shape == (90, 117, 2) and hwc.flags.c_contiguous
    np.testing.assert_allclose(hwc, full[:, :90, :117].transpose(1, 2, 0), atol=1e-6)
    assert calls[-1][0] == calls[-1][1] == len(calls)  # one tile per call by default


def test_tiled_map_never_holds_a_converted_copy_of_the_image() -> None:
    """The reader converts tile by tile: peak = the result + tile-sized buffers, whatever the image."""
    src = np.random.default_rng(5).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    tile = 128

    def read(y: int, x: int, out: np.ndarray) -> None:
        region = src[y : y + out.shape[1], x : x + out.shape[2]]
        for k in range(3):
            out[k] = region[:, :, k]
        out /= 255.0

    tracemalloc.start()
    try:
        out = tiled_map(read, 3, 1024, 1024, lambda b: b * 0.5, channels_last=True, tile=tile, overlap=16)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(out, src / 255.0 * 0.5, atol=1e-6)
    assert peak < out.nbytes + 10 * 3 * tile * tile * 4  # a float32 copy of the image would add 12 MiB
