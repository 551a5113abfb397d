"""Our results beside the paper's: the display tables of the results pages.

Ours are ``mean ± std`` over seeds (:func:`rlqlib.book.experiments.mean_std`); the paper's are its transcribed
tables (:mod:`rlqlib.book.reported`, numbers as text, ``""`` = not reported). Two layouts:

* :func:`ablation_table` — an ablation page's rows in the paper's order, our R-1/mAP beside the paper's.
* :func:`ours_rows` + :func:`reported_rows` → :func:`stack` — one row per (method, source), ``source`` naming ours
  or a paper dataset, columns (protocol, metric) as in the papers' main tables (Table 2, the FIRe² page);
  :func:`by_source` turns the sources into column groups (Tables 3 and 4).
* :func:`component_table` — Table 8: each component without and with TAD side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from rlqlib.book import experiments as X
from rlqlib.book.names import LABELS

NBSP_PM = "\u00a0±\u00a0"  # "mean ± std" that does not wrap in a table cell


def ablation_table(long: pd.DataFrame | None, paper: pd.DataFrame, protocol: str, ours_label: str,
                   paper_label: str) -> pd.DataFrame:
    """Our R-1/mAP under ``protocol`` (``not run`` when ``long`` is None) beside the paper's, rows in the paper's
    order (``paper`` is indexed by method); columns (``ours_label`` | ``paper_label``, ``R-1`` | ``mAP``)."""
    if long is None:
        ours = pd.DataFrame("not run", index=paper.index, columns=["R-1", "mAP"])
    else:
        ours = X.mean_std(long)[protocol].rename(columns={"top1": "R-1"})
    table = pd.concat({ours_label: ours, paper_label: paper[["top1", "mAP"]].rename(columns={"top1": "R-1"})}, axis=1)
    return table.loc[paper.index]


def ours_rows(long: pd.DataFrame, source: str) -> pd.DataFrame:
    """Our ``mean ± std`` per method, rows (method, ``source``), columns (protocol, metric) display labels."""
    ours = X.mean_std(long)
    ours.columns = pd.MultiIndex.from_tuples([(LABELS[p], LABELS[m]) for p, m in ours.columns])
    ours.index = pd.MultiIndex.from_tuples([(m, source) for m in ours.index])
    return ours


def reported_rows(paper: pd.DataFrame, prefix: str, method: str | None = None) -> pd.DataFrame:
    """A reported table (columns ``method, dataset, protocol, top1, mAP``) as rows (method, ``prefix`` + dataset) in
    its own order, columns (protocol, metric) display labels; ``method`` renames every row (one method's table)."""
    long = paper.melt(id_vars=["method", "dataset", "protocol"], value_vars=["top1", "mAP"], var_name="metric")
    long = long.assign(source=prefix + long["dataset"],
                       column=list(zip(long["protocol"].map(LABELS), long["metric"].map(LABELS))))
    if method is not None:
        long = long.assign(method=method)
    wide = long.pivot(index=["method", "source"], columns="column", values="value")
    wide = wide.loc[list(dict.fromkeys(zip(long["method"], long["source"])))]
    wide.columns = pd.MultiIndex.from_tuples(wide.columns)
    return wide


def stack(parts: Sequence[pd.DataFrame], rows: Sequence[tuple[str, str]] | None = None) -> pd.DataFrame:
    """The parts (:func:`ours_rows`, :func:`reported_rows`) one under the other, columns in protocol order (CC,
    General, SC), empty cells as ``–``; with ``rows`` only those (method, source) rows, in that order, and without
    rows that have nothing in them."""
    table = pd.concat(parts).fillna("–").replace("", "–").replace(" ± ", NBSP_PM, regex=True)
    cols = [(LABELS[p], LABELS[m]) for p in ("cc", "general", "sc") for m in ("top1", "mAP")]
    table = table[[c for c in cols if c in table.columns]]
    if rows is not None:
        table = table.loc[[r for r in rows if r in table.index]]
        table = table[~(table == "–").all(axis=1)]
    table.index.names = ["method", "source"]
    return table


def by_source(table: pd.DataFrame, sources: Sequence[str]) -> pd.DataFrame:
    """A :func:`stack` table turned so that each source is a column group: rows = methods, columns (source,
    protocol, metric) in ``sources`` order; missing cells ``–``."""
    wide = table.unstack("source")
    wide.columns = wide.columns.reorder_levels([2, 0, 1]).set_names([None, None, None])
    return wide[[(s, *c) for s in sources for c in table.columns if (s, *c) in wide.columns]].fillna("–")


def component_table(long: pd.DataFrame, reported: pd.DataFrame, components: Sequence[tuple[str, str, str, str, str]],
                    protocol: str, source: str, datasets: Sequence[str] = ("LTCC", "PRCC")) -> pd.DataFrame:
    """Table 8's layout: one row per component and source (ours, then each paper dataset), columns ``BM`` and
    ``BM + TAD`` × ``R-1``/``mAP``.

    Args:
        long: our results.
        reported: the paper's Table 8 (columns ``variant, dataset, top1, mAP``).
        components: ``(row, variant without TAD, its label, variant with TAD, its label)``.
        protocol: the protocol of our numbers.
        source: the name of our rows.
        datasets: the paper datasets shown.
    """
    agg = X.aggregate(long[long["protocol"] == protocol])
    cell = {(r.method, r.metric): f"{r.mean:.1f}" if pd.isna(r.std) else f"{r.mean:.1f}{NBSP_PM}{r.std:.1f}"
            for r in agg.itertuples()}
    pv = reported.set_index(["variant", "dataset"])
    rows = {}
    for row, v0, l0, v1, l1 in components:
        rows[(row, source)] = [cell[(label, m)] for label in (l0, l1) for m in ("top1", "mAP")]
        for ds in datasets:
            rows[(row, f"paper: {ds}")] = [pv.loc[(v, ds), m] for v in (v0, v1) for m in ("top1", "mAP")]
    table = pd.DataFrame.from_dict(rows, orient="index",
                                   columns=pd.MultiIndex.from_product([["BM", "BM + TAD"], ["R-1", "mAP"]]))
    table.index = pd.MultiIndex.from_tuples(table.index, names=["row", "source"])
    return table
