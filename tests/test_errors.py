"""One error base for the package (issue 15): every ``...Error`` aestudio defines is an AestudioError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import aestudio
from aestudio.errors import AestudioError


def _error_classes() -> list[type[BaseException]]:
    found = []
    for mod in pkgutil.walk_packages(aestudio.__path__, "aestudio."):
        if mod.name.endswith("__main__") or mod.name.startswith(("aestudio.gui", "aestudio.napari")):
            continue  # Qt front ends are checked by their own tests; the core and the CLI here
        module = importlib.import_module(mod.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == mod.name
                    and name.endswith("Error")):
                found.append(obj)
    return found


def test_every_error_of_the_package_is_an_aestudio_error() -> None:
    classes = _error_classes()
    assert len(classes) >= 15  # ImageLoadError, RunError, BundleError, ExportError, CliError, ...
    assert [c.__qualname__ for c in classes if not issubclass(c, AestudioError)] == []


def test_the_cli_prints_any_aestudio_error_as_one_line(tmp_path, capsys) -> None:
    from aestudio.cli import main

    assert main(["info", str(tmp_path)]) == 2  # RunError: not a run folder
    err = capsys.readouterr().err
    assert err.startswith("aestudio: error: ") and err.count("\n") == 1 and "run.json" in err
