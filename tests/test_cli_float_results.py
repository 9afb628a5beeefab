"""``aestudio denoise`` and ``aestudio reconstruct`` write a float TIFF's result back as a float32 TIFF in the
input's own range (aestudio.data.levels): beyond [0, 1] mapped back onto the input's min/max, within it as it
is. Before, both wrote an 8-bit PNG of the stretched result, losing the values and their units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from aestudio.cli import main
from aestudio.data import io
from aestudio.data.levels import FLOAT_BITS, read_levelled, result_suffix

RANGES = {"wide": (-3.0, 500.0), "unit": (0.0, 1.0)}


def _float_images(folder: Path) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    wide = (-3.0 + 503.0 * rng.random((20, 24))).astype(np.float32)  # a float micrograph: no white level
    wide[0, 0], wide[0, 1] = -3.0, 500.0
    unit = (0.2 + 0.6 * rng.random((20, 24))).astype(np.float32)  # within [0, 1]: taken as it is
    images = {"wide": wide, "unit": unit}
    for name, data in images.items():
        tifffile.imwrite(folder / f"{name}.tif", data)
    return images


@pytest.mark.parametrize(("command", "net", "suffix"), [("reconstruct", "conv_ae", "_recon"),
                                                        ("denoise", "denoising_ae", "_denoised")])
def test_float_tiffs_come_back_as_float32_tiffs_in_their_own_range(bundles, tmp_path: Path, command: str,
                                                                   net: str, suffix: str) -> None:
    from aestudio.inference.ort import OrtPredictor

    images = _float_images(tmp_path / "in")
    io.write_image(tmp_path / "in" / "eight.png", np.random.default_rng(0).random((20, 24)))
    bundle = bundles(net)
    out = tmp_path / "out"
    # float32: the exact graph, compared with OrtPredictor below (auto may take bfloat16 on this CPU)
    assert main([command, "--model", str(bundle), "--precision", "float32", str(tmp_path / "in"), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"eight{suffix}.png", f"unit{suffix}.tif", f"wide{suffix}.tif"]
    pred = OrtPredictor(bundle)
    for name, raw in images.items():
        written = tifffile.imread(out / f"{name}{suffix}.tif")
        assert written.dtype == np.float32 and written.shape == raw.shape
        lo, hi = RANGES[name]  # the input's own range: its min/max beyond [0, 1], else [0, 1]
        span = hi - lo
        assert lo - 1e-4 * span <= written.min() and written.max() <= hi + 1e-4 * span
        image, levels = read_levelled(tmp_path / "in" / f"{name}.tif")
        expected = levels.restore(pred.run_image(image))[..., 0]
        np.testing.assert_allclose(written, expected, rtol=1e-4, atol=1e-3 * span)  # the model's output, put back
    wide = tifffile.imread(out / f"wide{suffix}.tif")
    assert wide.max() > 1.5  # beyond [0, 1]: back in the input's units, not left stretched
    assert io.probe_image(out / f"eight{suffix}.png").mode == "L"  # an 8-bit input: an 8-bit PNG as before


def test_a_float_tiffs_levels_restore_its_values_exactly(tmp_path: Path) -> None:
    images = _float_images(tmp_path)
    for name, raw in images.items():
        image, levels = read_levelled(tmp_path / f"{name}.tif")
        assert levels.bits == FLOAT_BITS and result_suffix(levels) == ".tif"
        assert levels.stretched == (name == "wide")
        np.testing.assert_allclose(levels.restore(image)[..., 0], raw, rtol=1e-5, atol=1e-4)
