"""Severity curves in the corruption-benchmark convention (:mod:`rlqlib.book.pages.corruption`): every artifact at
levels 1–5 on the clean (HQ) queries, the clean gallery, or both, over several random draws, every model scored
(features of every corrupted image set cached per run)::

    sw = severity_sweep(p, runs, draws=3)   # scores, top-1 matches: model × condition × artifact × level × draw
    sw.examples_figure(); sw.curves_figure("query"); sw.table("query"); sw.mce("CAL")

Only two feature sets per (artifact, level, draw) are embedded, the corrupted queries and the corrupted gallery: the
``query`` condition pairs the first with the clean gallery, ``gallery`` the second with the clean queries, ``both``
the two. Artifacts without randomness at a fixed level are embedded once and shared by every draw. What the curves
say about the paper's claims is :mod:`rlqlib.book.pages.robustness`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from rlqlib.book import experiments as X
from rlqlib.book.analysis import Top1, image_tag, score, top1_matches
from rlqlib.book.page import Page
from rlqlib.book.pages import corruption as C
from rlqlib.book.plots import metric_lines
from rlqlib.data.degrade import ALL_ARTIFACTS
from rlqlib.engine.runs import Run

PROTOCOLS = ("general", "cc")
SIDES = ("query", "gallery")
CURVE_ROWS = (("cc", "top1"), ("cc", "mAP"))  # (protocol, metric) per row of the curves figure
KEYS = ["model", "condition", "artifact", "level", "draw"]  # a row of the long table, before its protocol


@dataclass(frozen=True)
class CleanSet:
    """The images of one side that SynthCC rendered without an artifact.

    Attributes:
        labels: per-image labels (``pid, camid, clothes_id, path``, …), index 0..N-1.
        images: (N,3,H,W) uint8 at the models' input size; keep: (all,) bool, which split rows they are.
    """

    labels: pd.DataFrame
    images: torch.Tensor
    keep: np.ndarray


def clean_set(s: X.Setting, split: str, size: tuple[int, int], pids: Sequence[int] | None = None) -> CleanSet:
    """The HQ images of a split (every image where the dataset has no ``artifact`` column), of identities ``pids``
    only when given."""
    lab = X.labels(s, split)
    keep = np.array(lab["artifact"] == "none") if "artifact" in lab else np.ones(len(lab), bool)  # (all,) writable
    if pids is not None:
        keep &= lab["pid"].isin(list(pids)).to_numpy()
    return CleanSet(lab[keep].reset_index(drop=True), X.split_images(s, split, size)[torch.from_numpy(keep)], keep)


def pick_identities(s: X.Setting, n: int | None, seed: int = 0) -> list[int] | None:
    """``n`` of the query identities (sorted, a seeded random choice), or None (all) when ``n`` is None or at least
    their number."""
    pids = sorted(set(X.labels(s, "query")["pid"]))
    if n is None or n >= len(pids):
        return None
    if n < 1:
        raise ValueError(f"identities={n}: choose at least 1, or None for all {len(pids)}")
    return sorted(np.random.default_rng(seed).choice(pids, size=n, replace=False).tolist())


@dataclass(frozen=True)
class SeveritySweep:
    """Every model's scores on the clean sets and on each condition × artifact × level × draw.

    Attributes:
        long: one row per model × condition × artifact × level × draw × protocol: ``model, condition, artifact,
            level, draw, protocol, top1, mAP, valid`` (the clean sets: condition and artifact ``none``, level 0).
        tops: (model, condition, artifact, level, draw) → :class:`rlqlib.book.analysis.Top1` under ``protocol``.
        images: (N,3,H,W) uint8 clean queries; examples: (artifact, level) → the first query corrupted (draw 0).
        models, artifacts, conditions: in order; draws: random draws per (artifact, level, condition).
        protocol: of ``tops``; n_query, n_gallery: clean images used; n_all: all queries (LQ ones included);
        n_ids: identities evaluated, of all_ids.
    """

    long: pd.DataFrame
    tops: dict[tuple[str, str, str, int, int], Top1]
    images: torch.Tensor
    examples: dict[tuple[str, int], torch.Tensor]
    models: list[str]
    artifacts: tuple[str, ...]
    conditions: tuple[str, ...]
    draws: int
    protocol: str
    n_query: int
    n_gallery: int
    n_all: int
    n_ids: int
    all_ids: int

    def level_table(self) -> pd.DataFrame:
        """The parameters of every artifact × level (:func:`rlqlib.book.pages.corruption.level_table`)."""
        return C.level_table(self.artifacts).set_index(["artifact", "level"])

    def stats(self) -> pd.DataFrame:
        """Mean and std (ddof=1) over draws: columns ``model, condition, artifact, level, protocol, metric, mean,
        std`` (a clean row's std is 0)."""
        melted = self.long.melt(id_vars=[*KEYS, "protocol"], value_vars=["top1", "mAP"], var_name="metric")
        g = melted.groupby(["model", "condition", "artifact", "level", "protocol", "metric"], sort=False)["value"]
        return g.agg(mean="mean", std=lambda v: v.std(ddof=1) if len(v) > 1 else 0.0).reset_index()

    def _curve(self, stats: pd.DataFrame, condition: str, artifact: str, protocol: str, metric: str
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
        part = stats[(stats["protocol"] == protocol) & (stats["metric"] == metric)
                     & (((stats["condition"] == condition) & (stats["artifact"] == artifact)) | (stats["level"] == 0))]
        mean, std = (part.pivot(index="level", columns="model", values=v)[self.models] for v in ("mean", "std"))
        return mean, std

    def curves_figure(self, condition: str, rows: Sequence[tuple[str, str]] = CURVE_ROWS) -> plt.Figure:
        """Metric against level (0 = clean), one panel per artifact (columns) and (protocol, metric) (rows), a line
        per model, error bars = std over draws."""
        if condition not in self.conditions:
            raise ValueError(f"condition {condition!r} was not swept; choose from {self.conditions}")
        stats = self.stats()
        fig, axes = plt.subplots(len(rows), len(self.artifacts), squeeze=False,
                                 figsize=(3.2 * len(self.artifacts), 3.0 * len(rows)))
        ticks = ["clean", *map(str, C.LEVELS)]
        for j, artifact in enumerate(self.artifacts):
            for i, (protocol, metric) in enumerate(rows):
                mean, std = self._curve(stats, condition, artifact, protocol, metric)
                label = f"{'CC ' if protocol == 'cc' else ''}{'top-1' if metric == 'top1' else metric} (%)"
                metric_lines(mean, label if j == 0 else "", "level" if i == len(rows) - 1 else "", err=std,
                             xticklabels=ticks, title=artifact.replace("_", " ") if i == 0 else "", ax=axes[i, j])
                if (i, j) != (0, 0):
                    axes[i, j].get_legend().remove()
        fig.suptitle(f"corrupted: {' and '.join(C.CORRUPTED[condition])}", fontsize=11)
        fig.tight_layout()
        return fig

    def examples_figure(self) -> plt.Figure:
        """The first clean query at every level of every artifact (rows: artifacts; draw 0)."""
        n = len(C.LEVELS) + 1
        fig, axes = plt.subplots(len(self.artifacts), n, figsize=(1.0 * n, 2.1 * len(self.artifacts)),
                                 squeeze=False)
        labels = self.level_table()["parameter"]
        for i, artifact in enumerate(self.artifacts):
            axes[i, 0].imshow(self.images[0].permute(1, 2, 0).numpy())
            axes[i, 0].set_title("clean", fontsize=7)
            axes[i, 0].set_ylabel(artifact, fontsize=7)
            for j, level in enumerate(C.LEVELS, start=1):
                axes[i, j].imshow(self.examples[(artifact, level)].permute(1, 2, 0).numpy())
                axes[i, j].set_title(f"{level}: {labels[(artifact, level)]}", fontsize=6)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        return fig

    def table(self, condition: str, digits: int = 1) -> pd.DataFrame:
        """``mean ± std`` over draws of top-1 and mAP: rows (artifact, level, parameter) with the clean row first,
        columns (protocol, metric, model)."""
        st = self.stats()
        st = st[(st["condition"] == condition) | (st["level"] == 0)]
        params = C.level_table(self.artifacts).set_index(["artifact", "level"])["parameter"]
        st = st.assign(parameter=[params.get((a, lv), "clean") for a, lv in zip(st["artifact"], st["level"])],
                       cell=[f"{m:.{digits}f} ± {s:.{digits}f}" for m, s in zip(st["mean"], st["std"])])
        table = st.pivot(index=["artifact", "level", "parameter"], columns=["protocol", "metric", "model"],
                         values="cell")
        rows = [r for a in ("none", *self.artifacts) for r in table.index if r[0] == a]
        protocols = [p for p in ("cc", "general") if p in set(st["protocol"])]
        cols = [(p, m, n) for p in protocols for m in ("top1", "mAP") for n in self.models]
        return table.loc[rows, cols]

    def ce(self, reference: str, measure: str = "CC top-1", relative: bool = False) -> pd.DataFrame:
        """CE per artifact and mCE, rows (condition, model) (:func:`rlqlib.book.pages.corruption.corruption_errors`)."""
        protocol, metric = C.MEASURES[measure]
        return C.corruption_errors(self.long, reference, protocol, metric, relative)

    def mce(self, reference: str, relative: bool = False) -> pd.DataFrame:
        """mCE per model × (condition, measure) (:func:`rlqlib.book.pages.corruption.mce_table`)."""
        return C.mce_table(self.long, reference, relative=relative)

    def glue(self, variants: Mapping[str, str], reference: str) -> dict:
        """Glue values: ``sev_draws``, ``sev_ids``, ``sev_all_ids``, ``sev_gallery`` and per model variant and
        condition ``sev_mce_<variant>_<condition>`` / ``sev_mce_map_<variant>_<condition>`` (CC top-1 / CC mAP)."""
        out = {"sev_draws": self.draws, "sev_ids": self.n_ids, "sev_all_ids": self.all_ids,
               "sev_gallery": self.n_gallery, "sev_reference": reference}
        mce = self.mce(reference)
        for name in self.models:
            for condition in self.conditions:
                out[f"sev_mce_{variants[name]}_{condition}"] = float(mce.loc[name, (condition, "CC top-1")])
                out[f"sev_mce_map_{variants[name]}_{condition}"] = float(mce.loc[name, (condition, "CC mAP")])
        return out

    def pooled(self, model: str, condition: str, artifact: str, levels: Sequence[int]) -> Top1:
        """A model's top-1 matches averaged over ``levels`` and every draw: ``correct`` holds each query's share of
        hits (in [0, 1]), ``valid`` the queries valid in all, ``index`` the first level's draw 0."""
        ts = [self.tops[(model, condition, artifact, lv, d)] for lv in levels for d in range(self.draws)]
        return Top1(ts[0].index, np.mean([t.correct for t in ts], axis=0), np.all([t.valid for t in ts], axis=0))


def _cached(run: Run, tag: str) -> bool:
    """Whether :func:`rlqlib.book.experiments.embed` has ``tag``'s features in the run folder already."""
    return (run.dir / "features" / f"{tag}.pt").is_file()


def corrupted_features(runs: Mapping[str, Sequence[Run]], s: X.Setting, side: str, part: CleanSet, artifact: str,
                       level: int, seed: int) -> dict[str, torch.Tensor]:
    """Every model's (N, D) features of one side's clean images corrupted at ``level`` with generator ``seed``,
    cached per run under a tag naming side, size, artifact, severity and seed; the images are corrupted only when a
    model lacks them."""
    h, w = part.images.shape[-2:]
    tag = image_tag(part.labels["path"], f"{side}-hq", f"{h}x{w}", artifact, f"s{C.level_severity(level):.2f}",
                    f"seed{seed}")
    images = None if all(_cached(r[0], tag) for r in runs.values()) else C.corrupt(part.images, artifact, level, seed)
    return {name: X.embed(r[0], images, s, tag) for name, r in runs.items()}


def _score_all(q_feats: Mapping[str, torch.Tensor], g_feats: Mapping[str, torch.Tensor], q: pd.DataFrame,
               g: pd.DataFrame, protocols: Sequence[str], protocol: str, rows: list, tops: dict, **key: object) -> None:
    """Append every model's scores (one row per protocol) to ``rows`` and its top-1 matches to ``tops``."""
    for name in q_feats:
        k = {"model": name, **key}
        rows += [{**k, "protocol": pr, **m} for pr, m in score(q_feats[name], g_feats[name], q, g, protocols).items()]
        tops[tuple(k[c] for c in KEYS)] = top1_matches(q_feats[name], g_feats[name], q, g, protocol)


def severity_sweep(p: Page, runs: Mapping[str, Sequence[Run]], artifacts: Sequence[str] = ALL_ARTIFACTS,
                   draws: int = 3, conditions: Sequence[str] = C.CONDITIONS, protocols: Sequence[str] = PROTOCOLS,
                   identities: int | None = None, seed: int = 0) -> SeveritySweep:
    """Corrupt the clean queries and the clean gallery with every artifact at levels 1–5 in ``draws`` random draws
    (generator seeds :func:`rlqlib.book.pages.corruption.draw_seed` of ``seed``), embed them with every model's first
    run and score every condition; top-1 matches under the page's protocol.

    Args:
        identities: evaluate this many test identities (:func:`pick_identities`, all their clean query and gallery
            images), None for all; the cost grows with their images.
    """
    bad = [a for a in artifacts if a not in ALL_ARTIFACTS] + [c for c in conditions if c not in C.CONDITIONS]
    if bad or draws < 1:
        raise ValueError(f"unknown artifacts/conditions {bad} or draws={draws}; choose artifacts from {ALL_ARTIFACTS}, "
                         f"conditions from {C.CONDITIONS} and draws >= 1")
    s = p.setting
    size = tuple(next(iter(runs.values()))[0].config.data.image_size)
    pids = pick_identities(s, identities, seed)
    sets = {side: clean_set(s, side, size, pids) for side in SIDES}
    clean = {side: {name: X.features(r[0], s, side)[torch.from_numpy(sets[side].keep)] for name, r in runs.items()}
             for side in SIDES}
    q, g = sets["query"].labels, sets["gallery"].labels
    sides = [side for side in SIDES if any(side in C.CORRUPTED[c] for c in conditions)]
    rows: list[dict] = []
    tops: dict = {}
    _score_all(clean["query"], clean["gallery"], q, g, protocols, p.protocol, rows, tops, condition="none",
               artifact="none", level=0, draw=0)
    examples = {}
    for artifact in artifacts:
        for level in C.LEVELS:
            examples[(artifact, level)] = C.corrupt(sets["query"].images[:1], artifact, level,
                                                    C.draw_seed(seed, 0, "query"))[0]
            memo: dict[tuple[str, int], dict[str, torch.Tensor]] = {}  # (side, effective draw) → features
            for draw in range(draws):
                feats = dict(clean)
                for side in sides:
                    d = C.effective_draw(artifact, draw)
                    if (side, d) not in memo:
                        memo[(side, d)] = corrupted_features(runs, s, side, sets[side], artifact, level,
                                                             C.draw_seed(seed, d, side))
                    feats[side] = memo[(side, d)]
                for condition in conditions:
                    pick = {side: feats[side] if side in C.CORRUPTED[condition] else clean[side] for side in SIDES}
                    _score_all(pick["query"], pick["gallery"], q, g, protocols, p.protocol, rows, tops,
                               condition=condition, artifact=artifact, level=level, draw=draw)
    return SeveritySweep(pd.DataFrame(rows), tops, sets["query"].images, examples, list(runs), tuple(artifacts),
                         tuple(conditions), draws, p.protocol, len(q), len(g), int(len(sets["query"].keep)),
                         int(q["pid"].nunique()), int(X.labels(s, "query")["pid"].nunique()))
