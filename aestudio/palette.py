"""The class colours used everywhere: data panel, masks written to disk, overlays, bundles.

One palette, so a class shows in the same colour in every view (the data set's masks,
the Segment overlay, a bundle's model.json). Plain Python: any package may import it.
"""

from __future__ import annotations


def default_palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` distinct RGB colours; class 0 (usually background) is black."""
    base = [
        (0, 0, 0),
        (230, 25, 75),
        (60, 180, 75),
        (0, 130, 200),
        (255, 225, 25),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
        (210, 245, 60),
        (250, 190, 212),
        (0, 128, 128),
        (220, 190, 255),
        (170, 110, 40),
        (255, 250, 200),
        (128, 0, 0),
    ]
    out = base[:n]
    golden = 0.618033988749895  # golden-ratio hue steps stay distinct for many classes
    for i in range(len(out), n):
        h = (i * golden) % 1.0
        out.append(_hsv_to_rgb(h, 0.65, 0.95))
    return out


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return round(r * 255), round(g * 255), round(b * 255)
