"""The package's one error base: every error aestudio raises on purpose is an :class:`AestudioError`.

Each module's error (``ImageLoadError``, ``RunError``, ``BundleError``, ``ExportError``,
``CliError``...) subclasses it, and keeps the built-in base it had (most are
``ValueError``), so ``except AestudioError`` catches "a user-facing problem with a
message that names the file and the fix" (the CLI prints it as one line, exit 2) and
older ``except ValueError`` clauses still work. Plain Python: any package may import it.
"""

from __future__ import annotations


class AestudioError(Exception):
    """An expected failure; ``str(exc)`` is one line naming what went wrong and the fix."""


class Cancelled(Exception):
    """A background job noticed it was cancelled (the model, data or settings changed meanwhile).

    Not an :class:`AestudioError` on purpose: nothing failed and nothing is reported, so a
    handler of user-facing errors never takes a cancellation for one."""
