"""A keypoint file → pose classes → the reference's pose-cluster CSV (``Category,Image,R_LA_15,…``).

:func:`cluster_command` is the body of ``rlq poses cluster``; it returns a summary and prints nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rlqlib.data.annotations import write_pose_csv
from rlqlib.data.pose.clusters import cluster_poses
from rlqlib.data.pose.config import VARIANTS, PoseConfig
from rlqlib.data.pose.keypoints import read_alphapose


def cluster_command(keypoints: str | Path, k: int | Sequence[int], out: str | Path,
                    variant: str | Sequence[str] = "R_LA", category: str = "train",
                    image_size: tuple[int, int] | None = None, images: str | Path | None = None,
                    encoding: str = "reference", min_score: float | None = None, missing: str = "error",
                    person: str = "detection") -> dict:
    """``rlq poses cluster``: AlphaPose-format JSON → pose-cluster CSV in the reference format.

    Args:
        keypoints: the AlphaPose results JSON (AlphaPose, SynthCC's ground truth or
            :mod:`rlqlib.data.pose.mediapipe`).
        k: cluster count(s); one column per (k, variant), in the reference's order.
        out: the CSV to write (``Category,Image,R_LA_15,…``).
        variant: ``R_LA``, ``R_LAC``, ``R_A`` or several.
        category: the ``Category`` column (``train``; ``query``/``test`` for analysis fits).
        image_size: (W, H) when all images share one size.
        images: the image folder (sizes from the image headers; checks that every image has keypoints).
        encoding: ``reference`` or ``improved`` (columns ``Z_…``).
        min_score: mean keypoint confidence below which an image is class 0 (default: not used).
        missing: ``error`` or ``zero`` for images of ``images`` without keypoints (see
            :func:`~rlqlib.data.pose.keypoints.read_alphapose`).
        person: which person of an image is kept: ``detection`` (the authors': highest detector score) or
            ``pose`` (highest AlphaPose score), see :func:`~rlqlib.data.pose.keypoints.read_alphapose_json`.

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
    kps = read_alphapose(keypoints, images=images, image_size=image_size, missing=missing, person=person)
    results = [cluster_poses(kps, cfg) for cfg in configs]
    names = results[0].names
    write_pose_csv(out, names, {r.config.column: r.labels for r in results}, category=category)
    return {"out": str(out), "images": len(names), "no_pose": int((results[0].labels == 0).sum()),
            "columns": [r.config.column for r in results], "counts": {r.config.column: r.counts() for r in results}}
