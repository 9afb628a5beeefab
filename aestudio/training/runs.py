"""Run folders: the on-disk record of one training run, and reading it back.

A run folder holds:

* ``run.json`` — format ``aestudio-run`` version 1: net name and config, data
  spec and options, train config, progress (epoch, step, position inside the
  epoch), status, best and last metrics, size figures, timestamps. It is
  written last in every checkpoint, so it is the commit point.
* ``model.safetensors`` (last weights), ``best.safetensors`` (best by the main
  validation metric), ``optimizer.safetensors`` (optimizer + RNG state, see
  :mod:`aestudio.training.checkpoint`).
* ``metrics.jsonl`` — one JSON object per finished epoch, for comparing runs.

Every write is atomic (:mod:`aestudio.training.atomic`); nothing is pickled.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aestudio import limits
from aestudio.config import NetConfig, TrainConfig, from_dict
from aestudio.errors import AestudioError
from aestudio.limits import LimitError
from aestudio.training.atomic import (
    TEMP_PREFIX,
    append_line,
    atomic_write_json,
    atomic_write_text,
    finite_json,
    fsync_dir,
)
from aestudio.validate import need, parse_json, read_json

if TYPE_CHECKING:
    from torch import nn

# The checkpoint module (torch, safetensors) is imported where weights are touched, so listing and
# reading runs (the app's Models panel, drops) never loads torch: a 3 s import on these machines.

log = logging.getLogger(__name__)

RUN_FORMAT = "aestudio-run"
RUN_VERSION = 1
RUN_JSON = "run.json"
MODEL_FILE = "model.safetensors"
BEST_FILE = "best.safetensors"
STATE_FILE = "optimizer.safetensors"
START_FILE = "start.safetensors"  # a fine-tuning run's starting weights (TrainConfig.anchor_clipped): its anchor on resume
METRICS_FILE = "metrics.jsonl"


class RunError(AestudioError, ValueError):
    """A run folder is missing, damaged, or cannot be used as asked (message names the file and the fix)."""


class RunStatus(str, enum.Enum):
    CREATED = "created"  # folder made, no step taken yet
    RUNNING = "running"  # a process is (or was, if it crashed) training it
    DONE = "done"
    STOPPED = "stopped"  # stopped by the user; resumable
    DIVERGED = "diverged"  # non-finite loss; files hold the last finite checkpoint
    FAILED = "failed"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunInfo:
    """``run.json`` as typed data (plus the metric history from ``metrics.jsonl``)."""

    path: Path
    net_name: str
    net_cfg: NetConfig
    data_spec: str
    train_cfg: TrainConfig
    epoch: int  # completed epochs
    step: int  # optimizer steps taken
    status: RunStatus
    metrics: dict[str, float]  # the last validation metrics
    best: dict[str, Any] | None  # {"metric", "mode", "value", "epoch", "step"}
    history: list[dict[str, Any]]
    num_params: int
    compression_ratio: float | None
    created: str
    updated: str
    data_options: dict[str, Any] = field(default_factory=dict)  # image_size, channels, val_fraction, seed
    data_info: dict[str, Any] = field(default_factory=dict)  # kind, num_classes, class_names, sizes
    position: dict[str, Any] = field(default_factory=dict)  # samples consumed in the current epoch, batch size
    bad_files: int = 0
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. init_encoder


def is_run_dir(path: Path | str) -> bool:
    return (Path(path) / RUN_JSON).is_file()


def read_record(path: Path | str) -> dict[str, Any]:
    """The raw, validated ``run.json`` dict of a run folder."""
    folder = Path(path)
    file = folder / RUN_JSON
    if not folder.exists():
        raise RunError(f"{folder}: no such run folder; check the path (runs are made by `aestudio train --out DIR`)")
    if not file.is_file():
        raise RunError(f"{folder} is not a run folder: {RUN_JSON} is missing; pass a folder made by `aestudio train --out DIR`")
    try:
        record = read_json(file)
    except LimitError as exc:
        raise RunError(f"{exc}; restore it from a backup or train a new run") from None
    if not isinstance(record, dict) or record.get("format") != RUN_FORMAT:
        fmt = record.get("format") if isinstance(record, dict) else None
        raise RunError(f"{file}: not an aestudio run record (format {fmt!r:.40}); pass a folder made by `aestudio train`")
    try:
        version = need(record, "version", int, str(file))
    except LimitError as exc:
        raise RunError(f"{exc}; fix run.json (aestudio writes \"version\": {RUN_VERSION}) or train a new run") from None
    if version > RUN_VERSION:
        raise RunError(f"{file}: run format version {version} is newer than this aestudio understands ({RUN_VERSION}); upgrade aestudio")
    missing = [k for k in ("net", "data", "train", "epoch", "step", "status") if k not in record]
    if missing:
        raise RunError(f"{file}: missing field(s) {', '.join(missing)}; the file is damaged, restore it or train a new run")
    try:
        _check_record(record, str(file))
    except LimitError as exc:
        raise RunError(f"{exc}; fix run.json or train a new run") from None
    return record


def _check_record(record: dict[str, Any], where: str) -> None:
    """Types of run.json's fields (the configs check their own values), so no reader meets a surprise."""
    need(record, "version", int, where)
    for key in ("net", "data", "train"):
        need(record, key, dict, where)
    for key in ("epoch", "step"):
        limits.check_int(key, need(record, key, int, where), 0, 10**15, where=where)
    need(record, "status", str, where)
    for key, types in (("metrics", dict), ("best", dict), ("position", dict), ("num_params", int), ("bad_files", int),
                       ("message", str), ("created", str), ("updated", str), ("compression_ratio", (int, float))):
        need(record, key, types, where, optional=True)
    need(record["data"], "spec", str, f"{where}: data", optional=True)
    need(record["data"], "options", dict, f"{where}: data", optional=True)


