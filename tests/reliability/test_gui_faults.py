"""The app under faults: cancel mid-epoch, a diverged run explained, hostile data in paint paths, a signal soak.

Exceptions inside workers and inference calls are covered where the panels
are tested (tests/gui/test_gui_workers.py, test_gui_training.py,
test_panel_reconstruct.py, test_panel_noise_lab.py); docs/RELIABILITY.md
lists them. Anything that could abort the interpreter runs in a child process.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from rel_helpers import last_json, run_python  # noqa: E402

from aestudio.config import FinishReason, TrainConfig  # noqa: E402
from aestudio.training import loop, read_run  # noqa: E402
from aestudio.training.events import StepEnded  # noqa: E402


def _slow_steps(monkeypatch, seconds: float) -> dict:
    """Make every optimizer step take at least ``seconds`` and count them."""
    real = loop.train_step
    count = {"n": 0}

    def slow(trainer, x_in, target, w):
        count["n"] += 1
        time.sleep(seconds)
        return real(trainer, x_in, target, w)

    monkeypatch.setattr(loop, "train_step", slow)
    return count


def test_cancel_mid_epoch_ends_within_one_batch_finished_once_no_thread_left(qtbot, monkeypatch, tmp_path: Path) -> None:
    from aestudio.gui.workers import TrainWorker
    from aestudio.nets import default_config
    from aestudio.training import train

    count = _slow_steps(monkeypatch, 0.03)
    cfg = TrainConfig(epochs=5, batch_size=16, device="cpu")  # ~90 steps an epoch: the stop lands mid-epoch
    run_dir = tmp_path / "run"
    worker = TrainWorker(lambda stop, pause: train("dense_ae", default_config("dense_ae", latent_dim=4, hidden=16),
                                                   "digits", cfg, run_dir, stop=stop, pause=pause))
    events: list = []
    finished: list = []
    worker.events.connect(events.extend)
    worker.finished.connect(finished.append)
    worker.start()
    qtbot.waitUntil(lambda: sum(isinstance(e, StepEnded) for e in events) >= 5, timeout=60000)
    in_flight = count["n"]
    t0 = time.monotonic()
    worker.stop()
    qtbot.waitUntil(lambda: bool(finished), timeout=30000)
    latency = time.monotonic() - t0
    qtbot.wait(400)  # a second `finished` would arrive within a few drain ticks
    assert len(finished) == 1
    ev = finished[0]
    assert ev.reason is FinishReason.STOPPED
    assert count["n"] - in_flight <= 1  # at most the batch in flight ran after stop()
    assert worker.join(5) and not worker.running
    assert not [t for t in threading.enumerate() if t.name == "aestudio-train" and t.is_alive()]
    info = read_run(run_dir)
    assert info.status.value == "stopped" and info.step == ev.step and 0 < info.position["epoch_pos"] < 1437
    print(f"cancel: finished {latency * 1000:.0f} ms after stop(), {count['n'] - in_flight} step(s) after it")


@pytest.mark.slow
def test_a_diverged_run_says_why_in_the_window(window, qtbot, monkeypatch) -> None:
    from aestudio.gui.messages import Level

    real = loop.train_step

    def nan_at_step_3(trainer, x_in, target, w):
        loss, terms = real(trainer, x_in, target, w)
        return (float("nan"), {}) if trainer.step == 2 else (loss, terms)

    monkeypatch.setattr(loop, "train_step", nan_at_step_3)
    qtbot.waitUntil(lambda: window.data_panel.summary is not None, timeout=60000)
    panel = window.train_panel
    panel.net_form.set_values({"image_size": 16, "latent_dim": 8, "base_channels": 8})
    panel.train_form.set_values({"epochs": 2, "batch_size": 32})
    panel.set_device("cpu")
    finished: list = []
    panel.run_finished.connect(finished.append)
    panel.start()
    qtbot.waitUntil(lambda: bool(finished), timeout=120000)
    assert finished[0].reason is FinishReason.DIVERGED
    shown = [m for m in window.messages.history if "diverged" in m.text]
    assert shown and shown[0].level is Level.WARNING
    assert "loss became nan at step 3" in shown[0].text and "lower" in shown[0].text.lower()
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()


PAINT = """
import json, os
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import numpy as np
from aestudio.gui.app import application
from aestudio.gui.curves import CurvesView
from aestudio.gui.preview_grid import PreviewGrid
from aestudio.gui.images import array_to_qimage, mask_to_qimage
from aestudio.training.events import Preview
app = application()
view = CurvesView(); view.resize(600, 300); view.show()
for i, v in enumerate([np.nan, np.inf, -np.inf, -1.0, 0.0, 1e308, 1e-308, 0.5]):
    view.add_step(i, float(v))
view.add_epoch(1, float("nan"), {"mse": float("nan"), "psnr": float("inf"), "ssim": -0.0})
view.add_epoch(2, 1e300, {"mse": 0.0, "psnr": 1e309})
view.redraw(); app.processEvents(); view.grab()
grid = PreviewGrid(); grid.resize(400, 300); grid.show()
bad = [np.full((2, 1, 8, 8), np.nan, np.float32), np.full((2, 3, 8, 8), np.inf, np.float32),
       np.zeros((2, 1, 0, 8), np.float32), np.zeros((0, 1, 8, 8), np.float32), np.zeros((2, 7, 8, 8), np.float32),
       (np.arange(128, dtype=np.float32).reshape(2, 1, 8, 8) - 60) * 1e30]
