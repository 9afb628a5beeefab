"""The window icon is package data: found through importlib.resources, so a wheel has it too."""

from __future__ import annotations

from importlib.resources import files

from aestudio.gui.style import window_icon


def test_the_window_icon_resolves_from_the_package(qapp) -> None:
    resource = files("aestudio.gui") / "resources" / "aestudio.svg"
    assert resource.is_file() and b"<svg" in resource.read_bytes()
    icon = window_icon()
    assert not icon.isNull()
    assert not icon.pixmap(32, 32).isNull()  # the SVG really renders, not just a file name
