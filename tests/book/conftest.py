"""Shared fixtures of the book tests: the match explorer's hand-made case (labels, distances, tiny images)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image


@pytest.fixture
def hand_case():
    """Two queries (ids 0 and 1) against four gallery images; distances chosen by hand."""
    q = pd.DataFrame({"path": ["q0", "q1"], "pid": [0, 1], "camid": [0, 0], "clothes_id": [0, 0],
                      "gender": [1, 0], "pose_family": ["run", "walk"], "artifact": ["none", "pixelation"]})
    g = pd.DataFrame({"path": [f"g{i}" for i in range(4)], "pid": [0, 1, 2, 1], "camid": [1, 1, 1, 0],
                      "clothes_id": [1, 0, 0, 0], "gender": [1, 0, 1, 0], "pose_family": ["run", "run", "walk", "walk"],
                      "artifact": ["none", "none", "pixelation", "none"]})
    da = np.array([[0.1, 0.5, 0.3, 0.9], [0.9, 0.2, 0.1, 0.0]])  # A: q0 right at 1; q1 wrong (g2, then g1)
    db = np.array([[0.4, 0.1, 0.2, 0.9], [0.9, 0.1, 0.3, 0.0]])  # B: q0 wrong (g1, g2, g0); q1 right
    return q, g, da, db


def colour(tag: str, i: int) -> tuple[int, int, int]:
    """The colour of image ``i`` of the ``images`` fixture (``q`` queries, ``g`` gallery)."""
    return (40 * i, 100, 200) if tag == "q" else (200, 40 * i, 60)


@pytest.fixture
def images(tmp_path, hand_case):
    """The hand case with real 16x8 PNG files, one flat colour each (:func:`colour`)."""
    q, g, da, db = hand_case
    for df, tag in ((q, "q"), (g, "g")):
        paths = []
        for i in range(len(df)):
            p = tmp_path / f"{tag}{i}.png"
            Image.new("RGB", (8, 16), colour(tag, i)).save(p)
            paths.append(str(p))
        df["path"] = paths
    return q, g, da, db
