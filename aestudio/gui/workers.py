"""Background work for the GUI: the training generator in a thread, and one-shot tasks.

The core yields plain events from ``fit()``; :class:`TrainWorker` runs that
generator in a Python thread and appends every event to a lock-free deque. A
QTimer in the GUI thread drains the deque at most ``DRAIN_MS`` apart and emits
one batch, so a fast run (thousands of steps a second) costs the event loop ten
small updates a second instead of one queued signal per step, and the GUI thread
never waits on the worker. Stop and pause are ``threading.Event`` objects the
core polls every step.

:class:`TaskRunner` runs short jobs (export, loading a model, opening a dataset,
checking dropped images) on a small thread pool and calls back in the GUI thread.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from PySide6.QtCore import QObject, QTimer, Signal

from aestudio.config import FinishReason
from aestudio.explore.sessions import count_run
from aestudio.training.events import Event, RunStarted, StepEnded, TrainFinished

logger = logging.getLogger(__name__)
TRAIN_THREAD_NAME = "aestudio-train"

DRAIN_MS = 100  # ~10 UI updates a second: smooth enough to read, cheap for the event loop

EventSource = Callable[[threading.Event, threading.Event], Iterator[Event]]


R = TypeVar("R")  # what a submitted job returns, and its callback receives


class TrainWorker(QObject):
    """Drives one training generator in a thread; emits event batches in the GUI thread."""

    events = Signal(list)  # list[Event], in order, never empty
    finished = Signal(object)  # the TrainFinished that ended the run (synthesised on a crash)

    def __init__(self, source: EventSource, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._source = source
        self._stop = threading.Event()
        self._pause = threading.Event()
        self._queue: collections.deque[Event] = collections.deque()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_MS)
        self._timer.timeout.connect(self._drain)
        self._final: TrainFinished | None = None

    # -------------------------------------------------------------- control (GUI thread)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a TrainWorker runs once; create a new one")
        self._thread = threading.Thread(target=self._run, name=TRAIN_THREAD_NAME, daemon=True)
        count_run(+1)  # before the thread starts, so a panel asking right after sees the run
        self._thread.start()
        self._timer.start()

    def stop(self) -> None:
        """Ask the run to end after the current step (it checkpoints on the way out)."""
        self._stop.set()
        self._pause.clear()  # a paused run must wake up to see the stop

    def set_paused(self, paused: bool) -> None:
        if paused:
            self._pause.set()
        else:
            self._pause.clear()

    @property
    def paused(self) -> bool:
        return self._pause.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    def join(self, timeout: float) -> bool:
        """Only for shutdown: wait up to ``timeout`` s for the thread; True when it ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -------------------------------------------------------------- worker thread

    def _run(self) -> None:
        last_started: RunStarted | None = None
        last_step: StepEnded | None = None
        finished = False
        try:
            for event in self._source(self._stop, self._pause):
                if isinstance(event, RunStarted):
                    last_started = event
                elif isinstance(event, StepEnded):
                    last_step = event
                elif isinstance(event, TrainFinished):
                    finished = True
                self._queue.append(event)
        except BaseException as exc:  # noqa: BLE001 - any failure must reach the UI, not kill the thread silently
            logger.exception("training worker failed")
            self._queue.append(TrainFinished(
                reason=FinishReason.FAILED,
                message=f"{type(exc).__name__}: {exc}",
                run_dir=last_started.run_dir if last_started else None,
                epoch=last_step.epoch if last_step else 0,
                step=last_step.step if last_step else 0,
                details=traceback.format_exc(),
            ))
            finished = True
        finally:
            if not finished:
                # The generator ended without its final event: report what we know.
                self._queue.append(TrainFinished(
                    reason=FinishReason.STOPPED if self._stop.is_set() else FinishReason.DONE,
                    message="training ended",
                    run_dir=last_started.run_dir if last_started else None,
                    epoch=last_step.epoch + 1 if last_step else 0,
                    step=last_step.step if last_step else 0,
                ))
            count_run(-1)
            self._done.set()

    # -------------------------------------------------------------- GUI thread

    def _drain(self) -> None:
        done = self._done.is_set()  # read before draining so no late event is lost
        batch: list[Event] = []
        while self._queue:
            batch.append(self._queue.popleft())
        if batch:
            for event in batch:
                if isinstance(event, TrainFinished):
                    self._final = event
            self.events.emit(batch)
        if done and not self._queue:
            self._timer.stop()
            final = self._final or TrainFinished(FinishReason.DONE, "training ended", None, 0, 0)
            self.finished.emit(final)


