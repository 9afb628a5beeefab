"""Turning a device string (``auto|cpu|cuda|cuda:N|mps``) into a torch device."""

from __future__ import annotations

import torch

from aestudio.errors import AestudioError


class DeviceError(AestudioError, ValueError):
    """The requested device does not exist here; the message says what does."""


def _available() -> str:
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    return ", ".join(names)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(spec: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; anything else must exist."""
    text = (spec or "auto").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise DeviceError(f"unknown device {spec!r}; use auto, cpu, cuda, cuda:N or mps (here: {_available()})") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {spec!r} requested but CUDA is not available; use --device cpu or auto (here: {_available()})")
        index = 0 if dev.index is None else dev.index
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {spec!r} does not exist; available: {_available()}")
        return torch.device("cuda", index)
    if dev.type == "mps":
        if not _mps_available():
            raise DeviceError(f"device {spec!r} requested but MPS is not available; use --device cpu or auto (here: {_available()})")
        return dev
    raise DeviceError(f"device {spec!r} is not supported; use auto, cpu, cuda, cuda:N or mps (here: {_available()})")


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    if dev.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"
