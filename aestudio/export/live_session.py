"""The live trainer's published weights as an ONNX Runtime session, for the Label tab's prediction.

Predicting a 1024 x 1024 image with the live U-Net (16 channels, depth 3) on one torch thread took
3.2 CPU-seconds (tiled at 512 px with a fixed step: 2.25x the pixels); ONNX Runtime with as few
tiles as fit takes 0.9 (measured side by side, one thread).

The graph is exported once per net shape, in a child process (:func:`start_export`, cached in the
user's cache folder): ``torch.onnx.export`` imports the ``onnx`` package, whose C++ initialisation
holds the GIL for ~1-2 s, which froze the app's window at the first refresh. The BatchNorms are
folded into their convolutions in torch first (the exporter would fold them itself under names
nobody can map back), so every weight of the graph is an initializer named as in the folded net's
state dict. The child also writes where each initializer's raw bytes sit in the serialized graph;
a snapshot's folded weights are written over those bytes (same shapes, same sizes, so the protobuf
stays valid) and a session is made from the result (~30 ms). ``SessionOptions.add_initializer``
would be simpler, but ORT's layout optimisations (NCHWc, 1.45x faster here) kept some of the
exported values. Neither this process nor a snapshot's session needs the ``onnx`` package.

On a CPU with native bfloat16 (AVX512-BF16 or AMX) :class:`Bf16Snapshot` is cheaper still: the folded
net in torch, bfloat16 and channels-last, 0.55-0.6 CPU-s for 1024^2 (no graph needed).

Qt-free; imports torch (the snapshot is torch tensors), so it lives with the exporter.
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import math
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from aestudio.inference.ort import SessionProfile, session_options

if TYPE_CHECKING:
    from aestudio.nets.unet import UNetConfig

log = logging.getLogger(__name__)

MAX_TILE = 544  # whole images up to this side, larger ones in as few tiles as fit (1024 -> 2 x 2 of 528)
OVERLAP = 32
OPSET = 17
# ORT's memory arena. Without it every operator's buffers were allocated and freed again in each run,
# which slowed a training run beside the predictions far beyond the CPU they took: in one process, 15 s
# blocks x 3 at load ~8, training kept 0.65 of its speed without the arena and 0.83 with it, at the same
# refresh rule. Each snapshot's session has its own arena (~250 MB at 528-px tiles), freed with it.
CPU_ARENA = True
# One arena for every snapshot's session, kept for the process (ORT's environment allocator): a session of its
# own per snapshot paged its ~250 MB in afresh at each refresh. 1024^2 on one thread, a new snapshot each time,
# alternating in one process: 0.89 CPU-s a prediction instead of 0.96.
SHARED_ARENA = True
_arena_lock = threading.Lock()
_arena: bool | None = None  # registered (None: not tried yet)
GRAPH_FORMAT = 1  # bump when the exported graph changes: cached graphs of other formats are not used


def fold_batchnorms(net: nn.Module) -> nn.Module:
    """A copy of ``net`` (eval mode) with every ``Conv2d -> BatchNorm2d`` pair of a Sequential folded into the conv."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net = copy.deepcopy(net).eval()
    for module in net.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (name_a, a), (name_b, b) in zip(children, children[1:], strict=False):
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                setattr(module, name_a, fuse_conv_bn_eval(a, b))
                setattr(module, name_b, nn.Identity())
    return net


def _net(net_cfg: UNetConfig, state: dict[str, torch.Tensor] | None = None, seed: int | None = None) -> nn.Module:
    """The folded U-Net of ``net_cfg`` with ``state`` loaded, or with random weights from ``seed``."""
    from aestudio.nets.registry import build_net
    from aestudio.training.live import load_matching

    net = build_net("unet", net_cfg)
    if state is not None:
        load_matching(net, state)
    net = fold_batchnorms(net)
    if seed is not None:
        # Distinct values in every tensor: the exporter merges equal initializers (a fresh net's folded
        # biases are all zeros), and a merged one could not take two different weights later.
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for v in net.state_dict().values():
                if v.is_floating_point():
                    v.copy_(torch.randn(v.shape, generator=gen) * 0.1)
    return net


