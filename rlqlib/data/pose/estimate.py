"""Run the MediaPipe pose estimator (:mod:`rlqlib.data.pose.mediapipe`) in its own environment, as a subprocess.

The estimator needs mediapipe, which pins numpy<2, so it lives in ``.venv-pose`` (``make pose-env``); this module
starts it there and returns its summary. The keypoints it writes are read back with
:func:`rlqlib.data.pose.keypoints.read_alphapose`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from rlqlib.data.pose.keypoints import PoseInputError

# rlqlib/data/pose/estimate.py → the checkout that holds rlqlib (and .venv-pose)
_REPO = Path(__file__).resolve().parents[3]


def run_mediapipe(images: str | Path, out: str | Path, python: str | Path = ".venv-pose/bin/python",
                  repo: str | Path | None = None) -> dict:
    """Run the MediaPipe estimator (:mod:`rlqlib.data.pose.mediapipe`) in its own environment on a folder.

    Args:
        images: the image folder.
        out: the AlphaPose-format JSON to write (then read it with :func:`~rlqlib.data.pose.keypoints.read_alphapose`).
        python: the pose environment's interpreter (``make pose-env``).
        repo: the folder holding ``rlqlib`` (default: this checkout).

    Returns:
        The estimator's summary (images, persons, no_person, out).
    """
    repo = Path(repo) if repo is not None else _REPO
    python = Path(python) if Path(python).is_absolute() else repo / python
    if not python.exists():
        raise PoseInputError(f"{python} not found: create the pose environment with `make pose-env`")
    cmd = [str(python), "-m", "rlqlib.data.pose.mediapipe", "--images", str(Path(images).resolve()),
           "--out", str(Path(out).resolve())]
    done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
