"""The match explorer's static, printable counterpart (:func:`plot_matches`, matplotlib); the explorer itself is
:func:`rlqlib.book.explorers.match_explorer`."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from PIL import Image

from rlqlib.book.matches import BAD_COLOR, GOOD_COLOR, Ranking, check_labels


def plot_matches(query_labels: pd.DataFrame, gallery_labels: pd.DataFrame, a: Ranking, b: Ranking,
                 queries: Sequence[int], names: Sequence[str] = ("A", "B"), k: int | None = None) -> plt.Figure:
    """One row per query: the query, A's top-k, a gap, B's top-k (the explorer's view, for print).

    Borders are green for correct and red for wrong matches; titles give rank, distance and identity.
    """
    check_labels(query_labels, "query_labels")
    check_labels(gallery_labels, "gallery_labels")
    k = min(k or a.index.shape[1], a.index.shape[1], b.index.shape[1])
    ratios = [1.0] * (1 + k) + [0.35] + [1.0] * k  # query, A's top-k, a gap, B's top-k
    fig, axes = plt.subplots(len(queries), len(ratios), figsize=(0.9 * sum(ratios), 2.1 * len(queries)),
                             squeeze=False, gridspec_kw={"width_ratios": ratios})
    for row, qi in zip(axes, queries):
        q = query_labels.iloc[qi]
        row[0].imshow(Image.open(q["path"]).convert("RGB"))
        row[0].set_title(f"query q{qi}\nid {q['pid']} c{int(q['camid']) + 1}", fontsize=7)
        row[1 + k].axis("off")
        for m, (name, r) in enumerate(zip(names, (a, b))):
            for j in range(k):
                ax = row[1 + m * (k + 1) + j]
                g = int(r.index[qi, j])
                if g < 0:
                    continue
                grow = gallery_labels.iloc[g]
                ax.imshow(Image.open(grow["path"]).convert("RGB"))
                color = GOOD_COLOR if r.correct[qi, j] else BAD_COLOR
                for spine in ax.spines.values():
                    spine.set(color=color, linewidth=3)
                head = f"{name} " if j == 0 else ""
                ax.set_title(f"{head}#{j + 1} d={r.dist[qi, j]:.2f}\nid {grow['pid']}", fontsize=7, color=color)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig
