"""Pose vectors (docs/spec.md §5): keypoints on the 192×384 canvas → length and angle of the reference's 13 body lines.

:func:`pose_vectors` gives the reference's raw vectors (``R_LA``, ``R_LAC``, ``R_A``); :class:`PoseEncoder` maps them
into the space K-means runs in (unchanged, or the improved encoding with angles as (sin, cos)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlqlib.data.pose.config import VARIANTS
from rlqlib.data.pose.keypoints import PoseInputError

# The reference's body lines (a, b) in its order; its list has two more pairs with a joint 17 (a "neck" that
# COCO-17 lacks) that it skips, so there are 13: head ×4, shoulders, left arm ×2, right arm ×2, left/right leg ×2.
BODY_LINES = ((0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15),
              (12, 14), (14, 16))
CANVAS = (192, 384)  # (W, H) the keypoints are mapped onto ("R_" = resized)
_A = np.array([a for a, _ in BODY_LINES])
_B = np.array([b for _, b in BODY_LINES])


def canvas_coords(xy: np.ndarray, image_size: np.ndarray | Sequence[float]) -> np.ndarray:
    """Keypoints in image pixels → integer coordinates on the 192×384 canvas, with the reference's truncations.

    Args:
        xy: (..., 17, 2) x, y in pixels of the stored image (extra columns, e.g. scores, are ignored).
        image_size: (W, H), or (..., 2) per image.

    Returns:
        (..., 17, 2) float array of integers: trunc(trunc(x)·(192/W)), trunc(trunc(y)·(384/H)) — the scale
        factor first, as the authors' ``resize_coordinates`` (``x * (resize_dim / original_dim)``): 55·(192/88) =
        119.99… truncates to 119 where 55·192/88 would give 120.
    """
    xy = np.trunc(np.asarray(xy, dtype=np.float64)[..., :2])  # (..., 17, 2)
    size = np.asarray(image_size, dtype=np.float64)[..., None, :]  # (..., 1, 2)
    if np.any(size <= 0):
        raise PoseInputError(f"image sizes must be positive (W, H), got {np.asarray(image_size).tolist()!r}")
    scale = np.asarray(CANVAS, dtype=np.float64) / size  # (..., 1, 2): the factor first, as the authors' code
    return np.trunc(xy * scale) + 0.0  # +0.0: -0.0 → 0.0, as int() would


def line_features(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Length and angle of the 13 body lines (a → b) of :data:`BODY_LINES`.

    Args:
        coords: (..., 17, 2) canvas coordinates.

    Returns:
        lengths (..., 13), the Euclidean distance of the endpoints; angles (..., 13) in degrees,
        atan2(y_a − y_b, x_a − x_b) ∈ (−180, 180].
    """
    d = coords[..., _A, :] - coords[..., _B, :]  # (..., 13, 2)
    lengths = np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2)  # (..., 13)
    angles = np.degrees(np.arctan2(d[..., 1], d[..., 0]))  # (..., 13)
    return lengths, angles


def pose_vectors(keypoints: np.ndarray, image_sizes: np.ndarray | Sequence[float],
                 variant: str = "R_LA") -> np.ndarray:
    """The reference's pose vectors (docs/spec.md §5), unscaled.

    Args:
        keypoints: (N, 17, 2|3) pixel keypoints in COCO-17 order.
        image_sizes: (W, H) shared by all, or (N, 2).
        variant: ``R_LA`` → [13 lengths, 13 angles] (26); ``R_LAC`` → [x0, y0, …, x16, y16, lengths, angles]
            (60); ``R_A`` → 13 angles.

    Returns:
        (N, D) float64.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1] != 17 or kp.shape[2] not in (2, 3):
        raise PoseInputError(f"keypoints must have shape (N, 17, 2|3) in COCO-17 order, got {kp.shape}")
    coords = canvas_coords(kp, image_sizes)  # (N, 17, 2)
    lengths, angles = line_features(coords)  # (N, 13) each
    if variant == "R_LA":
        return np.concatenate([lengths, angles], axis=1)
    if variant == "R_LAC":
        return np.concatenate([coords.reshape(len(kp), 34), lengths, angles], axis=1)
    if variant == "R_A":
        return angles
    raise ValueError(f"unknown pose-vector variant {variant!r}; expected one of {VARIANTS}")


@dataclass(frozen=True)
class PoseEncoder:
    """Turns raw pose vectors into the space K-means runs in.

    ``reference``: unchanged. ``improved``: lengths standardised as one group (one mean and standard deviation
    over all 13 length columns of the fitting set, so the body's proportions are kept and the short, noisy head
    lines are not inflated to the weight of the legs), coordinates likewise as one group, and every angle
    replaced by its (sin, cos). On SynthCC-cpu train this group scaling gave a higher pose-family purity than
    per-column z-scores (k = 15: 0.93 vs 0.88).
    """

    variant: str
    encoding: str
    mean: np.ndarray  # (D-13,) per linear (coordinate, length) column; equal within a group
    std: np.ndarray  # (D-13,)

    @classmethod
    def fit(cls, vectors: np.ndarray, variant: str, encoding: str) -> PoseEncoder:
        """Learn the standardisation of ``vectors`` (N, D) (nothing to learn for the reference encoding)."""
        linear = np.asarray(vectors, dtype=np.float64)[:, :-13]  # (N, D-13): [34 coordinates,] 13 lengths
        mean, std = np.zeros(linear.shape[1]), np.ones(linear.shape[1])
        if encoding == "improved" and len(linear):
            for group in (slice(0, linear.shape[1] - 13), slice(linear.shape[1] - 13, None)):
                values = linear[:, group]
                if values.size:
                    mean[group], std[group] = values.mean(), (values.std() or 1.0)
        return cls(variant, encoding, mean, std)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """(N, D) raw vectors → (N, D) (reference) or (N, D + 13) (improved: scaled linear, sin×13, cos×13)."""
        v = np.asarray(vectors, dtype=np.float64)
        if self.encoding == "reference":
            return v
        rad = np.radians(v[:, -13:])  # (N, 13)
        return np.concatenate([(v[:, :-13] - self.mean) / self.std, np.sin(rad), np.cos(rad)], axis=1)
