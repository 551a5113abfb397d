"""A page's claims, checked: its list of claims, our results and the paper's numbers → the table, glue, record.

A claim names two rows (method, baseline) and what the paper finds. Each function below returns a
:class:`Checked`: the table the page shows, the glue values its prose quotes (markdown strings, keyed
``<prefix>_<key>…``) and the record for :func:`rlqlib.book.verdicts.save_claims`. Two shapes of claims exist:

* :func:`ablation` — one-table ablations (Tables 5, 6, 7, 9, 10). A claim is ``(key, method, baseline,
  expectation)`` with expectation ``"+"`` (higher), ``"-"`` (lower) or ``"="`` (no effect); one row per claim and
  metric with our seed-paired difference, the paper's and the verdict (:func:`rlqlib.book.verdicts.over_seeds`; a
  no-effect claim agrees when our difference stays within the noise). :func:`interaction` adds a difference of two
  differences (Table 5's "helps BM more than CAL").
* :func:`differences` — the main tables (2, 3/4, 8). A claim is ``(key, method, baseline, protocol)``: one top-1
  difference, compared with the paper's difference on each of several paper datasets.

:func:`sign_checks` reads differences against a stated sign only (the FIRe² page, whose paper gives no numbers).
Numbers are percentage points throughout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rlqlib.book import experiments as X
from rlqlib.book import verdicts as V
from rlqlib.book.names import LABELS

EXPECTATIONS = {"+": "higher", "-": "lower", "=": "no effect"}
NAN = float("nan")


@dataclass(frozen=True)
class Checked:
    """A page's checked claims.

    Attributes:
        table: the claims table (what the page saves as its results CSV).
        shown: the same, formatted for display.
        glue: glue key → markdown text, for :func:`rlqlib.book.page.glue_values`.
        record: the claims record (:data:`rlqlib.book.verdicts.CLAIM_COLUMNS`), or None when the rows are not claims
            of their own (:func:`interaction`).
    """

    table: pd.DataFrame
    shown: pd.DataFrame
    glue: dict[str, str] = field(default_factory=dict)
    record: pd.DataFrame | None = None


def _signed(x: float) -> str:
    """``+1.2`` / ``−1.2`` (a true minus sign)."""
    return f"{x:+.1f}".replace("-", "−")


def _rounded(table: pd.DataFrame) -> pd.DataFrame:
    return table.round(1).astype(object).where(table.notna(), "")


def tally_text(verdicts: pd.Series) -> str:
    """``3 agrees, 0 differs, 5 inconclusive`` over a column of verdicts."""
    counts = verdicts.value_counts()
    return ", ".join(f"{counts.get(v, 0)} {v}" for v in V.VERDICTS)


# ------------------------------------------------------------------------------------------ ablations


def _ablation_verdict(delta: float, std: float, paper_delta: float, n: int, expect: str, seed_std: float) -> str:
    if expect == "=":  # a claim of no effect: agreement = our difference within the noise
        within = V.over_seeds(delta, std, 1.0, n, seed_std=seed_std) == "inconclusive"
        return "agrees" if within else "differs"
    return V.over_seeds(delta, std, paper_delta, n, seed_std=seed_std)


def ablation(claims: Sequence[tuple[str, str, str, str]], long: pd.DataFrame | None, paper: pd.DataFrame,
             protocol: str, prefix: str, seed_std: float = NAN, metrics: Sequence[str] = ("top1", "mAP")) -> Checked:
    """Check an ablation table's claims.

    Args:
        claims: ``(glue key, method, baseline, expectation)`` with expectation ``+`` / ``-`` / ``=``.
        long: our results (:func:`rlqlib.book.experiments.results`); None when the page could not run them (every
            verdict is then ``not run``).
        paper: the paper's table indexed by method, with columns ``metrics`` (numbers as text).
        protocol: the protocol our differences are taken under.
        prefix: the page's glue prefix (``t5``).
        seed_std: the seed-to-seed std for one-seed verdicts (:mod:`rlqlib.book.noise`).
        metrics: metrics compared, each claim gets one row per metric.

    Returns:
        Columns ``comparison, paper claims, metric, ours Δ, ours std, seeds, paper Δ, verdict``; glue
        ``<prefix>_<key>_<metric>`` (ours), ``…_paper``, ``…_verdict``, and ``<prefix>_agree`` / ``<prefix>_differ``
        (counts over the R-1 rows).
    """
    rows, glue = [], {}
    for key, method, baseline, expect in claims:
        for metric in metrics:
            if long is not None:
                delta, std, n = X.paired_delta(long, method, baseline, protocol, metric)
            else:
                delta, std, n = NAN, NAN, 0
            paper_delta = float(paper.loc[method, metric]) - float(paper.loc[baseline, metric])
            verdict = "not run" if long is None else _ablation_verdict(delta, std, paper_delta, n, expect, seed_std)
            rows.append({"comparison": f"{method} − {baseline}", "paper claims": EXPECTATIONS[expect],
                         "metric": LABELS.get(metric, metric), "ours Δ": delta, "ours std": std, "seeds": n,
                         "paper Δ": paper_delta, "verdict": verdict})
            glue[f"{prefix}_{key}_{metric}"] = "n/a" if n == 0 else _signed(delta)
            glue[f"{prefix}_{key}_{metric}_paper"] = _signed(paper_delta)
            glue[f"{prefix}_{key}_{metric}_verdict"] = f"**{verdict}**"
    table = pd.DataFrame(rows)
    r1 = table[table["metric"] == "R-1"]
    glue[f"{prefix}_agree"] = f"{(r1['verdict'] == 'agrees').sum()} of {len(r1)}"
    glue[f"{prefix}_differ"] = f"{(r1['verdict'] == 'differs').sum()}"
    record = V.claims(table["comparison"] + ", " + table["metric"] + " (paper: " + table["paper claims"] + ")",
                      table["ours Δ"], table["paper Δ"], table["verdict"], std=table["ours std"], seeds=table["seeds"])
    return Checked(table, _rounded(table), glue, record)


def interaction(long: pd.DataFrame, paper: pd.DataFrame, first: tuple[str, str], second: tuple[str, str],
                prefix: str, key: str = "gap", seed_std: float = NAN, metrics: Sequence[str] = ("top1", "mAP")
                ) -> Checked:
    """A difference of differences, ``(first[0] − first[1]) − (second[0] − second[1])``, paired by seed; its verdict
    against the paper's same quantity (Table 5: how much more the additions help BM than CAL).

    Returns:
        Rows per metric (index ``metric``): ``ours, ours std, seeds, paper, verdict``; glue ``<prefix>_<key>_<metric>``,
        ``…_paper``, ``…_verdict``; no record.
    """
    (a, a0), (b, b0) = first, second
    rows, glue = [], {}
    for metric in metrics:
        wide = long.pivot_table(index="seed", columns="method", values=metric)
        gap = (wide[a] - wide[a0]) - (wide[b] - wide[b0])
        gap_std = float(gap.std(ddof=1)) if len(gap) > 1 else NAN
        p = paper[metric].astype(float)
        paper_gap = (p[a] - p[a0]) - (p[b] - p[b0])
        verdict = V.over_seeds(float(gap.mean()), gap_std, paper_gap, len(gap), seed_std=seed_std)
        rows.append({"metric": LABELS.get(metric, metric), "ours": float(gap.mean()), "ours std": gap_std,
                     "seeds": len(gap), "paper": paper_gap, "verdict": verdict})
        glue[f"{prefix}_{key}_{metric}"] = _signed(gap.mean())
        glue[f"{prefix}_{key}_{metric}_paper"] = _signed(paper_gap)
        glue[f"{prefix}_{key}_{metric}_verdict"] = f"**{verdict}**"
    table = pd.DataFrame(rows).set_index("metric")
    return Checked(table, _rounded(table), glue)


# ------------------------------------------------------------------------------------------ main tables


def paper_values(frame: pd.DataFrame, index: Sequence[str] = ("method", "dataset", "protocol"),
                 metric: str = "top1") -> pd.Series:
    """A reported table's ``metric`` as numbers (empty cells: NaN), indexed by the ``index`` columns."""
    return pd.to_numeric(frame[metric].replace("", np.nan)).set_axis(pd.MultiIndex.from_frame(frame[list(index)]))


