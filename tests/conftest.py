"""Suite-wide settings (offscreen Qt before any QApplication, small thread pools) and tiny exported bundles."""

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Tests use tiny tensors; many threads only add contention on 2-core CI machines.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # the ORT-only path has no torch
        pass


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep settings and workspaces out of the real home folder."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("AESTUDIO_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))


@pytest.fixture(autouse=True)
def _no_batch_runtime_left_behind():
    """A main window installs the app's batch runtime choice (bfloat16 where allowed) process-wide; a test
    that made one must not change how the next test's batch work runs."""
    yield
    from aestudio.explore.sessions import set_batch_runtime

    set_batch_runtime(None)


# ---------------------------------------------------------------- tiny nets and bundles (torch imported lazily)

# Small configs keep export and parity fast; the fields exist in each family's config.
TINY: dict[str, dict] = {
    "dense_ae": {"image_size": 16},
    "conv_ae": {"image_size": 16},
    "sparse_ae": {"image_size": 16},
    "contractive_ae": {"image_size": 16},
    "vae": {"image_size": 16},
    "denoising_ae": {"channels": 8},
    "unet": {"base_channels": 8, "depth": 2, "num_classes": 3},
}


def tiny_net(name: str, **overrides) -> tuple[object, object]:
    """A net of family ``name`` whose weights are all random, so no output is trivially exact
    (the denoiser's last layer and batch-norm statistics start at zero/one by default)."""
    import torch

    from aestudio.nets import build_net, default_config, get_spec

    fields = set(get_spec(name).config_cls.__dataclass_fields__)
    kw = {k: v for k, v in TINY.get(name, {}).items() if k in fields} | overrides
    cfg = default_config(name, **kw)
    torch.manual_seed(0)
    net = build_net(name, cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.8, 1.2)
    return net.eval(), cfg


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory):
    """``bundles(name) -> Path``: the net exported once per test session."""
    from aestudio.export.exporter import export_net

    root = tmp_path_factory.mktemp("bundles")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            net, cfg = tiny_net(name)
            export_net(net, name, cfg, root / name, measure_timings=False)
            cache[name] = root / name
        return cache[name]

    return get


def calibration_images(channels: int, n: int = 24, size: int = 32, *, noise: float = 0.1, seed: int = 0) -> list:
    """Smooth random images with Gaussian noise, [1, C, size, size] in [0, 1]: a tiny net's calibration set."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        f = rng.uniform(1, 6, size=(channels, 2))
        base = 0.5 + 0.4 * np.sin(f[:, :1, None] * 3 * xx + rng.uniform(0, 6)) * np.cos(f[:, 1:, None] * 3 * yy)
        out.append(np.clip(base + rng.normal(0, noise, base.shape), 0, 1).astype(np.float32)[None])
    return out


@pytest.fixture(scope="session")
def int8_bundles(bundles, tmp_path_factory: pytest.TempPathFactory):
    """``int8_bundles(name) -> Path``: the tiny ``name`` bundle quantized to int8 once per session."""
    from aestudio.export.quantize import quantize_bundle
    from aestudio.inference.bundle import read_bundle

    root = tmp_path_factory.mktemp("int8")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            src = bundles(name)
            info = read_bundle(src)
            size = info.fixed_size or 32
            quantize_bundle(src, root / name, calibration_images(info.in_channels, size=size), source="tests")
            cache[name] = root / name
        return cache[name]

    return get


@pytest.fixture(scope="session")
def packages(bundles, tmp_path_factory: pytest.TempPathFactory):
    """``packages(name) -> Path``: the tiny ``name`` bundle as a BioImage Model Zoo package, once per session."""
    pytest.importorskip("bioimageio.spec")
    import warnings

    from aestudio.export.bioimageio import write_package

    root = tmp_path_factory.mktemp("packages")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # bioimageio.spec's notes about FAIR metadata
                cache[name] = write_package(bundles(name), root / f"{name}.zip")
        return cache[name]

    return get


@pytest.fixture(name="tiny_net")
def _tiny_net_fixture():
    return tiny_net


# ---------------------------------------------------------------- the main window (Qt imported lazily)


@pytest.fixture
def settings_dir(tmp_path: Path) -> Path:
    """QSettings caches its folders per process, so point it at this test's folder explicitly."""
    from PySide6.QtCore import QSettings

    folder = tmp_path / "settings"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    return folder


@pytest.fixture
def window(qtbot, settings_dir):
    """A shown main window with fresh settings; closed (training stopped) afterwards."""
    from aestudio.gui.app import application
    from aestudio.gui.main_window import MainWindow
    from aestudio.gui.workspace import make_settings

    application()
    w = MainWindow(make_settings())
    qtbot.addWidget(w)
    w.show()
    # The window opens before torch is imported; the Train panel's families and devices arrive
    # from a background load just after the first paint (see MainWindow._when_shown).
    qtbot.waitUntil(lambda: w.train_panel.core_ready, timeout=60_000)
    # ... and so does the restored data set, whose preset resets the Train forms when it arrives.
    qtbot.waitUntil(lambda: not w.data_panel.requested_spec or w.data_panel.summary is not None, timeout=60_000)
    yield w
    w.train_panel.shutdown(timeout=10)
    w.close()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001 - pytest's hook signature
    """A skipped test proves nothing: say how many skipped, loudly, on one line CI logs show
    (issue 18: the memory tests skipped silently in CI for want of psutil)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.write_sep("!", f"{len(skipped)} TEST(S) SKIPPED - each proves nothing; see the SKIPPED lines "
                                        "of the short test summary", red=True, bold=True)


def wait_until_running(run_dir: Path, proc=None, timeout: float = 120.0) -> None:
    """Wait until ``run_dir/run.json`` says the run is training (or ``proc`` ended, or time ran out):
    the moment tests send a stop signal to a training process."""
    import json
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        try:
            if json.loads((run_dir / "run.json").read_text()).get("status") == "running":
                return
        except (OSError, ValueError):  # not written yet, or being replaced
            pass
        time.sleep(0.2)


@pytest.fixture
def data_opens_in_10s(monkeypatch):
    """A fake clock for the training's time limit: opening the data takes 10 "seconds", each step 1."""
    from aestudio.training import loop, runner

    now = [1000.0]
    real_open, real_step = runner._open, loop.train_step

    def open_slowly(*args, **kw):
        now[0] += 10.0
        return real_open(*args, **kw)

    def timed_step(*args, **kw):
        now[0] += 1.0
        return real_step(*args, **kw)

    monkeypatch.setattr(loop, "_monotonic", lambda: now[0])
    monkeypatch.setattr(runner, "_open", open_slowly)
    monkeypatch.setattr(loop, "train_step", timed_step)
    return now
