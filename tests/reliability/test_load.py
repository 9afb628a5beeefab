"""Load: a large folder opens lazily and trains an epoch in bounded memory; memory does not grow per epoch.

The 100,000-file figures come from bench (bench/benchmarks/large_folder.py,
memory_growth.py -> docs/BENCHMARKS.md); here the same probes run on 5,000
files and a dozen epochs so the suite stays fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rel_helpers import REPO

N_FILES = 5_000


def _probe(module: str, *args: str, timeout: float = 600) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory) -> Path:
    sys.path.insert(0, str(REPO))
    from bench.benchmarks.large_folder import make_folder

    root = tmp_path_factory.mktemp("large") / "images"
    make_folder(root, N_FILES)
    return root


def test_a_large_folder_opens_without_decoding_and_decodes_per_item(big_folder: Path, monkeypatch) -> None:
    from aestudio.data import folders, specs

    decoded: list[Path] = []
    real = folders.read_stretched  # the data set's one decoder (16-bit images at their own range)
    monkeypatch.setattr(folders, "read_stretched", lambda p, **k: (decoded.append(p), real(p, **k))[1])
    data = specs.open_data(f"folder:{big_folder}", image_size=32, channels=1)
    assert len(data.train) + len(data.val) == N_FILES
    assert decoded == []  # opening lists paths (and reads a few headers), nothing more
    for i in range(10):
        data.train[i]
    assert len(decoded) == 10  # one decode per access: no cache that would grow to the whole folder
    assert not any(hasattr(data.train, a) for a in ("cache", "_cache", "images", "_images"))


@pytest.mark.slow
@pytest.mark.skipif(not __import__("importlib.util").util.find_spec("psutil"), reason="the probe samples RSS with psutil")
def test_a_large_folder_trains_an_epoch_in_bounded_memory(big_folder: Path) -> None:
    res = _probe("bench.probes.large_folder", str(big_folder), "--image-size", "32")
    print(f"large folder: {res}")
    assert res["reason"] == "done" and res["files"] == N_FILES and res["bad_files"] == 0
    assert res["steps"] == -(-res["train"] // 256)
    # Fixed costs (batches, autograd, validation) only: independent of the number of files.
    assert res["epoch_growth_mib"] < 100, res


@pytest.mark.slow
@pytest.mark.skipif(not __import__("importlib.util").util.find_spec("psutil"), reason="the probe reads RSS with psutil")
def test_memory_does_not_grow_per_epoch(tmp_path: Path) -> None:
    res = _probe("bench.probes.memory_growth", str(tmp_path), "--epochs", "12", "--net", "dense_ae")
    print(f"memory growth: {res['rss_mib']} slope {res['slope_mib_per_epoch']} MiB/epoch")
    assert res["reason"] == "done" and res["epochs"] == 12
    assert res["slope_mib_per_epoch"] < 0.5, res
