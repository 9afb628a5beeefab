"""Open the real app in a subprocess, run its event loop ~1 s, close: exit code 0.

A hard abort (a Qt fatal, a segfault in a paint) fails this test instead of
killing the test session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SMOKE = textwrap.dedent(
    """
    import sys
    from PySide6.QtCore import QTimer
    from aestudio.gui.app import application, create_window
    app = application()
    window = create_window(sys.argv[1:])
    QTimer.singleShot(1000, window.close)
    code = app.exec()
    print("tabs:", [window.tabs.tabText(i) for i in range(window.tabs.count())])
    sys.exit(code)
    """
)


def test_app_opens_and_closes_in_a_subprocess(tmp_path: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", AESTUDIO_HOME=str(tmp_path / "ws"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    (tmp_path / "notes.txt").write_text("not an image")
    proc = subprocess.run([sys.executable, "-c", SMOKE, str(tmp_path / "notes.txt")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Train" in proc.stdout and "Latent" in proc.stdout
    assert (tmp_path / "config" / "aestudio" / "aestudio.ini").is_file()  # settings were saved on close
