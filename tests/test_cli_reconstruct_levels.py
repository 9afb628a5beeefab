"""``aestudio reconstruct`` writes a 16-bit input's result back in the input's range and dtype (a 16-bit
TIFF), as ``aestudio denoise`` does; 8-bit inputs still give 8-bit PNGs. And float TIFFs follow the
documented rule of aestudio.data.levels: within [0, 1] as they are, beyond it by their own min/max."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from aestudio.cli import main
from aestudio.data import io
from aestudio.data.levels import read_levelled, read_stretched
from tests.data.test_levels_labelling import deep_images


def test_reconstruct_writes_16_bit_inputs_back_in_their_range(bundles, tmp_path: Path) -> None:
    from aestudio.inference.ort import OrtPredictor

    paths = deep_images(tmp_path / "in")  # cam.tif 0-4095 (TIFF), dim.png 1000-3000 (16-bit PNG)
    io.write_image(tmp_path / "in" / "eight.png", np.random.default_rng(0).random((20, 24)))
    bundle = bundles("conv_ae")
    out = tmp_path / "out"
    assert main(["reconstruct", "--model", str(bundle), str(tmp_path / "in"), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["cam_recon.tif", "dim_recon.tif", "eight_recon.png"]
    pred = OrtPredictor(bundle)
    for name, path in paths.items():
        raw = io.read_image(path)[..., 0] * 65535.0
        written = tifffile.imread(out / f"{name}_recon.tif")
        assert written.dtype == np.uint16 and written.shape == raw.shape
        assert raw.min() - 1 <= written.min() and written.max() <= raw.max() + 1  # in the input's own range
        image, levels = read_levelled(path)
        expected = np.round(levels.restore(pred.run_image(image))[..., 0] * 65535.0)
        assert np.abs(written.astype(np.float64) - expected).max() <= 1.0  # the model's output, put back exactly
    assert io.probe_image(out / "eight_recon.png").mode == "L"  # an 8-bit input: an 8-bit PNG as before


def test_float_tiffs_within_0_1_are_read_as_they_are_and_beyond_it_by_their_own_range(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    narrow = (0.2 + 0.05 * rng.random((16, 16))).astype(np.float32)  # a float image's white is 1: a flat grey
    tifffile.imwrite(tmp_path / "narrow.tif", narrow)
    image, levels = read_levelled(tmp_path / "narrow.tif")
    assert not levels.stretched and np.allclose(image[..., 0], narrow)

    counts = rng.integers(1000, 3001, (16, 16)).astype(np.uint16)
    counts[0, 0], counts[0, 1] = 1000, 3000
    tifffile.imwrite(tmp_path / "counts.tif", counts.astype(np.float32))  # raw intensities as floats
    tifffile.imwrite(tmp_path / "counts16.tif", counts)
    # no white level: stretched by min/max, exactly as the 16-bit file holding the same values
    np.testing.assert_allclose(read_stretched(tmp_path / "counts.tif"), read_stretched(tmp_path / "counts16.tif"),
                               atol=1e-6)
