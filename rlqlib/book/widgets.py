"""Interactive explorers (ipywidgets) used by the notebooks.

Their state is saved with the executed notebook, so the rendered HTML book shows them (with the output of the
initial selection) without a kernel. Only views that render without a kernel are used (Dropdown, HTML, boxes),
and the match explorer updates a fixed set of widgets in place, so the saved state holds only what is shown.

Match explorer (:func:`match_explorer`): two models' rankings of the same queries side by side; the computations
behind it (rankings, per-query tables, filters, mistake shares) live in :mod:`rlqlib.book.matches`;
:func:`plot_matches` is the static (matplotlib) counterpart.
"""

from __future__ import annotations

import base64
import functools
import html
import io
from collections.abc import Sequence
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display
from PIL import Image

from rlqlib.book.matches import (ANY, BAD_COLOR, GOOD_COLOR, MARKS, MatchExplorerError, Ranking, check_labels,
                                 example_queries, filter_queries, query_table, rank_matches)


@functools.lru_cache(maxsize=1024)
def thumbnail_uri(path: str, height: int = 96) -> str:
    """A ``data:image/png;base64`` URI of the image, scaled down to ``height`` pixels (never up)."""
    try:
        im = Image.open(path).convert("RGB")
    except (OSError, ValueError) as exc:
        raise MatchExplorerError(f"cannot read image {path} ({exc}); check the labels' `path` column") from exc
    if im.height > height:
        im = im.resize((max(1, round(im.width * height / im.height)), height), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def describe(row: pd.Series) -> str:
    """Short attribute text of one label row: ``id 12 · c2 · clothes 0`` plus the :data:`ATTRIBUTES` present."""
    parts = [f"id {row['pid']}", f"c{int(row['camid']) + 1}", f"clothes {row['clothes_id']}"]
    if "gender" in row.index and row["gender"] in (0, 1):
        parts.append("male" if int(row["gender"]) == 1 else "female")
    for c in ("pose_family", "view"):
        if c in row.index:
            parts.append(str(row[c]))
    if "artifact" in row.index:
        parts.append("HQ" if row["artifact"] == "none" else f"LQ: {row['artifact']}")
    return " · ".join(parts)


def _card(uri: str, height: int, border: str, lines: Sequence[str]) -> str:
    """A thumbnail with its text lines to the right."""
    text = "".join(f"<div>{html.escape(line)}</div>" for line in lines)
    return (f'<div style="display:flex;align-items:flex-start;gap:6px;margin:0 0 4px 0;font-size:11px;'
            f'line-height:1.3"><img src="{uri}" style="height:{height}px;border:3px solid {border};flex:none"/>'
            f"<div>{text}</div></div>")


def _lines(row: pd.Series) -> list[str]:
    parts = describe(row).split(" · ")
    return [" · ".join(parts[:2]), *parts[2:]]


def _column_html(name: str, r: Ranking, qi: int, gallery: pd.DataFrame, height: int) -> str:
    """One model's top-k for query ``qi``, best first, as a vertical list of cards under a header."""
    if r.first_hit[qi] < 0:
        head = f"{name}: no correct match under {r.protocol}"
    else:
        head = f"{name}: first correct at rank {r.first_hit[qi] + 1}, AP {100 * r.ap[qi]:.1f}%"
    cards = []
    for j, (g, d, ok) in enumerate(zip(r.index[qi], r.dist[qi], r.correct[qi])):
        if g < 0:
            break
        row = gallery.iloc[int(g)]
        cards.append(_card(thumbnail_uri(str(row["path"]), height), height, GOOD_COLOR if ok else BAD_COLOR,
                           [f"#{j + 1} {'✓' if ok else '✗'} d={d:.3f}", *_lines(row)]))
    return f"<div><b>{html.escape(head)}</b>{''.join(cards)}</div>"


def match_explorer(query_labels: pd.DataFrame, gallery_labels: pd.DataFrame, dist_a: torch.Tensor | np.ndarray,
                   dist_b: torch.Tensor | np.ndarray, names: Sequence[str] = ("A", "B"), k: int = 5,
                   protocols: Sequence[str] = ("general", "cc"), protocol: str | None = None,
                   query: int | None = None, thumb_height: int = 96) -> widgets.VBox:
    """Pick a query (filters: camera, clothes of its matches, artifact, top-1 outcome) and see both models' top-k.

    Each gallery thumbnail has a green (correct) or red (wrong) border, its rank, distance and attributes.
    The ranking drops the protocol's junk items. Works with the required label columns only (real datasets)
    and uses the SynthCC metadata columns when present.

    Args:
        query_labels, gallery_labels: per-image tables (:func:`rlqlib.book.experiments.labels`).
        dist_a, dist_b: (Q, G) distances of models A and B (:func:`distances`).
        names: display names of A and B.
        k: gallery items shown per model.
        protocols: offered junk rules; ``protocol`` (default: the last) is selected first.
        query: the query shown first; default: the first of :func:`example_queries` (only A right at top-1,
            largest AP gain of A).
        thumb_height: thumbnail height in pixels.
    """
    if len(names) != 2:
        raise MatchExplorerError(f"names must name the two models, got {names!r}")
    protocol = protocol or protocols[-1]
    if protocol not in protocols:
        raise MatchExplorerError(f"protocol {protocol!r} is not among the offered protocols {list(protocols)}")
    check_labels(query_labels, "query_labels")  # the views need the image paths as well as the labels
    check_labels(gallery_labels, "gallery_labels")
    ranks = {p: (rank_matches(dist_a, query_labels, gallery_labels, p, k),
                 rank_matches(dist_b, query_labels, gallery_labels, p, k)) for p in protocols}
    tables = {p: query_table(query_labels, gallery_labels, *ranks[p]) for p in protocols}
    if query is None:
        picks = example_queries(tables[protocol], 1)
        query = picks[0][0] if picks else 0
    if not 0 <= query < len(query_labels):
        raise MatchExplorerError(f"query {query} is out of range (0..{len(query_labels) - 1})")
    gallery = gallery_labels.reset_index(drop=True)
    queries = query_labels.reset_index(drop=True)
    a, b = names
    style = {"description_width": "initial"}
    narrow = widgets.Layout(width="auto", margin="2px 12px 2px 0")
    w_protocol = widgets.Dropdown(options=list(protocols), value=protocol, description="protocol", style=style,
                                  layout=narrow)
    cams = sorted(int(c) for c in queries["camid"].unique())
    w_camera = widgets.Dropdown(options=[("any", ANY)] + [(f"c{c + 1}", c) for c in cams], description="camera",
                                style=style, layout=narrow)
    w_clothes = widgets.Dropdown(options=[("any", ANY), ("all in other clothes", "other"), ("all in same clothes",
                                          "same"), ("both", "both")], description="correct matches wear",
                                 style=style, layout=narrow)
    filters = [w_protocol, w_camera, w_clothes]
    w_artifact = None
    if "artifact" in queries.columns:
        arts = sorted(queries["artifact"].astype(str).unique())
        w_artifact = widgets.Dropdown(options=[("any", ANY)] + [(x, x) for x in arts], description="artifact",
                                      style=style, layout=narrow)
        filters.append(w_artifact)
    w_outcome = widgets.Dropdown(options=[("any", ANY), (f"{a} ✓ {b} ✓", "both"), (f"{a} ✓ {b} ✗", "a_only"),
                                          (f"{a} ✗ {b} ✓", "b_only"), (f"{a} ✗ {b} ✗", "neither")],
                                 description="top-1", style=style, layout=narrow)
    filters.append(w_outcome)
    w_query = widgets.Dropdown(description="query", style=style, layout=widgets.Layout(width="28em"))
    w_count = widgets.HTML()
    column = {"width": f"{thumb_height // 2 + 160}px", "margin": "0 12px 0 0"}
    w_info, w_a, w_b = (widgets.HTML(layout=widgets.Layout(**column)) for _ in range(3))
    busy = {"on": False}

    def option_label(i: int, t: pd.DataFrame) -> str:
        q = queries.iloc[i]
        art = f" · {q['artifact']}" if "artifact" in q.index else ""
        return f"q{i} · id {q['pid']} · c{int(q['camid']) + 1}{art} · {a}/{b} {MARKS[t.at[i, 'outcome']]}"

    def render(i: int | None) -> None:
        if i is None:
            w_info.value, w_a.value, w_b.value = "<i>no query passes the filters</i>", "", ""
            return
        ra, rb = ranks[w_protocol.value]
        row = queries.iloc[i]
        w_info.value = (f"<b>query q{i}</b>" + _card(thumbnail_uri(str(row["path"]), thumb_height), thumb_height,
                                                      "#777", _lines(row)))
        w_a.value = _column_html(a, ra, i, gallery, thumb_height)
        w_b.value = _column_html(b, rb, i, gallery, thumb_height)

    def refresh(_: object = None, prefer: int | None = None) -> None:
        t = tables[w_protocol.value]
        chosen = [None if w is None or w.value == ANY else w.value
                  for w in (w_camera, w_clothes, w_artifact, w_outcome)]
        idx = filter_queries(t, *chosen).tolist()
        keep = next((i for i in (prefer, w_query.value) if i in idx), idx[0] if idx else None)
        busy["on"] = True
        try:
            w_query.options = [(option_label(i, t), i) for i in idx]
            w_query.value = keep
        finally:
            busy["on"] = False
        w_count.value = f"{len(idx)} of {len(t)} queries"
        render(keep)

    def on_query(change: dict) -> None:
        if not busy["on"]:
            render(change["new"])

    for w in filters:
        w.observe(refresh, names="value")
    w_query.observe(on_query, names="value")
    refresh(prefer=query)
    return widgets.VBox([widgets.HBox(filters, layout=widgets.Layout(flex_flow="row wrap")),
                         widgets.HBox([w_query, w_count]),
                         widgets.HBox([w_info, w_a, w_b], layout=widgets.Layout(flex_flow="row wrap"))])


def plot_matches(query_labels: pd.DataFrame, gallery_labels: pd.DataFrame, a: Ranking, b: Ranking,
                 queries: Sequence[int], names: Sequence[str] = ("A", "B"), k: int | None = None) -> plt.Figure:
    """Static counterpart of :func:`match_explorer`: one row per query: the query, A's top-k, a gap, B's top-k.

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


# ------------------------------------------------------------------------------------------------ identities


def identity_browser(root: str | Path, split: str = "train", max_images: int = 12) -> widgets.VBox:
    """Pick a SynthCC identity and see its images, grouped by outfit and camera, with the artifact of each.

    Args:
        root: a SynthCC folder (with ``annotations/metadata.csv``).
        split: the split whose identities are listed.
        max_images: images shown per identity.
    """
    root = Path(root)
    meta = pd.read_csv(root / "annotations" / "metadata.csv", dtype={"image": str})
    meta = meta[meta["split"] == split]
    pids = sorted(meta["pid"].unique().tolist())
    if not pids:
        raise ValueError(f"{root / 'annotations' / 'metadata.csv'} has no rows for split {split!r}")
    pick = widgets.Dropdown(options=pids, value=pids[0], description="identity")
    out = widgets.Output()

    def show(pid: int) -> None:
        rows = meta[meta["pid"] == pid].sort_values(["outfit", "camid", "image"]).head(max_images)
        fig, axes = plt.subplots(1, len(rows), figsize=(1.1 * len(rows), 2.4), squeeze=False)
        for ax, (_, rec) in zip(axes[0], rows.iterrows()):
            ax.imshow(Image.open(root / split / rec["image"]).convert("RGB"))
            ax.set_title(f"o{rec['outfit']} c{rec['camid'] + 1}\n{rec['artifact']}", fontsize=6)
            ax.axis("off")
        gender = "male" if int(rows["gender"].iloc[0]) == 1 else "female"
        fig.suptitle(f"identity {pid} ({gender}): {rows['outfit'].nunique()} outfits, "
                     f"{rows['camid'].nunique()} cameras", fontsize=8)
        with out:
            out.clear_output(wait=True)
            display(fig)
        plt.close(fig)

    pick.observe(lambda change: show(change["new"]), names="value")
    show(pids[0])
    return widgets.VBox([pick, out])