@dataclass(frozen=True)
class _Job:
    """One call queued on a :class:`_DaemonPool`, closed over its function and typed future."""

    run: Callable[[], None]  # calls the function; sets the future's result or exception
    cancel: Callable[[], bool]  # the future's cancel (a job not yet started)


class _DaemonPool:
    """A few daemon threads over a queue, for jobs that only read (load torch, open a data set).

    A ThreadPoolExecutor's threads are joined when the interpreter exits, so quitting while
    the window's background loads were still importing torch kept the process alive for
    ~10 s after its window closed. Nothing is lost by not waiting for a read.
    """

    def __init__(self, max_workers: int, name: str) -> None:
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._max = max_workers
        self._name = name
        self._threads: list[threading.Thread] = []

    def submit(self, fn: Callable[..., R], *args: object) -> Future[R]:
        future: Future[R] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - delivered to the GUI thread through the future
                future.set_exception(exc)

        self._queue.put(_Job(run, future.cancel))
        if len(self._threads) < self._max:
            thread = threading.Thread(target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return future

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            job.run()

    def shutdown(self, wait: bool = False, cancel_futures: bool = True) -> None:  # noqa: ARG002 - never waits
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None and cancel_futures:
                item.cancel()
        for _ in self._threads:
            self._queue.put(None)


class TaskRunner(QObject):
    """Run callables on a small pool; deliver results or errors in the GUI thread.

    ``reads_only=True``: the jobs write nothing (loading torch, opening a data set, checking
    images), so the process may exit without waiting for one in flight. Jobs that write
    files (exports, masks, saved images) use a default runner, whose jobs finish before exit.
    """

    _completed = Signal(object)  # a job's delivery (Callable[[], None]), emitted from the pool thread, run queued

    def __init__(self, parent: QObject | None = None, max_workers: int = 2, *, reads_only: bool = False) -> None:
        super().__init__(parent)
        self._pool: ThreadPoolExecutor | _DaemonPool = (
            _DaemonPool(max_workers, "aestudio-read") if reads_only
            else ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="aestudio-task"))
        # Jobs of every result type wait here side by side, each as the closure that hands its own
        # future's result to its own callbacks (typed per submit, so one set holds them all).
        self._pending: set[Callable[[], None]] = set()
        self._completed.connect(self._deliver)
        self._closed = False

    def submit(self, fn: Callable[..., R], *args: object,
               on_result: Callable[[R], None],
               on_error: Callable[[BaseException, str], None] | None = None) -> Future[R] | None:
        """Run ``fn(*args)`` on the pool; ``None`` once shut down (the window is closing)."""
        if self._closed:
            logger.debug("task %r dropped: the runner is shut down", fn)
            return None
        future: Future[R] = self._pool.submit(fn, *args)

        def deliver() -> None:
            if future.cancelled():
                return
            exc = future.exception()
            if exc is None:
                on_result(future.result())
                return
            details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            if on_error is not None:
                on_error(exc, details)
            else:
                logger.error("background task failed: %s\n%s", exc, details)

        self._pending.add(deliver)
        future.add_done_callback(lambda _f: self._completed.emit(deliver))
        return future

    @property
    def pending(self) -> int:
        return len(self._pending)

    def shutdown(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pending.clear()

    def _deliver(self, deliver: Callable[[], None]) -> None:
        """In the GUI thread: hand one finished job's result over, unless the runner was shut down since."""
        if deliver in self._pending:
            self._pending.discard(deliver)
            deliver()


def describe_error(exc: BaseException, path: Path | None = None) -> str:
    """One readable line; the path first when the error does not already name it."""
    text = str(exc) or type(exc).__name__
    if path is not None and str(path) not in text and path.name not in text:
        text = f"{path.name}: {text}"
    return text
