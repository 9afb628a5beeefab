"""Crash-safe file writes for run folders.

Every file in a run folder is replaced atomically: the new content goes to a
temporary file in the same folder (same filesystem, so ``os.replace`` is an
atomic rename), is fsynced, renamed over the target, and then the folder
itself is fsynced so the rename survives a power cut. A reader therefore sees
either the old file or the new one, never half of either.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

TEMP_PREFIX = ".tmp-"  # leftovers of a crash mid-write start with this; safe to delete


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entry table (the renames in it) to disk."""
    if os.name == "nt":  # Windows cannot open a directory; NTFS journals the rename itself
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        _atomic_write_bytes(path, data)
    except OSError as exc:
        better = explained(exc, path)
        if better is exc:
            raise
        raise better from exc


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Never leave a half-written temp file behind, whatever went wrong.
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


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
