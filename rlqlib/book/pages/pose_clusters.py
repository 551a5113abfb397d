"""Fig. 5: the paper's pose recipe (keypoints → ``R_LA`` vectors → K-means) on SynthCC's ground-truth keypoints, and
how well its clusters recover the pose families and viewpoints SynthCC rendered::

    study = pose_cluster_study("synthcc", "data/synthcc-cpu", k=15)
    study.agreement                   # ARI, NMI, purity per encoding × ground truth
    study.crosstab("pose_family")     # cluster × pose family, % of the cluster
    cluster_size_shares(study.reference.labels, 15, "LTCC_Pose_Cluster.csv")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rlqlib.book.analysis import cluster_agreement
from rlqlib.book.plots import crosstab_heatmap
from rlqlib.data import annotations as An
from rlqlib.data import datasets as Dt
from rlqlib.data.pose.clusters import PoseClusters, cluster_poses
from rlqlib.data.pose.config import PoseConfig
from rlqlib.data.pose.keypoints import read_synthcc_keypoints

TRUTHS = ("pose_family", "view", "pose_view")  # what SynthCC rendered; pose_view = both together
OURS, LTCC = "SynthCC (ours)", "LTCC (authors' CSV)"


@dataclass(frozen=True)
class PoseClusterStudy:
    """Pose clusters of SynthCC's train split under both encodings, with the rendered poses beside them.

    Attributes:
        clusters: encoding (``reference``, ``improved``) → :class:`rlqlib.data.pose.clusters.PoseClusters`.
        meta: SynthCC's train metadata in cluster order (index: image file name), plus ``pose_view``.
        agreement: ``classes, ari, nmi, purity`` per (encoding, truth), over the images with a pose.
        root: the SynthCC folder.
    """

    clusters: dict[str, PoseClusters]
    meta: pd.DataFrame
    agreement: pd.DataFrame
    root: Path

    @property
    def reference(self) -> PoseClusters:
        """The clusters of the reference encoding (the paper's)."""
        return self.clusters["reference"]

    def paths(self) -> dict[str, Path]:
        """Image file name → path, for the reference clusters' images."""
        return {name: self.root / "train" / name for name in self.reference.names}

    def crosstab(self, truth: str) -> pd.DataFrame:
        """Reference cluster × ``truth`` class: the share (%) of each cluster's images."""
        labels = pd.Series(self.reference.labels, index=self.reference.names, name="cluster")
        return pd.crosstab(labels, self.meta[truth], normalize="index") * 100

    def heatmaps(self, truths: tuple[str, ...] = ("pose_family", "view")) -> plt.Figure:
        """One :meth:`crosstab` heatmap per truth, side by side."""
        k = self.reference.config.k
        fig, axes = plt.subplots(1, len(truths), figsize=(5.5 * len(truths), 0.3 * (k + 1) + 1.6), squeeze=False)
        for ax, truth in zip(axes[0], truths):
            crosstab_heatmap(self.crosstab(truth), title=f"cluster × {truth} (% of the cluster)", ax=ax)
        return fig

    def glue(self, preset: str) -> dict:
        """The page's glue values: preset, images, images without pose, agreement with the rendered poses."""
        ref, labels = self.agreement.loc["reference"], self.reference.labels
        purity = {truth: float(100 * ref.loc[truth, "purity"]) for truth in TRUTHS}
        return {"fig5_preset": f"`{preset}`", "fig5_images": len(labels), "fig5_no_pose": int((labels == 0).sum()),
                "fig5_ari_family": float(ref.loc["pose_family", "ari"]),
                "fig5_nmi_family": float(ref.loc["pose_family", "nmi"]),
                "fig5_purity_family": purity["pose_family"], "fig5_purity_view": purity["view"],
                "fig5_purity_pose_view": purity["pose_view"],
                "fig5_purity_family_improved": float(100 * self.agreement.loc[("improved", "pose_family"),
                                                                              "purity"]),
                "fig5_n_family": int(ref.loc["pose_family", "classes"])}


def pose_cluster_study(dataset: str, root: str | Path, k: int = 15) -> PoseClusterStudy:
    """Cluster SynthCC's train keypoints into ``k`` classes with the reference and the improved encoding.

    Raises:
        ValueError: ``dataset`` is not SynthCC (only SynthCC has ground-truth keypoints).
    """
    if dataset != "synthcc":
        raise ValueError(f"Fig. 5 clusters SynthCC's ground-truth keypoints; dataset={dataset!r} has none "
                         "(for LTCC use the authors' LTCC_Pose_Cluster.csv, see `rlq poses cluster`)")
    root = Path(root)
    keypoints = read_synthcc_keypoints(root, "train")
    clusters = {enc: cluster_poses(keypoints, PoseConfig(k=k, encoding=enc)) for enc in ("reference", "improved")}
    meta = Dt.synthcc_metadata(root)
    meta = meta[meta["split"] == "train"].set_index("image").loc[clusters["reference"].names]
    meta["pose_view"] = meta["pose_family"] + " / " + meta["view"]
    rows = []
    for enc, result in clusters.items():
        has_pose = result.labels > 0
        for truth in TRUTHS:
            rows.append({"encoding": enc, "truth": truth, "classes": meta[truth].nunique(),
                         **cluster_agreement(result.labels[has_pose], meta[truth].to_numpy()[has_pose])})
    return PoseClusterStudy(clusters, meta, pd.DataFrame(rows).set_index(["encoding", "truth"]), root)


def cluster_size_shares(labels: np.ndarray, k: int, ltcc_csv: str | Path | None = None) -> pd.DataFrame:
    """Cluster sizes as % of the images, largest first (cluster ids are arbitrary), class 0 ("no pose") apart.

    Args:
        labels: (N,) classes 0…k of our images.
        k: clusters.
        ltcc_csv: the authors' ``LTCC_Pose_Cluster.csv``; its ``R_LA_15`` sizes become a second column when the
            file exists.

    Returns:
        Rows ``no pose, #1 … #k``; columns :data:`OURS` and, with the CSV, :data:`LTCC`.
    """
    sizes = {OURS: pd.Series(np.bincount(labels, minlength=k + 1))}
    if ltcc_csv is not None and Path(ltcc_csv).is_file():
        ltcc = An.read_pose_cluster_csv(Path(ltcc_csv), "R_LA_15").values()
        sizes[LTCC] = pd.Series(np.bincount(list(ltcc), minlength=k + 1))
    return pd.DataFrame({name: np.r_[100 * s.iloc[0] / s.sum(), np.sort(100 * s.iloc[1:] / s.sum())[::-1]]
                         for name, s in sizes.items()}, index=["no pose"] + [f"#{i}" for i in range(1, k + 1)])
