"""The exploration tabs (Reconstruct, Noise lab, Segment, Label, Latent).

To fill a tab: write ``panels/<name>.py`` with a subclass of
:class:`~aestudio.gui.panels.base.ExplorePanel` and put it in :func:`explore_panels`
in place of its placeholder. The window builds its tabs from this list, hands
every panel the active model and routes dropped images to the current tab.
"""

from __future__ import annotations

from aestudio.gui.panels.base import ExplorePanel
from aestudio.gui.panels.label import LabelPanel
from aestudio.gui.panels.latent import LatentPanel
from aestudio.gui.panels.noise_lab import NoiseLabPanel
from aestudio.gui.panels.reconstruct import ReconstructPanel
from aestudio.gui.panels.segment import SegmentPanel


def explore_panels() -> list[type[ExplorePanel]]:
    """The exploration tab classes, in tab order."""
    return [ReconstructPanel, NoiseLabPanel, SegmentPanel, LabelPanel, LatentPanel]


__all__ = ["ExplorePanel", "explore_panels"]
