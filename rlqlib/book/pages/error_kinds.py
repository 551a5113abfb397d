"""Fig. 8: the kinds of top-1 mistakes CAL makes and RLQ does not — other gender, same pose family, an LQ query
matched to an LQ impostor — counted in both directions, with example galleries and the both-wrong comparison::

    e = error_kinds(p, runs, model="RLQ", ref="CAL")
    e.counts(); e.both_wrong(); show_cases(e, "gender", 4)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from rlqlib.book.analysis import error_cases, pick
from rlqlib.book.figure_page import QueryMatches, query_matches
from rlqlib.book.page import Page
from rlqlib.book.plots import match_rows
from rlqlib.book.verdicts import claims, one_run
from rlqlib.engine.runs import Run

KINDS = {"gender": "(a) other gender", "pose": "(b) same pose family", "lq": "(c) LQ query → LQ impostor"}
SHORT = {"none": "HQ", "pixelation": "PX", "motion_blur": "MB", "out_of_focus": "OOF"}
PAPER = "yes (Fig. 8 examples)"


def captions(labels: pd.DataFrame) -> pd.Series:
    """A tile caption per image: identity and gender (F/M), pose family, view and quality (HQ/PX/MB/OOF)."""
    return ("id " + labels["pid"].astype(str) + " " + labels["gender"].map({0: "F", 1: "M"}) + "\n"
            + labels["pose_family"].str.replace("_", " ") + "\n" + labels["view"] + " "
            + labels["artifact"].map(SHORT))


@dataclass(frozen=True)
class ErrorKinds:
    """Fig. 8's cases for ``model`` against ``ref`` (:func:`rlqlib.book.analysis.error_cases`) both ways.

    Attributes:
        m: the labels and top-1 matches.
        cases: ``model`` right where ``ref`` is wrong in each way (plus ``both_wrong``).
        reverse: the same with the roles swapped.
        model, ref: the two model names.
    """

    m: QueryMatches
    cases: pd.DataFrame
    reverse: pd.DataFrame
    model: str
    ref: str

    @property
    def valid(self) -> int:
        """Queries with a correct match for both models."""
        return int((self.m.top1[self.model].valid & self.m.top1[self.ref].valid).sum())

    def counts(self) -> pd.DataFrame:
        """Per kind: how often ``model`` fixes a ``ref`` mistake of that kind and vice versa, their difference in %
        of the valid queries with a sign-test SE (√(a + b) / valid) and the verdict; then the both-wrong count."""
        rows = []
        for kind, label in KINDS.items():
            a, b = int(self.cases[kind].sum()), int(self.reverse[kind].sum())
            d, se = 100 * (a - b) / self.valid, 100 * np.sqrt(a + b) / self.valid
            rows.append({"kind of CAL error": label, f"{self.model} fixes {self.ref}": a,
                         f"{self.ref} fixes {self.model}": b, "Δ (% of queries)": d, "SE": se,
                         "verdict": one_run(d, se, 1.0)})
        rows.append({"kind of CAL error": "(d) both wrong", f"{self.model} fixes {self.ref}": int(
            self.cases["both_wrong"].sum()), f"{self.ref} fixes {self.model}": int(self.reverse["both_wrong"].sum())})
        return pd.DataFrame(rows).set_index("kind of CAL error")

    def figure(self, kind: str, n: int = 4, seed: int = 0) -> plt.Figure | None:
        """Up to ``n`` random queries of ``kind``: the query, ``model``'s and ``ref``'s top-1 (None: no such query)."""
        rows = pick(self.cases[kind], n, seed=seed)
        if not len(rows):
            return None
        q, g = self.m.query, self.m.gallery
        qc, gc = captions(q), captions(g)
        tiles = [[(q.loc[i, "path"], "query\n" + qc[i], None)]
                 + [(g.loc[self.cases.loc[i, col], "path"], f"{name}\n" + gc[self.cases.loc[i, col]],
                     bool(self.m.top1[name].correct[i])) for name, col in ((self.model, "model_index"),
                                                                          (self.ref, "ref_index"))]
                 for i in rows]
        return match_rows(tiles)

    def both_wrong(self) -> pd.DataFrame:
        """Over the queries both get wrong: the share of wrong matches with the query's gender and with its pose
        family per model, and the paired difference in the paper's direction (more gender, less pose for
        ``model``) with its SE and verdict."""
        both = self.cases["both_wrong"].to_numpy()
        q = self.m.query[both]
        same = {name: {c: self.m.gallery.iloc[self.m.top1[name].index[both]][c].to_numpy() == q[c].to_numpy()
                       for c in ("gender", "pose_family")} for name in (self.model, self.ref)}
        rows = []
        for what, col, sign in (("same gender", "gender", 1), ("same pose family", "pose_family", -1)):
            a, b = same[self.model][col].astype(float), same[self.ref][col].astype(float)
            d = 100.0 * sign * (a - b)
            mean = float(d.mean()) if len(d) else float("nan")
            se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
            rows.append({"measure": what, f"{self.model} (%)": 100 * a.mean() if len(d) else np.nan,
                         f"{self.ref} (%)": 100 * b.mean() if len(d) else np.nan,
                         "Δ in the paper's direction (points)": mean, "SE": se,
                         "verdict": one_run(mean, se, 1.0) if len(d) else "inconclusive"})
        return pd.DataFrame(rows).set_index("measure")

    def glue(self) -> dict:
        """The page's glue values: valid queries, top-1, counts per kind and the both-wrong shares."""
        counts, both = self.counts(), self.both_wrong()
        out = {"fig8_valid": self.valid, "fig8_top1_cal": self.m.top1[self.ref].top1,
               "fig8_top1_rlq": self.m.top1[self.model].top1, "fig8_n_both": int(self.cases["both_wrong"].sum())}
        for kind, label in KINDS.items():
            out.update({f"fig8_n_{kind}": int(self.cases[kind].sum()), f"fig8_r_{kind}": int(self.reverse[kind].sum()),
                        f"fig8_v_{kind}": f"**{counts.loc[label, 'verdict']}**"})
        for key, what in (("gender", "same gender"), ("pose", "same pose family")):
            out.update({f"fig8_both_{key}_rlq": float(both.loc[what, f"{self.model} (%)"]),
                        f"fig8_both_{key}_cal": float(both.loc[what, f"{self.ref} (%)"]),
                        f"fig8_v_both_{key}": f"**{both.loc[what, 'verdict']}**"})
        return out

    def record(self) -> pd.DataFrame:
        """The page's claims record (:func:`rlqlib.book.verdicts.claims`)."""
        counts, both = self.counts().loc[list(KINDS.values())], self.both_wrong()
        return pd.concat([
            claims([f"{self.model} fixes more {self.ref} errors of kind {k} than the reverse (% of queries)"
                    for k in KINDS.values()], counts["Δ (% of queries)"], PAPER, counts["verdict"], se=counts["SE"]),
            claims([f"both wrong: {self.model}'s match has the query's gender more often than {self.ref}'s",
                    f"both wrong: {self.model}'s match is in the query's pose family less often than {self.ref}'s"],
                   both["Δ in the paper's direction (points)"], PAPER, both["verdict"], se=both["SE"]),
        ])


def error_kinds(p: Page, runs: Mapping[str, Sequence[Run]], model: str = "RLQ", ref: str = "CAL",
                protocol: str = "cc") -> ErrorKinds:
    """Fig. 8's cases of ``model`` against ``ref`` from both models' top-1 matches under ``protocol``
    (:func:`rlqlib.book.figure_page.query_matches`; SynthCC metadata needed)."""
    m = query_matches(p, runs, protocol)
    a, b = m.top1[model], m.top1[ref]
    return ErrorKinds(m, error_cases(m.query, m.gallery, a, b), error_cases(m.query, m.gallery, b, a), model, ref)


def show_cases(e: ErrorKinds, kind: str, n: int = 4) -> None:
    """Show :meth:`ErrorKinds.figure` of ``kind``, or a note when no query is of that kind (a page's display step)."""
    if e.figure(kind, n) is None:
        display(Markdown("*No query of this kind at this scale.*"))
    else:
        plt.show()
