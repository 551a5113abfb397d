"""The match explorer's computations: protocol-aware rankings of two models, per-query tables and filters.

The ranking is the evaluation's (:mod:`rlqlib.engine.evaluate`): distance ascending, ties by gallery index, and the
protocol's junk items (same identity and same camera; under ``cc`` also same clothes) removed.
:mod:`rlqlib.book.explorers` (the interactive explorer) and :mod:`rlqlib.book.match_figure` (the static figure) use them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from rlqlib.data.degrade import full_fp32_matmul
from rlqlib.engine.evaluate import JUNK_RULES

#: Label columns a ranking needs (:func:`rlqlib.book.experiments.labels`).
LABELS = ("pid", "camid", "clothes_id")
#: ... and what the explorer's views need besides (the image files).
REQUIRED = ("path", *LABELS)
#: Optional columns (SynthCC metadata) shown under the thumbnails and used by the filters when present.
ATTRIBUTES = ("outfit", "gender", "pose_family", "view", "artifact")
#: Top-1 outcome of a query for models A and B; ``none``: the query has no correct match under the protocol.
OUTCOMES = ("both", "a_only", "b_only", "neither", "none")
#: Clothes of a query's correct matches under the protocol (:func:`clothes_kind`).
CLOTHES_KINDS = ("other", "same", "both", "none")
GOOD_COLOR, BAD_COLOR = "#1a9850", "#d73027"
ANY = "any"  # the "no filter" choice of the explorer's dropdowns
MARKS = {"both": "✓✓", "a_only": "✓✗", "b_only": "✗✓", "neither": "✗✗", "none": "--"}  # top-1 of A, B


class MatchExplorerError(ValueError):
    """Labels, distances or options given to the match explorer are inconsistent."""


# ------------------------------------------------------------------------------------------------ rankings


@dataclass(frozen=True)
class Ranking:
    """The top-k of every query under one protocol (junk removed), and per-query scores.

    Attributes:
        protocol: ``general`` | ``cc`` | ``sc``.
        index: (Q, k) gallery indices, best first; -1 past the last non-junk item.
        dist: (Q, k) their distances (NaN where ``index`` is -1).
        correct: (Q, k) the item has the query's identity (and is not junk).
        first_hit: (Q,) 0-based rank of the first correct item among the kept items; -1: no correct item.
        ap: (Q,) average precision as a fraction; NaN: no correct item.
    """

    protocol: str
    index: np.ndarray
    dist: np.ndarray
    correct: np.ndarray
    first_hit: np.ndarray
    ap: np.ndarray


def check_labels(df: pd.DataFrame, what: str, columns: tuple[str, ...] = REQUIRED) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MatchExplorerError(f"{what} lacks columns {missing} (has {list(df.columns)}); build it with "
                                 "rlqlib.book.experiments.labels(setting, split)")


def _label_arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(df[c].to_numpy(np.int64) for c in ("pid", "camid", "clothes_id"))


def _as_dist(dist: torch.Tensor | np.ndarray, nq: int, ng: int, what: str) -> np.ndarray:
    d = dist.detach().cpu().numpy() if isinstance(dist, torch.Tensor) else np.asarray(dist)
    if d.shape != (nq, ng) or not np.issubdtype(d.dtype, np.floating):
        raise MatchExplorerError(f"{what} must be a floating ({nq}, {ng}) matrix (queries × gallery), "
                                 f"got {d.dtype} {d.shape}")
    if not np.isfinite(d).all():
        raise MatchExplorerError(f"{what} holds NaN/inf distances; check the features")
    return d


def distances(q_feats: torch.Tensor, g_feats: torch.Tensor) -> np.ndarray:
    """(Q, G) float32 distances −(q·g), exactly as :func:`rlqlib.engine.evaluate.evaluate` ranks them."""
    with full_fp32_matmul():
        return torch.mm(q_feats.float(), g_feats.float().t()).neg_().cpu().numpy()  # (Q, G)


def _chunks(query_labels: pd.DataFrame, gallery_labels: pd.DataFrame, protocol: str, chunk: int
            ) -> Iterator[tuple[slice, np.ndarray, np.ndarray, np.ndarray]]:
    """Per chunk of queries: its slice and the (C, G) masks same identity, junk, same clothes."""
    if protocol not in JUNK_RULES:
        raise MatchExplorerError(f"unknown protocol {protocol!r}; choose from {', '.join(JUNK_RULES)}")
    check_labels(query_labels, "query_labels", LABELS)
    check_labels(gallery_labels, "gallery_labels", LABELS)
    qp, qc, qcl = _label_arrays(query_labels)
    gp, gc, gcl = _label_arrays(gallery_labels)
    for start in range(0, len(qp), chunk):
        sl = slice(start, min(start + chunk, len(qp)))
        same_pid = qp[sl, None] == gp[None, :]  # (C, G)
        same_clothes = qcl[sl, None] == gcl[None, :]  # (C, G)
        junk = same_pid & JUNK_RULES[protocol](qc[sl, None] == gc[None, :], same_clothes)  # (C, G)
        yield sl, same_pid, junk, same_clothes


def rank_matches(dist: torch.Tensor | np.ndarray, query_labels: pd.DataFrame, gallery_labels: pd.DataFrame,
                 protocol: str = "general", k: int = 5, chunk: int = 256, ap: bool = True) -> Ranking:
    """Rank the gallery for every query as the evaluation does (junk removed, ties by gallery index).

    Args:
        dist: (Q, G) distances, smaller = closer (e.g. :func:`distances`).
        query_labels, gallery_labels: per-image tables with :data:`LABELS` columns, in the order of ``dist``.
        protocol: junk rule of :data:`rlqlib.engine.evaluate.JUNK_RULES`.
        k: items kept per query.
        chunk: queries per vectorised block.
        ap: compute each query's average precision (a full stable sort of every row). ``False``: the top-k by k
            arg-min passes and the first correct item's rank by counting the items ahead of it, O(k·G) per query
            for large galleries; ``ap`` is then NaN.
    """
    if k < 1:
        raise MatchExplorerError(f"k must be ≥ 1, got {k}")
    d = _as_dist(dist, len(query_labels), len(gallery_labels), "dist")
    nq, ng = d.shape
    kk = min(k, ng)
    index = np.full((nq, k), -1, np.int64)
    top_dist = np.full((nq, k), np.nan)
    correct = np.zeros((nq, k), bool)
    first_hit = np.full(nq, -1, np.int64)
    avg_prec = np.full(nq, np.nan)
    for sl, same_pid, junk, _ in _chunks(query_labels, gallery_labels, protocol, chunk):
        key = np.where(junk, np.inf, d[sl])  # (C, G): junk last
        good = same_pid & ~junk  # (C, G)
        kept = ng - junk.sum(1)  # (C,)
        shown = np.arange(kk)[None, :] < kept[:, None]  # (C, kk)
        hit = good.any(1)  # (C,)
        if ap:
            order = np.argsort(key, axis=1, kind="stable")  # (C, G): ties by gallery index
            good_ranked = np.take_along_axis(good, order, 1)  # (C, G) in ranking order
            top = order[:, :kk]
            first_hit[sl] = np.where(hit, good_ranked.argmax(1), -1)
            precision = np.cumsum(good_ranked, 1) / np.arange(1, ng + 1)[None, :]  # (C, G): at each rank
            with np.errstate(invalid="ignore", divide="ignore"):
                avg_prec[sl] = np.where(hit, (precision * good_ranked).sum(1) / good.sum(1), np.nan)
        else:
            top, rest, rows = np.empty((key.shape[0], kk), np.int64), key.copy(), np.arange(key.shape[0])
            for i in range(kk):  # argmin returns the first minimum: ties by gallery index
                top[:, i] = rest.argmin(1)
                rest[rows, top[:, i]] = np.inf
            best = np.where(good, key, np.inf).argmin(1)  # (C,) the best correct item
            bk = key[rows, best][:, None]  # (C, 1)
            ahead = (key < bk) | ((key == bk) & (np.arange(ng)[None, :] < best[:, None]))  # (C, G)
            first_hit[sl] = np.where(hit, ahead.sum(1), -1)
        index[sl, :kk] = np.where(shown, top, -1)
        top_dist[sl, :kk] = np.where(shown, np.take_along_axis(d[sl], top, 1), np.nan)
        correct[sl, :kk] = np.take_along_axis(good, top, 1) & shown
    return Ranking(protocol, index, top_dist, correct, first_hit, avg_prec)


def clothes_kind(query_labels: pd.DataFrame, gallery_labels: pd.DataFrame, protocol: str = "general",
                 chunk: int = 256) -> np.ndarray:
    """What the correct matches of each query (under ``protocol``) wear: (Q,) of :data:`CLOTHES_KINDS`.

    ``other``: all of them wear other clothes than the query (a clothes-changing query: every query under
    ``cc``, PRCC's ``query_diff``); ``same``: all wear the query's clothes; ``both``: some of each (typical of
    LTCC/SynthCC under ``general``); ``none``: no correct match.
    """
    out = np.empty(len(query_labels), dtype=object)
    for sl, same_pid, junk, same_clothes in _chunks(query_labels, gallery_labels, protocol, chunk):
        good = same_pid & ~junk  # (C, G)
        n_same, n_other = (good & same_clothes).sum(1), (good & ~same_clothes).sum(1)  # (C,) each
        out[sl] = np.select([(n_same == 0) & (n_other == 0), n_same == 0, n_other == 0],
                            ["none", "other", "same"], "both")
    return out.astype(str)


def query_table(query_labels: pd.DataFrame, gallery_labels: pd.DataFrame, a: Ranking, b: Ranking) -> pd.DataFrame:
    """One row per query: labels, attributes, clothes kind and both models' top-1 outcome, rank and AP.

    Columns: ``pid, camid, clothes_id``, the :data:`ATTRIBUTES` present, ``clothes`` (:func:`clothes_kind`),
    ``top1_a, top1_b`` (bool), ``rank_a, rank_b`` (1-based rank of the first correct item, NaN: none),
    ``ap_a, ap_b`` (%, NaN: none) and ``outcome`` (:data:`OUTCOMES`).
    """
    if a.protocol != b.protocol or a.index.shape[0] != len(query_labels) or b.index.shape[0] != len(query_labels):
        raise MatchExplorerError(f"rankings must share a protocol and have one row per query ({len(query_labels)}); "
                                 f"got {a.protocol}/{b.protocol} with {a.index.shape[0]}/{b.index.shape[0]} rows")
    cols = ["pid", "camid", "clothes_id", *[c for c in ATTRIBUTES if c in query_labels.columns]]
    t = query_labels[cols].reset_index(drop=True).copy()
    t["clothes"] = clothes_kind(query_labels, gallery_labels, a.protocol)
    for tag, r in (("a", a), ("b", b)):
        t[f"top1_{tag}"] = r.correct[:, 0]
        t[f"rank_{tag}"] = np.where(r.first_hit >= 0, r.first_hit + 1.0, np.nan)
        t[f"ap_{tag}"] = 100.0 * r.ap
    valid = a.first_hit >= 0
    t["outcome"] = np.select([~valid, t["top1_a"] & t["top1_b"], t["top1_a"], t["top1_b"]],
                             ["none", "both", "a_only", "b_only"], "neither")
    return t


def filter_queries(table: pd.DataFrame, camera: int | None = None, clothes: str | None = None,
                   artifact: str | None = None, outcome: str | None = None) -> np.ndarray:
    """Row positions of :func:`query_table` rows passing every given filter (None = any), in table order."""
    keep = np.ones(len(table), bool)
    for col, value in (("camid", camera), ("clothes", clothes), ("artifact", artifact), ("outcome", outcome)):
        if value is None:
            continue
        if col not in table.columns:
            raise MatchExplorerError(f"cannot filter on {col!r}: the query table has no such column")
        keep &= (table[col] == value).to_numpy()
    return np.flatnonzero(keep)


def example_queries(table: pd.DataFrame, n: int = 3) -> list[tuple[int, str]]:
    """Up to ``n`` distinct queries of a :func:`query_table`, each with the rule that picked it, taking the rules
    in turn (and again when ``n`` > 3):

    ``a_gain``: A ahead: queries where only A is right at top-1 first, then by largest AP of A minus B;
    ``b_gain``: the same with B; ``hardest``: lowest mean AP of the two.
    Queries without a correct match are never picked; ties go to the lower row.
    """
    valid = table[table["outcome"] != "none"]
    gain = (valid["ap_a"] - valid["ap_b"]).to_numpy()
    mean = ((valid["ap_a"] + valid["ap_b"]) / 2).to_numpy()
    outcome = valid["outcome"].to_numpy()
    rules = {"a_gain": np.lexsort((-gain, outcome != "a_only")), "b_gain": np.lexsort((gain, outcome != "b_only")),
             "hardest": np.argsort(mean, kind="stable")}
    picked: list[tuple[int, str]] = []
    pos = dict.fromkeys(rules, 0)
    while len(picked) < min(n, len(valid)):
        for rule, order in rules.items():
            while pos[rule] < len(order) and int(valid.index[order[pos[rule]]]) in {q for q, _ in picked}:
                pos[rule] += 1
            if pos[rule] < len(order) and len(picked) < n:
                picked.append((int(valid.index[order[pos[rule]]]), rule))
    return picked


def mistake_table(query_labels: pd.DataFrame, gallery_labels: pd.DataFrame, rankings: Mapping[str, Ranking],
                  chunk: int = 256) -> pd.DataFrame:
    """What each model's top-1 mistakes share with the query (the paper's Figure 8 question), in %.

    One row per model: ``queries`` (with a correct match), ``mistakes`` (top-1 wrong), ``error`` (%), and, over
    the mistakes, ``opposite gender``, ``same pose family``, ``same view`` (%) and, over the mistakes on LQ
    queries (``artifact`` ≠ none), ``same artifact`` (%): only for the columns the labels have. A last row
    ``chance`` gives the same shares for a random other-identity gallery image, averaged over the queries
    with a correct match (under the first ranking's protocol).
    """
    attrs = [c for c in ("gender", "pose_family", "view", "artifact") if c in query_labels.columns
             and c in gallery_labels.columns]
    codes = {}
    for c in attrs:
        both = pd.factorize(pd.concat([query_labels[c], gallery_labels[c]], ignore_index=True))[0]
        codes[c] = (both[:len(query_labels)], both[len(query_labels):])
    lq = (query_labels["artifact"] != "none").to_numpy() if "artifact" in attrs else None
    names = {"gender": "opposite gender", "pose_family": "same pose family", "view": "same view",
             "artifact": "same artifact"}
    rows = []
    for model, r in rankings.items():
        valid = r.first_hit >= 0
        wrong = valid & ~r.correct[:, 0]
        top = r.index[:, 0]
        row = {"model": model, "queries": int(valid.sum()), "mistakes": int(wrong.sum()),
               "error": 100.0 * wrong.sum() / max(valid.sum(), 1)}
        if lq is not None:
            row["LQ mistakes"] = int((wrong & lq).sum())
        for c in attrs:
            qa, ga = codes[c]
            among = wrong & lq if c == "artifact" else wrong
            same = qa[among] == ga[top[among]]
            share = (1.0 - same.mean() if c == "gender" else same.mean()) if among.any() else np.nan
            row[names[c]] = 100.0 * share
        rows.append(row)
    if attrs and rankings:
        first = next(iter(rankings.values()))
        valid = first.first_hit >= 0
        sums = dict.fromkeys(attrs, 0.0)
        for sl, same_pid, _, _ in _chunks(query_labels, gallery_labels, first.protocol, chunk):
            other = ~same_pid  # (C, G)
            n_other = np.maximum(other.sum(1), 1)  # (C,)
            for c in attrs:
                qa, ga = codes[c]
                eq = (qa[sl, None] == ga[None, :]) & other  # (C, G)
                share = eq.sum(1) / n_other  # (C,)
                share = 1.0 - share if c == "gender" else share
                use = valid[sl] & (lq[sl] if c == "artifact" else True)
                sums[c] += float(share[use].sum())
        row = {"model": "chance", "queries": int(valid.sum()), "mistakes": np.nan, "error": np.nan,
               **({"LQ mistakes": np.nan} if lq is not None else {})}
        for c in attrs:
            n = int((valid & lq).sum()) if c == "artifact" else int(valid.sum())
            row[names[c]] = 100.0 * sums[c] / n if n else np.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.astype({c: "Int64" for c in ("mistakes", "LQ mistakes") if c in out}).set_index("model")


# ------------------------------------------------------------------------------------------------ display
