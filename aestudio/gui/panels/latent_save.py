"""Saving from the Latent tab: the decoded image, a grid of random samples, the interpolation strip.

A mixin of :class:`~aestudio.gui.panels.latent.LatentPanel` (it uses the panel's
``model``, ``codes``, ``decoded``, ``interp``, ``tasks`` and ``notify``). Decoding
and writing run on the task pool; files are written atomically and an existing
file is replaced only when the save dialog asked the user first.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog

from aestudio.explore.latent_ops import grid_image, samples_grid, save_png
from aestudio.gui.messages import Level

SAMPLE_GRID = 64  # "Save samples": an 8 x 8 grid


class LatentSaving:
    """PNG exports; ``_last_dir`` remembers the folder chosen last."""

    _last_dir: Path = Path.home()

    def _ask_save(self, default_name: str, save) -> None:  # noqa: ANN001 - a bound save_* method
        path, _ = QFileDialog.getSaveFileName(self, "Save as PNG", str(self._last_dir / default_name),
                                              "PNG images (*.png)")
        if not path:
            return
        target = Path(path) if Path(path).suffix else Path(path).with_suffix(".png")
        self._last_dir = target.parent
        save(target, overwrite=target.exists())  # the dialog already asked before replacing a file

    def save_image(self, path: Path, *, overwrite: bool = False) -> None:
        """The decoded image, at the model's size."""
        if self.decoded.array is None:
            self.notify.emit(Level.INFO, "Nothing decoded yet to save.", "")
            return
        self._write(grid_image, self.decoded.array[None], path, overwrite)

    def save_samples(self, path: Path, *, overwrite: bool = False, n: int = SAMPLE_GRID, seed: int | None = None) -> None:
        """An 8x8 grid: prior samples for a VAE, else decoded codes of random data items."""
        if not self._usable():
            return
        codes = None if self._gaussian() or self.codes is None else self.codes.codes
        seed = int(self._rng.integers(2**31)) if seed is None else seed
        self.tasks.submit(samples_grid, self.model.predictor, n, seed, codes, path, overwrite,  # type: ignore[union-attr]
                          on_result=self._saved, on_error=partial(self._failed, f"Could not save {path}"))

    def save_strip(self, path: Path, *, overwrite: bool = False) -> None:
        if self.interp.frames is None:
            self.notify.emit(Level.INFO, "Choose two ends first: drop two images or use Current → A / B.", "")
            return
        self._write(partial(grid_image, nrow=len(self.interp.frames)), self.interp.frames, path, overwrite)

    def _write(self, make, images: np.ndarray, path: Path, overwrite: bool) -> None:  # noqa: ANN001
        self.tasks.submit(save_png, make, images.copy(), path, overwrite,
                          on_result=self._saved, on_error=partial(self._failed, f"Could not save {path}"))

    def _saved(self, path: Path) -> None:
        self.notify.emit(Level.INFO, f"Saved {path}", "")