def read_run(path: Path | str) -> RunInfo:
    """Read and validate a run folder; raises :class:`RunError` naming the file and the fix."""
    folder = Path(path)
    record = read_record(folder)
    file = folder / RUN_JSON
    from aestudio.nets.registry import net_config_from_dict

    try:
        net_name, net_cfg = net_config_from_dict(record["net"])
    except KeyError as exc:
        raise RunError(f"{file}: {exc.args[0] if exc.args else exc}; this run needs a newer aestudio or a plugin that registers it") from None
    except (TypeError, ValueError) as exc:
        raise RunError(f"{file}: bad net config ({exc}); fix the 'net' section or train a new run") from None
    try:
        train_cfg = from_dict(TrainConfig, record["train"])
        status = RunStatus(record["status"])
    except (TypeError, ValueError) as exc:
        raise RunError(f"{file}: bad train config or status ({exc}); fix run.json or train a new run") from None
    data = record["data"]
    return RunInfo(
        path=folder,
        net_name=net_name,
        net_cfg=net_cfg,
        data_spec=data.get("spec", ""),
        train_cfg=train_cfg,
        epoch=int(record["epoch"]),
        step=int(record["step"]),
        status=status,
        metrics=record.get("metrics") or {},
        best=record.get("best"),
        history=history(folder),
        num_params=int(record.get("num_params", 0)),
        compression_ratio=record.get("compression_ratio"),
        created=record.get("created", ""),
        updated=record.get("updated", ""),
        data_options=data.get("options", {}),
        data_info={k: v for k, v in data.items() if k not in ("spec", "options")},
        position=record.get("position", {}),
        bad_files=int(record.get("bad_files", 0)),
        message=record.get("message", ""),
        extra={k: record[k] for k in ("init_encoder", "init_weights") if k in record},
    )


def history(path: Path | str) -> list[dict[str, Any]]:
    """The per-epoch metric records of a run, oldest first.

    A torn last line (a crash mid-append) is skipped. If an epoch appears twice
    (a crash after appending but before run.json was updated, then a resume
    redid it), the later record wins.
    """
    file = Path(path) / METRICS_FILE
    if not file.is_file():
        return []
    by_epoch: dict[int, dict[str, Any]] = {}
    for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = parse_json(line, f"{file} line {n}")
        except LimitError as exc:
            log.warning("%s; skipped", exc)
            continue
        if isinstance(rec, dict) and isinstance(rec.get("epoch"), int) and not isinstance(rec["epoch"], bool):
            by_epoch[rec["epoch"]] = rec
    return [by_epoch[k] for k in sorted(by_epoch)]


