"""Placeholder: subcommands are added by their owners (see docs/DESIGN-notes.md)."""

import argparse


def add_parsers(sub: argparse._SubParsersAction) -> None:
    pass
