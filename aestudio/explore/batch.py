"""Folder jobs: which files a job reads and where each one's results go, for the CLI and the app alike.

One naming scheme: the output for ``IN/sub/a photo.png`` is ``OUT/sub/a_photo<suffix>``
(sub-folders mirrored, names made safe for every file system, ``a.png`` and ``a.jpg``
kept apart as ``a`` and ``a-2``). Earlier results inside an input folder are not
inputs, an output folder equal to an input folder is refused, and an output never
lands on an input.
"""

from __future__ import annotations

import re
from pathlib import Path

from aestudio.data.io import iter_image_files
from aestudio.errors import AestudioError

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class OutputPlanError(AestudioError, ValueError):
    """The outputs cannot go where asked (the message names the folder and the fix)."""


def safe_name(stem: str) -> str:
    name = _SAFE.sub("_", stem).lstrip("._") or "image"
    return name[:120]


def plan_outputs(inputs: list[Path], out_dir: Path) -> list[tuple[Path, Path]]:
    """(input file, output stem inside ``out_dir``) for every image under ``inputs`` (files or folders).

    Raises :class:`OutputPlanError` when ``out_dir`` is an input folder, ``FileNotFoundError``
    for a missing input. An empty list when there are no images.
    """
    out_res = Path(out_dir).resolve()
    pairs: list[tuple[Path, Path]] = []
    used: set[Path] = set()
    for root in inputs:
        if root.is_dir() and root.resolve() == out_res:
            raise OutputPlanError(f"-o {out_dir} is the input folder {root}; results would mix with the inputs: "
                                  f"choose another folder, e.g. -o {root / 'results'}")
        for f in iter_image_files([root]):
            if root.is_dir() and out_res in f.resolve().parents:  # earlier results inside an input folder
                continue
            rel = f.relative_to(root).parent if root.is_dir() else Path()
            parts = [safe_name(p) for p in rel.parts]
            stem = Path(out_dir).joinpath(*parts, safe_name(f.stem))
            n = 2
            while stem in used:  # a.png and a.jpg, or names equal once made safe: never share an output
                stem = stem.with_name(f"{safe_name(f.stem)}-{n}")
                n += 1
            used.add(stem)
            pairs.append((f, stem))
    return pairs


def output_path(stem: Path, suffix: str, out_dir: Path, inputs: set[Path]) -> Path:
    """``stem + suffix``, checked: inside ``out_dir`` and not one of the (resolved) ``inputs``."""
    path = stem.with_name(stem.name + suffix)
    res = path.resolve()
    if Path(out_dir).resolve() not in res.parents:
        raise OutputPlanError(f"{path}: would be written outside {out_dir}; refusing")
    if res in inputs:
        raise OutputPlanError(f"{path} is one of the inputs; choose another -o folder so inputs are never overwritten")
    return path
