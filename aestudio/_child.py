"""Start `aestudio` child processes that import the installed package, whatever the cwd holds.

``python -m aestudio`` puts the current folder first on ``sys.path``. A user who cloned
the project into ``~/aestudio`` and launched the app from ``~`` had every export child
import that folder instead of the installed package ("cannot import name '__version__'
from 'aestudio'"). ``-P`` (Python 3.11+) leaves the current folder out; Python 3.10 has
no such flag, so there the child drops ``sys.path[0]`` itself before importing aestudio.
``PYTHONPATH`` is honoured either way (tests and worktrees rely on it).

Standard library only: the CLI, the zoo builder and the GUI's engine all use it.
"""

from __future__ import annotations

import sys

# Python 3.10: `-c` puts "" (the current folder) first on sys.path; drop it, then run the CLI.
_SAFE_MAIN_310 = "import sys; sys.path.pop(0); from aestudio.cli import main; sys.exit(main())"


def aestudio_command(*args: str) -> list[str]:
    """The argv of ``python -m aestudio ARGS`` with the current folder kept off the import path."""
    if sys.version_info >= (3, 11):
        return [sys.executable, "-P", "-m", "aestudio", *args]
    return [sys.executable, "-c", _SAFE_MAIN_310, *args]
