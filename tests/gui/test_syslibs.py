"""The check before Qt starts: every missing library of the xcb plugin named, with the apt line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aestudio.cli import entry as cli
from aestudio.gui import syslibs

# The C/C++ runtime, compression libraries every system has, and Qt's own (shipped in the wheel).
_ALWAYS_THERE = ("libc.so", "libm.so", "libstdc++.so", "libgcc_s.so", "ld-linux", "libpthread.so", "libdl.so",
                 "librt.so", "libz.so", "libzstd.so", "libQt6", "libicu")


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("readelf") is None,
                    reason="reads the ELF dependencies of the installed Qt on Linux")
def test_the_table_covers_what_the_installed_xcb_plugin_links() -> None:
    import PySide6

    qt = Path(PySide6.__file__).parent / "Qt"
    files = [qt / "plugins" / "platforms" / "libqxcb.so", *(qt / "lib").glob("libQt6XcbQpa.so*"),
             *(qt / "lib").glob("libQt6Gui.so*"), *(qt / "lib").glob("libQt6DBus.so*")]
    files = [f for f in files if f.is_file() and not f.is_symlink()]
    if not files:
        pytest.skip("this PySide6 wheel has no xcb plugin")
    out = subprocess.run(["readelf", "-d", *map(str, files)], capture_output=True, text=True, check=True).stdout
    needed = {line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line}
    uncovered = sorted(n for n in needed if not n.startswith(_ALWAYS_THERE) and n not in syslibs.XCB_LIBRARIES)
    assert not uncovered, f"add these to syslibs.XCB_LIBRARIES with their package: {uncovered}"
    assert "libxcb-cursor.so.0" in needed  # the one a fresh Ubuntu lacks


def test_which_platforms_need_the_xcb_libraries() -> None:
    assert syslibs.uses_xcb({"DISPLAY": ":0"}, "linux")
    assert syslibs.uses_xcb({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "w"}, "linux")
    assert not syslibs.uses_xcb({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not syslibs.uses_xcb({"QT_QPA_PLATFORM": "wayland;xcb"}, "linux")
    assert not syslibs.uses_xcb({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not syslibs.uses_xcb({"QT_QPA_PLATFORM": "xcb"}, "darwin")
    assert not syslibs.uses_xcb({}, "win32")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sonames are Linux's")
def test_a_library_is_looked_up_as_the_loader_would() -> None:
    assert syslibs._loadable("libc.so.6")
    assert not syslibs._loadable("libaestudio-no-such-library.so.9")


def test_aestudio_names_every_missing_library_and_the_command_before_qt(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    absent = {"libxcb-cursor.so.0", "libxcb-icccm.so.4"}
    monkeypatch.setattr(syslibs, "_loadable", lambda so: so not in absent)
    import aestudio.gui.app as app

    monkeypatch.setattr(app, "main", lambda *a, **k: pytest.fail("Qt was started despite missing libraries"))
    assert cli.main([]) == cli.EXIT_MISSING_LIBRARIES
    err = capsys.readouterr().err
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4" in err
    assert "sudo apt-get install -y libxcb-cursor0 libxcb-icccm4\n" in err
    assert syslibs.APT_LINE in err and "QT_QPA_PLATFORM=offscreen" in err
    assert "Traceback" not in err


def test_no_check_offscreen(monkeypatch) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setattr(syslibs, "_loadable", lambda so: False)
    assert syslibs.check_before_qt() is None


def test_the_readme_apt_line_is_the_checks_own() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert syslibs.APT_LINE in readme
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme
