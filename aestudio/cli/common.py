"""Small helpers shared by the CLI subcommand modules (no heavy imports)."""

from __future__ import annotations

import logging

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
