"""The shipped model zoo: find its bundles, list them, and resolve short names.

Qt-free and torch-free (json and pathlib only, plus ``bundle`` for model.json),
so the ONNX Runtime-only path can use it. The zoo lives in the repository's
top-level ``models/`` folder; a wheel installs the same folder as the package
``aestudio_models`` (pyproject maps one onto the other). Lookup order:

1. ``$AESTUDIO_ZOO`` (a folder of bundles), if set;
2. ``models/`` beside the ``aestudio`` package in a source checkout;
3. the installed ``aestudio_models`` package.

Short names (``shapes-vae``) are bundle folder names. ``resolve_model(text)``
is the one place a ``--model`` argument becomes a path: an existing path wins,
then a zoo name.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from aestudio.errors import AestudioError
from aestudio.inference.bundle import MODEL_JSON, is_bundle

ZOO_ENV = "AESTUDIO_ZOO"
ZOO_PACKAGE = "aestudio_models"  # the wheel's name for models/
SAMPLES_PACKAGE = "aestudio_samples"  # the wheel's name for resources/samples/
CARD = "README.md"

# The model the app opens with on first run (no workspace settings yet).
DEFAULT_MODEL = "digits-vae"
# Which zoo model suits a task best when the active model does not fit a panel.
MODEL_FOR_TASK: dict[str, str] = {
    "denoise": "photo-denoiser",
    "segment": "shapes-seg-unet",
    "generate": "shapes-vae",
    "reconstruct": "digits-conv-ae",
}

log = logging.getLogger(__name__)


class ZooError(AestudioError, ValueError):
    """A zoo name that is not shipped; the message lists the names that are."""


@dataclass(frozen=True)
class ZooModel:
    name: str  # the short name (folder name), e.g. "shapes-vae"
    path: Path  # the bundle folder
    task: str  # model.json "task": reconstruct | denoise | generate | segment
    net: str  # family, e.g. "vae"
    title: str  # model.json "name"
    summary: str  # first paragraph of the card (README.md), one line
    in_channels: int


def _checkout_dir() -> Path | None:
    root = Path(__file__).resolve().parents[2]  # .../aestudio/zoo/catalog.py -> repo root
    folder = root / "models"
    return folder if folder.is_dir() and (root / "pyproject.toml").is_file() else None


def _package_dir(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        if Path(location).is_dir():
            return Path(location)
    return None


def zoo_dirs() -> list[Path]:
    """Folders that may hold zoo bundles, in lookup order (existing ones only, no duplicates)."""
    found: list[Path] = []
    env = os.environ.get(ZOO_ENV)
    for candidate in (Path(env) if env else None, _checkout_dir(), _package_dir(ZOO_PACKAGE)):
        if candidate is not None and candidate.is_dir() and candidate.resolve() not in found:
            found.append(candidate.resolve())
    return found


def _summary(card: Path) -> str:
    """The first prose paragraph of a card, on one line."""
    try:
        lines = card.read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    para: list[str] = []
    for line in lines:
        text = line.strip()
        if not text or text.startswith(("#", "|", "```", "<!--")):
            if para:
                break
            continue
        para.append(text)
    return " ".join(para)


def _entry(folder: Path) -> ZooModel | None:
    try:
        data = json.loads((folder / MODEL_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return ZooModel(
        name=folder.name,
        path=folder,
        task=str(data.get("task", "")),
        net=str(data.get("net", "")),
        title=str(data.get("name", folder.name)),
        summary=_summary(folder / CARD),
        in_channels=int(data.get("in_channels", 0) or 0),
    )


def list_models() -> list[ZooModel]:
    """Every shipped bundle, sorted by name; an earlier zoo folder wins on a name clash."""
    seen: dict[str, ZooModel] = {}
    for root in zoo_dirs():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if folder.name in seen or not is_bundle(folder):
                continue
            entry = _entry(folder)
            if entry is not None:
                seen[folder.name] = entry
    return sorted(seen.values(), key=lambda m: m.name)


def model_names() -> list[str]:
    return [m.name for m in list_models()]


def find_model(name: str) -> ZooModel:
    """The shipped model called ``name`` (case-insensitive); ``ZooError`` lists the names otherwise."""
    key = name.strip().lower()
    for model in list_models():
        if model.name.lower() == key:
            return model
    names = ", ".join(model_names()) or "none found (no models/ folder and no aestudio_models package)"
    raise ZooError(f"{name!r} is neither a file, a folder nor a shipped model; shipped models: {names}")


def resolve_model(text: str | os.PathLike[str]) -> Path:
    """A ``--model`` argument -> a path: an existing file or folder as given, else a zoo name."""
    path = Path(text)
    name = str(text)
    bare = "/" not in name and os.sep not in name and not name.lower().endswith(".onnx")
    if bare and name in model_names():
        # A bare shipped name means the shipped model, even when the current folder holds a
        # folder of that name (it silently replaced the model); write ./NAME for the folder.
        if path.exists():
            log.warning("%s: using the shipped model; write ./%s for the folder of that name here", name, name)
        return find_model(name).path
    if path.exists():
        return path
    if "/" not in name and os.sep not in name and not name.lower().endswith(".onnx"):
        return find_model(name).path  # a bare name: the zoo (ZooError lists what is shipped)
    raise ZooError(f"{text}: no such file or folder; pass a bundle folder, a .onnx file or a shipped model "
                   f"name ({', '.join(model_names()) or 'none shipped'})")


def model_for_task(task: str) -> ZooModel | None:
    """The shipped model suggested for a task, if it is there."""
    name = MODEL_FOR_TASK.get(str(task))
    if name is None:
        return None
    try:
        return find_model(name)
    except ZooError:
        return None


def default_model() -> ZooModel | None:
    """The model a first run opens with, or None when no zoo is installed."""
    try:
        return find_model(DEFAULT_MODEL)
    except ZooError:
        models = list_models()
        return models[0] if models else None


# ----------------------------------------------------------------- sample images


def samples_dir() -> Path | None:
    """The folder of sample images: ``resources/samples`` in a checkout, else the installed package."""
    root = Path(__file__).resolve().parents[2]
    folder = root / "resources" / "samples"
    if folder.is_dir() and (root / "pyproject.toml").is_file():
        return folder
    return _package_dir(SAMPLES_PACKAGE)


SAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def sample_images() -> list[Path]:
    """The shipped sample images, sorted by name (empty if none are installed)."""
    folder = samples_dir()
    if folder is None:
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SAMPLE_SUFFIXES)


# A shipped sample that looks like a data spec's images (its kind before the colon).
_SAMPLE_PREFIX = {"digits": "digit-", "mnist": "digit-", "fashion-mnist": "digit-", "shapes-seg": "shapes-seg-",
                  "shapes": "shapes-", "folder": "photo-", "pairs": "photo-"}


def sample_for_data(data_spec: str) -> Path | None:
    """The first shipped sample image like the images of ``data_spec`` (``digits`` -> a digit,
    ``folder:...`` -> a photo), or None. Used for a model's sample in napari and in packages."""
    prefix = _SAMPLE_PREFIX.get(str(data_spec).split(":", 1)[0])
    if prefix is None:
        return None
    for img in sample_images():
        if img.name.startswith(prefix) and not (prefix == "shapes-" and img.name.startswith("shapes-seg")):
            return img
    return None
