"""The Latent panel's numbers (Qt-free): a data set's codes, how much each dimension matters, maps.

Everything here takes and returns plain numpy, so it runs in worker threads and
is tested without a window:

* :func:`compute_codes` encodes a slice of a data set (in chunks, cancellable,
  with progress) into a :class:`CodeSet`: the codes, which dimensions matter
  most (mean KL per dimension for a VAE, variance of the code otherwise), the
  slider ranges, and a 2-D PCA of the codes;
* :func:`tsne_2d` (slow: seconds for a thousand codes) for the t-SNE map;
* :func:`nearest` (retrieval by code) and :func:`line_codes` (interpolation).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from aestudio.errors import Cancelled

if TYPE_CHECKING:
    from aestudio.inference.predictor import Predictor

logger = logging.getLogger(__name__)

PRIOR_RANGE = 3.0  # VAE sliders span the prior's +-3 standard deviations (99.7% of N(0, 1))
STD_RANGE = 3.0  # plain codes: the data's mean +- 3 standard deviations per dimension
ENCODE_CHUNK = 256  # images per encoder call: progress a few times a second, bounded memory
# A 2-D map needs three codes: one code is a point and two a line, so the map's second axis
# (and with one code, both) had "0% of variance" and showed nothing a person could read.
MIN_MAP_CODES = 3
TSNE_MIN_CODES = 5  # t-SNE's perplexity needs a few neighbours per point


@dataclass(frozen=True)
class Ranges:
    """Per-dimension slider facts, in the code's own (unsorted) dimension order."""

    low: np.ndarray  # float32 [D]
    high: np.ndarray  # float32 [D]
    center: np.ndarray  # float32 [D]: what Reset goes back to (0 for a VAE, the data's mean otherwise)
    importance: np.ndarray  # float32 [D]: mean KL in nats (VAE) or variance of the code
    importance_kind: str  # "KL" | "variance" | "" (unknown: no data)

    @property
    def order(self) -> np.ndarray:
        """Dimensions sorted by importance, most important first (stable for ties)."""
        return np.argsort(-self.importance, kind="stable")


