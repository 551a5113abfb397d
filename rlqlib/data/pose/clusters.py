"""Pose classes by K-means (docs/spec.md §5), fitted on the train split: labels 1…k, 0 = no usable pose.

:func:`cluster_poses` makes the classes; :func:`cluster_medoids`, :func:`purity` and :func:`sweep_k` are the analysis
helpers of the book (Fig. 5, Fig. 7c).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from rlqlib.data.pose.config import PoseConfig
from rlqlib.data.pose.keypoints import Keypoints, PoseInputError, name_listing
from rlqlib.data.pose.vectors import PoseEncoder, canvas_coords, pose_vectors

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoseClusters:
    """The result of :func:`cluster_poses`; row i of every array is image ``names[i]``.

    Attributes:
        names: image file names, sorted.
        labels: (N,) int64 class, 1…k, 0 = no usable pose.
        coords: (N, 17, 2) canvas coordinates (NaN for class 0).
        vectors: (N, D) raw reference vectors (NaN for class 0).
        encoded: (N, D') what K-means saw (NaN for class 0).
        config: the configuration used.
        encoder: the fitted encoder.
        kmeans: the fitted scikit-learn model (``inertia_``, ``cluster_centers_``).
    """

    names: list[str]
    labels: np.ndarray
    coords: np.ndarray
    vectors: np.ndarray
    encoded: np.ndarray
    config: PoseConfig
    encoder: PoseEncoder
    kmeans: KMeans

    def label_table(self) -> dict[str, int]:
        """Image identifier (file stem, as in the reference CSVs) → class."""
        return {Path(n).stem: int(c) for n, c in zip(self.names, self.labels)}

    def counts(self) -> dict[int, int]:
        """Images per class 0…k."""
        return {c: int(n) for c, n in enumerate(np.bincount(self.labels, minlength=self.config.k + 1))}


def _stack(keypoints: Keypoints, min_score: float | None) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Names, (N, 17, 3) keypoints (NaN when none), (N, 2) sizes and the (N,) usable mask."""
    names = keypoints.names()
    kp = np.full((len(names), 17, 3), np.nan)
    for i, name in enumerate(names):
        if keypoints.points[name] is not None:
            kp[i] = keypoints.points[name]
    missing = [n for n in names if n not in keypoints.sizes]
    if missing:
        raise PoseInputError(f"{keypoints.source}: no image size for {len(missing)} images: "
                             f"{name_listing(missing)}")
    sizes = np.array([keypoints.sizes[n] for n in names], dtype=np.float64).reshape(len(names), 2)
    usable = ~np.isnan(kp[:, 0, 0])  # (N,)
    if min_score is not None:
        usable &= np.nan_to_num(kp[:, :, 2].mean(axis=1), nan=-1.0) >= min_score
    return names, kp, sizes, usable


def _kmeans(encoded: np.ndarray, config: PoseConfig, source: str) -> KMeans:
    if len(encoded) < config.k:
        raise PoseInputError(f"{source}: k={config.k} clusters need at least {config.k} images with a usable pose, "
                             f"got {len(encoded)}; choose a smaller k")
    return KMeans(n_clusters=config.k, random_state=config.seed, max_iter=config.max_iter,
                  n_init=config.n_init).fit(encoded)


def cluster_poses(keypoints: Keypoints, config: PoseConfig = PoseConfig()) -> PoseClusters:
    """Pose classes of every image of ``keypoints`` (fit K-means on them: pass the train split).

    Args:
        keypoints: from any source (:func:`~rlqlib.data.pose.keypoints.read_alphapose`,
            :func:`~rlqlib.data.pose.keypoints.read_synthcc_keypoints`, …).
        config: variant, k, encoding, confidence threshold, K-means settings.
    """
    names, kp, sizes, usable = _stack(keypoints, config.min_score)
    n = len(names)
    coords = np.full((n, 17, 2), np.nan)
    coords[usable] = canvas_coords(kp[usable], sizes[usable])
    raw = pose_vectors(kp[usable], sizes[usable], config.variant)  # (n_usable, D)
    encoder = PoseEncoder.fit(raw, config.variant, config.encoding)
    enc = encoder.transform(raw)  # (n_usable, D')
    km = _kmeans(enc, config, keypoints.source)
    labels = np.zeros(n, dtype=np.int64)
    labels[usable] = km.labels_ + 1
    vectors = np.full((n, raw.shape[1]), np.nan)
    vectors[usable] = raw
    encoded = np.full((n, enc.shape[1]), np.nan)
    encoded[usable] = enc
    if (~usable).any():
        logger.info("%s: %d of %d images have no usable pose (class 0)", keypoints.source, (~usable).sum(), n)
    return PoseClusters(names, labels, coords, vectors, encoded, config, encoder, km)


def cluster_medoids(encoded: np.ndarray, labels: np.ndarray, chunk: int = 2048) -> dict[int, int]:
    """Each cluster's medoid: the member with the smallest summed Euclidean distance to the other members.

    Args:
        encoded: (N, D) vectors in the space that was clustered (:attr:`PoseClusters.encoded`).
        labels: (N,) classes; class 0 (no pose) is skipped.
        chunk: rows per distance block (bounds memory for big clusters).

    Returns:
        class → row index.
    """
    encoded, labels = np.asarray(encoded, dtype=np.float64), np.asarray(labels)
    out = {}
    for c in np.unique(labels[labels > 0]):
        idx = np.flatnonzero(labels == c)
        x = encoded[idx]  # (m, D)
        sums = np.concatenate([np.sqrt(((x[i:i + chunk, None] - x[None]) ** 2).sum(-1)).sum(1)  # (≤chunk,)
                               for i in range(0, len(x), chunk)])
        out[int(c)] = int(idx[np.argmin(sums)])
    return out


def purity(labels: Sequence | np.ndarray, truth: Sequence | np.ndarray) -> float:
    """Cluster purity: the share of items that carry their cluster's most common true class.

    Args:
        labels: (N,) cluster of each item (filter out class 0 first if it should not count).
        truth: (N,) true class of each item (e.g. SynthCC's ``pose_family``).
    """
    labels, truth = np.asarray(labels), np.asarray(truth)
    if labels.shape != truth.shape or labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"purity needs two equally long non-empty 1-d arrays, got {labels.shape} and {truth.shape}")
    table = pd.crosstab(labels, truth)
    return float(table.max(axis=1).sum() / len(labels))


