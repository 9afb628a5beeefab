"""The ``aestudio`` command: the GUI by default, plus headless subcommands.

This module is the composition root: it parses arguments, dispatches to the
subcommand modules (``aestudio.cli.train``, ``aestudio.cli.infer``), and turns expected errors
into one line on stderr and exit code 2. It starts the GUI by module name so
that the core never imports Qt (see docs/DESIGN-notes.md).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Sequence

from aestudio import __version__
from aestudio.cli.common import setup_logging
from aestudio.errors import AestudioError

_SUBCOMMAND_MODULES = ("aestudio.cli.train", "aestudio.cli.infer")
# When the `aestudio` command was launched, near enough (this module is among its first imports):
# `train --time-limit` counts from here, so loading torch and the data is part of the budget.
_LAUNCHED = time.monotonic()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aestudio",
        description="A studio for autoencoders on images. With no command (or `gui`), opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"aestudio {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    gui = sub.add_parser("gui", help="open the desktop studio (the default)")
    gui.add_argument("paths", nargs="*", help="images, folders, runs or bundles to open")
    gui.set_defaults(func=_run_gui)
    for name in _SUBCOMMAND_MODULES:
        importlib.import_module(name).add_parsers(sub)
    return parser


EXIT_MISSING_LIBRARIES = 3  # the system lacks libraries Qt's platform plugin needs


def _run_gui(args: argparse.Namespace) -> int:
    # Before PySide6 is imported: Qt would abort naming one missing system library; name them all.
    problem = importlib.import_module("aestudio.gui.syslibs").check_before_qt()
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_MISSING_LIBRARIES
    app = importlib.import_module("aestudio.gui.app")
    return int(app.main(list(args.paths)) or 0)


def _known_errors() -> tuple[type[BaseException], ...]:
    """Printed as one line with exit code 2: every error aestudio raises on purpose, and missing files."""
    return (AestudioError, FileNotFoundError, NotADirectoryError, PermissionError)


def main(argv: Sequence[str] | None = None) -> int:
    as_program = argv is None  # the `aestudio` command itself, not a caller in Python (tests)
    started = _LAUNCHED if as_program else time.monotonic()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    commands = {"gui", *parser._subparsers._group_actions[0].choices}  # type: ignore[union-attr]
    # `aestudio` and `aestudio PATH...` open the app; anything else is a subcommand.
    if not argv or (argv[0] not in commands and not argv[0].startswith("-")):
        argv = ["gui", *argv]
    args = parser.parse_args(argv)
    args.started_at = started  # time.monotonic() of the command's start (train's --time-limit counts from it)
    setup_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("aestudio: interrupted", file=sys.stderr)
        # Leave without the interpreter's teardown: an ONNX Runtime session whose call was
        # just terminated by Ctrl-C aborts the process when destroyed during teardown
        # (C++ "terminate called"). Every write is atomic, so nothing is left half-done.
        if as_program:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        return 130
    except OSError as exc:  # EROFS, ENOSPC, EACCES...: one line naming the path and the fix, from any command
        from aestudio.cli.oserrors import describe

        print(f"aestudio: error: {describe(exc)}", file=sys.stderr)
        return 2
    except _known_errors() as exc:
        print(f"aestudio: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
