"""Where an export may write, what it may replace, and what it leaves behind.

* A bundle replaces only a bundle: a folder holding anything a bundle does not
  (a user's notes and photos, once) is refused, never emptied.
* Temporary folders carry the exporting process's id
  (``.NAME.export-PID-XXXX``); a later export removes those whose process is
  gone (a ``kill -9`` mid-export), never one still at work.
* Weights holding NaN or inf (a diverged run) are refused before exporting: the
  bundle would "pass" parity at 0.0 and output NaN for every image.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import torch

from aestudio.errors import AestudioError
from aestudio.inference.bundle import MODEL_JSON, read_bundle

log = logging.getLogger(__name__)

_STALE = re.compile(r"^\.(?P<name>.+)\.(export|old)-(?P<pid>\d+)-[0-9a-f]+$")


# Files a bundle may carry besides those model.json lists: the model card the zoo builder
# writes beside model.json (aestudio/zoo/build.py), regenerated after each export.
BUNDLE_COMPANIONS = ("README.md",)


class ExportTargetError(AestudioError, RuntimeError):
    """The export's target or weights are refused; the message names them and the fix."""


def temp_prefix(out_dir: Path, kind: str = "export") -> str:
    return f".{out_dir.name}.{kind}-{os.getpid()}-"


def check_target(out_dir: Path) -> None:
    """Refuse a target that is a file, or a folder holding anything but one bundle's files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportTargetError(f"{out_dir} is a file; choose a folder for the bundle with -o")
    if not out_dir.is_dir():
        return
    entries = sorted(p.name for p in out_dir.iterdir())
    if not entries:
        return
    if MODEL_JSON not in entries:
        raise ExportTargetError(f"{out_dir} exists and is not a bundle; refusing to overwrite it (it holds "
                                f"{len(entries)} entries, e.g. {entries[0]!r}). Choose a new or empty folder with -o")
    try:
        info = read_bundle(out_dir)
    except ValueError as exc:
        raise ExportTargetError(f"{out_dir} holds a model.json that is not a readable bundle ({exc}); "
                                "refusing to replace it. Choose a new or empty folder with -o") from None
    ours = {MODEL_JSON, *info.files.values(), *BUNDLE_COMPANIONS}
    foreign = [e for e in entries if e not in ours]
    if foreign:
        shown = ", ".join(repr(e) for e in foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise ExportTargetError(f"{out_dir} is a bundle but also holds {shown}, which an export did not write; "
                                "replacing the bundle would delete them. Move them out or choose another folder with -o")


def clean_stale(out_dir: Path) -> list[Path]:
    """Remove temporary folders of earlier exports to ``out_dir`` whose process has died."""
    parent = out_dir.parent
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for p in parent.iterdir():
        m = _STALE.match(p.name)
        if not m or m.group("name") != out_dir.name or not p.is_dir() or p.is_symlink():
            continue
        if _alive(int(m.group("pid"))):
            continue
        shutil.rmtree(p, ignore_errors=True)
        log.info("removed %s, left by an export that was killed", p)
        removed.append(p)
    return removed


def check_finite(state: Mapping[str, torch.Tensor], what: str) -> None:
    """Refuse weights with NaN or inf, naming the first tensor that has them."""
    for name, t in state.items():
        if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ExportTargetError(f"{what}: weight {name!r} holds NaN or infinite values (the run diverged); "
                                    "a bundle of it would output NaN for every image. Export earlier weights "
                                    "(--which best) or train again with a lower --lr")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True
