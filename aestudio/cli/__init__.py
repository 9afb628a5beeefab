"""The ``aestudio`` command (console script ``aestudio.cli:main``): a thin front end over the core.

``entry`` parses and dispatches; ``train`` and ``infer`` hold the subcommands;
``common`` the shared error type and logging set-up.
"""

from aestudio.cli.entry import main

__all__ = ["main"]
