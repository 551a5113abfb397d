"""The few figures the notebooks share, in one style, in one place."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from rlqlib.data.pose.clusters import PoseClusters


def synth_preview(
    root: str | Path,
    n_ids: int = 4,
    per_id: int = 8,
    split: str = "train",
    seed: int = 0,
) -> plt.Figure:
    """A grid of SynthCC images: one row per identity, columns ordered by outfit then camera.

    Each tile is titled ``o<outfit> c<camera>`` and, for low-quality images, the artifact (``PX`` pixelation,
    ``MB`` motion blur, ``OOF`` out-of-focus) in red, so clothes changes, viewpoints and LQ cameras can be seen.

    Args:
        root: a SynthCC folder (with ``annotations/metadata.csv``).
        n_ids: identities (rows) to show; chosen among those with the most outfits, then at random.
        per_id: images per identity (columns), spread over its outfits and cameras.
        split: which split's identities to show.
        seed: picks the identities and images.
    """
    root = Path(root)
    meta = pd.read_csv(root / "annotations" / "metadata.csv", dtype={"image": str})
    meta = meta[meta["split"] == split]
    if meta.empty:
        raise ValueError(f"{root / 'annotations' / 'metadata.csv'} has no rows for split {split!r}")
    rng = np.random.default_rng(seed)
    outfits = meta.groupby("pid")["outfit"].nunique().sort_values(ascending=False, kind="stable")
    pids = outfits.index[: max(n_ids * 3, n_ids)].to_numpy()
    pids = np.sort(rng.choice(pids, size=min(n_ids, len(pids)), replace=False))
    short = {"none": "", "pixelation": "PX", "motion_blur": "MB", "out_of_focus": "OOF"}
    fig, axes = plt.subplots(len(pids), per_id, figsize=(1.1 * per_id, 2.3 * len(pids)), squeeze=False)
    for row, pid in zip(axes, pids):
        rows = meta[meta["pid"] == pid]
        # one image per (outfit, camera) first, so the row shows as many combinations as possible
        first = rows.drop_duplicates(["outfit", "camid"])
        rest = rows.drop(first.index)
        pick = pd.concat([first.sample(frac=1, random_state=seed), rest.sample(frac=1, random_state=seed)])
        pick = pick.head(per_id).sort_values(["outfit", "camid"], kind="stable")
        for ax in row:
            ax.axis("off")
        for ax, (_, rec) in zip(row, pick.iterrows()):
            ax.imshow(Image.open(root / split / rec["image"]).convert("RGB"))
            ax.set_title(f"o{rec['outfit']} c{rec['camid'] + 1}", fontsize=7)
            tag = short.get(rec["artifact"], rec["artifact"])
            if tag:
                ax.text(0.5, -0.06, tag, color="crimson", fontsize=7, ha="center", va="top",
                        transform=ax.transAxes)
        row[0].text(-0.15, 0.5, f"id {pid}", fontsize=8, rotation=90, ha="right", va="center",
                    transform=row[0].transAxes)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------ figure pages

HQ_COLOUR, LQ_COLOUR = "tab:blue", "tab:red"
OK_COLOUR, WRONG_COLOUR = "#2ca02c", "#d62728"


def _axes(ax: plt.Axes | None, figsize: tuple[float, float]) -> tuple[plt.Figure, plt.Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def metric_lines(
    table: pd.DataFrame,
    ylabel: str,
    xlabel: str = "",
    err: pd.DataFrame | None = None,
    xticklabels: list[str] | None = None,
    hline: dict[str, float] | None = None,
    title: str = "",
    ax: plt.Axes | None = None,
) -> plt.Figure:
    """One line per column of ``table`` over its index (x), with optional error bars and reference lines.

    Args:
        table: rows = x values (numbers, or categories when ``xticklabels`` is given), columns = series.
        ylabel, xlabel, title: axis labels.
        err: same shape as ``table``: half-widths of the error bars (e.g. one standard error).
        xticklabels: tick labels for the rows (then the rows are placed at 0, 1, 2, ...).
        hline: label → y of dashed horizontal reference lines (e.g. a baseline without the component).
        ax: draw into this axes.
    """
    fig, ax = _axes(ax, (5.0, 3.4))
    x = np.arange(len(table)) if xticklabels is not None else table.index.to_numpy(dtype=float)
    for i, col in enumerate(table.columns):
        yerr = None if err is None else err[col].to_numpy(dtype=float)
        ax.errorbar(x, table[col].to_numpy(dtype=float), yerr=yerr, marker="o", ms=4, capsize=3, label=str(col),
                    color=f"C{i}")
    for i, (label, y) in enumerate((hline or {}).items()):
        ax.axhline(y, ls="--", lw=1, color=f"C{len(table.columns) + i}", label=label)
    if xticklabels is not None:
        ax.set_xticks(x, xticklabels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def grouped_bars(
    table: pd.DataFrame,
    ylabel: str,
    err: pd.DataFrame | None = None,
    title: str = "",
    ax: plt.Axes | None = None,
) -> plt.Figure:
    """Grouped bars: one group per row of ``table``, one bar per column, optional error bars (same shape)."""
    fig, ax = _axes(ax, (max(5.6, 0.2 * len(table) * len(table.columns) + 1.5), 3.4))
    n = len(table.columns)
    width = 0.8 / max(n, 1)
    x = np.arange(len(table))
    for i, col in enumerate(table.columns):
        yerr = None if err is None else err[col].to_numpy(dtype=float)
        ax.bar(x + (i - (n - 1) / 2) * width, table[col].to_numpy(dtype=float), width, yerr=yerr, capsize=3,
               label=str(col), color=f"C{i}")
    ax.set_xticks(x, [str(i) for i in table.index], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def tsne_panels(points: dict[str, np.ndarray], subtitles: dict[str, str] | None = None) -> plt.Figure:
    """Fig. 6: side-by-side t-SNE maps of HQ (blue) and LQ (red) features, one panel per model.

    Args:
        points: model → (2N, 2) embedding, HQ rows first then their LQ twins (:func:`rlqlib.book.analysis.tsne_pairs`).
        subtitles: model → a second title line (e.g. its LQ-clustering score).
    """
    fig, axes = plt.subplots(1, len(points), figsize=(3.6 * len(points), 3.8), squeeze=False)
    for ax, (name, xy) in zip(axes[0], points.items()):
        n = len(xy) // 2
        ax.scatter(xy[:n, 0], xy[:n, 1], s=7, c=HQ_COLOUR, alpha=0.6, label="HQ", linewidths=0)
        ax.scatter(xy[n:, 0], xy[n:, 1], s=7, c=LQ_COLOUR, alpha=0.6, label="LQ", linewidths=0)
        extra = (subtitles or {}).get(name, "")
        ax.set_title(name + (f"\n{extra}" if extra else ""), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(fontsize=8, markerscale=2, loc="best")
    fig.tight_layout()
    return fig


def match_rows(
    rows: list[list[tuple[str | Path, str, bool | None]]],
    row_titles: list[str] | None = None,
    size: tuple[float, float] = (1.1, 2.2),
) -> plt.Figure:
    """Fig. 8: rows of images (query | model A's top-1 | model B's top-1 ...) with green/red borders.

    Args:
        rows: per row, a list of (image path, caption, correct) tiles; ``correct`` None = no border (the query).
        row_titles: a label left of each row.
        size: (width, height) of one tile in inches.
    """
    cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(size[0] * cols, size[1] * len(rows)), squeeze=False)
    for r, (row, axs) in enumerate(zip(rows, axes)):
        for ax in axs:
            ax.axis("off")
        for ax, (path, caption, ok) in zip(axs, row):
            with Image.open(path) as im:
                ax.imshow(im.convert("RGB"))
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
            colour = "white" if ok is None else (OK_COLOUR if ok else WRONG_COLOUR)
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(0 if ok is None else 4)
            ax.set_title(caption, fontsize=6.5)
        if row_titles:
            axs[0].text(-0.12, 0.5, row_titles[r], fontsize=7, rotation=90, ha="right", va="center",
                        transform=axs[0].transAxes)
    fig.tight_layout()
    return fig


def crosstab_heatmap(table: pd.DataFrame, title: str = "", fmt: str = "{:.0f}", cmap: str = "Blues",
                     ax: plt.Axes | None = None) -> plt.Figure:
    """A table as an annotated heatmap (e.g. pose cluster × ground-truth pose family, row-normalised %)."""
    fig, ax = _axes(ax, (0.6 * len(table.columns) + 2.2, 0.3 * len(table) + 1.4))
    values = table.to_numpy(dtype=float)
    ax.imshow(values, cmap=cmap, aspect="auto", vmin=0)
    ax.set_xticks(np.arange(len(table.columns)), [str(c) for c in table.columns], rotation=45, ha="right",
                  fontsize=8)
    ax.set_yticks(np.arange(len(table)), [str(i) for i in table.index], fontsize=8)
    top = np.nanmax(values) if values.size else 0
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=6.5,
                color="white" if v > 0.6 * top else "black")
    ax.set_xlabel(table.columns.name or "")
    ax.set_ylabel(table.index.name or "")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def pose_cluster_grid(result: PoseClusters, images: dict[str, str | Path], n_samples: int = 4,
                      seed: int = 0, classes: Sequence[int] | None = None) -> plt.Figure:
    """Fig. 5, one column per pose cluster: its medoid skeleton on the 192×384 canvas, then member images.

    Args:
        result: a :class:`rlqlib.data.pose.clusters.PoseClusters`.
        images: image file name → path.
        n_samples: member images per cluster (random with ``seed``).
        classes: which clusters (columns) to show; all 1…k by default.
    """
    from rlqlib.data.pose.clusters import cluster_medoids
    from rlqlib.data.pose.vectors import BODY_LINES, CANVAS

    medoids = cluster_medoids(result.encoded, result.labels)
    classes = sorted(medoids) if classes is None else list(classes)
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(n_samples + 1, len(classes), figsize=(0.8 * len(classes), 1.6 * (n_samples + 1)),
                             squeeze=False)
    for col, c in enumerate(classes):
        for ax in axes[:, col]:
            ax.axis("off")
        xy = result.coords[medoids[c]]  # (17, 2) canvas coordinates
        ax = axes[0, col]
        for j, (a, b) in enumerate(BODY_LINES):
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], color=plt.cm.tab20(j), lw=1.5)
        ax.set_xlim(0, CANVAS[0])
        ax.set_ylim(CANVAS[1], 0)
        ax.set_aspect("equal")
        members = np.flatnonzero(result.labels == c)
        ax.set_title(f"{c}\n({len(members)})", fontsize=7)
        picks = rng.choice(members, size=min(n_samples, len(members)), replace=False)
        for ax, i in zip(axes[1:, col], picks):
            with Image.open(images[result.names[i]]) as im:
                ax.imshow(im.convert("RGB"))
    fig.tight_layout(pad=0.3)
    return fig


PAPER_MARKS = {"LTCC": ("D", "tab:blue"), "PRCC": ("^", "tab:orange")}  # marker and colour of a paper dataset


def delta_bars(claims: pd.DataFrame, ours_label: str, metric: str = "R-1",
               xlabel: str = "Δ R-1 (points), method − baseline") -> plt.Figure:
    """Horizontal bars of our difference beside the paper's, one pair per comparison of ``metric`` (an ablation
    page's claims table: columns ``comparison, metric, ours Δ, paper Δ``, :func:`rlqlib.book.checks.ablation`)."""
    rows = claims[claims["metric"] == metric]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    y = np.arange(len(rows))
    ax.barh(y - 0.2, rows["ours Δ"].to_numpy(dtype=float), 0.4, label=ours_label, color="tab:blue")
    ax.barh(y + 0.2, rows["paper Δ"].to_numpy(dtype=float), 0.4, label="paper", color="tab:gray")
    ax.set_yticks(y, list(rows["comparison"]))
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def _seed_bars(ax: plt.Axes, values: pd.DataFrame, dx: float, width: float, color: str, label: str | None,
               dots: str | None, jitter: float, size: float) -> None:
    """Bars of the mean of each column of ``values`` (seeds × groups), the seeds as dots on them."""
    x = np.arange(values.shape[1])
    spread = np.linspace(-jitter, jitter, len(values)) if len(values) > 1 else np.zeros(1)
    ax.bar(x + dx, np.nanmean(values.to_numpy(dtype=float), 0), width=width, color=color, edgecolor="0.3", label=label)
    ax.scatter((x[None, :] + dx + spread[:, None]).ravel(), values.to_numpy(dtype=float).ravel(), s=size, color="k",
               zorder=3, label=dots)


