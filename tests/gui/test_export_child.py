"""Export children: the installed package whatever the cwd holds; cancel and window close end them.

Issue 16: launched from a folder holding an `aestudio/` folder (a clone in ~/aestudio,
the app started from ~), every export child imported that folder and failed; closing
the window while an export ran left an invisible process alive for ~50 s.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from guitools import message_texts

import aestudio
from aestudio import _child
from aestudio.gui import engine

POISON = "raise ImportError('the aestudio folder of the current directory was imported')\n"


@pytest.fixture
def poisoned_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder holds a package named aestudio that must never be imported."""
    here = tmp_path / "home"
    (here / "aestudio").mkdir(parents=True)
    (here / "aestudio" / "__init__.py").write_text(POISON)
    monkeypatch.chdir(here)
    return here


def test_a_child_imports_the_installed_package_not_the_cwd(poisoned_cwd: Path) -> None:
    # The plain `python -m aestudio` the app used to start imports the poisoned folder:
    plain = subprocess.run([sys.executable, "-m", "aestudio", "--version"], capture_output=True, text=True)
    assert plain.returncode != 0 and "current directory was imported" in plain.stderr
    proc = subprocess.run(_child.aestudio_command("--version"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert aestudio.__version__ in proc.stdout + proc.stderr


def test_a_real_export_from_a_poisoned_cwd_writes_a_bundle(poisoned_cwd: Path, tmp_path: Path) -> None:
    from aestudio.config import TrainConfig
    from aestudio.nets import default_config
    from aestudio.training import train

    run = tmp_path / "run"
    cfg = TrainConfig(epochs=1, batch_size=32, max_steps=2, device="cpu")
    events = list(train("dense_ae", default_config("dense_ae", latent_dim=4, hidden=16), "digits", cfg, run))
    assert events[-1].reason.value == "done"
    old = os.umask(0o022)
    try:
        out = engine.export_run(run)
    finally:
        os.umask(old)
    assert engine.is_bundle(out) and out == run / "bundle"
    # Files as a plain write makes them (issue 16: the bundle was 0700, model.json 0600).
    if os.name != "nt":
        assert stat.S_IMODE(out.stat().st_mode) == 0o755
        assert stat.S_IMODE((out / "model.json").stat().st_mode) == 0o644
        assert stat.S_IMODE((run / "run.json").stat().st_mode) == 0o666 & ~old


def _fake_export(monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    """Replace the export child by a small script (argv: export RUN -o OUT)."""
    script = "import sys, pathlib, signal, time\nout = pathlib.Path(sys.argv[-1])\n" + textwrap.dedent(body)
    monkeypatch.setattr(_child, "aestudio_command", lambda *args: [sys.executable, "-c", script, *args])


def _wait(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_cancel_ends_a_stubborn_child_and_removes_its_temp_folder(tmp_path: Path, monkeypatch) -> None:
    # A child that ignores Ctrl-C (stuck in native code) is killed after the grace time,
    # and the unfinished bundle it was writing is removed: nothing half-written stays.
    _fake_export(monkeypatch, """
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        (out.parent / f".{out.name}.export-abc").mkdir()
        (out.parent / "started").touch()
        time.sleep(120)
    """)
    run = tmp_path / "run"
    run.mkdir()
    errors: list[BaseException] = []

    def export() -> None:
        try:
            engine.export_run(run)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    import threading

    t = threading.Thread(target=export)
    t.start()
    _wait(lambda: (run / "started").exists())
    assert [r for r, _ in engine.running_exports()] == [run]
    start = time.monotonic()
    assert engine.cancel_exports(timeout=0.5) == 1
    t.join(10)
    assert not t.is_alive() and time.monotonic() - start < 10
    assert len(errors) == 1 and isinstance(errors[0], engine.ExportCancelled)
    assert engine.running_exports() == []
    assert sorted(p.name for p in run.iterdir()) == ["started"]  # no bundle, no temp folder


def test_a_failed_export_carries_the_childs_error_as_details(tmp_path: Path, monkeypatch) -> None:
    _fake_export(monkeypatch, """
        print("Traceback (most recent call last):\\n  File 'exporter.py'\\nValueError: boom in the child", file=sys.stderr)
        print("aestudio: error: boom in the child", file=sys.stderr)
        sys.exit(2)
    """)
    with pytest.raises(engine.ExportFailed) as info:
        engine.export_run(tmp_path / "run")
    assert str(info.value).endswith("failed: boom in the child")
    assert "ValueError: boom in the child" in info.value.details


def test_the_window_shows_a_running_export_and_closing_it_ends_the_child(window, qtbot, tmp_path, monkeypatch) -> None:
    _fake_export(monkeypatch, """
        try:
            tmp = out.parent / f".{out.name}.export-abc"
            tmp.mkdir()
            time.sleep(120)
        except KeyboardInterrupt:  # what the real exporter does: remove its unfinished bundle
            tmp.rmdir()
            sys.exit(130)
    """)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    window.export_to(run, tmp_path / "copy")
    qtbot.waitUntil(lambda: window.export_status.isVisible(), timeout=30000)
    assert "Exporting run" in window.export_status.label.text()
    # The status stays for as long as the child runs (it used to fade after 10 s).
    qtbot.wait(1200)
    assert window.export_status.isVisible()
    proc = engine._exports[0].proc
    window.close()
    assert proc.poll() is not None, "the export child outlived the window"
    assert engine.running_exports() == []
    assert not any(p.name.startswith(".copy.export-") for p in tmp_path.iterdir())
    assert not (tmp_path / "copy").exists()


def test_cancel_button_ends_the_export_with_an_info_message(window, qtbot, tmp_path, monkeypatch) -> None:
    _fake_export(monkeypatch, "time.sleep(120)\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    window.export_to(run, tmp_path / "copy")
    qtbot.waitUntil(lambda: window.export_status.isVisible(), timeout=30000)
    window.export_status.cancel_button.click()
    qtbot.waitUntil(lambda: any("cancelled" in t for t in message_texts(window)), timeout=30000)
    qtbot.waitUntil(lambda: not window.export_status.isVisible(), timeout=5000)
    assert not any(m.level.value == "error" for m in window.messages.history)


def test_an_export_queued_when_the_window_closes_never_starts(window, qtbot, tmp_path, monkeypatch) -> None:
    # A load waiting on the pool may reach the child's start just after the window closed.
    _fake_export(monkeypatch, "(out.parent / 'started').touch()\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    window.close()
    with pytest.raises(engine.ExportCancelled):
        engine.load_model(run, closing=window._closed)
    assert not (run / "started").exists() and engine.running_exports() == []
    engine.export_run(run)  # without a closed window's event, exports run as before
    assert (run / "started").exists()