def _weights(net: nn.Module) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v.detach().numpy()) for k, v in net.state_dict().items() if v.is_floating_point()}


# ---------------------------------------------------------------- the graph (exported in a child process)


def graph_path(net_cfg: UNetConfig, cache: Path | None = None) -> Path:
    """Where the graph of this net shape is cached (per torch version and graph format)."""
    import platformdirs

    key = repr((net_cfg.in_channels, net_cfg.num_classes, net_cfg.depth, net_cfg.base_channels,
                getattr(net_cfg, "input_stride", 1), torch.__version__, OPSET, GRAPH_FORMAT))
    name = f"unet-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"
    return (cache or platformdirs.user_cache_path("aestudio") / "live-graphs") / name


def export_graph(net_cfg: UNetConfig) -> bytes:
    """The ONNX graph of the folded U-Net (imports ``onnx`` through the exporter: run it in a child)."""
    net = _net(net_cfg, seed=0)
    m = net_cfg.size_multiple
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the exporter's deprecation chatter
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.zeros(1, net_cfg.in_channels, 4 * m, 4 * m), buf,
                          input_names=["image"], output_names=["logits"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}},
                          do_constant_folding=False)
    return buf.getvalue()


def initializer_offsets(graph: bytes) -> dict[str, tuple[int, int]]:
    """Where each float initializer's raw bytes are in ``graph``: name -> (offset, size). Imports ``onnx``."""
    import onnx

    model = onnx.load_from_string(graph)
    out: dict[str, tuple[int, int]] = {}
    for init in model.graph.initializer:
        raw = init.raw_data
        if init.data_type != onnx.TensorProto.FLOAT or not raw:
            continue
        at = graph.find(raw)
        if at < 0 or graph.find(raw, at + 1) >= 0:  # absent, or not unique: no safe place to write
            raise ValueError(f"cannot locate the bytes of initializer {init.name}")
        out[init.name] = (at, len(raw))
    return out


def start_export(net_cfg: UNetConfig, cache: Path | None = None) -> subprocess.Popen[bytes]:
    """Export the graph of ``net_cfg`` to :func:`graph_path` in a child process (one thread, its
    messages in a ``.log`` beside it); poll the returned process."""
    out = graph_path(net_cfg, cache)
    out.parent.mkdir(parents=True, exist_ok=True)
    args = [str(out), str(net_cfg.in_channels), str(net_cfg.num_classes), str(net_cfg.depth),
            str(net_cfg.base_channels), str(getattr(net_cfg, "input_stride", 1))]
    if sys.version_info >= (3, 11):  # -P: the current folder never shadows the installed package
        cmd = [sys.executable, "-P", "-m", "aestudio.export.live_session", *args]
    else:
        cmd = [sys.executable, "-c", "import sys; sys.path.pop(0); from aestudio.export.live_session import main; "
               "sys.exit(main())", *args]
    with open(out.with_suffix(".log"), "wb") as log_file:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)


def main(argv: list[str] | None = None) -> int:
    """``python -m aestudio.export.live_session OUT CHANNELS CLASSES DEPTH BASE STRIDE``: write one graph
    (OUT) and where its weights are (OUT with ``.json``)."""
    import json

    from aestudio._fs import atomic_write_bytes, atomic_write_text
    from aestudio.nets.unet import UNetConfig

    out, *numbers = sys.argv[1:] if argv is None else argv
    channels, classes, depth, base, stride = (int(n) for n in numbers)
    torch.set_num_threads(1)  # a few seconds beside a training run: one core at most
    cfg = UNetConfig(in_channels=channels, num_classes=classes, depth=depth, base_channels=base, input_stride=stride)
    graph = export_graph(cfg)
    atomic_write_text(Path(out).with_suffix(".json"), json.dumps(initializer_offsets(graph)), overwrite=True)
    atomic_write_bytes(Path(out), graph, overwrite=True)  # last: the graph's presence means both are there
    return 0