def seed_panels(bars: Mapping[str, pd.DataFrame], diff: pd.DataFrame, paper: Mapping[str, Sequence[float]],
                ylabel: str, title: str, diff_ylabel: str, diff_title: str,
                width_ratios: Sequence[float] | None = None) -> plt.Figure:
    """Two panels over seeds (Tables 2 and 8). Left: bars of each group's mean, seeds as dots, one series per entry
    of ``bars`` (label → seeds × groups; the groups are the x ticks). Right: a difference per group (seeds × groups),
    mean and seeds, beside the paper's differences (dataset → one value per group)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": width_ratios or [1, 1]})
    k = len(bars)
    shades = ["0.85"] if k == 1 else list(np.linspace(0.85, 0.55, k).astype(str))
    for i, (label, values) in enumerate(bars.items()):
        dx = (i - (k - 1) / 2) * 0.4
        _seed_bars(ax1, values, dx, 0.8 if k == 1 else 0.38, shades[i], label if k > 1 else None,
                   "seed" if k == 1 else None, 0.12 if k == 1 else 0.08, 18 if k == 1 else 14)
    columns = next(iter(bars.values())).columns
    ax1.set(xticks=np.arange(len(columns)), xticklabels=list(columns), ylabel=ylabel, title=title)
    ax1.legend(loc="upper left", fontsize=8)
    _seed_bars(ax2, diff, 0.0, 0.8, "0.85", None, "ours, per seed", 0.12 if k == 1 else 0.08, 18)
    x = np.arange(diff.shape[1])
    for ds, values in paper.items():
        marker, colour = PAPER_MARKS.get(ds, ("o", "tab:green"))
        ax2.scatter(x + 0.3, list(values), marker=marker, color=colour, s=40, zorder=3, label=f"paper, {ds}")
    ax2.axhline(0, color="0.3", lw=0.8)
    ax2.set(xticks=x, xticklabels=list(diff.columns), ylabel=diff_ylabel, title=diff_title)
    ax2.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig
