"""Crash-safe file writes for run folders.

Every file in a run folder is replaced atomically with :mod:`aestudio._fs`
(temp file in the same folder, fsync, ``os.replace``, fsync of the folder), so
a reader sees either the old file or the new one, never half of either. This
module adds what run folders need on top: temp names a resume can recognise
(:data:`TEMP_PREFIX`), write errors that name the file and the fix, JSON
without NaN, and fsynced appends for the metrics log.
"""

from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path
from typing import Any

from aestudio import _fs
from aestudio._fs import fsync_dir as fsync_dir  # re-exported: runs, checkpoint

TEMP_PREFIX = ".tmp-"  # leftovers of a crash mid-write start with this; safe to delete


_WRITE_ERRORS = {
    errno.ENOSPC: "the disk is full; free some space and resume",
    errno.EDQUOT: "the disk quota is exhausted; free some space and resume",
    errno.EROFS: "the folder is on a read-only file system; choose a writable folder",
    errno.EACCES: "no permission to write there; choose a writable folder or fix its permissions",
    errno.EPERM: "no permission to write there; choose a writable folder or fix its permissions",
}


def explained(exc: OSError, path: Path) -> OSError:
    """The same OSError (errno kept) with a message naming the file, the fix, and what is safe."""
    hint = _WRITE_ERRORS.get(exc.errno or -1)
    if hint is None:
        return exc
    new = type(exc)(exc.errno, f"cannot write {path}: {exc.strerror or exc}; {hint}. "
                    "The previous version of the file is intact")
    return new


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    try:
        _fs.atomic_write_bytes(path, data, prefix=TEMP_PREFIX + path.name + ".", suffix="")
    except OSError as exc:
        better = explained(exc, path)
        if better is exc:
            raise
        raise better from exc


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def finite_json(obj: Any) -> Any:
    """``obj`` with non-finite floats replaced by None: JSON has no NaN/Infinity,
    and other tools reading run folders would choke on Python's extension."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(finite_json(obj), indent=2, allow_nan=False) + "\n")


def append_line(path: Path, line: str) -> None:
    """Append one line and fsync it (for JSONL logs; a torn last line is skipped on read)."""
    if "\n" in line:
        raise ValueError("append_line takes a single line without newlines")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())
