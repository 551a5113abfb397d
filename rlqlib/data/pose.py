"""Coarse pose classes for CAP (RLQ §3.2, Fig. 5; spec §5): COCO-17 keypoints → pose vector → K-means.

The pipeline has three steps, each a plain function:

1. **Keypoint sources**, one interface: a :class:`Keypoints` (file name → ``(17, 3)`` x, y, score array or ``None``
   for "no person", plus each image's ``(W, H)``). :func:`read_alphapose` reads AlphaPose results JSON (the
   highest-``score`` person per image, as the reference keeps the highest detection score);
   :func:`read_synthcc_keypoints` reads SynthCC's ground truth (the same format); the optional MediaPipe estimator
   (:mod:`rlqlib.data.pose_mediapipe`, own environment, :func:`run_mediapipe`) writes that format too. The authors'
   ready-made labels (``LTCC_Pose_Cluster.csv``) are read as labels directly with
   :func:`rlqlib.data.annotations.read_pose_cluster_csv`; :func:`write_pose_csv` writes the same format.
2. **Vectors** (:func:`pose_vectors`): integer keypoints mapped onto the 192×384 canvas and truncated again, then
   length and angle of the reference's 13 body lines: ``R_LA`` (26-d, the reference's choice), ``R_LAC`` (+34
   canvas coordinates) or ``R_A`` (angles only). :class:`PoseEncoder` leaves them raw (the reference) or, as the
   improved option, standardises lengths/coordinates and writes each angle as (sin, cos), so that a ±180° wrap
   (e.g. the shoulder line of a back view) does not split one pose into two clusters.
3. **Clustering** (:func:`cluster_poses`): K-means fitted on the train split, labels 1…k, 0 = no usable pose.

Analysis helpers for the book: :func:`cluster_medoids`, :func:`purity`, :func:`sweep_k` and
:func:`plot_pose_clusters` (Fig. 5). :func:`cluster_command` is the body of ``rlq poses cluster``.
"""

from __future__ import annotations

import csv
import json
import logging
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.cluster import KMeans

from rlqlib.data.datasets import DatasetError

logger = logging.getLogger(__name__)

COCO17 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
          "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
          "left_ankle", "right_ankle")
# The reference's body lines (a, b) in its order; its list has two more pairs with a joint 17 (a "neck" that
# COCO-17 lacks) that it skips, so there are 13: head ×4, shoulders, left arm ×2, right arm ×2, left/right leg ×2.
BODY_LINES = ((0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15),
              (12, 14), (14, 16))
CANVAS = (192, 384)  # (W, H) the keypoints are mapped onto ("R_" = resized)
VARIANTS = ("R_LA", "R_LAC", "R_A")  # reference column order within one k
ENCODINGS = ("reference", "improved")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_A = np.array([a for a, _ in BODY_LINES])
_B = np.array([b for _, b in BODY_LINES])


class PoseInputError(DatasetError):
    """A keypoint file, image folder or clustering request that cannot be used as given."""


@dataclass(frozen=True)
class PoseConfig:
    """How pose classes are made; the defaults are the reference's (:data:`PRESETS` ``"reference"``).

    Attributes:
        variant: ``R_LA`` (13 lengths + 13 angles), ``R_LAC`` (34 canvas coordinates + R_LA) or ``R_A`` (angles).
        k: clusters (5…40; the paper uses 15); classes are 0…k.
        encoding: ``reference`` (raw pixels and degrees) or ``improved`` (standardised lengths/coordinates, angles
            as (sin, cos)); improved labels are written to ``Z_…`` columns instead of ``R_…``.
        min_score: an image whose mean keypoint confidence is below this gets class 0; None (the reference)
            ignores confidences.
        n_init: K-means restarts. Pinned to 10 because scikit-learn's default changed from 10 to "auto" (a single
            k-means++ run) in 1.4, so the reference's labels depend on the version it happened to run.
        max_iter: K-means iterations (reference: 1000).
        seed: K-means ``random_state`` (reference: 0).
    """

    variant: str = "R_LA"
    k: int = 15
    encoding: str = "reference"
    min_score: float | None = None
    n_init: int = 10
    max_iter: int = 1000
    seed: int = 0

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"PoseConfig: variant {self.variant!r} is not one of {VARIANTS}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"PoseConfig: encoding {self.encoding!r} is not one of {ENCODINGS}")
        if not 5 <= self.k <= 40:
            raise ValueError(f"PoseConfig: k={self.k} is outside 5…40 (the reference's range; the paper uses 15)")
        if self.min_score is not None and not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"PoseConfig: min_score={self.min_score} must be in [0, 1] or None")
        if self.n_init < 1 or self.max_iter < 1:
            raise ValueError("PoseConfig: n_init and max_iter must be >= 1")

    @property
    def column(self) -> str:
        """The label column name: ``R_LA_15`` (reference) or ``Z_LA_15`` (improved)."""
        prefix = "R" if self.encoding == "reference" else "Z"
        return f"{prefix}{self.variant[1:]}_{self.k}"