def read_graph(net_cfg: UNetConfig, cache: Path | None = None) -> tuple[bytes, dict[str, tuple[int, int]]]:
    """The cached graph of ``net_cfg`` and its initializers' places (``OSError`` / ``ValueError`` if unusable)."""
    import json

    path = graph_path(net_cfg, cache)
    index = json.loads(path.with_suffix(".json").read_text())
    return path.read_bytes(), {str(k): (int(v[0]), int(v[1])) for k, v in index.items()}


# ---------------------------------------------------------------- sessions (in the app)


def _shared_arena() -> bool:
    """Register ORT's process-wide CPU arena once (see SHARED_ARENA); False where this runtime cannot."""
    global _arena
    with _arena_lock:
        if _arena is None:
            try:
                info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
                ort.create_and_register_allocator(info, None)
                _arena = True
            except (AttributeError, RuntimeError, ort.capi.onnxruntime_pybind11_state.Fail):
                log.info("ONNX Runtime cannot share one arena between sessions here: one per snapshot", exc_info=True)
                _arena = False
        return _arena


class SnapshotSession:
    """An ORT session per published snapshot of one live U-Net shape (use on one thread).

    ``graph``: :func:`export_graph`'s bytes; ``index``: :func:`initializer_offsets` of them. The
    constructor checks, with weights the graph was not exported with, that writing them in gives
    torch's output (``ValueError`` if not: the caller then predicts with torch)."""

    def __init__(self, net_cfg: UNetConfig, graph: bytes, index: dict[str, tuple[int, int]]) -> None:
        self.net_cfg = net_cfg
        self.multiple = net_cfg.size_multiple
        self._graph = graph
        self._index = index
        self._key: tuple[int, int] | None = None
        self._session: ort.InferenceSession | None = None
        probe = _net(net_cfg, seed=1)
        self._open(_weights(probe), threads=1)
        x = np.random.default_rng(0).random((1, net_cfg.in_channels, 2 * self.multiple, 3 * self.multiple),
                                            dtype=np.float32)
        with torch.no_grad():
            expected = probe(torch.from_numpy(x)).numpy()
        assert self._session is not None
        got = self._session.run(None, {"image": x})[0]
        if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-3 * (1 + np.abs(expected).max())):
            raise ValueError("the exported graph does not take the net's weights by name")

    def _open(self, weights: dict[str, np.ndarray], threads: int) -> None:
        # The runtime's profiles: one thread while training (interactive), every core otherwise; no spinning.
        opts = session_options(SessionProfile.INTERACTIVE if threads == 1 else SessionProfile.BATCH)
        opts.enable_cpu_mem_arena = CPU_ARENA
        if CPU_ARENA and SHARED_ARENA and _shared_arena():
            opts.add_session_config_entry("session.use_env_allocators", "1")
        if set(weights) != set(self._index):
            raise ValueError(f"the graph's weights {sorted(set(self._index) ^ set(weights))[:3]} do not match the net's")
        graph = bytearray(self._graph)
        for name, (at, size) in self._index.items():
            data = np.ascontiguousarray(weights[name], dtype="<f4").tobytes()
            if len(data) != size:
                raise ValueError(f"weight {name}: {len(data)} bytes where the graph holds {size}")
            graph[at:at + size] = data
        self._session = ort.InferenceSession(bytes(graph), opts, providers=["CPUExecutionProvider"])

    def load(self, step: int, state: dict[str, torch.Tensor], threads: int) -> None:
        """Use the weights of snapshot ``step`` (a no-op when they are already loaded); ``threads`` 1 runs
        on one thread (while a training run shares the cores), anything else on every core."""
        if self._key == (step, threads) and self._session is not None:
            return
        self._open(_weights(_net(self.net_cfg, state)), threads)
        self._key = (step, threads)

    def predict_probs(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities float32 [K, H, W] of image [H, W, C] in [0, 1] (as ``live.predict_probs``)."""
        assert self._session is not None, "load() a snapshot first"
        session = self._session

        def logits(batch: np.ndarray) -> np.ndarray:
            return session.run(None, {"image": np.ascontiguousarray(batch, np.float32)})[0]

        return tiled_probs(image, self.multiple, logits)


def bf16_supported() -> bool:
    """Whether this CPU runs torch's bfloat16 convolutions natively (oneDNN with AVX512-BF16 or AMX); elsewhere
    they are emulated, several times slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class Bf16Snapshot:
    """A published snapshot's U-Net in torch, BatchNorms folded, in bfloat16 and channels-last (oneDNN): on a CPU
    with native bfloat16 (:func:`bf16_supported`) a 1024^2 prediction took 0.55-0.6 CPU-s on one thread where
    ONNX Runtime's float32 took 0.84 and torch's float32 1.1 (channels-last; 1.5 not); the class of 99.99% of the
    pixels agreed with float32, probabilities within 0.004 (a U-Net trained 60 steps on strokes). Needs no
    exported graph. The same ``load`` / ``predict_probs`` as :class:`SnapshotSession`; use on one thread
    (its torch thread count is the caller's)."""

    def __init__(self, net_cfg: UNetConfig) -> None:
        self.net_cfg = net_cfg
        self.multiple = net_cfg.size_multiple
        self._key: int | None = None
        self._net: nn.Module | None = None

    def load(self, step: int, state: dict[str, torch.Tensor], threads: int = 1) -> None:  # noqa: ARG002 - as SnapshotSession
        if self._key == step and self._net is not None:
            return
        self._net = _net(self.net_cfg, state).to(torch.bfloat16).to(memory_format=torch.channels_last)
        self._key = step

    def predict_probs(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities float32 [K, H, W] of image [H, W, C] in [0, 1] (as ``live.predict_probs``)."""
        assert self._net is not None, "load() a snapshot first"
        net = self._net

        def logits(batch: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(torch.bfloat16)
            with torch.inference_mode():
                return net(x.contiguous(memory_format=torch.channels_last)).float().numpy()

        return tiled_probs(image, self.multiple, logits)


def tiled_probs(image: np.ndarray, multiple: int, logits: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Class probabilities float32 [K, H, W] of image [H, W, C] in [0, 1]: ``logits`` of [N, C, h, w] batches,
    the whole image up to MAX_TILE, else in as few tiles as fit (:func:`fewest_tiles`), softmax per tile."""
    from aestudio.inference.imageops import pad_to_multiple
    from aestudio.inference.tiling import tiled_apply

    img = np.asarray(image, np.float32)
    if img.ndim == 2:
        img = img[..., None]
    height, width = img.shape[:2]
    chw, _ = pad_to_multiple(np.ascontiguousarray(img.transpose(2, 0, 1)), multiple)

    def run(batch: np.ndarray) -> np.ndarray:
        out = logits(batch)
        e = np.exp(out - out.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    side = max(chw.shape[1:])
    if side <= MAX_TILE:
        probs = run(chw[None])[0]
    else:
        probs = tiled_apply(chw, run, tile=fewest_tiles(side, multiple), overlap=OVERLAP, multiple=multiple,
                            tile_batch=1)
    return np.ascontiguousarray(probs[:, :height, :width], dtype=np.float32)


def fewest_tiles(side: int, multiple: int) -> int:
    """The smallest tile (a multiple of ``multiple``, at most about MAX_TILE) that covers ``side`` in the
    fewest overlapping tiles: 1024 -> 2 x 2 tiles of 528 (1.11 M pixels computed; 3 x 3 of 368 computed 1.22 M)."""
    n = math.ceil((side - OVERLAP) / (MAX_TILE - OVERLAP))
    tile = math.ceil((side + OVERLAP * (n - 1)) / n)
    return min(side, math.ceil(tile / multiple) * multiple)


if __name__ == "__main__":
    sys.exit(main())
