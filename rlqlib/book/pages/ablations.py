"""Fig. 7a and 7c: two config sweeps trained over every seed of a page, read against the Base Model::

    a = subsample_sweep(p, [0.08, 0.25, 0.5, 1.0])    # TAD with its external set cut to each fraction
    c = pose_k_sweep(p, [5, 10, 15, 25], a.runs["BM"])  # BM + pose head with k pose clusters
    a.figure(); a.summary(seed_std); c.glue(seed_std)

``seed_std`` is the seed-to-seed spread Table 2 measures (:attr:`rlqlib.book.page.Page.seed_noise`), what a one-seed
verdict is read against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd

from rlqlib.book import experiments as X
from rlqlib.book.analysis import subsample_counts
from rlqlib.book.page import Page
from rlqlib.book.plots import metric_lines
from rlqlib.book.verdicts import over_seeds
from rlqlib.data.pose.clusters import sweep_k
from rlqlib.data.pose.keypoints import read_synthcc_keypoints, synthcc_truth
from rlqlib.data.training import external_dataset
from rlqlib.engine.runs import Run

HIGH_K, LOW_K = (15, 25), (5, 10)  # the paper's optimum "around 15 and 25" against the smaller counts


@dataclass(frozen=True)
class SubsampleSweep:
    """Fig. 7a: BM, and TAD with ``tad.subsample`` at each fraction that keeps an image.

    Attributes:
        kept: ``images, ids, share`` the subsampling keeps, indexed by fraction.
        usable: fractions trained (those keeping at least one image); skipped: the others.
        runs: ``BM`` and ``TAD <fraction>`` → runs, one per seed.
        long: :func:`rlqlib.book.experiments.results` of the runs under ``protocol``.
    """

    kept: pd.DataFrame
    usable: list[float]
    skipped: list[float]
    runs: dict[str, list[Run]]
    long: pd.DataFrame
    protocol: str

    def skipped_note(self) -> str | None:
        """A markdown line naming the skipped fractions (None: none skipped)."""
        return f"*Skipped (no image kept): {', '.join(f'{f:.0%}' for f in self.skipped)}.*" if self.skipped else None

    def figure(self) -> plt.Figure:
        """Top-1 and mAP of TAD against the fraction kept (mean ± std over seeds), BM as a dashed line."""
        agg = X.aggregate(self.long)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
        for ax, metric in zip(axes, ("top1", "mAP")):
            sel = agg[(agg["metric"] == metric) & (agg["method"] != "BM")]
            curve = pd.DataFrame({"TAD": sel["mean"].to_numpy()}, index=self.usable)
            err = pd.DataFrame({"TAD": sel["std"].to_numpy()}, index=self.usable)
            base = agg[(agg["metric"] == metric) & (agg["method"] == "BM")]["mean"].iloc[0]
            metric_lines(curve, f"CC {metric} (%)", "external images kept per identity", err=err,
                         xticklabels=[f"{f:.0%}" for f in self.usable], hline={"BM (no TAD)": base}, ax=ax)
        return fig

    def _deltas(self, seed_std: float) -> tuple[float, int, float, str]:
        small = f"TAD {self.usable[0]:.0%}"
        d_small, sd_small, n_small = X.paired_delta(self.long, small, "BM", self.protocol)
        d_full, _, _ = X.paired_delta(self.long, small, "TAD 100%", self.protocol)
        return d_small, n_small, d_full, over_seeds(d_small, sd_small, 1.0, n_small, seed_std=seed_std)

    def summary(self, seed_std: float) -> list[dict]:
        """The summary row of the claim that a small subset still helps (``seeds``: seeds paired)."""
        d_small, n_small, _, verdict = self._deltas(seed_std)
        return [{"panel": "7a", "claim": f"TAD on a {self.usable[0]:.0%} subset beats BM (CC top-1)",
                 "paper": "yes (~8 % subset)", "ours": f"{d_small:+.1f} points", "verdict": verdict, "seeds": n_small}]

    def glue(self, seed_std: float) -> dict:
        """The page's glue values for panel (a)."""
        d_small, _, d_full, verdict = self._deltas(seed_std)
        first = self.usable[0]
        return {"fig7a_small": f"{first:.0%}", "fig7a_small_images": int(self.kept.loc[first, "images"]),
                "fig7a_small_share": float(self.kept.loc[first, "share"]), "fig7a_d_bm": d_small,
                "fig7a_d_full": d_full, "fig7a_verdict": f"**{verdict}**",
                "fig7a_skipped": ", ".join(f"{f:.0%}" for f in self.skipped) if self.skipped else "none"}


