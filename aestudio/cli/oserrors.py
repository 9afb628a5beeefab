"""One line for any OS error that reaches the command line: the path, what happened, the fix.

A read-only file system, a full disk or a missing permission can meet any
command (a run folder, a sample grid, an export); the CLI's top level turns
them all into one line here instead of a traceback.
"""

from __future__ import annotations

import errno

_FIXES = {
    errno.ENOSPC: "the disk is full; free some space or write somewhere else",
    errno.EDQUOT: "your disk quota is used up; free some space or write somewhere else",
    errno.EROFS: "that place is on a read-only file system; choose a writable folder (e.g. in your home folder)",
    errno.EACCES: "no permission; choose a folder you can write to, or fix its permissions",
    errno.EPERM: "no permission; choose a folder you can write to, or fix its permissions",
    errno.ENOENT: "no such file or folder; check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
    errno.EISDIR: "it is a folder; give a file name",
    errno.ELOOP: "too many levels of symbolic links (a link pointing to itself?); fix or remove the link",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter one",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) or process fewer files at once",
}


def describe(exc: OSError) -> str:
    """``PATH: what happened; the fix`` (the message as is when it already says more)."""
    text = str(exc)
    if text.startswith("cannot write ") or (exc.errno is None and text):
        return text  # already explained (aestudio.training.atomic.explained) or a library's own words
    path = exc.filename if exc.filename is not None else ""
    what = exc.strerror or text or type(exc).__name__
    fix = _FIXES.get(exc.errno or -1)
    head = f"{path}: {what}" if path else what
    return f"{head}; {fix}" if fix else head
