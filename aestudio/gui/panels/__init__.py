"""The exploration tabs (Reconstruct, Noise lab, Segment, Label, Latent).

To add a tab: write ``panels/<name>.py`` with a subclass of
:class:`~aestudio.gui.panels.base.ExplorePanel` and add a :class:`PanelEntry` to
:data:`PANELS`. The window builds its tabs from this list, hands every panel the
active model and routes dropped images to the current tab.

An entry names its module instead of importing it: the window builds the current tab
before its first paint and the others just after (bench ``launch``), so a panel's
imports (pyqtgraph, superqt, its explore modules) are paid after the window shows.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from aestudio.gui.panels.base import ExplorePanel


@dataclass(frozen=True)
class PanelEntry:
    """One exploration tab: its title (the class's ``title``) and where its class lives."""

    title: str
    module: str
    class_name: str

    def load(self) -> type[ExplorePanel]:
        """Import the panel's module and return its class."""
        return getattr(importlib.import_module(self.module), self.class_name)


PANELS: tuple[PanelEntry, ...] = (
    PanelEntry("Reconstruct", "aestudio.gui.panels.reconstruct", "ReconstructPanel"),
    PanelEntry("Noise lab", "aestudio.gui.panels.noise_lab", "NoiseLabPanel"),
    PanelEntry("Segment", "aestudio.gui.panels.segment", "SegmentPanel"),
    PanelEntry("Label", "aestudio.gui.panels.label", "LabelPanel"),
    PanelEntry("Latent", "aestudio.gui.panels.latent", "LatentPanel"),
)


def explore_panels() -> list[type[ExplorePanel]]:
    """The exploration tab classes, in tab order (imports every panel module)."""
    return [entry.load() for entry in PANELS]


__all__ = ["PANELS", "ExplorePanel", "PanelEntry", "explore_panels"]
