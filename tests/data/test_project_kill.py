"""kill -9 while strokes are being saved: the mask on disk is always a complete earlier state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from aestudio.data.io import read_mask, write_image
from aestudio.data.project import LabelProject

PAINTER = textwrap.dedent("""
    import sys, time
    from aestudio.data.project import LabelProject, MaskSaver
    project = LabelProject.open(sys.argv[1])
    saver = MaskSaver(project)
    k = 0
    while True:  # stroke k paints row k with class 1, as fast as it can; the parent kills us
        s = project.stroke(0, 1)
        s.dab(k % 200, 0, 0.5)
        s.dab(k % 200, 199, 0.5)
        s.end()
        saver.submit(0)
        k += 1
        if k == 3:
            print("painting", flush=True)
""")


def test_kill_during_saves_leaves_a_whole_mask(tmp_path) -> None:
    write_image(tmp_path / "big.png", np.zeros((200, 200, 3), np.float32))
    project = LabelProject.create(tmp_path / "proj", ["bg", "fg"])
    project.add_images([tmp_path / "big.png"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", PAINTER, str(project.root)], stdout=subprocess.PIPE, text=True,
                            env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "painting"
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    mask = read_mask(project.items[0].mask_path)  # never half-written: it decodes
    painted_rows = np.flatnonzero((mask == 1).all(axis=1))
    # A prefix of the strokes: rows 0..n-1 fully painted, nothing else touched.
    assert len(painted_rows) > 0 and np.array_equal(painted_rows, np.arange(len(painted_rows)))
    assert set(np.unique(mask[len(painted_rows):])) <= {255}
    leftovers = [p.name for p in project.masks_dir.iterdir() if p.name.startswith(".")]
    reopened = LabelProject.open(project.root)
    assert reopened.items[0].problem is None, leftovers
