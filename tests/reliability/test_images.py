"""Images people drop: a fuzz corpus, hypothesis-made files, bombs, odd modes, huge-but-legal pictures.

The contract (aestudio.data.io): every file either loads as float32 [H, W, C]
in [0, 1] with C = 1 or 3, or raises ImageLoadError whose message names the
file; nothing else escapes. The corpus is read in a child process, so a
decoder crash would fail the test instead of the session.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from image_corpus import build_corpus, encoded
from PIL import Image
from rel_helpers import last_json, run_python

from aestudio.data.io import ImageLoadError, probe_image, read_image

READ_ALL = """
import json, sys
from pathlib import Path
from aestudio.data.io import ImageLoadError, probe_image, read_image
out = {}
for f in sorted(Path(sys.argv[1]).iterdir()):
    res = {}
    for name, fn in (("read", read_image), ("probe", probe_image)):
        try:
            v = fn(f)
            res[name] = {"ok": True, "shape": list(v.shape) if name == "read" else [v.height, v.width],
                         "dtype": str(getattr(v, "dtype", "")), "min": float(v.min()) if name == "read" else 0,
                         "max": float(v.max()) if name == "read" else 0}
        except ImageLoadError as exc:
            res[name] = {"ok": False, "type": "ImageLoadError", "message": str(exc)}
        except Exception as exc:
            res[name] = {"ok": False, "type": type(exc).__name__, "message": str(exc)}
    out[f.name] = res
print(json.dumps(out))
"""


def test_fuzz_corpus_loads_or_is_refused_by_name(tmp_path: Path) -> None:
    expectations = build_corpus(tmp_path / "corpus")
    results = last_json(run_python(READ_ALL, str(tmp_path / "corpus")))
    assert set(results) == set(expectations)
    for name, exp in expectations.items():
        read = results[name]["read"]
        if exp is None:  # undefined content: either outcome, but only these two
            assert read["ok"] or (read["type"] == "ImageLoadError" and name in read["message"]), (name, read)
            continue
        if exp[0] == "load":
            _, channels, hw = exp
            assert read["ok"], (name, read)
            assert read["shape"] == [*hw, channels] and read["dtype"] == "float32", (name, read)
            assert 0.0 <= read["min"] <= read["max"] <= 1.0, (name, read)
        else:
            assert not read["ok"] and read["type"] == "ImageLoadError", (name, read)
            assert name in read["message"], (name, read)
            for word in exp[1]:
                assert word in read["message"], (name, word, read)
        probe = results[name]["probe"]
        assert probe["ok"] or probe["type"] == "ImageLoadError", (name, probe)


# ----------------------------------------------------------------- hypothesis

_FUZZ = settings(max_examples=int(os.environ.get("AESTUDIO_FUZZ_EXAMPLES", "400")), deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def _check_file(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"fuzz{suffix}"
        path.write_bytes(data)
        for fn in (read_image, probe_image):
            try:
                out = fn(path)
            except ImageLoadError as exc:
                assert "fuzz" in str(exc)
                continue
            if fn is read_image:
                assert out.dtype == np.float32 and out.ndim == 3 and out.shape[-1] in (1, 3)
                assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@_FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".png", ".jpg", ".tif", ".bmp", ".dat"]))
def test_random_bytes_raise_only_image_load_error(data: bytes, suffix: str) -> None:
    _check_file(data, suffix)


def _seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (9, 13, 3), dtype=np.uint8))
    grey16 = Image.fromarray(rng.integers(0, 65535, (9, 13), dtype=np.uint16))
    return [encoded(rgb, "PNG"), encoded(rgb.convert("P"), "PNG", transparency=3), encoded(rgb.convert("LA"), "PNG"),
            encoded(grey16, "PNG"), encoded(rgb, "JPEG", quality=80), encoded(rgb, "BMP"), encoded(rgb, "TIFF"),
            encoded(rgb, "TIFF", compression="tiff_deflate")]


SEEDS = _seeds()


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "dup"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[i] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80]))
        elif op == "cut":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "dup":
            data[i:i] = data[i: i + draw(st.integers(1, 64))]
    return bytes(data)


@_FUZZ
@given(data=mutated())
def test_mutated_valid_images_raise_only_image_load_error(data: bytes) -> None:
    _check_file(data, ".png")


# ----------------------------------------------------------------- the real limit, not a lowered one


def test_bombs_are_refused_at_pillows_default_limit(tmp_path: Path) -> None:
    from image_corpus import png_header_only

    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # nothing lowered or raised it
    for side in (10_000, 30_000):  # inside Pillow's warning zone, and above its hard limit
        f = tmp_path / f"bomb{side}.png"
        f.write_bytes(png_header_only(side, side))
        with pytest.raises(ImageLoadError, match=rf"bomb{side}\.png: image is too large"):
            read_image(f)


# ----------------------------------------------------------------- huge but legal: tiled, bounded memory

HUGE = """
import json, sys
import numpy as np
from aestudio.data.io import read_image
from aestudio.inference.ort import OrtPredictor, SessionProfile
pred = OrtPredictor(sys.argv[2], profile=SessionProfile.BATCH)
pred.warmup()
def peak_mib():  # VmHWM: this process's peak RSS (ru_maxrss would include the forking parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
base = peak_mib()
img = read_image(sys.argv[1])
after_read = peak_mib()
out = pred.run_image(img)
assert out.shape == img.shape, (out.shape, img.shape)
print(json.dumps({"base": base, "after_read": after_read, "peak": peak_mib(), "image_mib": img.nbytes / 2**20}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS read from /proc (Linux)")
def test_huge_legal_image_is_tiled_in_bounded_memory(bundles, tmp_path: Path) -> None:
    side = 3072  # 9.4 Mpx: legal (under Pillow's 89 Mpx limit), far above the 512 px tile
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (side // 64, side // 64), dtype=np.uint8)
    big = Image.fromarray(small).resize((side, side), Image.Resampling.BILINEAR)
    big.save(tmp_path / "huge.png", compress_level=1)
    res = last_json(run_python(HUGE, str(tmp_path / "huge.png"), str(bundles("denoising_ae")), timeout=240))
    extra = res["peak"] - res["base"]
    # The float32 image is 36 MiB; the untiled net would hold ~8 x 64 MiB per activation.
    # Tiling keeps the run to the input, the output, the blend weights and a few tiles.
    print(f"huge image: float32 {res['image_mib']:.0f} MiB, peak extra RSS {extra:.0f} MiB")
    assert extra < 6 * res["image_mib"], res


def test_truncated_ihdr_is_an_image_load_error(tmp_path: Path) -> None:
    """Found by the mutation fuzzer: Pillow raises ValueError("Truncated IHDR chunk") from
    Image.open, which escaped read_image before the fix."""
    data = bytearray(SEEDS[0])
    data[8:12] = (9).to_bytes(4, "big")  # IHDR length 13 -> 9
    (tmp_path / "ihdr.png").write_bytes(bytes(data))
    with pytest.raises(ImageLoadError, match=r"ihdr\.png: .*IHDR"):
        read_image(tmp_path / "ihdr.png")
    with pytest.raises(ImageLoadError, match=r"ihdr\.png"):
        probe_image(tmp_path / "ihdr.png")


def test_image_decode_errors_never_leave_the_flag_on(tmp_path: Path) -> None:
    from PIL import ImageFile

    data = encoded(Image.new("RGB", (64, 64)), "JPEG")
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageLoadError, match=r"cut\.jpg: file is truncated or corrupt"):
        read_image(tmp_path / "cut.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    _ = io  # keep the import for the encoded() helper's users
