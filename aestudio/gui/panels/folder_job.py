"""A panel's folder job on a thread of its own, reporting through Qt signals.

The job itself is Qt-free (:func:`aestudio.explore.folder_job.run_folder`, the one
the CLI runs too); this wrapper runs it off the shared task pool (which it would
hold for minutes) and brings progress and the end back to the GUI thread. The
Segment panel uses it with :func:`aestudio.explore.segmentation.segment_work`.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from aestudio.explore.batch import plan_outputs
from aestudio.explore.folder_job import FolderReport, FolderWork, run_folder
from aestudio.explore.sessions import for_work, profile_for

if TYPE_CHECKING:
    from aestudio.inference.predictor import Predictor

logger = logging.getLogger(__name__)


class FolderJob(QObject):
    """Runs :func:`run_folder` on its own thread; progress and the end arrive in the GUI thread.

    When no training runs in this process, an ONNX Runtime ``predictor`` is swapped for its
    all-cores twin (``with_profile("batch")``, whose sessions are created in the worker,
    so the GUI thread never waits); otherwise it is used as is.
    """

    progress = Signal(int, int, str)  # done, total, last file name
    finished = Signal(object)  # FolderReport

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._active = False  # cleared by the worker just before it reports, so a new job can start at once
        self.report: FolderReport | None = None

    @property
    def running(self) -> bool:
        # Not just "the thread is alive": ``finished`` reaches the GUI while the thread may still be
        # returning, and a new folder started from that signal must not be refused as busy.
        return self._active and self._thread is not None and self._thread.is_alive()

    def start(self, predictor: Predictor, in_dir: Path, out_dir: Path, work: Callable[[Predictor], FolderWork],
              *, overwrite: bool = False) -> None:
        """Run ``work(predictor)`` on every image under ``in_dir`` (the predictor may be swapped first)."""
        if self.running:
            raise RuntimeError("a folder job is already running")
        self._cancel.clear()
        report = FolderReport(in_dir=Path(in_dir), out_dir=Path(out_dir))
        self.report = report
        self._active = True
        self._thread = threading.Thread(target=self._run, args=(predictor, report, work, overwrite),
                                        name="aestudio-folder-job", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float) -> bool:
        """Tests and shutdown only: wait for the thread."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _run(self, predictor: Predictor, report: FolderReport, work: Callable[[Predictor], FolderWork],
             overwrite: bool) -> None:
        t0 = time.perf_counter()
        try:
            report.profile = profile_for(heavy=True)
            chosen = for_work(predictor, heavy=True)  # the batch session (or bfloat16 twin) is made here
            if chosen.provider.startswith("torch bfloat16"):
                report.profile += ", bfloat16"
            job = work(chosen)
            report.verb, report.noun = job.verb, job.noun
            pairs = plan_outputs([report.in_dir], report.out_dir)
            report.total = len(pairs)
            self.progress.emit(0, report.total, "")
            run_folder(pairs, report, job, self._cancel, lambda r, name: self.progress.emit(r.done, r.total, name),
                       overwrite=overwrite)
        except Exception as exc:  # noqa: BLE001 - reported in the panel, never a dead thread
            report.error = f"{type(exc).__name__}: {exc}"
            logger.error("folder job failed\n%s", traceback.format_exc())
        report.seconds = time.perf_counter() - t0
        self._active = False
        self.finished.emit(report)
