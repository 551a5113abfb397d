"""What FIRe²'s two modules add: our ablation beside the paper's stated direction (it gives no numbers).

The variants are ``fire2`` (FFM's attribute-aware loss and FAR), ``fire2-ffm-only`` (no FAR) and
``fire2-far-only`` (no attribute-aware loss); the paper's ablation tables could not be read, so
``reported/fire2_ablation.csv`` holds only the sign it claims (the full model beats each ablated one), and the
verdicts read our differences against that sign (:func:`rlqlib.book.checks.sign_checks`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from rlqlib.book import checks as K
from rlqlib.book import experiments as X
from rlqlib.book import plots
from rlqlib.book import verdicts as V
from rlqlib.book.names import LABELS


def _labelled(long: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    ours = X.mean_std(long[long["method"].isin(methods)])
    ours.columns = pd.MultiIndex.from_tuples([(LABELS[p], LABELS[m]) for p, m in ours.columns])
    return ours.loc[list(methods)]


def module_table(long: pd.DataFrame, reported: pd.DataFrame, names: Mapping[str, str], source: str) -> pd.DataFrame:
    """Our ``mean ± std`` of the three variants (``names``: variant → row label, the full model first) beside what
    the paper claims for each (``reported``: columns ``variant, removed, expected_sign``)."""
    full = next(iter(names.values()))
    claim = {names[r["variant"]]: ("paper: numbers not available" if not r["expected_sign"] else
                                   f"paper: below {full} ({r['removed']} removed; sign only)")
             for _, r in reported.iterrows()}
    table = _labelled(long, list(names.values()))
    table[("paper", "ablation")] = [claim[m] for m in table.index]
    table.index.name = f"method ({source}, mean ± std over seeds, %)"
    return table


def module_checks(long: pd.DataFrame, reported: pd.DataFrame, names: Mapping[str, str],
                  modules: Sequence[tuple[str, str, str]], seed_std: float = float("nan")) -> K.Checked:
    """Full model − each ablated one, per protocol (CC, general) and metric, against the paper's sign.

    Args:
        long: our results.
        reported: the paper's claims (``variant, expected_sign``).
        names: variant → row label, the full model first.
        modules: ``(glue key, ablated row label, the module it lacks)``.
        seed_std: the seed-to-seed std for one-seed verdicts.

    Returns:
        Rows indexed by (difference, protocol, metric); glue ``f2a_abl_<key>_<protocol>_<metric>``, ``…_verdict``
        and ``f2a_abl_tally``; the claims record.
    """
    full = next(iter(names.values()))
    sign = {names[r["variant"]]: (1.0 if r["expected_sign"] == "+" else -1.0) for _, r in reported.iterrows()
            if r["expected_sign"]}
    lacks = {key: module for key, _, module in modules}
    checks = K.sign_checks([(key, full, other, sign[other]) for key, other, _ in modules], long, ("cc", "general"),
                           seed_std=seed_std)
    glue = {}
    for r in checks.itertuples():
        glue[f"f2a_abl_{r.key}_{r.protocol}_{r.metric}"] = r.text
        glue[f"f2a_abl_{r.key}_{r.protocol}_{r.metric}_verdict"] = f"**{r.verdict}**"
    done = checks[checks["verdict"] != "n/a"]
    table = pd.DataFrame({
        "difference": [f"{full} − {b} (what {lacks[k]} adds)" for k, b in zip(done["key"], done["baseline"])],
        "protocol": done["protocol"].map(LABELS), "metric": done["metric"].map(LABELS), "ours (points)": done["text"],
        "n": done["n"], "paper": ["+ (sign only)" if sign[b] > 0 else "− (sign only)" for b in done["baseline"]],
        "verdict": done["verdict"]}).set_index(["difference", "protocol", "metric"])
    glue["f2a_abl_tally"] = K.tally_text(table["verdict"])
    record = V.claims([f"{d}, {p} {m}" for d, p, m in table.index], table["ours (points)"], table["paper"],
                      table["verdict"], seeds=table["n"])
    return K.Checked(table, table, glue, record)


def accuracy_figure(long: pd.DataFrame, protocols: Sequence[str], title: str) -> plt.Figure:
    """R-1 and mAP of every method per protocol (one panel each), error bar = std over seeds; ``title`` is formatted
    with ``protocol``."""
    agg = X.aggregate(long)
    methods = list(dict.fromkeys(long["method"]))
    fig, axes = plt.subplots(1, len(protocols), figsize=(5.2 * len(protocols), 3.6), squeeze=False)
    for ax, p in zip(axes[0], protocols):
        sel = agg[(agg["protocol"] == p) & agg["metric"].isin(["top1", "mAP"])]
        mean = sel.pivot(index="metric", columns="method", values="mean").loc[["top1", "mAP"], methods]
        err = sel.pivot(index="metric", columns="method", values="std").loc[["top1", "mAP"], methods].fillna(0)
        plots.grouped_bars(mean.rename(index=LABELS), f"{LABELS[p]} (%)", err=err.rename(index=LABELS),
                           title=title.format(protocol=LABELS[p]), ax=ax)
    fig.tight_layout()
    return fig
