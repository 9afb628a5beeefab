"""Start-up (issue 16, bench ``launch``): the window paints before the tabs it does not show are built.

The first paint needs only the current tab: the other exploration panels, the Train tab's
plots and the libraries they bring (pyqtgraph, superqt, tifffile; torch and ONNX Runtime
even more so) come just after it. Measured in a new process, as sys.modules is per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import json, sys, time
    from PySide6.QtCore import QEvent, QObject, QTimer
    from aestudio.gui import app as gui_app

    qapp = gui_app.application()
    seen = {}
    holder = []

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):
            if not seen and event.type() == QEvent.Type.Paint and holder and obj is holder[0]:
                w = holder[0]
                seen["modules"] = sorted(m for m in HEAVY if m in sys.modules)
                seen["built"] = [p is not None for p in w._panels]
                seen["plot"] = w.train_panel.curves.plot_built
                seen["placeholder"] = w.train_panel.curves.placeholder_text()
                seen["controls"] = w.train_panel.train_form.isEnabled() and w.data_panel.isEnabled()
            return False

    spy = FirstPaint()
    qapp.installEventFilter(spy)
    window = gui_app.create_window([])
    holder.append(window)
    deadline = time.monotonic() + 60

    def poll():
        if seen and all(p is not None for p in window._panels) and window.train_panel.curves.plot_built:
            seen["later"] = True
            qapp.quit()
        elif time.monotonic() > deadline:
            qapp.quit()

    timer = QTimer(); timer.timeout.connect(poll); timer.start(20)
    qapp.exec()
    window.close()
    print("RESULT " + json.dumps(seen))
""")
HEAVY = ("torch", "torchvision", "onnxruntime", "sklearn", "scipy", "pyqtgraph", "superqt", "tifffile")


def _first_launch(tmp_path: Path) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "AESTUDIO_HOME": str(tmp_path / "home"), "AESTUDIO_FIRST_RUN": "0"}
    code = f"HEAVY = {HEAVY!r}\n" + SCRIPT
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, out.stderr[-2000:]
    return json.loads(line.removeprefix("RESULT "))


def test_the_first_paint_builds_only_the_shown_tab_and_the_rest_follows(tmp_path: Path) -> None:
    seen = _first_launch(tmp_path)
    assert seen["modules"] == [], f"imported before the first paint: {seen['modules']}"
    assert seen["built"] == [False] * 5  # the Train tab is shown; no exploration panel was built
    assert not seen["plot"]  # the Train tab's (empty) plots come just after the paint
    # ... and until then their place says what they will show, rather than being a blank box.
    assert "Training loss" in seen["placeholder"] and "once a run starts" in seen["placeholder"]
    assert seen["controls"]  # but its controls are there and enabled: a usable window, not a splash
    assert seen.get("later"), "the other tabs and the plots were not built after the first paint"


def test_a_panel_built_late_gets_the_active_model_and_the_data(qtbot, settings_dir, bundles) -> None:
    from aestudio.gui import engine
    from aestudio.gui.app import application
    from aestudio.gui.main_window import MainWindow
    from aestudio.gui.workspace import make_settings

    application()
    w = MainWindow(make_settings())  # never shown: nothing is built after a paint
    qtbot.addWidget(w)
    assert w._built_panels() == []
    w.data_panel.open_spec("digits")
    qtbot.waitUntil(lambda: w.data_panel.summary is not None, timeout=60_000)
    model = engine.load_model(bundles("conv_ae"))
    w.set_active_model(model)
    w.tabs.setCurrentIndex(2)  # the Noise lab: built when it becomes current
    assert [p.title for p in w._built_panels()] == ["Noise lab"]
    # ... and every other one, built now, is told the model and the data it missed
    assert all(p.model is model and p.data is w.data_panel.summary for p in w.explore)
    w.close()


QUIT_SCRIPT = textwrap.dedent("""
    import gc, json, threading
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from aestudio.gui import app as gui_app

    gui_app.application()
    # Quit 300 ms into the event loop: the window has painted and its background loads
    # (torch for the Train tab, the data set) are still running.
    QTimer.singleShot(300, lambda: [w.close() for w in QApplication.topLevelWidgets() if w.isVisible()])
    code = gui_app.main([])
    waiting = [t.name for t in threading.enumerate()
               if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    print("RESULT " + json.dumps({"code": code, "waiting": waiting, "frozen": gc.get_freeze_count()}))
""")


def test_quitting_while_torch_loads_does_not_wait_for_it(tmp_path: Path) -> None:
    # Ctrl+Q under Xvfb took ~9.5 s to end the process: the exit joined the pool threads still
    # importing torch, then the garbage collector went over all of torch's objects.
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "AESTUDIO_HOME": str(tmp_path / "home"), "AESTUDIO_FIRST_RUN": "0"}
    out = subprocess.run([sys.executable, "-c", QUIT_SCRIPT], env=env, capture_output=True, text=True, timeout=180)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, out.stderr[-2000:]
    result = json.loads(line.removeprefix("RESULT "))
    assert result["code"] == 0 and out.returncode == 0
    assert result["waiting"] == [], f"the exit waits for: {result['waiting']}"
    assert result["frozen"] > 0  # the exit's collection skips what was alive at the window's close
