"""rlqlib.book.plots: the shared figures (built on SynthCC-smoke, checked by their panel layout)."""

from __future__ import annotations

import matplotlib.pyplot as plt

from rlqlib.book import plots
from rlqlib.data.pose.clusters import cluster_poses
from rlqlib.data.pose.config import PoseConfig
from rlqlib.data.pose.keypoints import read_synthcc_keypoints


def test_pose_cluster_grid_shows_the_chosen_clusters(synthcc_smoke):
    res = cluster_poses(read_synthcc_keypoints(synthcc_smoke, "train"), PoseConfig(k=10, encoding="improved"))
    paths = {p.name: p for p in (synthcc_smoke / "train").glob("*.png")}
    fig = plots.pose_cluster_grid(res, paths, n_samples=2, classes=[1, 2, 3])
    assert len(fig.axes) == 3 * 3
    plt.close(fig)
