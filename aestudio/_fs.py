"""Crash-safe file writes shared by the whole program (standard library only).

The new content goes to a temporary file in the target's folder (same
filesystem, so ``os.replace`` is an atomic rename), is flushed and fsynced,
moved over the target, and then the folder itself is fsynced so the rename
survives a power cut. A reader sees either the old file or the new one, never
half of either; a failure at any step removes the temporary file and leaves
the old file as it was.

No torch, no Qt, no third-party import: the ONNX Runtime predictor and the
headless tools depend on this module.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

Writer = Callable[[IO[bytes]], object]


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entry table (the renames in it) to disk."""
    if os.name == "nt":  # Windows cannot open a directory; NTFS journals the rename itself
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exists_error(path: Path) -> FileExistsError:
    return FileExistsError(f"{path}: already exists; pass overwrite=True or choose another name")


def atomic_write(
    path: str | os.PathLike[str],
    writer: Writer,
    *,
    overwrite: bool = True,
    prefix: str | None = None,
    suffix: str = ".tmp",
    mode: int | None = None,
) -> Path:
    """Write ``path`` by calling ``writer(fh)`` on a binary temp file, then move it into place.

    ``overwrite=False`` refuses an existing target (checked before writing and
    again, atomically where the filesystem has hard links, when moving into
    place). ``prefix``/``suffix`` name the temp file (default
    ``.{name}.XXXX.tmp``); ``mode`` sets its permission bits before the move
    (``mkstemp`` makes it private, 0o600). The folder must exist.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise _exists_error(path)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}." if prefix is None else prefix, suffix=suffix, dir=path.parent
    )
    tmp = Path(tmp_name)
    try:
        os.close(fd)
        with open(tmp, "wb") as fh:  # by name: some writers (tifffile) want a named file object
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_no_clobber(tmp, path)
        fsync_dir(path.parent)
    finally:
        # Never leave a temp file behind, whatever went wrong (after a successful
        # replace it is already gone; after a hard link it is the second name).
        tmp.unlink(missing_ok=True)
    return path


def _link_no_clobber(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path`` failing if ``path`` appeared meanwhile (hard link is atomic)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError:  # filesystems without hard links: the exists() check before must do
        if path.exists():
            raise _exists_error(path) from None
        os.replace(tmp, path)


def atomic_write_bytes(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    overwrite: bool = True,
    prefix: str | None = None,
    suffix: str = ".tmp",
    mode: int | None = None,
) -> Path:
    """Replace ``path`` with ``data`` atomically (options as for :func:`atomic_write`)."""
    return atomic_write(
        path, lambda fh: fh.write(data), overwrite=overwrite, prefix=prefix, suffix=suffix, mode=mode
    )


def atomic_write_text(path: str | os.PathLike[str], text: str, **options: Any) -> Path:
    """Replace ``path`` with ``text`` encoded as UTF-8, atomically (options as for :func:`atomic_write`)."""
    return atomic_write_bytes(path, text.encode("utf-8"), **options)