for i, arr in enumerate(bad):
    try:
        grid.set_preview(Preview(inputs=arr, outputs=arr), epoch=i)
    except (ValueError, TypeError):
        pass
    app.processEvents(); grid.grab()
ok = 0
for arr in [np.full((8, 8), np.nan), np.full((8, 8, 3), -np.inf), np.zeros((8, 8, 4)), np.zeros((1, 1)), np.ones((8, 8), bool)]:
    try:
        array_to_qimage(np.asarray(arr)); ok += 1
    except (ValueError, TypeError):
        pass
for m in [np.full((8, 8), -5), np.full((8, 8), 10**6), np.zeros((8, 8, 2), int)]:
    try:
        mask_to_qimage(np.asarray(m)); ok += 1
    except (ValueError, TypeError):
        pass
print(json.dumps({"alive": True, "images": ok}))
"""


def test_hostile_values_in_paint_paths_never_abort() -> None:
    assert last_json(run_python(PAINT, timeout=120))["alive"] is True


SOAK = """
import json, os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QLabel
from PySide6.QtGui import QPixmap
import pyqtgraph as pg
from aestudio.gui.images import array_to_qimage

class Source(QObject):
    flag = Signal(bool)
    image = Signal(object)

app = QApplication([])
src = Source()
label = QLabel(); label.show()
plot = pg.PlotWidget(); item = pg.ImageItem(); plot.addItem(item); plot.show()
counts = {"flag": 0, "image": 0}
src.flag.connect(lambda v: counts.__setitem__("flag", counts["flag"] + 1))
def on_image(arr):
    counts["image"] += 1
    item.setImage(arr, autoLevels=False, levels=(0.0, 1.0))
    label.setPixmap(QPixmap.fromImage(array_to_qimage(arr)))
src.image.connect(on_image)
rng = np.random.default_rng(0)
frames = [rng.random((32, 32), dtype=np.float32) for _ in range(16)]
for i in range(1000):
    src.flag.emit(True)
app.processEvents()
before = sys.getrefcount(True)
for i in range(100_000):
    src.flag.emit(True)
    if i % 10 == 0:
        src.image.emit(frames[i % 16])
    if i % 500 == 0:
        app.processEvents()
app.processEvents()
after = sys.getrefcount(True)
print(json.dumps({"flags": counts["flag"], "images": counts["image"], "before": before, "after": after}))
"""


@pytest.mark.slow
def test_signal_soak_with_image_updates_keeps_the_refcount_of_true() -> None:
    res = last_json(run_python(SOAK, timeout=300))
    assert res["flags"] == 101_000 and res["images"] == 10_000
    assert abs(res["after"] - res["before"]) < 100, res


THUMBS = """
import json, os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from pathlib import Path
from PySide6.QtCore import Qt
from aestudio.gui.app import application
from aestudio.gui.data_panel import DataPanel
from aestudio.gui.workers import TaskRunner
app = application()
panel = DataPanel(TaskRunner())
panel.resize(700, 500); panel.show()

def pump(seconds, until=lambda: False):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        app.processEvents(); time.sleep(0.01)

out = {}
for name in sys.argv[1:]:
    folder = Path(name)
    panel.open_folder(folder)
    pump(120, lambda: panel.summary is not None and panel.spec == f"folder:{folder}")
    pump(1.5)
    panel.model.wait_idle(30000); pump(0.5)
    model = panel.model
    if folder.name == "corpus":  # ask for every thumbnail: hostile files must end as 'broken', not as a crash
        for row in range(model.rowCount()):
            model.data(model.index(row), Qt.ItemDataRole.DecorationRole)
        model.wait_idle(30000); pump(1.0)
    out[folder.name] = {"rows": model.rowCount(), "decoded": model.decoded_count(), "errors": len(model.errors),
                        "summary": panel.summary is not None}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_thumbnails_are_lazy_for_a_large_folder_and_survive_hostile_files(tmp_path: Path) -> None:
    import sys

    from image_corpus import build_corpus
    from rel_helpers import REPO

    sys.path.insert(0, str(REPO))
    from bench.benchmarks.large_folder import make_folder

    make_folder(tmp_path / "large", 5_000)
    build_corpus(tmp_path / "corpus")
    res = last_json(run_python(THUMBS, str(tmp_path / "large"), str(tmp_path / "corpus"), timeout=300))
    large, corpus = res["large"], res["corpus"]
    print(f"thumbnails: {large} / corpus {corpus}")
    assert large["rows"] == 5_000 and large["summary"]
    assert 0 < large["decoded"] < 500, large  # only what the view showed, not 5,000
    assert corpus["rows"] > 0 and corpus["decoded"] + corpus["errors"] == corpus["rows"], corpus
    assert corpus["errors"] > 0  # the broken files are marked, and the process lived to say so