def _paper(values: pd.Series, method: str, dataset: str, protocol: str) -> float:
    key = (method, dataset, protocol) if values.index.nlevels == 3 else (method, dataset)
    return float(values.get(key, np.nan))


def differences(claims: Sequence[tuple[str, str, str, str]], long: pd.DataFrame, paper: pd.Series,
                datasets: Sequence[str], prefix: str, ref: str | None = None, seed_std: float = NAN,
                paper_names: Mapping[str, str] | None = None,
                paper_baselines: Mapping[str, Mapping[str, float]] | None = None,
                label_protocol: bool = False, paper_sep: str = ", ", record_suffix: str = "") -> Checked:
    """Check top-1 differences against the paper's on several datasets (Tables 2, 3/4, 8).

    Args:
        claims: ``(glue key, method, baseline, protocol)``; a claim whose rows or protocol we lack reads ``not run``
            (or ``no <protocol> protocol here``) with verdict ``n/a``.
        long: our results.
        paper: the paper's top-1 (:func:`paper_values`), indexed by (name, dataset, protocol) or (name, dataset).
        datasets: the paper datasets compared against (``LTCC``, ``PRCC``).
        prefix: the page's glue prefix.
        ref: the dataset whose verdict the prose quotes (glue ``…_verdict``) and the record keeps; None: every
            dataset's (glue ``…_verdict_<dataset in lower case>``, one record row per claim and dataset).
        seed_std: the seed-to-seed std for one-seed verdicts.
        paper_names: our method name → the paper's row name, where they differ.
        paper_baselines: claim key → {dataset: the paper's baseline value}, for a baseline that is not one row.
        label_protocol: name the protocol in the row label (``RLQ − BM (CC)``).
        paper_sep: how the glued paper text joins datasets.
        record_suffix: appended to each claim's label in the record.

    Returns:
        Rows indexed by ``difference``: ``ours`` (``+1.2 ± 0.3``), ``n``, then ``paper <dataset>`` and
        ``verdict vs <dataset>`` per dataset; glue ``<prefix>_<key>`` (ours), ``…_paper``, the verdict(s).
    """
    names, baselines = dict(paper_names or {}), dict(paper_baselines or {})
    methods, protocols = set(long["method"]), set(long["protocol"])
    rows, glue = [], {}
    for key, m, b, p in claims:
        have = m in methods and b in methods and p in protocols
        d, sd, n = X.paired_delta(long, m, b, p) if have else (NAN, NAN, 0)
        ours = (("not run" if p in protocols else f"no {LABELS[p]} protocol here") if not have
                else f"{d:+.1f}" if n < 2 else f"{d:+.1f} ± {sd:.1f}")
        row = {"difference": f"{m} − {b} ({LABELS[p]})" if label_protocol else f"{m} − {b}",
               "ours": ours.replace(" ± ", "\u00a0±\u00a0"), "n": n}
        for ds in datasets:
            base = baselines[key][ds] if key in baselines else _paper(paper, names.get(b, b), ds, p)
            paper_d = _paper(paper, names.get(m, m), ds, p) - base
            row[f"paper {ds}"] = f"{paper_d:+.1f}" if math.isfinite(paper_d) else "–"
            row[f"verdict vs {ds}"] = (V.over_seeds(d, sd, paper_d, n, seed_std=seed_std)
                                       if have and math.isfinite(paper_d) else "n/a")
        rows.append(row)
        glue[f"{prefix}_{key}"] = ours
        glue[f"{prefix}_{key}_paper"] = paper_sep.join(f"{row[f'paper {ds}']} ({ds})" for ds in datasets
                                                       if row[f"paper {ds}"] != "–") or "not reported"
        for ds in [ref] if ref else datasets:
            glue[f"{prefix}_{key}_verdict" + ("" if ref else f"_{ds.lower()}")] = f"**{row[f'verdict vs {ds}']}**"
    table = pd.DataFrame(rows).set_index("difference")
    record = pd.concat([V.claims(table.index + record_suffix, table["ours"], table[f"paper {ds}"] + f" ({ds})",
                                 table[f"verdict vs {ds}"], seeds=table["n"]) for ds in ([ref] if ref else datasets)],
                       ignore_index=True)
    return Checked(table, table, glue, record)


