"""PySide6 6.12.0 on Python 3.11 drops a reference to True on every Python-side Signal.emit()
and aborts after a few thousand emits (DESIGN.md, Known pitfalls). Emit 100k times in a
subprocess, so an abort is a failed test rather than a dead test session, and check that
the refcount of True did not drift."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SOAK = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication, QObject, Signal

    class Source(QObject):
        flag = Signal(bool)
        payload = Signal(object)

    app = QCoreApplication([])
    src = Source()
    seen = [0]
    def on_flag(v):
        seen[0] += 1
    def on_payload(v):
        seen[0] += 1
    src.flag.connect(on_flag)
    src.payload.connect(on_payload)
    for _ in range(1000):  # warm up caches before taking the baseline
        src.flag.emit(True)
    before = sys.getrefcount(True)
    for i in range(50_000):
        src.flag.emit(True)
        src.payload.emit({"step": i, "done": True})
    after = sys.getrefcount(True)
    print(seen[0], before, after)
    """
)


def test_signal_emits_do_not_leak_references_to_true() -> None:
    proc = subprocess.run([sys.executable, "-c", SOAK], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"soak aborted (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
    seen, before, after = (int(v) for v in proc.stdout.split()[-3:])
    assert seen == 101_000
    assert abs(after - before) < 100, f"refcount of True drifted from {before} to {after}"
