"""Packaging promises: the broken PySide6 release stays excluded; the entry point works."""

import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_pyside6_6_12_0_is_excluded() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pyside = [d for d in deps if d.lower().startswith("pyside6")]
    assert pyside and "!=6.12.0" in pyside[0].replace(" ", "")


def test_module_entry_point_prints_help() -> None:
    out = subprocess.run([sys.executable, "-m", "aestudio", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "train" in out.stdout and "gui" in out.stdout


def test_unknown_subcommand_argument_is_one_line_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "aestudio", "train", "--no-such-flag"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
