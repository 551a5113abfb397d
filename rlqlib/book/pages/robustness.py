"""What the severity curves (:mod:`rlqlib.book.pages.severity`) say about the claims, with the queries corrupted
(the ``query`` condition) and every level 1–5 and draw pooled: which of the paper's artifacts hurts each model most
(against Fig. 7b's "motion blur affects the performance most", measured over the whole TAD range as Fig. 7b draws
it), whether RLQ holds up better than the other models, and how the clean accuracy compares with the reported
numbers::

    r = robustness(sweep, variants, model="RLQ", bases=("CAL", "BM", "FIRe²"))
    r.worst; r.versus; r.record()

Averaging top-1 over levels 1–5 is the corruption error's sum in accuracy terms: RLQ's CE on an artifact is below a
base model's exactly when RLQ's top-1 averaged over the levels is above the base's, so the paired difference and its
standard error over the queries carry the CE comparison's verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from rlqlib.book import experiments as X
from rlqlib.book import reported
from rlqlib.book.analysis import paired_difference
from rlqlib.book.page import Page
from rlqlib.book.pages.corruption import LEVELS, paper_artifacts
from rlqlib.book.pages.severity import PROTOCOLS, SeveritySweep
from rlqlib.book.tables import ours_rows, reported_rows, stack
from rlqlib.book.verdicts import claims, one_run
from rlqlib.data.degrade import ARTIFACTS
from rlqlib.engine.runs import Run

CLEAN_SOURCES = ("tab2_main", "fire2")  # the reported tables the clean accuracy is set beside
MEAN = "Δ CC top-1, levels 1–5 (points)"
GAP = "other − motion blur, levels 1–5"


@dataclass(frozen=True)
class Robustness:
    """Per model the CC top-1 drop from clean to level 5 of each paper artifact and the motion-blur gap; the model
    against each base, averaged over levels 1–5 and draws.

    Attributes:
        worst: per model, ``drop <artifact> (points)`` (clean − level 5, mean over draws), ``largest drop``, the
            paired gap between motion blur and the worse of the other two artifacts over levels 1–5 (positive:
            motion blur is worse), its SE and verdict.
        versus: per (``model − base``, artifact) the paired CC top-1 difference over levels 1–5, SE and verdict.
        variants: display name → variant (glue keys use the variant).
        condition: the corrupted side(s); queries: clean queries; all_queries: queries with the LQ ones.
    """

    worst: pd.DataFrame
    versus: pd.DataFrame
    variants: dict[str, str]
    condition: str
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
            out.update({f"sev_d_{base}_{artifact}": float(r[MEAN]), f"sev_v_{base}_{artifact}": f"**{r['verdict']}**"})
        return out

    def record(self) -> pd.DataFrame:
        """The page's claims record (:func:`rlqlib.book.verdicts.claims`)."""
        w, v, where = self.worst, self.versus, f"{self.condition} corrupted, levels 1–5"
        return pd.concat([
            claims([f"{m}: motion blur is the hardest artifact (worse other − motion blur, CC top-1, {where})"
                    for m in w.index], w[GAP], "yes (Fig. 7b: motion blur hurts most)", w["verdict"], se=w["SE"]),
            claims([f"{c} on {a.replace('_', ' ')} (CC top-1, {where}; > 0 ⇔ lower CE)" for c, a in v.index],
                   v[MEAN], "not in the paper (hypothesis: RLQ more robust)", v["verdict"], se=v["SE"]),
        ])


def robustness(sweep: SeveritySweep, variants: Mapping[str, str], model: str = "RLQ",
               bases: Sequence[str] = ("CAL", "BM", "FIRe²"), condition: str = "query") -> Robustness:
    """Drops at level 5 and paired differences over levels 1–5 (all draws) of the paper's three artifacts."""
    arts = paper_artifacts(sweep.artifacts)
    if len(arts) < 3 or condition not in sweep.conditions:
        raise ValueError(f"robustness needs the paper's three artifacts and condition {condition!r} in the sweep; it "
                         f"has artifacts {sweep.artifacts} and conditions {sweep.conditions}")
    rows = []
    for name in sweep.models:
        clean = sweep.tops[(name, "none", "none", 0, 0)].top1
        drops = {a: clean - sweep.pooled(name, condition, a, LEVELS[-1:]).top1 for a in arts}
        over = {a: sweep.pooled(name, condition, a, LEVELS) for a in arts}
        other = min((a for a in arts if a != "motion_blur"), key=lambda a: over[a].top1)  # the worse other one
        d, se, _ = paired_difference(over[other], over["motion_blur"])
        rows.append({"model": name, **{f"drop {a} (points)": x for a, x in drops.items()},
                     "largest drop": max(drops, key=drops.get), GAP: d, "SE": se, "verdict": one_run(d, se, 1.0)})
    versus = []
    for base in bases:
        for artifact in arts:
            d, se, _ = paired_difference(sweep.pooled(model, condition, artifact, LEVELS),
                                         sweep.pooled(base, condition, artifact, LEVELS))
            versus.append({"comparison": f"{model} − {base}", "artifact": artifact, MEAN: d, "SE": se,
                           "verdict": one_run(d, se, 1.0)})
    return Robustness(pd.DataFrame(rows).set_index("model"), pd.DataFrame(versus).set_index(["comparison", "artifact"]),
                      dict(variants), condition, sweep.n_query, sweep.n_all)


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
