"""Child-process driver for the kill -9 tests (run as a script; prints one JSON line).

Imports torch once, then forks a training child per cycle and SIGKILLs it at a
random moment: forking spares each cycle the ~2-8 s of importing torch. The
driver itself never trains (torch is not fork-safe once its thread pools run);
it only inspects files, and loads the last checkpoint with ``load_net``.

    python kill_driver.py kills RUN_DIR N SEED      # N kills, each followed by a resume
    python kill_driver.py equiv WORK_DIR SEED       # killed-and-resumed vs uninterrupted
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

from aestudio.config import TrainConfig  # noqa: E402
from aestudio.data.specs import open_data  # noqa: E402
from aestudio.nets import default_config  # noqa: E402
from aestudio.training import load_net, resume, train  # noqa: E402
from aestudio.training.atomic import TEMP_PREFIX  # noqa: E402
from aestudio.training.checkpoint import read_meta  # noqa: E402
from aestudio.training.events import CheckpointSaved, RunStarted, StepEnded, TrainFinished  # noqa: E402
from aestudio.training.runs import history  # noqa: E402

open_data("digits")  # warm scikit-learn's import and file cache before forking
NET = ("dense_ae", {"latent_dim": 4, "hidden": 16})
FINAL_FILES = ("run.json", "model.safetensors", "optimizer.safetensors", "best.safetensors")
# Seconds a child waits per step after its first checkpoint (set before a fork). The equivalence
# test uses it so that its random kill lands mid-epoch on any machine: unslowed, a fast machine
# finishes the 45-step epoch before the kill and the case silently becomes "killed at a boundary".
STEP_DELAY = 0.0


def _child(run_dir: Path, fresh: bool, cfg: TrainConfig, out_fd: int, epochs: int | None = None) -> None:
    """Train (or resume) and report through the pipe; never returns."""
    code = 0
    try:
        def say(msg: str) -> None:
            os.write(out_fd, (msg + "\n").encode())

        events = (train(NET[0], default_config(NET[0], **NET[1]), "digits", cfg, run_dir) if fresh
                  else resume(run_dir, epochs=epochs))
        first_ckpt = True
        for ev in events:
            if isinstance(ev, RunStarted):
                say(f"started {ev.start_step}")
            elif isinstance(ev, CheckpointSaved) and first_ckpt:
                first_ckpt = False
                say(f"checkpoint {ev.step}")
            elif isinstance(ev, StepEnded) and STEP_DELAY and not first_ckpt:
                time.sleep(STEP_DELAY)
            elif isinstance(ev, TrainFinished):
                say(f"finished {ev.reason.value} {ev.step} {ev.message}")
                code = 0 if ev.reason.value == "done" else 4
    except BaseException:  # noqa: BLE001
        os.write(out_fd, ("error " + traceback.format_exc().replace("\n", " | ") + "\n").encode())
        code = 3
    finally:
        os._exit(code)


def _spawn(run_dir: Path, fresh: bool, cfg: TrainConfig, epochs: int | None = None) -> tuple[int, int]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _child(run_dir, fresh, cfg, w, epochs)
    os.close(w)
    os.set_blocking(r, False)
    return pid, r


def _read_until(fd: int, prefix: str, timeout: float, pid: int) -> list[str]:
    """Lines from the child until one starts with ``prefix`` (or 'error'/'finished'), or timeout."""
    buf, lines, t0 = b"", [], time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            chunk = None
        if chunk:
            buf += chunk
            *done, buf = buf.split(b"\n")
            lines += [d.decode() for d in done]
            if any(ln.startswith((prefix, "error", "finished")) for ln in lines):
                return lines
        elif chunk == b"":  # child exited
            return lines
        time.sleep(0.002)
    return lines


def _inspect(run_dir: Path) -> dict:
    record = json.loads((run_dir / "run.json").read_text())  # a torn run.json would raise here
    steps = {}
    for name in FINAL_FILES[1:]:
        f = run_dir / name
        if f.exists():
            meta = read_meta(f)
            if meta is None:
                raise AssertionError(f"{f} is not a complete safetensors file")
            steps[name] = meta.get("step")
    temps = sorted(p.name for p in run_dir.iterdir() if p.name.startswith(TEMP_PREFIX))
    return {"run_json_step": record["step"], "steps": steps, "temps": temps}


def kills(run_dir: Path, n: int, seed: int) -> dict:
    rnd = random.Random(seed)
    cfg = TrainConfig(epochs=10_000, batch_size=16, checkpoint_every_steps=1, device="cpu", seed=0)
    report = {"kills": 0, "interrupted_writes": 0, "torn_checkpoints": 0, "resumed_from": [], "failures": [],
              "leftover_temps_cleaned": True}
    previous_temps: set[str] = set()
    for k in range(n + 1):
        pid, fd = _spawn(run_dir, k == 0, cfg)
        lines = _read_until(fd, "checkpoint" if k == 0 else "started", 120, pid)
        started = [ln for ln in lines if ln.startswith("started")]
        if k > 0:
            if not started:
                report["failures"].append(f"cycle {k}: resume did not start: {lines}")
            else:
                report["resumed_from"].append(int(started[0].split()[1]))
            left = previous_temps & {p.name for p in run_dir.iterdir()}
            if left:
                report["leftover_temps_cleaned"] = False
                report["failures"].append(f"cycle {k}: temp files of the previous kill not cleaned: {sorted(left)}")
        if k == n:  # the last cycle only proves the final resume; end it cleanly
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(rnd.uniform(0.0, 0.4))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            report["failures"].append(f"cycle {k}: child ended before the kill ({status}): {lines}")
            continue
        report["kills"] += 1
        try:
            state = _inspect(run_dir)
        except Exception as exc:  # noqa: BLE001
            report["failures"].append(f"cycle {k}: damaged file at a final path: {exc}")
            continue
        previous_temps = set(state["temps"])
        report["interrupted_writes"] += bool(state["temps"])
        s = state["run_json_step"]
        if any(v != s for name, v in state["steps"].items() if name != "best.safetensors"):
            report["torn_checkpoints"] += 1
        try:
            _, info = load_net(run_dir, which="last")
            assert info.step == s
        except Exception as exc:  # noqa: BLE001
            report["failures"].append(f"cycle {k}: load_net failed: {exc}")
    return report


def equiv(work: Path, seed: int) -> dict:
    rnd = random.Random(seed)
    cfg = TrainConfig(epochs=2, batch_size=32, checkpoint_every_steps=3, device="cpu", seed=7)
    ref, killed = work / "uninterrupted", work / "killed"
    pid, fd = _spawn(ref, True, cfg)
    lines = _read_until(fd, "finished", 300, pid)
    os.waitpid(pid, 0)
    assert any(ln.startswith("finished done") for ln in lines), lines
    global STEP_DELAY
    STEP_DELAY = 0.02  # 42 steps left in epoch 1 after the first checkpoint: >= 0.84 s
    pid, fd = _spawn(killed, True, cfg)
    STEP_DELAY = 0.0
    _read_until(fd, "checkpoint", 120, pid)
    time.sleep(rnd.uniform(0.2, 0.7))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    at_kill = _inspect(killed)
    record = json.loads((killed / "run.json").read_text())
    pid, fd = _spawn(killed, False, cfg)
    lines = _read_until(fd, "finished", 300, pid)
    os.waitpid(pid, 0)
    assert any(ln.startswith("finished done") for ln in lines), lines
    from safetensors.numpy import load_file

    a, b = load_file(str(ref / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    diff = max(float(abs(a[k].astype("float64") - b[k].astype("float64")).max()) for k in a)
    ra, rb = (json.loads((d / "run.json").read_text()) for d in (ref, killed))
    return {"killed_at_step": at_kill["run_json_step"], "killed_at_epoch": record["epoch"],
            "killed_epoch_pos": record.get("position", {}).get("epoch_pos"), "max_weight_diff": diff,
            "epochs": [ra["epoch"], rb["epoch"]], "steps": [ra["step"], rb["step"]],
            "val_mse": [ra["metrics"].get("mse"), rb["metrics"].get("mse")],
            "history_epochs": [[h["epoch"] for h in history(d)] for d in (ref, killed)],
            "history_mse": [[h.get("mse") for h in history(d)] for d in (ref, killed)]}


if __name__ == "__main__":
    mode, folder = sys.argv[1], Path(sys.argv[2])
    if mode == "kills":
        result = kills(folder, int(sys.argv[3]), int(sys.argv[4]))
    else:
        result = equiv(folder, int(sys.argv[3]))
    print(json.dumps(result))