def load_net(run_dir: Path | str, which: str = "best") -> tuple[nn.Module, RunInfo]:
    """The run's net with its ``best`` (falls back to ``last`` if none yet) or ``last`` weights, in eval mode."""
    from aestudio.nets.registry import build_net
    from aestudio.training.checkpoint import CheckpointError, load_weights

    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', not {which!r}")
    info = read_run(run_dir)
    folder = Path(run_dir)
    file = folder / (BEST_FILE if which == "best" else MODEL_FILE)
    if which == "best" and not file.is_file():
        log.info("%s has no %s yet; using the last weights", folder, BEST_FILE)
        file = folder / MODEL_FILE
    if not file.is_file():
        raise RunError(f"{file}: no weights yet (the run has not finished a checkpoint); train it further with `aestudio train --resume --out {folder}`")
    net = build_net(info.net_name, info.net_cfg)
    try:
        state, _ = load_weights(file)
    except CheckpointError as exc:
        raise RunError(str(exc)) from None
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise RunError(f"{file}: weights do not fit the net in run.json ({first}); the folder's files are mixed up, train again") from None
    net.eval()
    return net, info


def recover_run(path: Path | str) -> list[str]:
    """Make a run folder consistent after a crash; returns what was done (for the log).

    Only for the process about to write the run (resume), never for readers:
    a live run may be mid-checkpoint. Deletes temporary files left by a write
    that was killed, and rolls back checkpoint files that are newer than
    ``run.json`` (the commit point) to the ``.prev`` version they replaced, so
    the weights, the training state and run.json name the same step again.
    """
    from aestudio.training.checkpoint import PREV_SUFFIX, read_meta

    folder = Path(path)
    actions: list[str] = []
    for tmp in folder.glob(TEMP_PREFIX + "*"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            actions.append(f"deleted the leftover temporary file {tmp.name}")
    step = read_record(folder).get("step")
    for name, must_match in ((MODEL_FILE, True), (STATE_FILE, True), (BEST_FILE, False)):
        file, prev = folder / name, folder / (name + PREV_SUFFIX)
        meta = read_meta(file) if file.is_file() else None
        have = meta.get("step") if meta else None
        if have is None or have == step or (not must_match and have < step):
            continue
        prev_meta = read_meta(prev) if prev.is_file() else None
        if prev_meta is not None and (prev_meta.get("step") == step or (not must_match and prev_meta.get("step", step + 1) <= step)):
            os.replace(prev, file)
            actions.append(f"rolled {name} back from step {have} to step {prev_meta.get('step')} (its write was not committed)")
    if actions:
        fsync_dir(folder)
        log.warning("%s: recovered after an interrupted write: %s", folder, "; ".join(actions))
    return actions


LOCK_FILE = ".lock"


def lock_run(folder: Path) -> Any:
    """Hold ``folder/.lock`` exclusively (``flock``) while this process trains the folder.

    A second ``--resume`` of a run still training used to be accepted, and both wrote
    the folder (metrics.jsonl got epochs twice). The kernel drops the lock when the
    holder exits, however it dies, so a resume after ``kill -9`` works."""
    fh = open(folder / LOCK_FILE, "a+")  # noqa: SIM115 - held open for the whole run
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no locking there
        return fh
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise RunError(f"{folder} is being trained by another process right now; wait for it to finish "
                       "(or stop it with Ctrl-C) before resuming") from None
    return fh


_UNTRAINED_FILES = (RUN_JSON, METRICS_FILE, LOCK_FILE, START_FILE)


def _never_trained(folder: Path) -> bool:
    """A run folder with run.json and no checkpoint (its setup or first epoch failed) holding
    only files a run writes: it can be created again instead of being stuck."""
    names = [p.name for p in folder.iterdir()]
    if RUN_JSON not in names or MODEL_FILE in names:
        return False
    if any(n not in _UNTRAINED_FILES and not n.startswith(TEMP_PREFIX) for n in names):
        return False
    try:
        return int(read_record(folder).get("step", 0)) == 0
    except RunError:
        return False


def _clear_untrained(folder: Path) -> None:
    lock = lock_run(folder)  # not while another process is setting it up
    try:
        for p in folder.iterdir():
            if p.name != LOCK_FILE:
                p.unlink()
    finally:
        lock.close()
    log.info("%s never trained; starting it again", folder)


def _trim_metrics(folder: Path, epoch: int) -> None:
    """Drop metrics rows of epochs after run.json's: they belong to a checkpoint that never
    committed (a kill between the two writes), and the resume will write them again."""
    file = folder / METRICS_FILE
    if not file.is_file():
        return
    lines = file.read_text(encoding="utf-8").splitlines()
    keep = []
    for line in lines:
        try:
            rec = parse_json(line, str(file))
        except LimitError:
            continue  # a torn last line
        if isinstance(rec, dict) and isinstance(rec.get("epoch"), int) and rec["epoch"] > epoch:
            continue
        keep.append(line)
    if len(keep) != len(lines):
        log.info("%s: dropped %d row(s) of an uncommitted checkpoint", file, len(lines) - len(keep))
        atomic_write_text(file, "".join(k + "\n" for k in keep))


class RunFolder:
    """Writes one run folder. The training loop calls it; readers use :func:`read_run`."""

    def __init__(self, path: Path | str, record: dict[str, Any]) -> None:
        self.path = Path(path)
        self.record = record
        self._lock: Any = None  # the open lock file while this process trains the folder

    @classmethod
    def create(cls, path: Path | str, record: dict[str, Any]) -> RunFolder:
        """A new run folder; refuses to touch an existing non-empty folder."""
        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise RunError(f"{folder} exists and is not a folder; choose another --out")
        if folder.is_dir() and _never_trained(folder):
            _clear_untrained(folder)  # a setup that failed before the first checkpoint: start again
        if folder.is_dir() and any(p.name != LOCK_FILE for p in folder.iterdir()):
            hint = "continue it with --resume" if is_run_dir(folder) else "it is not a run folder"
            raise RunError(f"{folder} already exists and is not empty ({hint}); use --resume or another --out")
        folder.mkdir(parents=True, exist_ok=True)
        lock = lock_run(folder)
        stamp = now_iso()
        full = {"format": RUN_FORMAT, "version": RUN_VERSION, **record}
        full.setdefault("epoch", 0)
        full.setdefault("step", 0)
        full.setdefault("status", RunStatus.CREATED.value)
        full.setdefault("created", stamp)
        full["updated"] = stamp
        run = cls(folder, full)
        run._lock = lock
        run.write_record()
        return run

    @classmethod
    def open(cls, path: Path | str) -> RunFolder:
        """Open a run to continue writing it (after :func:`recover_run` undid any torn checkpoint)."""
        lock = lock_run(Path(path))  # before recovering: a live run may be mid-checkpoint
        try:
            recover_run(path)
            record = read_record(path)
            _trim_metrics(Path(path), int(record.get("epoch", 0)))
        except BaseException:
            lock.close()
            raise
        run = cls(path, record)
        run._lock = lock
        return run

    def release(self) -> None:
        """Let another process train this folder (also done by the OS when this process dies)."""
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def best_file(self) -> Path:
        return self.path / BEST_FILE

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    def update(self, **fields: Any) -> None:
        """Update fields of run.json and write it atomically."""
        self.record.update(fields)
        self.write_record()

    def write_record(self) -> None:
        self.record["updated"] = now_iso()
        atomic_write_json(self.path / RUN_JSON, self.record)

    def append_metrics(self, rec: dict[str, Any]) -> None:
        append_line(self.path / METRICS_FILE, json.dumps(finite_json(rec), allow_nan=False))

    def history(self) -> list[dict[str, Any]]:
        return history(self.path)
