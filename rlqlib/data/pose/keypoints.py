"""Keypoint sources (docs/spec.md §5): AlphaPose results JSON and SynthCC's ground truth, read as :class:`Keypoints`.

Every source gives, per image file name, a ``(17, 3)`` x, y, score array in COCO-17 order (or ``None`` for "no
person") and the image's ``(W, H)``, which the canvas mapping of :mod:`rlqlib.data.pose.vectors` needs. The
MediaPipe estimator (:mod:`rlqlib.data.pose.mediapipe`) writes the AlphaPose format too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from rlqlib.data.datasets import DatasetError

logger = logging.getLogger(__name__)

COCO17 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
          "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
          "left_ankle", "right_ankle")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class PoseInputError(DatasetError):
    """A keypoint file, image folder or clustering request that cannot be used as given."""


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


PERSON_CHOICES = ("detection", "pose")


def detection_score(kp: np.ndarray, score: float) -> float:
    """The person detector's box score of an AlphaPose result: AlphaPose writes ``score`` = mean(keypoint scores)
    + box score + 1.25·max(keypoint scores) (its pose NMS), so the box score is what is left."""
    return float(score) - float(kp[:, 2].mean()) - 1.25 * float(kp[:, 2].max())


def read_alphapose_json(path: str | Path, person: str = "detection") -> dict[str, np.ndarray]:
    """AlphaPose results JSON → image name → (17, 3) of one person per image.

    Args:
        person: which person of an image is kept: ``detection`` (the authors' code: the highest detector score,
            their ``yolo_scores``, recovered from ``score`` by :func:`detection_score`) or ``pose`` (the highest
            AlphaPose ``score``, which adds the keypoint confidences). Ties keep the first person, like
            ``argmax``.

    Raises:
        PoseInputError: malformed JSON (file, line, column), an entry without ``image_id``/``keypoints``/``score``,
            or keypoints that are not 17 × (x, y, s).
    """
    if person not in PERSON_CHOICES:
        raise ValueError(f"person={person!r}; choose from {PERSON_CHOICES}")
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
        if person == "detection":
            score = detection_score(kp, score)
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


def name_listing(names: Iterable[str], limit: int = 5) -> str:
    """The first ``limit`` of ``names`` (sorted), comma-separated, and how many more there are (for messages)."""
    names = sorted(names)
    return ", ".join(names[:limit]) + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def read_alphapose(path: str | Path, images: str | Path | None = None,
                   image_size: tuple[int, int] | None = None, missing: str = "error",
                   person: str = "detection") -> Keypoints:
    """AlphaPose results JSON as :class:`Keypoints`, with the image sizes the canvas mapping needs.

    Args:
        path: the JSON file.
        images: the image folder the JSON was made from: sizes are read from the image headers (unless
            ``image_size`` is given) and every image must have an entry.
        image_size: (W, H) of every image (SynthCC); without ``images``, the JSON's images are all there is.
        missing: images of ``images`` without an entry: ``"error"`` or ``"zero"`` (no person: class 0, as the
            reference does for images where AlphaPose found nobody; they are counted in the log).
        person: which person of an image is kept (:func:`read_alphapose_json`; the authors': ``detection``).
    """
    if missing not in ("error", "zero"):
        raise ValueError(f"missing must be 'error' or 'zero', got {missing!r}")
    points: dict[str, np.ndarray | None] = dict(read_alphapose_json(path, person))
    if images is None and image_size is None:
        raise PoseInputError("image sizes are needed to map keypoints onto the 192×384 canvas: pass the image folder "
                             "(--images DIR) or, when all images share one size, --image-size W H")
    if images is not None:
        index = _index_images(Path(images))
        extra = set(points) - set(index)
        if extra:
            raise PoseInputError(f"{len(extra)} entries of {path} name images that are not in {images}: "
                                 f"{name_listing(extra)}; pass the folder the keypoints were computed on")
        absent = set(index) - set(points)
        if absent and missing == "error":
            raise PoseInputError(f"{len(absent)} of {len(index)} images in {images} are missing from {path}: "
                                 f"{name_listing(absent)}; AlphaPose leaves out images where it detected nobody: "
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

