"""The match-explorer page: two models' rankings of every query (:mod:`rlqlib.book.matches`), checked against the
runs' stored metrics, a few example queries picked by rule, and what the top-1 mistakes share with the query (the
question behind the paper's Fig. 8)::

    r = match_report(p, "rlq", "cal", k=5)      # models A and B by variant
    r.check(); r.explorer(); r.examples_figure(); r.shares()
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rlqlib.book import experiments as X
from rlqlib.book.matches import OUTCOMES, Ranking, distances, example_queries, mistake_table, query_table, rank_matches
from rlqlib.book.page import Page
from rlqlib.book.verdicts import VERDICTS, shares
from rlqlib.book.explorers import match_explorer
from rlqlib.book.match_figure import plot_matches
from rlqlib.engine.runs import Run

SHARES = ("opposite gender", "same pose family", "same view", "same artifact")  # :func:`mistake_table` columns


@dataclass(frozen=True)
class MatchReport:
    """Rankings of models A and B under every protocol of the dataset.

    Attributes:
        p: the page; variants: A's and B's; runs: name → runs (A first); names: (A, B), the variants in capitals.
        query, gallery: labels of the query and gallery splits (``splits``).
        dist: name → (Q, G) distances; rankings: protocol → name → :class:`rlqlib.book.matches.Ranking`.
        protocols: ``general`` (and ``cc`` where the dataset has it); k: items per query.
    """

    p: Page
    variants: tuple[str, str]
    runs: dict[str, list[Run]]
    names: tuple[str, str]
    splits: tuple[str, str]
    query: pd.DataFrame
    gallery: pd.DataFrame
    dist: dict[str, np.ndarray]
    rankings: dict[str, dict[str, Ranking]]
    protocols: list[str]
    k: int

    def check(self) -> pd.DataFrame:
        """Top-1 and mAP from the rankings beside those the runs stored (they must be equal)."""
        stored = {name: X.run_metrics(rs[0]) for name, rs in self.runs.items()}
        return pd.DataFrame([
            {"model": name, "protocol": pr, "top-1 here": 100 * r.correct[r.first_hit >= 0, 0].mean(),
             "mAP here": 100 * np.nanmean(r.ap), "top-1 run": stored[name].get(pr, {}).get("top1", np.nan),
             "mAP run": stored[name].get(pr, {}).get("mAP", np.nan)}
            for pr in self.protocols for name, r in self.rankings[pr].items()]).set_index(["model", "protocol"])

    def explorer(self):
        """The kernel-free explorer (:func:`rlqlib.book.explorers.match_explorer`), first under the page's protocol."""
        a, b = self.names
        return match_explorer(self.query, self.gallery, self.dist[a], self.dist[b], names=self.names, k=self.k,
                              protocols=self.protocols, protocol=self.p.protocol)

    def table(self) -> pd.DataFrame:
        """:func:`rlqlib.book.matches.query_table` under the page's protocol."""
        a, b = (self.rankings[self.p.protocol][n] for n in self.names)
        return query_table(self.query, self.gallery, a, b)

    def examples_figure(self, n: int = 3) -> plt.Figure:
        """:func:`rlqlib.book.match_figure.plot_matches` of the :func:`rlqlib.book.matches.example_queries`."""
        a, b = (self.rankings[self.p.protocol][n] for n in self.names)
        picks = [q for q, _ in example_queries(self.table(), n)]
        return plot_matches(self.query, self.gallery, a, b, picks, names=self.names, k=self.k)

    def picked(self, n: int = 3) -> pd.DataFrame:
        """The example queries: why each was picked, the top-1 outcome, labels, rank and AP of both models."""
        (a, b), table = self.names, self.table()
        examples = example_queries(table, n)
        why = {"a_gain": f"{a} ahead", "b_gain": f"{b} ahead", "hardest": "hardest"}
        out = table.loc[[q for q, _ in examples]].assign(picked=[why[r] for _, r in examples])
        out["top-1"] = out["outcome"].map({"both": "both right", "a_only": f"only {a} right",
                                           "b_only": f"only {b} right", "neither": "both wrong"})
        out.index = [f"q{q}" for q, _ in examples]
        cols = ["picked", "top-1", "pid", "camid", *[c for c in ("gender", "pose_family", "view", "artifact")
                                                      if c in out], "rank_a", "ap_a", "rank_b", "ap_b"]
        return out[cols].rename(columns={"rank_a": f"rank {a}", "ap_a": f"AP {a} (%)", "rank_b": f"rank {b}",
                                         "ap_b": f"AP {b} (%)"})

    def outcomes(self) -> pd.Series:
        """Queries per top-1 outcome (:data:`rlqlib.book.matches.OUTCOMES`)."""
        return self.table()["outcome"].value_counts().reindex(OUTCOMES, fill_value=0)

    def outcome_table(self) -> pd.DataFrame:
        """:meth:`outcomes` as one row with readable column names."""
        a, b = self.names
        labels = {"both": "both right", "a_only": f"only {a} right", "b_only": f"only {b} right",
                  "neither": "both wrong", "none": "no correct match (skipped)"}
        return self.outcomes().rename(index=labels).to_frame(f"top-1 under {self.p.protocol}").T

    def mistakes(self) -> pd.DataFrame:
        """:func:`rlqlib.book.matches.mistake_table` of A and B under the page's protocol."""
        return mistake_table(self.query, self.gallery, {n: self.rankings[self.p.protocol][n] for n in self.names})

    def share_verdicts(self) -> dict[str, str]:
        """Per share of :data:`SHARES` the labels have: is A's share lower than B's (two-proportion test)?"""
        m, (a, b) = self.mistakes(), self.names
        of = {c: ("LQ mistakes" if c == "same artifact" else "mistakes") for c in SHARES}
        return {c: shares(m.at[a, c], int(m.at[a, of[c]]), m.at[b, c], int(m.at[b, of[c]])) for c in SHARES if c in m}

    def shares(self) -> pd.DataFrame:
        """Per share: A's, B's, chance and the verdict."""
        m, (a, b), v = self.mistakes(), self.names, self.share_verdicts()
        return pd.DataFrame({"share among mistakes": list(v), a: [f"{m.at[a, c]:.1f}" for c in v],
                             b: [f"{m.at[b, c]:.1f}" for c in v], "chance": [f"{m.at['chance', c]:.1f}" for c in v],
                             f"verdict ({a} lower, as Fig. 8 suggests)": list(v.values())}
                            ).set_index("share among mistakes")

    def glue(self) -> dict:
        """The page's glue values."""
        (a, b), p, m, v, outcomes = self.names, self.p, self.mistakes(), self.share_verdicts(), self.outcomes()
        lines = "\n".join(f"* {c}: {m.at[a, c]:.1f} % of {a}'s mistakes, {m.at[b, c]:.1f} % of {b}'s, "
                          f"{m.at['chance', c]:.1f} % by chance: **{x}**" for c, x in v.items())
        return {"xm_name_a": f"**{a}**", "xm_name_b": f"**{b}**", "xm_seed": str(p.seeds[0]), "xm_k": str(self.k),
                "xm_preset": f"`{p.preset}`", "xm_dataset": p.dataset_name, "xm_query_split": f"`{self.splits[0]}`",
                "xm_gallery_split": f"`{self.splits[1]}`", "xm_protocol": "CC" if p.protocol == "cc" else p.protocol,
                "xm_setup": p.setup(self.variants[0], batch=False, with_preset=False),
                **{f"xm_{key}": str(int(outcomes[key])) for key in ("both", "a_only", "b_only", "neither")},
                "xm_valid": str(int(outcomes.drop("none").sum())),
                "xm_mistakes": " and ".join(f"{int(m.at[n, 'mistakes'])} ({n})" for n in (a, b)),
                "xm_share_lines": lines or "* (this dataset's labels carry no gender, pose, view or artifact: "
                                           "nothing to count)",
                "xm_tally": ", ".join(f"{list(v.values()).count(x)} {x}" for x in VERDICTS)}


def match_report(p: Page, model_a: str, model_b: str, k: int = 5) -> MatchReport:
    """Train (or load) variants ``model_a`` and ``model_b`` at the page's first seed and rank the gallery for every
    query with both, under every protocol of the dataset (the query and gallery splits of its ``cc`` evaluation where
    it has one)."""
    s, names = p.setting, (model_a.upper(), model_b.upper())
    runs = {name: X.train(s, variant, p.seeds[:1]) for name, variant in zip(names, (model_a, model_b))}
    ds = X.dataset(s.dataset, s.root)
    splits = ds.query_sets.get("cc", next(iter(ds.query_sets.values())))
    protocols = ["general", "cc"] if "cc" in ds.protocols else ["general"]
    q, g = X.labels(s, splits[0]), X.labels(s, splits[1])
    dist = {name: distances(X.features(rs[0], s, splits[0]), X.features(rs[0], s, splits[1]))
            for name, rs in runs.items()}
    rankings = {pr: {name: rank_matches(d, q, g, pr, k) for name, d in dist.items()} for pr in protocols}
    return MatchReport(p, (model_a, model_b), runs, names, tuple(splits), q, g, dist, rankings, protocols, k)
