"""Regenerate docs/screenshots/napari-plugin.png: the aestudio dock widget in a real napari.

Needs aestudio[napari] and a display with OpenGL (offscreen Qt has none):
    xvfb-run -a -s "-screen 0 1400x900x24" python scripts/napari_screenshot.py
Also checks the reader through napari's plug-in system (a bundle folder opens with its sample).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots" / "napari-plugin.png"


def _pump(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    import napari
    from PIL import Image
    from qtpy.QtWidgets import QApplication

    from aestudio.data.io import read_image
    from aestudio.zoo.catalog import find_model

    viewer = napari.Viewer(show=True)
    viewer.open(str(find_model("shapes-seg-unet").path), plugin="aestudio")
    print("reader opened:", [layer.name for layer in viewer.layers])
    viewer.layers.clear()
    img = read_image(ROOT / "resources" / "samples" / "photo-camera.png")[..., 0]
    noisy = np.clip(img + np.random.default_rng(0).normal(0, 0.1, img.shape), 0, 1).astype(np.float32)
    viewer.add_image(noisy, name="camera noisy")
    _, widget = viewer.window.add_plugin_dock_widget("aestudio", "Run model")
    widget.set_model(find_model("photo-denoiser").path)
    widget.run()
    app = QApplication.instance()
    end = time.monotonic() + 60
    while len(viewer.layers) < 2 and time.monotonic() < end:
        _pump(app, 0.05)
    viewer.grid.enabled = True
    viewer.window._qt_window.resize(1366, 768)
    _pump(app, 1.0)
    viewer.screenshot(str(OUT), canvas_only=False)
    Image.open(OUT).convert("RGB").quantize(colors=128).save(OUT, optimize=True)  # ~125 kB instead of ~500
    print("wrote", OUT)
    viewer.close()


if __name__ == "__main__":
    main()