def subsample_sweep(p: Page, fractions: Sequence[float], protocol: str = "cc") -> SubsampleSweep:
    """Train (or load) BM and TAD at each fraction of the external set that keeps an image, over the page's seeds;
    the fractions that keep none are declared to the book's run plan (:meth:`rlqlib.book.page.Page.declare`)."""
    cfg = p.config("tad")
    external = external_dataset(cfg.data, "external", cfg.tad.external_root)
    kept = subsample_counts([x.pid for x in external.train], fractions).set_index("fraction")
    usable = [f for f in fractions if kept.loc[f, "images"] > 0]
    runs = {"BM": p.train("bm")}
    runs.update({f"TAD {f:.0%}": p.train("tad", **{"tad.subsample": f}) for f in usable})
    skipped = [f for f in fractions if f not in usable]
    for f in skipped:  # trained at a larger scale: the book's run plan still lists them
        p.declare("tad", **{"tad.subsample": f})
    return SubsampleSweep(kept, usable, skipped, runs, X.results(runs, [protocol]), protocol)


@dataclass(frozen=True)
class PoseKSweep:
    """Fig. 7c: BM and BM + pose head with ``data.pose_k`` = each k.

    Attributes:
        ks: the cluster counts.
        runs: ``BM`` and ``BM+P k=<k>`` → runs, one per seed.
        long: their results under the protocol, with a ``k`` column (NaN for BM).
        purity: ``inertia, purity, …`` per k of the train keypoints' clusters against SynthCC's pose families.
    """

    ks: list[int]
    runs: dict[str, list[Run]]
    long: pd.DataFrame
    purity: pd.DataFrame

    def curve(self) -> pd.DataFrame:
        """Mean and std of top-1 over seeds, per k."""
        return self.long.dropna(subset=["k"]).groupby("k")["top1"].agg(["mean", "std"])

    def figure(self) -> plt.Figure:
        """Top-1 against k (BM dashed) beside the clusters' pose-family purity against k."""
        curve = self.curve()
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
        metric_lines(curve[["mean"]].rename(columns={"mean": "BM+P"}), "CC top-1 (%)", "pose clusters k",
                     err=curve[["std"]].rename(columns={"std": "BM+P"}),
                     hline={"BM (no pose head)": self.long[self.long["method"] == "BM"]["top1"].mean()}, ax=axes[0])
        metric_lines(100 * self.purity[["purity"]], "pose-family purity (%)", "pose clusters k", ax=axes[1])
        for ax in axes:
            ax.set_xticks(self.ks)
        return fig

    def _delta(self, seed_std: float) -> tuple[float, int, int, str]:
        wide = self.long.dropna(subset=["k"]).pivot_table(index="seed", columns="k", values="top1")
        d = wide[list(HIGH_K)].mean(axis=1) - wide[list(LOW_K)].mean(axis=1)  # per seed
        sd = float(d.std(ddof=1)) if len(d) > 1 else float("nan")
        best = int(self.curve()["mean"].idxmax())
        return float(d.mean()), len(d), best, over_seeds(float(d.mean()), sd, 1.0, len(d), seed_std=seed_std)

    def summary(self, seed_std: float) -> list[dict]:
        """The summary row of the claim that about 15–25 clusters is best."""
        d, n, best, verdict = self._delta(seed_std)
        return [{"panel": "7c", "claim": "k = 15/25 beats k = 5/10 (CC top-1)", "paper": "optimum ≈ 15 and 25",
                 "ours": f"{d:+.1f} points, best k = {best}", "verdict": verdict, "seeds": n}]

    def glue(self, seed_std: float) -> dict:
        """The page's glue values for panel (c)."""
        d, _, best, verdict = self._delta(seed_std)
        return {"fig7c_best_k": best, "fig7c_d": d, "fig7c_verdict": f"**{verdict}**"}


def pose_k_sweep(p: Page, ks: Sequence[int], bm: list[Run], protocol: str = "cc") -> PoseKSweep:
    """Train (or load) BM + pose head at each k over the page's seeds; ``bm``: the Base Model's runs (no pose head)."""
    runs = {"BM": bm}
    runs.update({f"BM+P k={k}": p.train("bm+p", **{"data.pose_k": k}) for k in ks})
    long = X.results(runs, [protocol])
    long["k"] = long["method"].map({f"BM+P k={k}": k for k in ks})
    root = p.setting.root
    purity = sweep_k(read_synthcc_keypoints(root, "train"), ks,
                     truth=synthcc_truth(root, "train", "pose_family")).set_index("k")
    return PoseKSweep(list(ks), runs, long, purity)
