"""Rank by doubt does not leak: every ranking made its own SnapshotNets and never closed it, so each click
with no cached graph left one more graph-export child process running (each imports torch: ~0.3 GB)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from aestudio.data.io import write_image
from aestudio.gui.panels.label_jobs import SnapshotNets, rank_by_uncertainty
from aestudio.training.live import LiveConfig, LiveTrainer

CFG = LiveConfig(crop=32, batch_size=2, base_channels=4, depth=2, regions=0.0)


def _alive_children() -> list[psutil.Process]:
    return [c for c in psutil.Process().children(recursive=True) if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def _items(folder: Path, n: int = 3) -> list[tuple[str, Path, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        path = write_image(folder / f"im{i}.png", rng.random((24, 28)).astype(np.float32))
        items.append((path.name, path, folder / f"im{i}_mask.png"))  # no mask yet: every pixel unlabelled
    return items


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    """No exported live graph yet (a first ranking on a new machine): SnapshotNets starts an export child."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_repeated_ranking_leaves_no_child_process_running(tmp_path, empty_cache) -> None:
    items = _items(tmp_path / "images")
    snapshot = LiveTrainer(1, 2, CFG).snapshot()
    before = len(_alive_children())
    for _ in range(3):
        scores = rank_by_uncertainty(items, snapshot, 1, 2, CFG)
        assert sorted(k for k, _ in scores) == ["im0.png", "im1.png", "im2.png"]
        time.sleep(0.2)  # a killed child is reaped
        assert len(_alive_children()) == before, "a ranking left its graph export running"


def test_rankings_that_share_nets_share_one_export_and_close_it(tmp_path, empty_cache) -> None:
    items = _items(tmp_path / "images")
    snapshot = LiveTrainer(1, 2, CFG).snapshot()
    before = len(_alive_children())
    nets = SnapshotNets()
    first = rank_by_uncertainty(items, snapshot, 1, 2, CFG, nets=nets)
    second = rank_by_uncertainty(items, snapshot, 1, 2, CFG, nets=nets)
    assert first == second
    assert len(_alive_children()) <= before + 1  # one export for both, not one each
    nets.close()
    time.sleep(0.2)
    assert len(_alive_children()) == before


def test_the_label_tab_ranks_once_at_a_time_and_closes_its_nets(qtbot, tmp_path, empty_cache) -> None:
    from aestudio.data.project import LabelProject
    from tests.gui.guitools import label_panel

    gen = label_panel(qtbot)
    panel = next(gen)
    before = len(_alive_children())
    project = LabelProject.create(tmp_path / "proj")
    project.add_images([p for _, p, _ in _items(tmp_path / "src")])
    assert panel.open_project(project.root)
    panel.trainer = LiveTrainer(1, 2, CFG)  # a model to rank with (training it is not the point here)
    for _ in range(3):
        panel.rank_images()  # three quick clicks: while a ranking runs the others are ignored, not run beside it
    qtbot.waitUntil(lambda: panel.status.text().startswith("Most uncertain"), timeout=30_000)
    qtbot.wait(500)
    assert panel.ranking is not None and len(panel.ranking) == 3
    panel.rank_images()  # and a later click ranks again, with the same nets
    qtbot.waitUntil(lambda: panel.status.text().startswith("Most uncertain"), timeout=30_000)
    # At most two graph exports: the live prediction's (asked for ahead of the first Train) and the one
    # the rankings share (before, each ranking started its own: four here).
    assert len(_alive_children()) <= before + 2
    try:
        next(gen)  # the fixture's teardown: panel.shutdown()
    except StopIteration:
        pass
    time.sleep(0.2)
    assert len(_alive_children()) == before


def test_a_ranking_while_training_gives_the_worker_thread_its_thread_count_back(tmp_path, empty_cache) -> None:
    """A ranking made while training runs torch on one thread; the worker thread it ran on (the Label tab's
    shared task runner) must get its own count back, not stay on one thread until a later idle ranking."""
    import threading

    import torch

    items = _items(tmp_path / "images", n=1)
    snapshot = LiveTrainer(1, 2, CFG).snapshot()
    main_threads = torch.get_num_threads()
    seen: dict[str, int] = {}

    def worker() -> None:
        torch.set_num_threads(3)  # this worker's own count (not 1, so a leak shows)
        nets = SnapshotNets()
        try:
            rank_by_uncertainty(items, snapshot, 1, 2, CFG, training=True, nets=nets)
            seen["after"] = torch.get_num_threads()
        finally:
            nets.close()

    try:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(60)
    finally:
        torch.set_num_threads(main_threads)
    assert seen["after"] == 3
