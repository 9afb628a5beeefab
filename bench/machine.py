"""Describe the machine a benchmark ran on (CPU, cores, RAM, OS, library versions, load)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from importlib import metadata
from pathlib import Path

# Distribution names, not import names: reading metadata does not import the library,
# so describing the machine never loads Qt or CUDA.
_LIBRARIES = {
    "torch": "torch",
    "torchvision": "torchvision",
    "onnxruntime": "onnxruntime",
    "onnx": "onnx",
    "PySide6": "PySide6-Essentials",
    "numpy": "numpy",
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> float | None:
    try:
        import psutil

        return psutil.virtual_memory().total / 2**30
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _version(dist: str) -> str:
    for name in (dist, dist.split("-")[0]):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def load_average() -> str:
    try:
        one, five, _ = os.getloadavg()
        return f"{one:.2f} (1 min), {five:.2f} (5 min)"
    except OSError:
        return "n/a"


def machine_info() -> dict[str, str]:
    """Ordered key/value pairs for the report header."""
    ram = ram_gib()
    info = {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "CPU": cpu_model(),
        "cores (logical)": str(os.cpu_count()),
        "RAM": f"{ram:.1f} GiB" if ram else "unknown",
        "OS": platform.platform(),
        "Python": platform.python_version(),
    }
    info.update({name: _version(dist) for name, dist in _LIBRARIES.items()})
    info["load average at start"] = load_average()
    return info
