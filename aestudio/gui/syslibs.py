"""Check, before Qt starts, that the system libraries of Qt's xcb (X11) plugin are there.

On a fresh Debian/Ubuntu the xcb plugin fails for want of ``libxcb-cursor0`` and, on
minimal systems, a dozen more; Qt's own message names one library at a time and then
aborts. This module tries to open each library the plugin links (by its soname, as the
dynamic loader will) and names every missing one with the one ``apt-get`` line that
installs them all. Standard library only, no Qt: it runs before the QApplication exists.
"""

from __future__ import annotations

import ctypes
import os
import sys

# What Qt 6.11's xcb plugin (libqxcb.so, libQt6XcbQpa.so) and libQt6Gui.so link outside Qt
# itself and the C/C++ runtime (readelf -d), with the
# Debian/Ubuntu package of each. tests/gui/test_syslibs.py checks this table against the
# installed plugin, so a Qt upgrade that links something new fails the test.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
}
APT_LINE = "sudo apt-get install -y " + " ".join(dict.fromkeys(XCB_LIBRARIES.values()))
# Platforms that need no X11 libraries (QT_QPA_PLATFORM may carry options after a colon).
_NON_XCB = ("offscreen", "minimal", "wayland", "vnc", "eglfs", "linuxfb", "vkkhrdisplay", "cocoa", "windows")


def uses_xcb(environ: dict[str, str] | None = None, platform: str | None = None) -> bool:
    """True when Qt will start its xcb plugin: Linux, and no other platform chosen or implied."""
    env = os.environ if environ is None else environ
    if not (platform or sys.platform).startswith("linux"):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip().lower()
    if chosen:
        return chosen == "xcb"
    # No choice made: Qt 6 prefers Wayland in a Wayland session (and falls back to xcb only if
    # that fails), so only an X11 session is sure to need these libraries.
    return not env.get("WAYLAND_DISPLAY")


def _loadable(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_xcb_libraries() -> list[tuple[str, str]]:
    """(soname, Debian package) of every library of the xcb plugin the loader cannot open."""
    return [(so, pkg) for so, pkg in XCB_LIBRARIES.items() if not _loadable(so)]


def missing_message(missing: list[tuple[str, str]]) -> str:
    names = ", ".join(so for so, _ in missing)
    packages = " ".join(dict.fromkeys(pkg for _, pkg in missing))
    return (
        f"aestudio: error: Qt's X11 (xcb) plugin needs system libraries that are missing: {names}.\n"
        f"Install them (Debian/Ubuntu) with:\n    sudo apt-get install -y {packages}\n"
        f"or all of them at once:\n    {APT_LINE}\n"
        "(other distributions: install the packages that provide these files; "
        "headless use: set QT_QPA_PLATFORM=offscreen)"
    )


def check_before_qt() -> str | None:
    """The message to print when Qt's xcb plugin would fail to load, else None (all present or not xcb)."""
    if not uses_xcb():
        return None
    missing = missing_xcb_libraries()
    return missing_message(missing) if missing else None