# ------------------------------------------------------------------------------------------ signs only


def sign_checks(claims: Sequence[tuple[str, str, str, float]], long: pd.DataFrame, protocols: Sequence[str],
                metrics: Sequence[str] = ("top1", "mAP"), seed_std: float = NAN) -> pd.DataFrame:
    """Our seed-paired differences read against an expected sign only, for each protocol and metric.

    Args:
        claims: ``(key, method, baseline, expected)``; only the sign of ``expected`` counts.
        long: our results.
        protocols: the protocols to read (one we lack gives the text ``no <protocol> protocol here`` and ``n/a``).
        metrics: the metrics to read.
        seed_std: the seed-to-seed std for one-seed verdicts.

    Returns:
        One row per claim × protocol × metric: ``key, method, baseline, protocol, metric, text, n, verdict``
        (``text``: ``+1.2`` or ``+1.2 ± 0.3``).
    """
    have = set(long["protocol"])
    rows = []
    for key, m, b, expected in claims:
        for p in protocols:
            for metric in metrics:
                if p in have:
                    d, sd, n = X.paired_delta(long, m, b, p, metric)
                    verdict = V.over_seeds(d, sd, expected, n, seed_std=seed_std)
                    text = f"{d:+.1f}" if n < 2 else f"{d:+.1f} ± {sd:.1f}"
                else:
                    n, text, verdict = 0, f"no {LABELS[p]} protocol here", "n/a"
                rows.append({"key": key, "method": m, "baseline": b, "protocol": p, "metric": metric, "text": text,
                             "n": n, "verdict": verdict})
    return pd.DataFrame(rows, columns=["key", "method", "baseline", "protocol", "metric", "text", "n", "verdict"])
