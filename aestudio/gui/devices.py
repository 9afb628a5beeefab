"""The devices a run can use: CPU, every CUDA device (with free memory), or MPS.

Qt-free. Listing calls into torch, which is slow to import, so the train panel
calls :func:`list_devices` once, lazily.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Device:
    key: str  # the TrainConfig.device string: "cpu", "cuda:0", "mps"
    label: str  # for the picker: "cuda:0 · NVIDIA A100 (75.2 GB free)"


def list_devices() -> list[Device]:
    cores = os.cpu_count() or 1
    devices = [Device("cpu", f"CPU ({cores} cores)")]
    try:
        import torch
    except ImportError:
        return devices
    try:
        for i in range(torch.cuda.device_count()):
            name = torch.cuda.get_device_name(i)
            try:
                free, total = torch.cuda.mem_get_info(i)
                mem = f" ({free / 2**30:.1f} of {total / 2**30:.1f} GB free)"
            except RuntimeError:  # a busy or broken device still gets listed
                mem = ""
            devices.append(Device(f"cuda:{i}", f"cuda:{i} · {name}{mem}"))
    except Exception as exc:  # noqa: BLE001 - a broken driver must not stop the app
        logger.warning("could not list CUDA devices: %s", exc)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append(Device("mps", "mps · Apple GPU"))
    return devices


def best_device(devices: list[Device]) -> Device:
    """The default choice: the first GPU if any, else the CPU."""
    return next((d for d in devices if d.key != "cpu"), devices[0])
