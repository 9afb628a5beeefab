"""The benchmark entry point runs end to end at quick sizes (the figures live in docs/BENCHMARKS.md)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_quick_digits_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-write", "--only", "digits_pca"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "PCA" in out.stdout or "pca" in out.stdout
