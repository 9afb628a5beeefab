"""Small helpers shared by the CLI subcommand modules (no heavy imports)."""

from __future__ import annotations

import logging


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2, no traceback."""


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
