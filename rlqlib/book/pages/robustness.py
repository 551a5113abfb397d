"""What the severity curves (:mod:`rlqlib.book.pages.severity`) say about the claims: which artifact hurts each model most
(against Fig. 7b's "motion blur affects the performance most"), whether RLQ holds up better than the other models
at the strongest setting, and how the clean accuracy compares with the reported numbers::

    r = robustness(sweep, base_models=("CAL", "BM", "FIRe²"))
    r.worst; r.versus; r.record()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from rlqlib.book import experiments as X
from rlqlib.book import reported
from rlqlib.book.analysis import paired_difference
from rlqlib.book.page import Page
from rlqlib.book.pages.severity import PROTOCOLS, SeveritySweep
from rlqlib.book.tables import ours_rows, reported_rows, stack
from rlqlib.book.verdicts import claims, one_run
from rlqlib.data.degrade import ARTIFACTS
from rlqlib.engine.runs import Run

CLEAN_SOURCES = ("tab2_main", "fire2")  # the reported tables the clean accuracy is set beside


@dataclass(frozen=True)
class Robustness:
    """Per model the CC top-1 drop from clean to ``s = 1`` of each artifact; the model against each base at s = 1.

    Attributes:
        worst: per model, ``drop <artifact> (points)``, ``largest drop``, the paired gap between motion blur and the
            worse of the other two artifacts at s = 1 (positive: motion blur is worse), its SE and verdict.
        versus: per (``model − base``, artifact) the paired CC top-1 difference at s = 1, SE and verdict.
        variants: display name → variant (glue keys use the variant).
        queries: clean queries; all_queries: queries with the LQ ones.
    """

    worst: pd.DataFrame
    versus: pd.DataFrame
    variants: dict[str, str]
    queries: int
    all_queries: int

    def glue(self) -> dict:
        """The page's glue values."""
        w, v = self.worst, self.variants
        out = {"sev_queries": self.queries, "sev_all_queries": self.all_queries,
               "sev_largest": ", ".join(f"{w.loc[n, 'largest drop'].replace('_', ' ')} for {n}" for n in w.index),
               "sev_v_mb": ", ".join(f"{n} **{w.loc[n, 'verdict']}**" for n in w.index)}
        for artifact in ARTIFACTS:
            out.update({f"sev_drop_{v[n]}_{artifact}": float(w.loc[n, f"drop {artifact} (points)"]) for n in w.index})
        for (comparison, artifact), r in self.versus.iterrows():
            base = v[comparison.split(" − ")[1]]
            out.update({f"sev_d_{base}_{artifact}": float(r["Δ CC top-1 at s=1 (points)"]),
                        f"sev_v_{base}_{artifact}": f"**{r['verdict']}**"})
        return out

    def record(self) -> pd.DataFrame:
        """The page's claims record (:func:`rlqlib.book.verdicts.claims`)."""
        w, v = self.worst, self.versus
        return pd.concat([
            claims([f"{m}: motion blur is the hardest artifact (worse other − motion blur, top-1 at s = 1)"
                    for m in w.index], w["other − motion blur at s=1"], "yes (Fig. 7b: motion blur hurts most)",
                   w["verdict"], se=w["SE"]),
            claims([f"{c} on {a.replace('_', ' ')} at s = 1 (CC top-1)" for c, a in v.index],
                   v["Δ CC top-1 at s=1 (points)"], "not in the paper (hypothesis: RLQ more robust)", v["verdict"],
                   se=v["SE"]),
        ])


def robustness(sweep: SeveritySweep, variants: Mapping[str, str], model: str = "RLQ",
               bases: Sequence[str] = ("CAL", "BM", "FIRe²")) -> Robustness:
    """Drops and paired differences at the strongest severity (1.0) from a sweep's top-1 matches."""
    tops, rows = sweep.tops, []
    for name in sweep.models:
        clean = tops[(name, "none", None)]
        drops = {a: clean.top1 - tops[(name, a, 1.0)].top1 for a in ARTIFACTS}
        at_extreme = {a: tops[(name, a, 1.0)].top1 for a in ARTIFACTS if a != "motion_blur"}
        other = min(at_extreme, key=at_extreme.get)  # the worse of the two other artifacts
        d, se, _ = paired_difference(tops[(name, other, 1.0)], tops[(name, "motion_blur", 1.0)])
        rows.append({"model": name, **{f"drop {a} (points)": x for a, x in drops.items()},
                     "largest drop": max(drops, key=drops.get), "other − motion blur at s=1": d, "SE": se,
                     "verdict": one_run(d, se, 1.0)})
    versus = []
    for base in bases:
        for artifact in ARTIFACTS:
            d, se, _ = paired_difference(tops[(model, artifact, 1.0)], tops[(base, artifact, 1.0)])
            versus.append({"comparison": f"{model} − {base}", "artifact": artifact, "Δ CC top-1 at s=1 (points)": d,
                           "SE": se, "verdict": one_run(d, se, 1.0)})
    return Robustness(pd.DataFrame(rows).set_index("model"), pd.DataFrame(versus).set_index(["comparison", "artifact"]),
                      dict(variants), len(sweep.images), sweep.n_all)


def clean_table(p: Page, runs: Mapping[str, Sequence[Run]], protocols: Sequence[str] = PROTOCOLS) -> pd.DataFrame:
    """Each model's final evaluation on the full query set beside the numbers reported on :attr:`Page.ref` (RLQ's
    Table 2, FIRe²'s README): rows (model, source), columns (protocol, metric)."""
    ours = ours_rows(X.results(runs, protocols), f"ours: {p.dataset}, seed {p.seeds[0]}")
    paper = pd.concat([reported.load(name) for name in CLEAN_SOURCES], ignore_index=True)
    paper = paper[paper["method"].isin(list(runs)) & (paper["dataset"] == p.ref) & paper["protocol"].isin(protocols)]
    rows = [(m, src) for m in runs for src in (ours.index[0][1], f"reported: {p.ref}")]
    return stack([ours, reported_rows(paper, "reported: ")], rows).rename_axis(["model", "source"])


def clean_sources() -> str:
    """A markdown list of the reported tables' sources."""
    return "\n".join(f"* {reported.source(name)}" for name in CLEAN_SOURCES)
