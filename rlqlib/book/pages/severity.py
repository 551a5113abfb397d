"""Severity curves: each artifact applied to the clean (HQ) queries at increasing severity, every model scored
against the unchanged gallery (features of every degraded query set cached per run)::

    sw = severity_sweep(p, runs)                 # scores and top-1 matches per model × artifact × severity
    sw.examples_figure(); sw.curves_figure(); sw.table()

Severity ``s`` ∈ [0, 1] is :func:`rlqlib.data.degrade.degrade`'s (1 = the paper's extreme). What the curves say
about the paper's claims is :mod:`rlqlib.book.pages.robustness`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from rlqlib.book import experiments as X
from rlqlib.book.analysis import Top1, fixed_degrade, image_tag, score, severity_label, top1_matches
from rlqlib.book.page import Page
from rlqlib.book.plots import metric_lines
from rlqlib.data.degrade import ARTIFACTS
from rlqlib.engine.runs import Run

LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
PROTOCOLS = ("general", "cc")


@dataclass(frozen=True)
class SeveritySweep:
    """Every model's scores on the clean queries and on each artifact × severity of them.

    Attributes:
        long: one row per model × (artifact, severity) × protocol: ``model, artifact, severity, level, protocol,
            top1, mAP, valid`` (``artifact`` ``none``: the clean queries; ``level``: the severity's parameter).
        tops: (model, artifact, severity) → CC :class:`rlqlib.book.analysis.Top1` (clean: ``(model, "none",
            None)``).
        images: (N,3,H,W) uint8 clean queries; examples: (artifact, severity) → the first query degraded.
        models: the models in order; levels: the severities.
        n_all: all queries (LQ ones included).
    """

    long: pd.DataFrame
    tops: dict[tuple[str, str, float | None], Top1]
    images: torch.Tensor
    examples: dict[tuple[str, float], torch.Tensor]
    models: list[str]
    levels: tuple[float, ...]
    n_all: int

    def examples_figure(self) -> plt.Figure:
        """The first clean query at every severity of every artifact (rows: artifacts)."""
        n = len(self.levels) + 1
        fig, axes = plt.subplots(len(ARTIFACTS), n, figsize=(1.0 * n, 2.1 * len(ARTIFACTS)))
        for i, artifact in enumerate(ARTIFACTS):
            axes[i, 0].imshow(self.images[0].permute(1, 2, 0).numpy())
            axes[i, 0].set_title("none", fontsize=7)
            axes[i, 0].set_ylabel(artifact, fontsize=7)
            for j, level in enumerate(self.levels, start=1):
                axes[i, j].imshow(self.examples[(artifact, level)].permute(1, 2, 0).numpy())
                axes[i, j].set_title(severity_label(artifact, level), fontsize=7)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        return fig

    def curves_figure(self) -> plt.Figure:
        """Top-1 against severity: CC (top row) and general (bottom), one panel per artifact, a line per model."""
        fig, axes = plt.subplots(2, len(ARTIFACTS), figsize=(4.2 * len(ARTIFACTS), 6.4), squeeze=False)
        for j, artifact in enumerate(ARTIFACTS):
            part = self.long[self.long["artifact"].isin(["none", artifact])]
            labels = ["none"] + [severity_label(artifact, lv) for lv in self.levels]
            for i, protocol in enumerate(["cc", "general"]):
                table = part[part["protocol"] == protocol].pivot(index="level", columns="model", values="top1")
                metric_lines(table.loc[labels, self.models],
                             f"{protocol.upper() if protocol == 'cc' else protocol} top-1 (%)",
                             "severity" if i else "", xticklabels=labels,
                             title=artifact.replace("_", " ") if i == 0 else "", ax=axes[i, j])
        return fig

    def table(self) -> pd.DataFrame:
        """Top-1 and mAP for every artifact, severity and model: rows (artifact, severity, level), columns
        (protocol, metric, model)."""
        long = self.long
        ordered = long.assign(artifact=pd.Categorical(long["artifact"], ["none", *ARTIFACTS]),
                              model=pd.Categorical(long["model"], self.models), severity=long["severity"].fillna(-1))
        table = ordered.pivot_table(index=["artifact", "severity", "level"], columns=["protocol", "model"],
                                    values=["top1", "mAP"], observed=True)
        table.columns = table.columns.reorder_levels([1, 0, 2])
        return table.sort_index(axis=1, level=[0, 1], sort_remaining=False).rename(index={-1: "–"}, level="severity")


def _score_rows(feats: torch.Tensor, gallery: torch.Tensor, q: pd.DataFrame, g: pd.DataFrame,
                protocols: Sequence[str], **row: object) -> list[dict]:
    return [{**row, "protocol": protocol, **m} for protocol, m in score(feats, gallery, q, g, protocols).items()]


def severity_sweep(p: Page, runs: Mapping[str, Sequence[Run]], levels: Sequence[float] = LEVELS,
                   protocols: Sequence[str] = PROTOCOLS, seed: int = 0) -> SeveritySweep:
    """Degrade the clean queries with every artifact at every severity (fixed generator ``seed``), embed them with
    every model's first run and score them against its gallery features."""
    s = p.setting
    q, g = X.labels(s, "query"), X.labels(s, "gallery")
    hq = torch.tensor((q["artifact"] == "none").to_numpy() if "artifact" in q else np.ones(len(q), bool))
    q_hq = q[hq.numpy()].reset_index(drop=True)
    size = tuple(next(iter(runs.values()))[0].config.data.image_size)
    images = X.split_images(s, "query", size)[hq]  # (N,3,H,W) uint8
    gallery = {name: X.features(r[0], s, "gallery") for name, r in runs.items()}
    rows, tops, examples = [], {}, {}
    for name, r in runs.items():
        clean = X.features(r[0], s, "query")[hq]
        tops[(name, "none", None)] = top1_matches(clean, gallery[name], q_hq, g, "cc")
        rows += _score_rows(clean, gallery[name], q_hq, g, protocols, model=name, artifact="none", severity=np.nan,
                            level="none")
    for artifact in ARTIFACTS:
        for level in levels:
            degraded, _ = fixed_degrade(images, seed=seed, artifact=artifact, severity=level)
            examples[(artifact, level)] = degraded[0]
            tag = image_tag(q_hq["path"], "query-hq", f"{size[0]}x{size[1]}", artifact, f"s{level:.2f}", f"seed{seed}")
            for name, r in runs.items():
                feats = X.embed(r[0], degraded, s, tag)
                tops[(name, artifact, level)] = top1_matches(feats, gallery[name], q_hq, g, "cc")
                rows += _score_rows(feats, gallery[name], q_hq, g, protocols, model=name, artifact=artifact,
                                    severity=level, level=severity_label(artifact, level))
    return SeveritySweep(pd.DataFrame(rows), tops, images, examples, list(runs), tuple(levels), len(q))
