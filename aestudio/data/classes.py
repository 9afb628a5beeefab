"""Class names and colours of a segmentation set: ``classes.json`` beside the masks.

A ``pairs:IMAGES,MASKS`` set (and every labelling project, whose masks folder
is such a set) may carry ``MASKS/classes.json``::

    {"classes": [{"name": "background", "color": [0, 0, 0]},
                 {"name": "cell", "color": [230, 25, 75]}]}

A plain list of names (``["background", "cell"]``) is accepted too. Index i of
the list is mask value i; 255 is always "unlabelled" and is not a class.
Standard library + numpy-free: the project and the CLI both read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aestudio._fs import atomic_write_text
from aestudio.errors import AestudioError

UNLABELLED = 255  # mask value of a pixel nobody labelled: counts in no loss and no metric
CLASSES_FILE = "classes.json"
MAX_CLASSES = 255  # values 0..254; 255 means unlabelled


class ClassesError(AestudioError, ValueError):
    """classes.json cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class ClassTable:
    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]

    def __len__(self) -> int:
        return len(self.names)


def _fix(path: Path) -> str:
    return (f"fix {path} (expected {{\"classes\": [{{\"name\": \"background\", \"color\": [0, 0, 0]}}, ...]}}) "
            "or delete it to use 'class 1', 'class 2', ...")


def parse_classes(data: Any, path: Path) -> ClassTable:
    """Validate the JSON value of a classes file (see the module docstring)."""
    from aestudio.palette import default_palette

    items = data.get("classes") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise ClassesError(f"{path}: no class list found; {_fix(path)}")
    if len(items) > MAX_CLASSES:
        raise ClassesError(f"{path}: {len(items)} classes; at most {MAX_CLASSES} fit in an index PNG (255 = unlabelled)")
    palette = default_palette(len(items))
    names: list[str] = []
    colors: list[tuple[int, int, int]] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            name, color = item, palette[i]
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            name, raw = item["name"], item.get("color", palette[i])
            if (not isinstance(raw, (list, tuple)) or len(raw) != 3
                    or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in raw)):
                raise ClassesError(f"{path}: class {i} ({name!r}) has colour {raw!r}; use three integers 0..255, "
                                   "e.g. [230, 25, 75]")
            color = (int(raw[0]), int(raw[1]), int(raw[2]))
        else:
            raise ClassesError(f"{path}: class {i} is {item!r}; {_fix(path)}")
        name = name.strip()
        if not name:
            raise ClassesError(f"{path}: class {i} has an empty name; give every class a name")
        if name in names:
            raise ClassesError(f"{path}: the name {name!r} is used twice (classes {names.index(name)} and {i}); "
                               "give every class its own name")
        names.append(name)
        colors.append(color)
    return ClassTable(tuple(names), tuple(colors))


def read_classes(folder: Path) -> ClassTable | None:
    """``folder/classes.json`` if present (None if not); raises :class:`ClassesError` when it is unusable."""
    path = Path(folder) / CLASSES_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClassesError(f"{path}: cannot be read ({exc}); {_fix(path)}") from None
    return parse_classes(data, path)


def classes_json(table: ClassTable) -> dict[str, Any]:
    return {"classes": [{"name": n, "color": list(c)} for n, c in zip(table.names, table.colors, strict=True)]}


def write_classes(folder: Path, table: ClassTable) -> Path:
    """Write ``folder/classes.json`` atomically."""
    return atomic_write_text(Path(folder) / CLASSES_FILE, json.dumps(classes_json(table), indent=2) + "\n")