def sweep_k(keypoints: Keypoints, ks: Iterable[int] = (5, 10, 15, 20, 25, 30, 35, 40),
            config: PoseConfig = PoseConfig(), truth: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Cluster-count sweep (Fig. 7c support): inertia and, given the truth, purity per k.

    Args:
        keypoints: the train split's keypoints.
        ks: cluster counts.
        config: every other setting.
        truth: image file name → true class (e.g. :func:`~rlqlib.data.pose.keypoints.synthcc_truth`); purity over
            images with a pose.

    Returns:
        one row per k: ``k``, ``inertia`` (in the encoded space), ``purity`` (NaN without truth),
        ``smallest`` (images in the smallest cluster).
    """
    names, kp, sizes, usable = _stack(keypoints, config.min_score)
    raw = pose_vectors(kp[usable], sizes[usable], config.variant)
    enc = PoseEncoder.fit(raw, config.variant, config.encoding).transform(raw)
    kept = [n for n, u in zip(names, usable) if u]
    true = None
    if truth is not None:
        absent = [n for n in kept if n not in truth]
        if absent:
            raise PoseInputError(f"no true class for {len(absent)} images: {name_listing(absent)}")
        true = np.array([truth[n] for n in kept])
    rows = []
    for k in ks:
        km = _kmeans(enc, replace(config, k=k), keypoints.source)
        rows.append({"k": k, "inertia": float(km.inertia_),
                     "purity": purity(km.labels_, true) if true is not None else float("nan"),
                     "smallest": int(np.bincount(km.labels_, minlength=k).min())})
    return pd.DataFrame(rows)
