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
import secrets
import stat
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
    ``.{name}.XXXX.tmp``). The file gets the permissions a plain ``open(path, "w")``
    would give: a new file 0o666 minus the umask, a replaced file keeps its mode
    (``mkstemp``'s private 0o600 made masks and run files unreadable to a second
    account). ``mode`` sets other permission bits before the move. The folder must exist.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise _exists_error(path)
    fd, tmp_name = _create_temp(path, prefix=f".{path.name}." if prefix is None else prefix, suffix=suffix)
    tmp = Path(tmp_name)
    if mode is None:
        mode = _replaced_mode(path)
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


def _create_temp(path: Path, *, prefix: str, suffix: str) -> tuple[int, str]:
    """An exclusive new file beside ``path``, created 0o666 so the kernel applies the umask.

    (Reading the umask means setting it, which races with other threads; creating the
    file with 0o666 lets the kernel apply it, as a plain write does.)
    """
    for _ in range(100):
        name = os.path.join(path.parent, f"{prefix}{secrets.token_hex(4)}{suffix}")
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temporary name after 100 tries")


def _replaced_mode(path: Path) -> int | None:
    """The permission bits of the file being replaced (a plain write keeps them), else None."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def make_temp_dir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """A new folder in ``parent`` with the permissions of a plain ``mkdir`` (0o777 minus the umask).

    ``tempfile.mkdtemp`` makes it 0o700; a bundle renamed into place from it stayed private.
    """
    for _ in range(100):
        folder = Path(parent) / f"{prefix}{secrets.token_hex(4)}"
        try:
            folder.mkdir(0o777)
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"{parent}: no free temporary name after 100 tries")


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


def unique_path(path: Path, sep: str = "_", *, folder: bool = False) -> Path:
    """``path``, or ``stem_2.png``, ``stem_3.png``… (``sep`` before the number), the first that does not
    exist yet. ``folder``: the number goes after the whole name (``run-20261207`` -> ``run-20261207-2``,
    a dot in a folder's name is no suffix)."""
    stem, suffix = (path.name, "") if folder else (path.stem, path.suffix)
    candidate, n = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{stem}{sep}{n}{suffix}")
        n += 1
    return candidate
