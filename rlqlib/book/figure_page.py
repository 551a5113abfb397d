"""What the figure pages add to :mod:`rlqlib.book.page`: the models they compare, named once, the sentence that
names their setting, and every model's per-query top-1 matches::

    p = open_page(preset, dataset, root, device, runs_dir, seeds[:1])
    runs = p.train_all(models("cal", "bm", "rlq"))       # {"CAL": [run], "BM": [run], "RLQ": [run]}
    m = query_matches(p, runs)                           # labels and top-1 matches under the page's protocol
    m.top1["RLQ"].top1                                   # top-1 (%)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from rlqlib.book import experiments as X
from rlqlib.book.analysis import Top1, top1_matches
from rlqlib.book.names import METHOD_NAMES
from rlqlib.book.page import Page
from rlqlib.engine.runs import Run


def models(*variants: str, **names: str) -> dict[str, str]:
    """Display name → variant of the given variants, in order, named as in :data:`rlqlib.book.page.METHOD_NAMES`
    unless ``names`` renames one (``models("bm", "tad", tad="BM+TAD")``)."""
    return {names.get(v, METHOD_NAMES.get(v, v.upper())): v for v in variants}


def setting_line(p: Page, all_seeds: bool = False) -> str:
    """``preset `cpu`, dataset `synthcc`, seed 0`` (the first seed) or, with ``all_seeds``, ``…, seeds [0, 1]``."""
    seeds = f"seeds {list(p.seeds)}" if all_seeds else f"seed {p.seeds[0]}"
    return f"preset `{p.preset}`, dataset `{p.dataset}`, {seeds}"


@dataclass(frozen=True)
class QueryMatches:
    """Per-image labels of the query and gallery splits and each model's top-1 match per query.

    Attributes:
        query, gallery: :func:`rlqlib.book.experiments.labels` of the two splits.
        top1: model → :class:`rlqlib.book.analysis.Top1` of its first run.
        protocol: the junk rule the matches were ranked under.
    """

    query: pd.DataFrame
    gallery: pd.DataFrame
    top1: dict[str, Top1]
    protocol: str


def query_matches(p: Page, runs: Mapping[str, Sequence[Run]], protocol: str = "cc") -> QueryMatches:
    """Top-1 matches (:func:`rlqlib.book.analysis.top1_matches`) of every model's first run on the ``query``
    split against ``gallery``, from the features cached in the run folders."""
    s = p.setting
    q, g = X.labels(s, "query"), X.labels(s, "gallery")
    top1 = {name: top1_matches(X.features(rs[0], s, "query"), X.features(rs[0], s, "gallery"), q, g, protocol)
            for name, rs in runs.items()}
    return QueryMatches(q, g, top1, protocol)
