"""The ONNX Runtime predictor: runs a bundle (or a foreign .onnx file) with numpy and onnxruntime only.

No torch here (checked by import-linter), so inference works where torch is
absent. Sessions use one of two profiles (DESIGN.md "Inference"): interactive
(one thread, no spinning, so a slider never starves a training run) or batch
(all cores, for folders). A bundle's graphs get sessions lazily, on first use.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from aestudio import limits
from aestudio.config import Task
from aestudio.errors import AestudioError
from aestudio.inference.bundle import (
    DECODER_OUTPUT,
    INPUT_IMAGE,
    LATENT_Z,
    BundleError,
    BundleFile,
    ModelInfo,
    read_bundle,
)
from aestudio.inference.predictor import LATENT_OUTPUTS, Predictor
from aestudio.palette import default_palette
from aestudio.validate import printable

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

# A single .onnx file cannot exceed protobuf's 2 GiB limit (larger models keep their
# weights in external data files), so anything bigger is not a model we can load:
# refuse it before ONNX Runtime reads it into memory. Tests lower it to check the refusal.
MAX_ONNX_BYTES = 2 * 1024**3


class SessionProfile(str, enum.Enum):
    INTERACTIVE = "interactive"  # one intra-op thread, no spinning: sliders and previews
    BATCH = "batch"  # all cores: folders and large images


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def session_options(profile: SessionProfile | str) -> ort.SessionOptions:
    """ORT options for a profile. Measured (DESIGN.md): ORT's default spinning threads cut a
    concurrent training run from ~3,500 to ~500-1,100 images/s; both profiles avoid that."""
    profile = SessionProfile(profile)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3  # errors only; warnings about unused initializers are noise here
    if profile is SessionProfile.INTERACTIVE:
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    else:
        so.intra_op_num_threads = available_cores()
        so.inter_op_num_threads = 1  # sequential execution: inter-op threads would only spin
        # Spinning stays off: it buys microseconds per call and costs a core to anything else running.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


def choose_providers(providers: list[str] | None = None) -> list[str]:
    """CUDA when onnxruntime has it, then CPU; an explicit list is checked against what is installed."""
    available = ort.get_available_providers()
    if providers is None:
        return [CUDA, CPU] if CUDA in available else [CPU]
    missing = [p for p in providers if p not in available]
    if missing:
        raise ValueError(f"ONNX Runtime providers {missing} are not installed; available: {available}")
    return list(providers)


@dataclass(frozen=True)
class ForeignModelDescription:
    """Facts about a foreign ONNX model that its graph cannot tell (see docs/BUNDLE_FORMAT.md)."""

    task: Task | str | None = None  # reconstruct | denoise | generate | segment
    value_range: tuple[float, float] | None = None  # input range the model was trained on, e.g. (0, 1) or (-1, 1)
    channels: int | None = None  # only needed when the graph leaves the channel dimension dynamic
    image_size: int | None = None  # only needed to fix the size of a dynamic-size, fixed-size-trained model
    size_multiple: int = 1  # dynamic H/W must be multiples of this (e.g. 16 for a 4-level U-Net)
    class_names: list[str] = field(default_factory=list)  # segmentation; default "class 0".. from the graph


def _load_error(path: Path, exc: Exception, *, bundle: bool) -> BundleError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    fix = (
        "re-export the bundle with `aestudio export RUN_DIR`"
        if bundle
        else "check that it is a complete ONNX model (opset 7-23) that ONNX Runtime can run"
    )
    if "opset" in first.lower():
        fix = f"its opset is not supported by onnxruntime {ort.__version__}; upgrade onnxruntime or export with a supported opset"
    return BundleError(f"{path}: ONNX Runtime cannot load it ({first}); {fix}")


class OrtPredictor(Predictor):
    """Predictor over a bundle folder or a single .onnx file, through ONNX Runtime."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        profile: SessionProfile | str = SessionProfile.INTERACTIVE,
        providers: list[str] | None = None,
        description: ForeignModelDescription | None = None,
        info: ModelInfo | None = None,
    ) -> None:
        """``info``: for a single .onnx file whose facts the caller knows (a BioImage Model
        Zoo package's rdf.yaml), used instead of inferring them from the graph."""
        self.path = Path(path)
        self.profile = SessionProfile(profile)
        self._providers = choose_providers(providers)
        self._sessions: dict[BundleFile, ort.InferenceSession] = {}
        self._lock = threading.Lock()
        self.load_seconds: dict[str, float] = {}  # session creation time per graph (for benchmarks)
        self._active: set[ort.RunOptions] = set()  # calls in flight, so cancel() can stop them
        self.time_limit_s: float | None = None  # a model call running longer is cancelled (None: no limit)
        self._foreign = False
        # One predictor per profile over the same model, shared by all of them (see with_profile).
        self._by_profile: dict[SessionProfile, OrtPredictor] = {self.profile: self}
        if self.path.is_dir():
            if description is not None:
                log.warning("%s: a description is ignored for bundles (model.json has the facts)", self.path)
            self._folder = self.path
            info = read_bundle(self.path)
            self._files = {BundleFile(k): self.path / v for k, v in info.files.items()}
            super().__init__(info)
            self.session(BundleFile.MODEL)  # fail at load, not at first click, if the graph is bad
        elif self.path.is_file():
            self._foreign = True
            self._folder = self.path.parent
            self._files = {BundleFile.MODEL: self.path}
            sess = self._create(BundleFile.MODEL, bundle=False)
            super().__init__(info if info is not None else _describe_foreign(self.path, sess, description))
            self._sessions[BundleFile.MODEL] = sess
            self._input_name = sess.get_inputs()[0].name
            self._output_name = sess.get_outputs()[0].name
            batch_dim = sess.get_inputs()[0].shape[0]
            self._max_batch = batch_dim if isinstance(batch_dim, int) else None
        else:
            raise BundleError(f"{self.path}: no such bundle folder or .onnx file; check the path")

    # ------------------------------------------------------------- sessions

    @property
    def provider(self) -> str:
        sess = self._sessions.get(BundleFile.MODEL)
        return sess.get_providers()[0] if sess is not None else self._providers[0]

    def with_profile(self, profile: SessionProfile | str) -> OrtPredictor:
        """The same model with another session profile: its own sessions, created lazily, the
        same ``info``. Cached, so asking again (from any of them) returns the same predictor.

        Use: sliders and previews keep the interactive predictor (one thread, so a training
        run is never starved); a one-off whole-image run while nothing trains (a dropped
        photo, a folder) can take ``predictor.with_profile("batch")`` and use every core.
        """
        profile = SessionProfile(profile)
        other = self._by_profile.get(profile)
        if other is None:
            with self._lock:
                other = self._by_profile.get(profile)
                if other is None:
                    other = copy.copy(self)
                    other.profile = profile
                    other._sessions = {}
                    other._lock = threading.Lock()
                    other._active = set()
                    other.load_seconds = {}
                    other.tiling = dataclasses.replace(self.tiling)
                    self._by_profile[profile] = other  # the dict is shared by every sibling
        return other

    def session(self, graph: BundleFile) -> ort.InferenceSession:
        """The session for one graph, created on first use (thread-safe)."""
        sess = self._sessions.get(graph)
        if sess is None:
            with self._lock:
                sess = self._sessions.get(graph)
                if sess is None:
                    if graph not in self._files:
                        raise ValueError(f"{self.info.name} has no {graph.value} graph")
                    sess = self._create(graph, bundle=not self._foreign)
                    if not self._foreign:  # a foreign graph's names were read from it at load
                        self._check_io(graph, sess)
                    self._sessions[graph] = sess
        return sess

    def _create(self, graph: BundleFile, *, bundle: bool) -> ort.InferenceSession:
        path = self._files[graph]
        if path.suffix.lower() != ".onnx":
            raise BundleError(f"{path}: not an .onnx file; pass a bundle folder or a .onnx model")
        size = path.stat().st_size
        if size == 0:
            raise BundleError(f"{path}: empty file (0 bytes); re-export or re-copy the model")
        if size > MAX_ONNX_BYTES:
            raise BundleError(
                f"{path}: {size / 1024**3:.1f} GiB is larger than an ONNX file can be "
                f"({MAX_ONNX_BYTES / 1024**3:.1f} GiB limit); it is damaged or not a model"
            )
        _check_external_data(path)
        t0 = time.perf_counter()
        try:
            sess = ort.InferenceSession(str(path), session_options(self.profile), providers=self._providers)
        except Exception as exc:  # ORT raises several pybind types (Fail, InvalidProtobuf, InvalidGraph...)
            raise _load_error(path, exc, bundle=bundle) from None
        self.load_seconds[graph.value] = time.perf_counter() - t0
        log.debug("%s: session (%s, %s) in %.3f s", path, self.profile.value, sess.get_providers()[0], self.load_seconds[graph.value])
        return sess

    def _check_io(self, graph: BundleFile, sess: ort.InferenceSession) -> None:
        """A bundle graph must have exactly the tensor names the format promises."""
        info = self.info
        expected_in = {BundleFile.MODEL: [INPUT_IMAGE], BundleFile.ENCODER: [INPUT_IMAGE], BundleFile.DECODER: [LATENT_Z]}[graph]
        expected_out = {
            BundleFile.MODEL: [info.output_name],
            BundleFile.ENCODER: list(LATENT_OUTPUTS[info.latent_kind]) if info.latent_kind else [],
            BundleFile.DECODER: [DECODER_OUTPUT],
        }[graph]
        got_in = [i.name for i in sess.get_inputs()]
        got_out = [o.name for o in sess.get_outputs()]
        if got_in != expected_in or sorted(got_out) != sorted(expected_out):
            raise BundleError(
                f"{self._files[graph]}: tensors are {got_in} -> {got_out}, model.json promises "
                f"{expected_in} -> {expected_out}; re-export the bundle with `aestudio export RUN_DIR`"
            )
        self._check_card(graph, sess)

    def _check_card(self, graph: BundleFile, sess: ort.InferenceSession) -> None:
        """The sizes model.json states must be the graph's: a card that lies about latent_dim or
        image_size made sample/interpolate fail later with a message blaming the user."""
        info, where = self.info, self._files[graph]

        def differs(what: str, card: object, dim: object) -> None:
            if isinstance(dim, int) and dim != card:
                raise BundleError(f"{where}: model.json says {what} {card}, the graph has {dim}; the bundle's files "
                                  "do not belong together: re-export it with `aestudio export RUN_DIR`")

        if graph is BundleFile.DECODER:
            z = sess.get_inputs()[0].shape
            differs("latent_dim", info.latent_dim, z[1] if len(z) == 2 else None)
            return
        shape = sess.get_inputs()[0].shape
        if len(shape) != 4:
            raise BundleError(f"{where}: input has rank {len(shape)}, a bundle's image input is [N, C, H, W]; re-export it")
        differs("in_channels", info.in_channels, shape[1])
        if info.fixed_size is not None:
            differs("image_size", info.fixed_size, shape[2])
            differs("image_size", info.fixed_size, shape[3])
        if graph is BundleFile.ENCODER and info.latent_dim is not None:
            for o in sess.get_outputs():
                if len(o.shape) == 2:
                    differs("latent_dim", info.latent_dim, o.shape[1])

    def warmup(self) -> None:
        """Create every session and run each graph once (first runs allocate; time after this)."""
        for graph in self._files:
            if graph is BundleFile.WEIGHTS:
                continue
            self.session(graph)
        size = self.info.fixed_size or max(self.info.size_multiple, 32)
        x = np.full((1, self.info.in_channels, size, size), 0.5, dtype=np.float32)
        self.predict(x)
        if self.info.has_latent:
            self.decode(self.encode(x))

    def _run(self, graph: BundleFile, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sess = self.session(graph)
        options = ort.RunOptions()
        with self._lock:
            self._active.add(options)
        try:
            outs = run_interruptibly(sess, feeds, options, self.time_limit_s)
        except (KeyboardInterrupt, ModelCallCancelled):
            raise
        except Exception as exc:
            if options.terminate:
                raise ModelCallCancelled(f"{self._files[graph]}: the model call was cancelled"
                                         + (f" after the {self.time_limit_s:g} s time limit" if self.time_limit_s else "")) from None
            first = str(exc).strip().splitlines()[0]
            raise RuntimeError(f"{self._files[graph]}: ONNX Runtime failed on inputs {[v.shape for v in feeds.values()]}: {first}") from None
        finally:
            with self._lock:
                self._active.discard(options)
        return {o.name: v for o, v in zip(sess.get_outputs(), outs, strict=True)}

    def cancel(self) -> int:
        """Stop every model call in flight (from any thread); each raises :class:`ModelCallCancelled`.
        Returns how many were asked to stop. The app's Cancel and time limit use this."""
        active: list[ort.RunOptions] = []
        for twin in list(self._by_profile.values()):  # the same model's other session profiles too
            with twin._lock:
                active += list(twin._active)
        for options in active:
            options.terminate = True
        return len(active)


_EXTERNAL_SCAN_BYTES = 64 * 1024**2  # graphs with external data are small; bigger ones hold their weights


def _check_external_data(path: Path) -> None:
    """Refuse a graph whose external data files are huge (a 300-byte model.onnx naming a 3 GiB
    sparse file made ONNX Runtime allocate 6.3 GB) before ONNX Runtime reads them. Where a file
    lives is ONNX Runtime's own check (it refuses paths escaping the folder)."""
    if path.stat().st_size > _EXTERNAL_SCAN_BYTES:
        return
    try:
        import onnx
        from onnx.external_data_helper import _get_all_tensors
    except ImportError:  # the runtime works without the onnx package; ORT's own limits apply
        return
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not parseable: ORT's load reports it with the usual message
        return
    total = 0
    for tensor in _get_all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        entry = {e.key: e.value for e in tensor.external_data}
        name = entry.get("location", "")
        target = (path.parent / name)
        length = int(entry["length"]) if entry.get("length", "").isdigit() else None
        try:
            size = target.stat().st_size if length is None else length
        except OSError:
            continue  # missing or escaping: ORT refuses it by name
        total += size
        if total > limits.MAX_WEIGHTS_BYTES:
            raise BundleError(f"{path}: its external data ({name}) holds {total / 1024**3:.1f} GiB, over the "
                              f"{limits.MAX_WEIGHTS_BYTES / 1024**3:.0f} GiB aestudio loads (aestudio.limits.MAX_WEIGHTS_BYTES); "
                              "the file is damaged or not a model for this studio")


class ModelCallCancelled(AestudioError, RuntimeError):
    """A model call stopped by :meth:`OrtPredictor.cancel` or its time limit."""


def run_interruptibly(sess: ort.InferenceSession, feeds: dict[str, np.ndarray], options: ort.RunOptions,
                      time_limit_s: float | None = None) -> list[np.ndarray]:
    """``sess.run`` that Ctrl-C (and a time limit) can stop.

    ONNX Runtime holds the calling thread inside C++ until the graph ends, so a SIGINT
    only reaches Python after it (a Loop of 1e15 iterations: never). On the main thread
    the call therefore runs in a helper thread while the main thread waits in short
    slices, free to take the KeyboardInterrupt, which sets ``options.terminate``: ORT
    stops at its next node and the helper thread ends."""
    result: dict[str, object] = {}
    timer = threading.Timer(time_limit_s, lambda: setattr(options, "terminate", True)) if time_limit_s else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        if threading.current_thread() is not threading.main_thread():
            return sess.run(None, feeds, options)  # a worker: its owner cancels via options

        def call() -> None:
            try:
                result["outs"] = sess.run(None, feeds, options)
            except BaseException as exc:  # handed to the waiting thread
                result["error"] = exc

        worker = threading.Thread(target=call, name="ort-run", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.05)
        except KeyboardInterrupt:
            options.terminate = True
            worker.join(5.0)
            raise
        error = result.pop("error", None)
        if error is not None:
            raise error  # type: ignore[misc]
        return result["outs"]  # type: ignore[return-value]
    finally:
        if timer is not None:
            timer.cancel()
        # The stored error's traceback holds call()'s frame, which holds `result`: a cycle that
        # kept the session alive until interpreter teardown, where ONNX Runtime aborts.
        result.clear()


# ----------------------------------------------------------------- foreign models


def _check_foreign_shapes(path: Path, inp: object, out: object, desc: ForeignModelDescription) -> None:
    """Shapes that would mislead or allocate without bound, refused with the file named."""
    n, c, h, w = inp.shape  # type: ignore[attr-defined]
    if isinstance(n, int) and n < 1:
        raise ValueError(f"{path}: input {inp.name!r} declares a batch of {n}; "  # type: ignore[attr-defined]
                         "re-export it with a dynamic or positive batch dimension")
    if isinstance(c, int) and not 1 <= c <= limits.MAX_CHANNELS:
        raise ValueError(f"{path}: input {inp.name!r} declares {c} channels; image models take 1 or 3")  # type: ignore[attr-defined]
    for side in (h, w):
        if isinstance(side, int) and not 1 <= side <= limits.MAX_NET_IMAGE_SIZE:
            raise ValueError(f"{path}: input {inp.name!r} declares a fixed {h} x {w} image; aestudio runs fixed-size "  # type: ignore[attr-defined]
                             f"models up to {limits.MAX_NET_IMAGE_SIZE} px a side (aestudio.limits.MAX_NET_IMAGE_SIZE)")
    vr = desc.value_range
    if vr is not None and not (len(vr) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in vr) and vr[0] < vr[1]):
        raise ValueError(f"value range {tuple(vr)} of {path} must be two finite numbers, low < high (--value-range 0,1)")


