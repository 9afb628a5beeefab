"""Small helpers shared by the CLI subcommand modules (no heavy imports)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

from aestudio.errors import AestudioError


class CliError(AestudioError):
    """A user-facing error: printed as one line, exit code 2, no traceback."""


def as_flags(message: str, flags: dict[str, str]) -> str:
    """A config check's message (``ConvAEConfig: latent_dim is ...``) with the field named
    as the CLI flag that set it (``--latent-dim is ...``)."""
    head, sep, rest = message.partition(": ")
    if sep and head.endswith("Config") and " " not in head:
        message = rest
    for field, flag in flags.items():
        if message.startswith(field + " "):
            return flag + message[len(field):]
    return message


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


# argparse types: a per-command mistake is refused once, while parsing, never per image.


def bounded_int(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number in [lo, hi] (``aestudio.limits`` bounds)."""

    def parse(text: str) -> int:
        from aestudio.limits import LimitError, check_int

        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
        try:
            return check_int("the value", value, lo, hi)
        except LimitError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "whole number"
    return parse


def value_range(text: str) -> tuple[float, float]:
    """``--value-range LO,HI``: two finite numbers, LO < HI."""
    import math

    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r}: give two numbers, e.g. 0,1 or -1,1") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise argparse.ArgumentTypeError(f"{text[:40]!r}: give two finite numbers, low before high, e.g. 0,1 or -1,1")
    return lo, hi


def noise_spec(text: str) -> Any:
    """``--noise SPEC`` parsed and bounded (aestudio.validate) before any image is read."""
    from aestudio.config import parse_noise

    try:
        return parse_noise(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
