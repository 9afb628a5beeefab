"""pyqtgraph with the studio's defaults, imported where a plot is built, not at start-up.

``import pyqtgraph`` costs 0.25 CPU s with a warm bytecode cache and 0.6 s on a first launch
(it imports every widget it has, and its RawImageWidget probes CUDA), so no module the window
needs for its first paint imports it at the top (bench ``launch``). Import ``pg`` from here:
the options below are set before the first plot exists, whichever tab builds it.
"""

from __future__ import annotations

import pyqtgraph as pg

pg.setConfigOptions(antialias=True, background="w", foreground="#333")

__all__ = ["pg"]