@dataclass(frozen=True)
class PcaMap:
    """A fitted 2-D PCA: ``xy = (z - mean) @ axes.T``."""

    mean: np.ndarray  # float32 [D]
    axes: np.ndarray  # float32 [2, D]
    explained: tuple[float, float]  # fraction of the variance along each axis

    def project(self, z: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(np.asarray(z, dtype=np.float32))
        return ((z - self.mean) @ self.axes.T).astype(np.float32)


@dataclass(frozen=True)
class CodeSet:
    """A data set's codes under one model, and everything the panel derives from them."""

    spec: str
    split: str
    images: np.ndarray  # float32 [N, C, H, W] in [0, 1], the model's input size
    codes: np.ndarray  # float32 [N, D] (mu for a VAE)
    logvar: np.ndarray | None  # float32 [N, D] for a VAE, else None
    ranges: Ranges
    pca: PcaMap
    xy_pca: np.ndarray  # float32 [N, 2]
    labels: np.ndarray | None = None  # int64 [N] or None
    label_names: tuple[str, ...] = ()
    factors: np.ndarray | None = None  # float32 [N, F] (shapes), else None
    factor_names: tuple[str, ...] = ()
    factor_levels: dict[str, tuple[str, ...]] = field(default_factory=dict)  # categorical factors' names

    def __len__(self) -> int:
        return int(self.codes.shape[0])


# ------------------------------------------------------------------ importance and ranges


def kl_per_dim(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean over items of KL(N(mu, exp(logvar)) || N(0, 1)) per dimension, in nats."""
    mu = np.asarray(mu, dtype=np.float64)
    lv = np.asarray(logvar, dtype=np.float64)
    return (0.5 * (mu * mu + np.exp(lv) - 1.0 - lv)).mean(axis=0).astype(np.float32)


def code_ranges(codes: np.ndarray | None, logvar: np.ndarray | None, *, gaussian: bool,
                latent_dim: int) -> Ranges:
    """Slider ranges, reset values and importance; without data, the prior (or +-3) and no order."""
    d = int(latent_dim)
    if codes is None or len(codes) == 0:
        lo = np.full(d, -PRIOR_RANGE, np.float32)
        return Ranges(lo, -lo, np.zeros(d, np.float32), np.zeros(d, np.float32), "")
    codes = np.asarray(codes, dtype=np.float32)
    if gaussian:
        importance = (kl_per_dim(codes, logvar) if logvar is not None
                       else codes.var(axis=0).astype(np.float32))
        # The prior's +-3, widened when the data's codes reach further (a strongly used dimension).
        lo = np.minimum(-PRIOR_RANGE, np.percentile(codes, 0.5, axis=0)).astype(np.float32)
        hi = np.maximum(PRIOR_RANGE, np.percentile(codes, 99.5, axis=0)).astype(np.float32)
        return Ranges(lo, hi, np.zeros(d, np.float32), importance, "KL" if logvar is not None else "variance")
    mean = codes.mean(axis=0).astype(np.float32)
    std = codes.std(axis=0).astype(np.float32)
    span = np.maximum(STD_RANGE * std, 1e-3)  # a dead dimension still gets a usable slider
    return Ranges((mean - span).astype(np.float32), (mean + span).astype(np.float32), mean,
                  (std * std).astype(np.float32), "variance")


# ------------------------------------------------------------------ maps


def pca_2d(codes: np.ndarray) -> tuple[PcaMap, np.ndarray]:
    """A 2-D PCA of the codes (scikit-learn) and the projected points; handles D == 1 and N < 2."""
    codes = np.asarray(codes, dtype=np.float32)
    n, d = codes.shape
    mean = codes.mean(axis=0) if n else np.zeros(d, np.float32)
    k = min(2, d, n)
    axes = np.zeros((2, d), np.float32)
    explained = [0.0, 0.0]
    if k >= 1 and n >= 2:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=k, svd_solver="full").fit(codes)
        axes[:k] = pca.components_.astype(np.float32)
        ratio = np.nan_to_num(pca.explained_variance_ratio_, nan=0.0)
        explained[:k] = [float(r) for r in ratio]
    m = PcaMap(mean.astype(np.float32), axes, (explained[0], explained[1]))
    return m, m.project(codes) if n else np.zeros((0, 2), np.float32)


def map_problem(codes: np.ndarray) -> str | None:
    """Why the codes make no 2-D map (too few, or all the same), said plainly; ``None`` when they do."""
    codes = np.asarray(codes, dtype=np.float64)
    n = len(codes)
    if n < MIN_MAP_CODES:
        return (f"A map needs at least {MIN_MAP_CODES} codes; the data gave {n}. Add images (at least "
                f"{MIN_MAP_CODES}) or open a larger data set in the Data panel. The sliders and "
                "dropped images work without the map.")
    spread = float(codes.var(axis=0).sum())
    scale = float((codes * codes).mean()) + 1e-12
    if not np.isfinite(spread) or spread <= 1e-10 * scale:
        return (f"All {n} codes are the same under this model, so there is nothing to map. Open a data "
                "set with different images, or load a trained model.")
    return None


def tsne_2d(codes: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """t-SNE of the codes (scikit-learn; seconds for a thousand points: run it in a worker)."""
    from sklearn.manifold import TSNE

    codes = np.asarray(codes, dtype=np.float32)
    n = len(codes)
    if n < TSNE_MIN_CODES:
        raise ValueError(f"t-SNE needs at least {TSNE_MIN_CODES} codes; the data gave {n}")
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
              random_state=seed).fit_transform(codes)
    return np.asarray(xy, dtype=np.float32)


def finite_points(xy: np.ndarray) -> np.ndarray:
    """Boolean mask of rows with finite x and y (nothing else may reach a scatter plot)."""
    xy = np.asarray(xy)
    return np.isfinite(xy).all(axis=1) if xy.size else np.zeros(len(xy), bool)


# ------------------------------------------------------------------ retrieval and interpolation


def nearest(codes: np.ndarray, z: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Euclidean distances of the ``k`` codes nearest to ``z``, nearest first."""
    codes = np.asarray(codes, dtype=np.float32)
    z = np.asarray(z, dtype=np.float32).reshape(1, -1)
    if len(codes) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    dist = np.sqrt(((codes - z) ** 2).sum(axis=1))
    k = min(k, len(codes))
    idx = np.argpartition(dist, k - 1)[:k] if k < len(codes) else np.arange(len(codes))
    idx = idx[np.lexsort((idx, dist[idx]))]  # by distance, ties by index: deterministic
    return idx.astype(np.int64), dist[idx].astype(np.float32)


def line_codes(za: np.ndarray, zb: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` codes evenly spaced on the straight line from ``za`` to ``zb`` (both ends included)."""
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 frames, got {steps}")
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    za = np.asarray(za, dtype=np.float32).reshape(1, -1)
    zb = np.asarray(zb, dtype=np.float32).reshape(1, -1)
    return ((1.0 - t) * za + t * zb).astype(np.float32)


# ------------------------------------------------------------------ the worker job


def compute_codes(predictor: Predictor, arrays: Any, *, progress: Callable[[int, int], None] | None = None,
                  cancel: threading.Event | None = None, chunk: int = ENCODE_CHUNK) -> CodeSet:
    """Encode ``arrays.images`` (an engine ``DataArrays``) in chunks and derive ranges and the PCA map.

    Raises :class:`Cancelled` as soon as ``cancel`` is set (checked between chunks).
    """
    from aestudio.inference.bundle import LatentKind

    images = np.ascontiguousarray(arrays.images, dtype=np.float32)
    gaussian = predictor.info.latent_kind is LatentKind.GAUSSIAN
    n = len(images)
    codes, logvars = [], []
    for start in range(0, n, chunk):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        out = predictor.encode_full(images[start : start + chunk])
        if gaussian:
            codes.append(out["mu"])
            logvars.append(out["logvar"])
        else:
            codes.append(out["z"])
        if progress is not None:
            progress(min(n, start + chunk), n)
    z = np.concatenate(codes).astype(np.float32)
    lv = np.concatenate(logvars).astype(np.float32) if gaussian else None
    good = np.isfinite(z).all(axis=1) & (np.isfinite(lv).all(axis=1) if lv is not None else True)
    if not good.all():
        logger.warning("%d of %d codes are not finite and were left out", int((~good).sum()), n)
    keep = np.flatnonzero(good)
    z, images = z[keep], images[keep]
    lv = lv[keep] if lv is not None else None
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    ranges = code_ranges(z, lv, gaussian=gaussian, latent_dim=z.shape[1])
    pca, xy = pca_2d(z)
    labels = None if arrays.labels is None else np.asarray(arrays.labels, dtype=np.int64)[keep]
    factors = None if arrays.factors is None else np.asarray(arrays.factors, dtype=np.float32)[keep]
    factor_names: tuple[str, ...] = ()
    levels: dict[str, tuple[str, ...]] = {}
    if factors is not None:
        factor_names, levels = _factor_names(factors.shape[1])
    return CodeSet(spec=arrays.spec, split=arrays.split, images=images, codes=z, logvar=lv,
                   ranges=ranges, pca=pca, xy_pca=xy, labels=labels,
                   label_names=tuple(arrays.label_names or ()), factors=factors,
                   factor_names=factor_names, factor_levels=levels)


def _factor_names(count: int) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """The ``shapes`` factor names (and the sprite names of the categorical ``shape`` factor)."""
    try:
        from aestudio.data.procedural import FACTOR_NAMES, SPRITE_NAMES

        names = tuple(FACTOR_NAMES[:count]) + tuple(f"factor {i}" for i in range(len(FACTOR_NAMES), count))
        return names, {"shape": tuple(SPRITE_NAMES)} if "shape" in names else {}
    except ImportError:
        return tuple(f"factor {i}" for i in range(count)), {}