PRESETS: dict[str, PoseConfig] = {
    "reference": PoseConfig(),
    "improved": PoseConfig(encoding="improved"),
}


# ---------------------------------------------------------------------------------------------- vectors


def canvas_coords(xy: np.ndarray, image_size: np.ndarray | Sequence[float]) -> np.ndarray:
    """Keypoints in image pixels → integer coordinates on the 192×384 canvas, with the reference's truncations.

    Args:
        xy: (..., 17, 2) x, y in pixels of the stored image (extra columns, e.g. scores, are ignored).
        image_size: (W, H), or (..., 2) per image.

    Returns:
        (..., 17, 2) float array of integers: trunc(trunc(x)·192/W), trunc(trunc(y)·384/H).
    """
    xy = np.trunc(np.asarray(xy, dtype=np.float64)[..., :2])  # (..., 17, 2)
    size = np.asarray(image_size, dtype=np.float64)[..., None, :]  # (..., 1, 2)
    if np.any(size <= 0):
        raise PoseInputError(f"image sizes must be positive (W, H), got {np.asarray(image_size).tolist()!r}")
    return np.trunc(xy * np.asarray(CANVAS, dtype=np.float64) / size) + 0.0  # +0.0: -0.0 → 0.0, as int() would


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
    """The reference's pose vectors (spec §5), unscaled.

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


# ---------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Keypoints:
    """Per-image COCO-17 keypoints from one source.

    Attributes:
        points: image file name → (17, 3) x, y, score in pixels of the stored image, or None = no person.
        sizes: image file name → (W, H); same keys as ``points``.
        source: where they came from (for messages).
    """

    points: dict[str, np.ndarray | None]
    sizes: dict[str, tuple[int, int]]
    source: str

    def names(self) -> list[str]:
        """Image file names, sorted."""
        return sorted(self.points)


def read_alphapose_json(path: str | Path) -> dict[str, np.ndarray]:
    """AlphaPose results JSON → image name → (17, 3) of its highest-``score`` person.

    Raises:
        PoseInputError: malformed JSON (file, line, column), an entry without ``image_id``/``keypoints``/``score``,
            or keypoints that are not 17 × (x, y, s).
    """
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PoseInputError(f"keypoint file {path} does not exist") from None
    except json.JSONDecodeError as err:
        raise PoseInputError(f"{path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno} "
                             f"(character {err.pos})") from None
    if not isinstance(entries, list):
        raise PoseInputError(f"{path}: expected AlphaPose results (a JSON list of person entries), "
                             f"got a {type(entries).__name__}")
    best: dict[str, tuple[float, np.ndarray]] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"image_id", "keypoints", "score"} <= entry.keys():
            raise PoseInputError(f"{path}, entry {i}: expected an object with image_id, keypoints and score")
        name, flat = str(entry["image_id"]), entry["keypoints"]
        if not isinstance(flat, list) or len(flat) != 51:
            n = len(flat) if isinstance(flat, list) else type(flat).__name__
            raise PoseInputError(f"{path}, entry {i} ({name}): keypoints has {n} values, expected 51 = 17 COCO "
                                 "joints × (x, y, score); run AlphaPose with a COCO-17 model (e.g. "
                                 "256x192_res50_lr1e-3_1x), not Halpe-26/136")
        try:
            kp = np.asarray(flat, dtype=np.float64).reshape(17, 3)
            score = float(entry["score"])
        except (TypeError, ValueError):
            raise PoseInputError(f"{path}, entry {i} ({name}): keypoints/score are not numbers") from None
        if not np.isfinite(kp).all():
            raise PoseInputError(f"{path}, entry {i} ({name}): keypoints contain NaN or infinity")
        if name not in best or score > best[name][0]:  # ties keep the first person, like a stable argmax
            best[name] = (score, kp)
    return {name: kp for name, (_, kp) in best.items()}


def _index_images(folder: Path) -> dict[str, Path]:
    """File name → path of every image under ``folder`` (recursively); file names must be unique."""
    if not folder.is_dir():
        raise PoseInputError(f"image folder {folder} does not exist")
    index: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            if p.name in index:
                raise PoseInputError(f"{folder}: two images are named {p.name} ({index[p.name]} and {p}); keypoint "
                                     "files name images by file name only, so pass one split folder at a time")
            index[p.name] = p
    if not index:
        raise PoseInputError(f"image folder {folder} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    return index


def _listing(names: Iterable[str], limit: int = 5) -> str:
    names = sorted(names)
    return ", ".join(names[:limit]) + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def read_alphapose(path: str | Path, images: str | Path | None = None,
                   image_size: tuple[int, int] | None = None, missing: str = "error") -> Keypoints:
    """AlphaPose results JSON as :class:`Keypoints`, with the image sizes the canvas mapping needs.

    Args:
        path: the JSON file.
        images: the image folder the JSON was made from: sizes are read from the image headers (unless
            ``image_size`` is given) and every image must have an entry.
        image_size: (W, H) of every image (SynthCC); without ``images``, the JSON's images are all there is.
        missing: images of ``images`` without an entry: ``"error"`` or ``"zero"`` (no person: class 0, as the
            reference does for images where AlphaPose found nobody; they are counted in the log).
    """
    if missing not in ("error", "zero"):
        raise ValueError(f"missing must be 'error' or 'zero', got {missing!r}")
    points: dict[str, np.ndarray | None] = dict(read_alphapose_json(path))
    if images is None and image_size is None:
        raise PoseInputError("image sizes are needed to map keypoints onto the 192×384 canvas: pass the image folder "
                             "(--images DIR) or, when all images share one size, --image-size W H")
    if images is not None:
        index = _index_images(Path(images))
        extra = set(points) - set(index)
        if extra:
            raise PoseInputError(f"{len(extra)} entries of {path} name images that are not in {images}: "
                                 f"{_listing(extra)}; pass the folder the keypoints were computed on")
        absent = set(index) - set(points)
        if absent and missing == "error":
            raise PoseInputError(f"{len(absent)} of {len(index)} images in {images} are missing from {path}: "
                                 f"{_listing(absent)}; AlphaPose leaves out images where it detected nobody: "
                                 "pass missing='zero' (--missing zero) to give them class 0 like the reference")
        if absent:
            logger.info("%d images without keypoints in %s get class 0 (no person)", len(absent), path)
        points.update({name: None for name in absent})
        if image_size is None:
            sizes = {}
            for name, p in index.items():
                with Image.open(p) as im:  # reads the header only
                    sizes[name] = im.size
            return Keypoints(points, sizes, str(path))
    w, h = (int(v) for v in image_size)
    return Keypoints(points, {name: (w, h) for name in points}, str(path))


def read_synthcc_keypoints(root: str | Path, split: str = "train") -> Keypoints:
    """SynthCC's ground-truth keypoints (``annotations/keypoints_<split>.json``) for every image of a split.

    Args:
        root: a SynthCC folder.
        split: ``train``, ``query``, ``test`` or ``external_train``.
    """
    root = Path(root)
    folders = {"train": "train", "query": "query", "test": "test", "external_train": "external/train"}
    if split not in folders:
        raise ValueError(f"SynthCC has keypoints for splits {sorted(folders)}, not {split!r}")
    try:
        h, w = json.loads((root / "synthcc.json").read_text())["image_size"]
    except (OSError, KeyError, ValueError) as err:
        raise PoseInputError(f"{root / 'synthcc.json'} is missing or has no image_size ({err}); is {root} a "
                             "finished SynthCC folder? (rlq synth --out DIR)") from None
    return read_alphapose(root / "annotations" / f"keypoints_{split}.json", images=root / folders[split],
                          image_size=(w, h))


def synthcc_truth(root: str | Path, split: str = "train", column: str = "pose_family") -> dict[str, str]:
    """Image file name → a SynthCC ground-truth column (``pose_family`` or ``view``) from ``metadata.csv``."""
    meta = pd.read_csv(Path(root) / "annotations" / "metadata.csv", dtype=str, keep_default_na=False)
    folder = {"external_train": "external/train"}.get(split, split)
    rows = meta[meta["split"] == folder]
    return dict(zip(rows["image"], rows[column]))


def run_mediapipe(images: str | Path, out: str | Path, python: str | Path = ".venv-pose/bin/python",
                  repo: str | Path | None = None) -> dict:
    """Run the MediaPipe estimator (:mod:`rlqlib.data.pose_mediapipe`) in its own environment on a folder.

    Args:
        images: the image folder.
        out: the AlphaPose-format JSON to write (then read it with :func:`read_alphapose`).
        python: the pose environment's interpreter (``make pose-env``).
        repo: the folder holding ``rlqlib`` (default: this checkout).

    Returns:
        The estimator's summary (images, persons, no_person, out).
    """
    repo = Path(repo) if repo is not None else Path(__file__).resolve().parents[1]
    python = Path(python) if Path(python).is_absolute() else repo / python
    if not python.exists():
        raise PoseInputError(f"{python} not found: create the pose environment with `make pose-env`")
    cmd = [str(python), "-m", "rlqlib.data.pose_mediapipe", "--images", str(Path(images).resolve()),
           "--out", str(Path(out).resolve())]
    done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------- clustering


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
        raise PoseInputError(f"{keypoints.source}: no image size for {len(missing)} images: {_listing(missing)}")
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
        keypoints: from any source (:func:`read_alphapose`, :func:`read_synthcc_keypoints`, …).
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
        truth: image file name → true class (e.g. :func:`synthcc_truth`); purity over images with a pose.

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
            raise PoseInputError(f"no true class for {len(absent)} images: {_listing(absent)}")
        true = np.array([truth[n] for n in kept])
    rows = []
    for k in ks:
        km = _kmeans(enc, replace(config, k=k), keypoints.source)
        rows.append({"k": k, "inertia": float(km.inertia_),
                     "purity": purity(km.labels_, true) if true is not None else float("nan"),
                     "smallest": int(np.bincount(km.labels_, minlength=k).min())})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- CSV and command


def write_pose_csv(path: str | Path, names: Sequence[str], columns: Mapping[str, Sequence[int]],
                   category: str = "train") -> None:
    """Write labels in the reference's ``*_Pose_Cluster.csv`` format (values as floats, ``10.0``).

    Args:
        path: the CSV to write.
        names: image file names or identifiers; the ``Image`` column is their stem.
        columns: column name (e.g. ``R_LA_15``) → (N,) labels in the order of ``names``.
        category: the ``Category`` value of every row.
    """
    for col, values in columns.items():
        if len(values) != len(names):
            raise ValueError(f"column {col} has {len(values)} labels for {len(names)} images")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["Category", "Image", *columns])
        for i, name in enumerate(names):
            writer.writerow([category, Path(name).stem, *(f"{float(v[i]):.1f}" for v in columns.values())])


def cluster_command(keypoints: str | Path, k: int | Sequence[int], out: str | Path,
                    variant: str | Sequence[str] = "R_LA", category: str = "train",
                    image_size: tuple[int, int] | None = None, images: str | Path | None = None,
                    encoding: str = "reference", min_score: float | None = None, missing: str = "error") -> dict:
    """``rlq poses cluster``: AlphaPose-format JSON → pose-cluster CSV in the reference format.

    Args:
        keypoints: the AlphaPose results JSON (AlphaPose, SynthCC's ground truth or :mod:`rlqlib.data.pose_mediapipe`).
        k: cluster count(s); one column per (k, variant), in the reference's order.
        out: the CSV to write (``Category,Image,R_LA_15,…``).
        variant: ``R_LA``, ``R_LAC``, ``R_A`` or several.
        category: the ``Category`` column (``train``; ``query``/``test`` for analysis fits).
        image_size: (W, H) when all images share one size.
        images: the image folder (sizes from the image headers; checks that every image has keypoints).
        encoding: ``reference`` or ``improved`` (columns ``Z_…``).
        min_score: mean keypoint confidence below which an image is class 0 (default: not used).
        missing: ``error`` or ``zero`` for images of ``images`` without keypoints (see :func:`read_alphapose`).

    Returns:
        A summary: out, images, no_pose, columns and the per-column class counts.
    """
    ks = [k] if isinstance(k, int) else list(k)
    variants = [variant] if isinstance(variant, str) else list(variant)
    unknown = set(variants) - set(VARIANTS)
    if unknown or not variants or not ks:
        raise ValueError(f"variant(s) {variants} / k {ks}: give at least one k and variants among {VARIANTS}")
    configs = [PoseConfig(variant=v, k=kk, encoding=encoding, min_score=min_score)
               for kk in ks for v in VARIANTS if v in variants]  # validates k, encoding, min_score
    kps = read_alphapose(keypoints, images=images, image_size=image_size, missing=missing)
    results = [cluster_poses(kps, cfg) for cfg in configs]
    names = results[0].names
    write_pose_csv(out, names, {r.config.column: r.labels for r in results}, category=category)
    return {"out": str(out), "images": len(names), "no_pose": int((results[0].labels == 0).sum()),
            "columns": [r.config.column for r in results], "counts": {r.config.column: r.counts() for r in results}}


# ---------------------------------------------------------------------------------------------- figure

_TORSO = ((5, 11), (6, 12), (11, 12))  # drawn for context only; not part of the vector


def plot_pose_clusters(result: PoseClusters, images: str | Path | Mapping[str, str | Path], n_samples: int = 4,
                       seed: int = 0, classes: Sequence[int] | None = None):
    """Fig. 5: per cluster, its medoid skeleton on the 192×384 canvas and a few member images.

    Args:
        result: from :func:`cluster_poses`.
        images: the image folder, or image file name → path.
        n_samples: member images per cluster (chosen at random with ``seed``).
        seed: the sample choice.
        classes: which clusters (rows) to show; all 1…k by default.

    Returns:
        a matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    paths = _index_images(Path(images)) if isinstance(images, (str, Path)) else dict(images)
    medoids = cluster_medoids(result.encoded, result.labels)
    classes = list(classes) if classes is not None else sorted(medoids)
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(classes), n_samples + 1, figsize=(1.2 * (n_samples + 1), 2.2 * len(classes)),
                             squeeze=False)
    for row, c in zip(axes, classes):
        for ax in row:
            ax.axis("off")
        xy = result.coords[medoids[c]]  # (17, 2)
        ax = row[0]
        for a, b in _TORSO:
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="0.75", lw=1.5)
        for j, (a, b) in enumerate(BODY_LINES):
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], color=plt.cm.tab20(j), lw=2)
        ax.set_xlim(0, CANVAS[0])
        ax.set_ylim(CANVAS[1], 0)
        ax.set_aspect("equal")
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
        members = np.flatnonzero(result.labels == c)
        ax.set_title(f"cluster {c} ({len(members)})", fontsize=7)
        picks = rng.choice(members, size=min(n_samples, len(members)), replace=False)
        for ax, i in zip(row[1:], picks):
            with Image.open(paths[result.names[i]]) as im:
                ax.imshow(im.convert("RGB"))
    fig.tight_layout()
    return fig
