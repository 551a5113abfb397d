"""Severity in the robustness community's convention: five levels per artifact, the query and/or the gallery
corrupted, several random draws, and corruption errors relative to a reference model (ImageNet-C: Hendrycks &
Dietterich, ICLR 2019; corrupted person re-id: Chen et al., NeurIPS 2021 Datasets and Benchmarks)::

    level_table()                                          # every artifact × level with its parameters
    x = corrupt(images, "motion_blur", 5, draw_seed(0, draw=1, side="query"))
    corruption_errors(long, "CAL")                         # CE per artifact and mCE per condition × model

Level ℓ ∈ 1..5 is :func:`rlqlib.data.degrade.degrade`'s severity s = ℓ/5, so level 5 is the strongest setting of
the paper's TAD ranges and every level lies inside the range TAD trains on (s ∈ [0, 1]); level 0 is the clean
image. At a fixed level only motion blur (its angle) and noise (its pixels) are random (:data:`STOCHASTIC`); the
other artifacts give the same image in every draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from torch import Tensor

from rlqlib.book.analysis import fixed_degrade, severity_label
from rlqlib.data.degrade import ALL_ARTIFACTS, ARTIFACTS

LEVELS = (1, 2, 3, 4, 5)
CONDITIONS = ("query", "gallery", "both")  # which side is corrupted; the other stays clean
CORRUPTED = {"query": ("query",), "gallery": ("gallery",), "both": ("query", "gallery")}
STOCHASTIC = {"motion_blur": "angle ~ U{0..179}°", "noise": "every pixel's noise"}  # random at a fixed level
PAPER_RANGE = {"pixelation": "shorter side 16–63 px", "motion_blur": "kernel 8–19 px",
               "out_of_focus": "σ 0.1–2.0", "jpeg": "not in the paper", "noise": "not in the paper"}
MEASURES = {"CC top-1": ("cc", "top1"), "CC mAP": ("cc", "mAP"), "top-1": ("general", "top1"),
            "mAP": ("general", "mAP")}  # mCE column → (protocol, metric)


def level_severity(level: int) -> float:
    """Degrade's severity s ∈ [0, 1] of a level 1..5 (s = level / 5)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    return level / len(LEVELS)


def level_table(artifacts: Sequence[str] = ALL_ARTIFACTS) -> pd.DataFrame:
    """Every artifact × level: ``artifact, level, s`` (degrade's severity), ``parameter`` (what it sets, e.g.
    ``r=16 px``), ``paper's range`` (the TAD range s spans) and ``random per draw``."""
    rows = [{"artifact": a, "level": lv, "s": level_severity(lv), "parameter": severity_label(a, level_severity(lv)),
             "paper's range": PAPER_RANGE[a], "random per draw": STOCHASTIC.get(a, "nothing")}
            for a in artifacts for lv in LEVELS]
    return pd.DataFrame(rows)


def draw_seed(seed: int, draw: int, side: str) -> int:
    """The generator seed of one random draw of one side (``query`` / ``gallery``): the same for every artifact and
    level, so a draw keeps its motion-blur angles as the level grows and only the strength changes."""
    if side not in ("query", "gallery"):
        raise ValueError(f"side must be 'query' or 'gallery', got {side!r}")
    return 1000 * int(seed) + 2 * int(draw) + (side == "gallery")


def effective_draw(artifact: str, draw: int) -> int:
    """The draw whose images ``draw`` gets: itself for a :data:`STOCHASTIC` artifact, else 0 (all draws equal)."""
    return draw if artifact in STOCHASTIC else 0


def corrupt(images: Tensor, artifact: str, level: int, seed: int) -> Tensor:
    """(N,3,H,W) uint8 images with one artifact at one level (parameters drawn with generator ``seed``)."""
    out, _ = fixed_degrade(images, seed=seed, artifact=artifact, severity=level_severity(level))
    return out


def corruption_errors(long: pd.DataFrame, reference: str, protocol: str = "cc", metric: str = "top1",
                      relative: bool = False) -> pd.DataFrame:
    """Corruption error CE_c = 100 · Σ_ℓ E_ℓ,c / Σ_ℓ E_ℓ,c(reference) per artifact c, and mCE = mean over c.

    E = 100 − metric (%), averaged over draws; ``relative``: E − E_clean (ImageNet-C's relative mCE).

    Args:
        long: one row per ``model, condition, artifact, level, draw, protocol`` with the metric (%); the clean
            rows have ``level`` 0 (any condition and artifact).
        reference: the model whose CE is 100 by construction.

    Returns:
        Rows (condition, model) in the long table's order, columns the artifacts and ``mCE`` (NaN where the
        reference has no error to divide by).
    """
    for col in ("model", "condition", "artifact", "level", "protocol", metric):
        if col not in long:
            raise KeyError(f"corruption_errors needs column {col!r} in the long table")
    part = long[long["protocol"] == protocol]
    if reference not in set(part["model"]):
        raise ValueError(f"reference model {reference!r} has no {protocol!r} rows; "
                         f"models: {sorted(set(part['model']))}")
    keys = ["condition", "model", "artifact", "level"]
    error = 100.0 - part[part["level"] > 0].groupby(keys, sort=False)[metric].mean()  # mean over draws
    if relative:
        clean = 100.0 - part[part["level"] == 0].groupby("model")[metric].mean()
        error = error - clean.reindex(error.index.get_level_values("model")).to_numpy()
    total = error.groupby(level=["condition", "model", "artifact"], sort=False).sum()
    ref = total.xs(reference, level="model")
    ref = ref.where(ref > 0)  # no error (or no relative error) of the reference: the ratio is undefined
    ratio = 100.0 * total / ref.reindex(total.index.droplevel("model")).to_numpy()
    table = ratio.unstack("artifact")
    table = table[[a for a in dict.fromkeys(part["artifact"]) if a in table.columns]]
    table["mCE"] = table.mean(axis=1, skipna=False)
    order = [(c, m) for c in dict.fromkeys(long["condition"]) for m in dict.fromkeys(long["model"])]
    return table.reindex([o for o in order if o in table.index])


def mce_table(long: pd.DataFrame, reference: str, measures: Sequence[str] = tuple(MEASURES),
              relative: bool = False) -> pd.DataFrame:
    """mCE per model (rows) and (condition, measure) (columns), each measure one of :data:`MEASURES` present in
    ``long``."""
    parts = {}
    for name in measures:
        protocol, metric = MEASURES[name]
        if protocol in set(long["protocol"]):
            parts[name] = corruption_errors(long, reference, protocol, metric, relative)["mCE"]
    table = pd.DataFrame(parts).unstack("condition")  # (model) × (measure, condition)
    table.columns = table.columns.swaplevel()
    conditions = [c for c in dict.fromkeys(long["condition"]) if c in table.columns.get_level_values(0)]
    models = list(dict.fromkeys(long["model"]))
    return table.reindex(index=models, columns=[(c, m) for c in conditions for m in parts])


def paper_artifacts(artifacts: Sequence[str]) -> list[str]:
    """The paper's TAD artifacts among ``artifacts`` (in :data:`rlqlib.data.degrade.ARTIFACTS` order)."""
    return [a for a in ARTIFACTS if a in artifacts]
