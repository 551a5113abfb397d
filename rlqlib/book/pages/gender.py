"""Fig. 7d: is RLQ more gender aware? On each model's wrong top-1 matches, the match's gender is read as a prediction
of the query's and scored by the female-class F1 (:func:`rlqlib.book.analysis.gender_on_errors`), beside the F1
the paper reports on LTCC::

    d = gender_panel(query_matches(p, runs), reported_table("fig7_analysis"))
    d.table; d.comparisons; d.figure()
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rlqlib.book.analysis import gender_on_errors
from rlqlib.book.figure_page import QueryMatches
from rlqlib.book.plots import grouped_bars
from rlqlib.book.verdicts import one_run

FEMALE = 0  # SynthCC's gender code: 1 male, 0 female
PAPER = "paper F1 (LTCC)"
COMPARISONS = (("RLQ", "CAL"), ("RLQ", "BM"), ("BM", "CAL"))  # the paper's ordering, pair by pair
SHOWN = {"f1": "F1 (ours)", "f1_se": "± SE", "same_gender": "same gender (%)", "errors": "mispredictions",
         "pos_share": "female queries (%)"}


@dataclass(frozen=True)
class GenderPanel:
    """Female F1 on mispredictions per model and the paper's ordering tested pair by pair.

    Attributes:
        table: per model ``f1, f1_se, same_gender, errors, pos_share`` and the paper's F1.
        comparisons: per pair, the paper's and our F1 difference (× 100), its SE and the verdict.
    """

    table: pd.DataFrame
    comparisons: pd.DataFrame

    def shown(self) -> pd.DataFrame:
        """:attr:`table` with readable column names."""
        return self.table.rename(columns=SHOWN)

    def figure(self) -> plt.Figure:
        """Bars of our F1 (± SE) beside the paper's."""
        ours = {"f1": "ours (SynthCC)"}
        return grouped_bars(self.table[["f1", PAPER]].rename(columns=ours), "female F1 on mispredictions",
                            err=self.table[["f1_se"]].rename(columns={"f1_se": ours["f1"]}).assign(**{PAPER: np.nan}),
                            title="gender of the wrong top-1 match")

    def summary(self) -> list[dict]:
        """Summary rows, one per pair of :data:`COMPARISONS`."""
        return [{"panel": "7d", "claim": f"female F1: {c}", "paper": f"{r['paper (F1 × 100)'] / 100:+.2f}",
                 "ours": f"{r['ours (F1 × 100)'] / 100:+.2f}", "verdict": r["verdict"], "seeds": 1}
                for c, r in self.comparisons.iterrows()]

    def glue(self) -> dict:
        """The page's glue values for panel (d)."""
        out = {}
        for name in self.table.index:
            out.update({f"fig7d_f1_{name.lower()}": float(self.table.loc[name, "f1"]),
                        f"fig7d_errors_{name.lower()}": int(self.table.loc[name, "errors"])})
        for a, b in COMPARISONS:
            out[f"fig7d_v_{a.lower()}_{b.lower()}"] = f"**{self.comparisons.loc[f'{a} − {b}', 'verdict']}**"
        out["fig7d_female_share"] = float(self.table.loc["RLQ", "pos_share"])
        return out


def gender_panel(m: QueryMatches, paper: pd.DataFrame) -> GenderPanel:
    """Fig. 7d from every model's top-1 matches; ``paper``: the reported Fig. 7 table (its ``7d`` rows hold the
    F1 per ``method`` on LTCC)."""
    table = pd.DataFrame({name: gender_on_errors(t, m.query["gender"], m.gallery["gender"], pos_label=FEMALE)
                          for name, t in m.top1.items()}).T
    reported = paper[paper["panel"] == "7d"].set_index("method")["value"].astype(float)
    table[PAPER] = reported.reindex(table.index)
    table["errors"] = table["errors"].astype(int)
    rows = []
    for a, b in COMPARISONS:
        d = 100 * (table.loc[a, "f1"] - table.loc[b, "f1"])
        se = 100 * float(np.hypot(table.loc[a, "f1_se"], table.loc[b, "f1_se"]))
        paper = 100 * (reported[a] - reported[b])
        rows.append({"comparison": f"{a} − {b}", "paper (F1 × 100)": paper, "ours (F1 × 100)": d, "SE": se,
                     "verdict": one_run(d, se, paper)})
    return GenderPanel(table, pd.DataFrame(rows).set_index("comparison"))
