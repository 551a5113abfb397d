"""COCO-17 keypoints with MediaPipe BlazePose, for users without AlphaPose; writes AlphaPose results JSON.

Runs in its own environment, because mediapipe 0.10.21 (the last release whose wheel ships the pose models)
pins numpy<2::

    make pose-env
    .venv-pose/bin/python -m rlqlib.data.pose.mediapipe --images DIR --out keypoints.json

The JSON is then read in the main environment (``rlq poses cluster --keypoints keypoints.json --images DIR``, or
:func:`rlqlib.data.pose.keypoints.read_alphapose`). This module imports only the standard library, numpy (1.x or
2.x), Pillow and, inside :func:`estimate`, mediapipe: nothing else of rlqlib, no torch (the ``__init__`` files of
``rlqlib``, ``rlqlib.data`` and ``rlqlib.data.pose`` import nothing).

Model: legacy ``mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)`` (the other complexities
download their model at run time). BlazePose's 33 landmarks map to COCO-17 with :data:`BLAZEPOSE_TO_COCO`; the
landmark ``visibility`` is the keypoint score. Like AlphaPose, an image where no person is found gets no entry
(read it with ``missing="zero"`` / ``--missing zero`` to give it class 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

# BlazePose-33 index of each COCO-17 joint: nose, l/r eye, l/r ear, l/r shoulder, l/r elbow, l/r wrist, l/r hip,
# l/r knee, l/r ankle.
BLAZEPOSE_TO_COCO = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def to_coco_entry(name: str, landmarks: np.ndarray, width: int, height: int) -> dict:
    """One AlphaPose-format entry from BlazePose landmarks.

    Args:
        name: the image file name (``image_id``).
        landmarks: (33, 3) normalised x, y (0…1 of the image) and visibility.
        width: image width in pixels.
        height: image height in pixels.

    Returns:
        ``{"image_id", "category_id": 1, "keypoints": [x, y, s] * 17 (pixels), "score", "box": [x, y, w, h]}``;
        score = mean visibility of the 17 joints; box = the landmarks' extent clipped to the image.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (33, 3):
        raise ValueError(f"{name}: expected (33, 3) BlazePose landmarks, got {lm.shape}")
    xy = lm[:, :2] * np.array([width, height])  # (33, 2) pixels
    coco = np.concatenate([xy[list(BLAZEPOSE_TO_COCO)], lm[list(BLAZEPOSE_TO_COCO), 2:]], axis=1)  # (17, 3)
    lo = np.clip(xy.min(axis=0), 0, [width, height])
    hi = np.clip(xy.max(axis=0), 0, [width, height])
    return {"image_id": name, "category_id": 1, "keypoints": [round(float(v), 3) for v in coco.ravel()],
            "score": round(float(coco[:, 2].mean()), 4),
            "box": [round(float(v), 2) for v in (lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1])]}


def list_images(folder: str | Path) -> list[Path]:
    """Every image under ``folder`` (recursively), sorted; file names must be unique (they are the image ids)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    seen: dict[str, Path] = {}
    for p in paths:
        if p.name in seen:
            raise ValueError(f"{folder}: two images are named {p.name} ({seen[p.name]} and {p}); pass one split "
                             "folder at a time")
        seen[p.name] = p
    if not paths:
        raise FileNotFoundError(f"image folder {folder} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    return paths


def estimate(images: Iterable[tuple[str, np.ndarray]], min_detection: float = 0.5) -> Iterator[dict | None]:
    """BlazePose on each (name, (H, W, 3) uint8 RGB) image: its AlphaPose entry, or None when nobody is found."""
    import mediapipe as mp  # only in the pose environment

    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                min_detection_confidence=min_detection) as model:
        for name, rgb in images:
            found = model.process(np.ascontiguousarray(rgb)).pose_landmarks
            if found is None:
                yield None
                continue
            lm = np.array([(p.x, p.y, p.visibility) for p in found.landmark])  # (33, 3)
            yield to_coco_entry(name, lm, rgb.shape[1], rgb.shape[0])


def _read(paths: list[Path]) -> Iterator[tuple[str, np.ndarray]]:
    for p in paths:
        with Image.open(p) as im:
            yield p.name, np.asarray(im.convert("RGB"))


def run(images: str | Path, out: str | Path, min_detection: float = 0.5) -> dict:
    """Estimate keypoints for every image under ``images`` and write them to ``out``; returns a summary."""
    paths = list_images(images)
    entries = [e for e in estimate(_read(paths), min_detection) if e is not None]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(entries, separators=(",", ":")))
    logger.info("%d of %d images without a person (left out, as AlphaPose does)", len(paths) - len(entries),
                len(paths))
    return {"images": len(paths), "persons": len(entries), "no_person": len(paths) - len(entries), "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m rlqlib.data.pose.mediapipe --images DIR --out FILE``; prints a JSON summary."""
    parser = argparse.ArgumentParser(prog="python -m rlqlib.data.pose.mediapipe", description=__doc__.split("\n")[0])
    parser.add_argument("--images", required=True, help="image folder (searched recursively)")
    parser.add_argument("--out", required=True, help="AlphaPose-format JSON to write")
    parser.add_argument("--min-detection", type=float, default=0.5, help="BlazePose person-detection threshold")
    args = parser.parse_args(argv)
    try:
        summary = run(args.images, args.out, args.min_detection)
    except (OSError, ValueError) as err:
        print(f"rlqlib.data.pose.mediapipe: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
