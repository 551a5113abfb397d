"""Fig. 7b: which rendered artifact hurts most, and does RLQ beat the other models on it? Every query is scored by its
own top-1 match (:class:`rlqlib.book.figure_page.QueryMatches`) and grouped by the artifact SynthCC rendered it with::

    b = artifact_panel(query_matches(p, runs))
    b.table(); b.worst; b.versus; b.figure()
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rlqlib.book.analysis import Top1, accuracy_by, paired_difference
from rlqlib.book.figure_page import QueryMatches
from rlqlib.book.plots import grouped_bars
from rlqlib.book.verdicts import one_run

ARTIFACTS = ("none", "pixelation", "motion_blur", "out_of_focus")  # SynthCC's rendered qualities, HQ first


@dataclass(frozen=True)
class ArtifactPanel:
    """Top-1 per query artifact of every model, the worst artifact, and one model against the others.

    Attributes:
        accuracy: model → :func:`rlqlib.book.analysis.accuracy_by` over :data:`ARTIFACTS`.
        worst: per model, the LQ artifact with the lowest top-1 and the gap between the worse of the other two and
            motion blur (positive: motion blur is worse), with its SE and verdict.
        versus: ``model − base`` top-1 paired over the same queries, on all and on the LQ queries.
        n_lq: LQ queries.
    """

    accuracy: dict[str, pd.DataFrame]
    worst: pd.DataFrame
    versus: pd.DataFrame
    n_lq: int

    def table(self) -> pd.DataFrame:
        """The accuracy tables side by side (columns: model × ``top1, se, n, skipped``)."""
        return pd.concat(dict(self.accuracy), axis=1)

    def figure(self) -> plt.Figure:
        """Grouped bars of top-1 per artifact (± SE), one bar per model."""
        return grouped_bars(pd.DataFrame({n: a["top1"] for n, a in self.accuracy.items()}), "CC top-1 (%)",
                            err=pd.DataFrame({n: a["se"] for n, a in self.accuracy.items()}),
                            title="top-1 by query artifact")

    def summary(self) -> list[dict]:
        """Summary rows: motion blur hurts each model most; the model beats each base on all queries."""
        rows = [{"panel": "7b", "claim": f"motion blur hurts {n} most", "paper": "yes",
                 "ours": self.worst.loc[n, "worst artifact"], "verdict": self.worst.loc[n, "verdict"], "seeds": 1}
                for n in self.worst.index]
        for (comparison, subset), r in self.versus.iterrows():
            if subset == "all queries":
                claim = f"{comparison.replace(' − ', ' beats ')} (CC top-1, all queries)"
                rows.append({"panel": "7b", "claim": claim, "paper": "yes",
                             "ours": f"{r['Δ top-1 (points)']:+.1f} points", "verdict": r["verdict"], "seeds": 1})
        return rows

    def glue(self) -> dict:
        """The page's glue values for panel (b)."""
        out = {"fig7b_worst": ", ".join(f"{self.worst.loc[n, 'worst artifact'].replace('_', ' ')} for {n}"
                                        for n in self.worst.index),
               "fig7b_v_mb": ", ".join(f"{n} **{self.worst.loc[n, 'verdict']}**" for n in self.worst.index),
               "fig7b_n_lq": self.n_lq}
        for (comparison, subset), r in self.versus.iterrows():
            key = f"{comparison.split(' − ')[1].lower()}_{'all' if subset == 'all queries' else 'lq'}"
            out.update({f"fig7b_d_{key}": float(r["Δ top-1 (points)"]), f"fig7b_v_{key}": f"**{r['verdict']}**"})
        return out


def _worst(acc: pd.DataFrame) -> dict:
    lq = acc.loc[list(ARTIFACTS[1:])]
    other = lq.drop("motion_blur")["top1"].idxmin()  # the worse of the two other artifacts
    delta = lq.loc[other, "top1"] - lq.loc["motion_blur", "top1"]
    se = float(np.hypot(lq.loc[other, "se"], lq.loc["motion_blur", "se"]))
    return {"worst artifact": lq["top1"].idxmin(), "other − motion blur (points)": delta, "SE": se,
            "verdict": one_run(delta, se, 1.0)}


def artifact_panel(m: QueryMatches, model: str = "RLQ", bases: tuple[str, ...] = ("CAL", "BM")) -> ArtifactPanel:
    """Fig. 7b from every model's top-1 matches; ``model`` is compared with each of ``bases``."""
    artifact = m.query["artifact"]
    acc = {name: accuracy_by(t, artifact, list(ARTIFACTS)) for name, t in m.top1.items()}
    worst = pd.DataFrame([{"model": name, **_worst(a)} for name, a in acc.items()]).set_index("model")
    lq = (artifact != "none").to_numpy()
    rows = []
    for base in bases:
        for subset, mask in (("all queries", np.ones(len(lq), bool)), ("LQ queries", lq)):
            ours, theirs = (Top1(*(x[mask] for x in m.top1[name])) for name in (model, base))
            d, se, n = paired_difference(ours, theirs)
            rows.append({"comparison": f"{model} − {base}", "queries": subset, "Δ top-1 (points)": d, "SE": se,
                         "n": n, "verdict": one_run(d, se, 1.0)})
    return ArtifactPanel(acc, worst, pd.DataFrame(rows).set_index(["comparison", "queries"]), int(lq.sum()))