def _describe_foreign(
    path: Path, sess: ort.InferenceSession, desc: ForeignModelDescription | None
) -> ModelInfo:
    """Infer what the graph tells (rank, channels, fixed or dynamic size); take the rest from ``desc``."""
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    if len(inputs) != 1:
        raise ValueError(f"{path}: has {len(inputs)} inputs {[i.name for i in inputs]}; only single-input image models can be loaded")
    inp, out = inputs[0], outputs[0]
    if inp.type != "tensor(float)":
        raise ValueError(f"{path}: input {inp.name!r} is {inp.type}; only float32 image inputs are supported")
    if len(inp.shape) != 4:
        raise ValueError(f"{path}: input {inp.name!r} has shape {inp.shape}; an image model needs [N, C, H, W]")
    if len(out.shape) != 4:
        raise ValueError(f"{path}: output {out.name!r} has shape {out.shape}; aestudio runs models whose output is "
                         "an image or per-pixel class scores [N, C, H, W]; re-export it with such an output")
    desc = desc or ForeignModelDescription()
    _, c, h, w = inp.shape
    missing = []
    channels = c if isinstance(c, int) else desc.channels
    if isinstance(c, int) and desc.channels not in (None, c):
        raise ValueError(f"{path}: the graph has {c} input channels but the description says {desc.channels}")
    if channels is None:
        missing.append("its input channels (the graph leaves them open): channels, or --channels 1|3 on the command line")
    if desc.task is None:
        missing.append("its task (reconstruct, denoise, generate or segment)")
    if desc.value_range is None:
        missing.append("its input value range: value_range, or --value-range 0,1 (or -1,1) on the command line")
    if missing:
        raise ValueError(f"{path}: a foreign model needs " + "; ".join(missing))
    _check_foreign_shapes(path, inp, out, desc)
    try:
        task = Task(desc.task)
    except ValueError:
        raise ValueError(f"{path}: task {desc.task!r} is not one of {[t.value for t in Task]}") from None
    image_size: int | str = "any"
    if isinstance(h, int) or isinstance(w, int):
        if h != w:
            raise ValueError(f"{path}: fixed input size {h}x{w} is not square; only square fixed sizes are supported")
        image_size = int(h)
        if desc.image_size not in (None, image_size):
            raise ValueError(f"{path}: the graph fixes the size at {h}x{w} but the description says {desc.image_size}")
    elif desc.image_size is not None:
        image_size = int(desc.image_size)
    class_names = list(desc.class_names)
    k = out.shape[1]
    if task is Task.SEGMENT and not class_names:
        if not isinstance(k, int):
            raise ValueError(f"{path}: the output's class dimension is open, so the class names are unknown; "
                             "pass class_names in the model's description (or export it with a fixed class count)")
        class_names = [f"class {i}" for i in range(k)]
    lo, hi = desc.value_range  # type: ignore[misc]
    info = ModelInfo(
        name=printable(path.stem),
        net="foreign",
        task=task,
        in_channels=int(channels),  # type: ignore[arg-type]
        image_size=image_size,
        size_multiple=int(desc.size_multiple),
        value_range=(float(lo), float(hi)),
        class_names=class_names,
        class_colors=[list(c) for c in default_palette(len(class_names))] if class_names else [],
        files={BundleFile.MODEL.value: path.name},
    )
    try:
        info.validate(str(path))
    except BundleError as exc:
        raise ValueError(str(exc).split("; re-export")[0]) from None
    return info
