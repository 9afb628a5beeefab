"""Crash-safe file writes for run folders.

Every file in a run folder is replaced atomically: the new content goes to a
temporary file in the same folder (same filesystem, so ``os.replace`` is an
atomic rename), is fsynced, renamed over the target, and then the folder
itself is fsynced so the rename survives a power cut. A reader therefore sees
either the old file or the new one, never half of either.
"""

from __future__ import annotations

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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
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
