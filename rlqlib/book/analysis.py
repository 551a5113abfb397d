"""Analyses behind the paper's figures (Figs. 5–8) and the severity curves: per-query top-1 matches, accuracy by
group, the LQ-clustering score, gender F1 on mispredictions, and error cases.

Everything per query or per image is batched array code (a distance matrix, ``argmax``, ``topk``, boolean masks);
the notebooks get features from :mod:`rlqlib.book.experiments` and per-image labels from
:func:`rlqlib.book.experiments.labels` (columns ``pid, camid, clothes_id`` plus SynthCC's metadata)::

    t = top1_matches(q_feats, g_feats, q_labels, g_labels, "cc")   # index, correct, valid per query
    accuracy_by(t, q_labels["artifact"])                          # top-1 (%) per query artifact
    lq_cluster_score(hq, lq).rate                                 # LQ features whose nearest neighbour is LQ

Percentages are in % (0–100) like :mod:`rlqlib.book.experiments`; F1 scores stay in [0, 1] as the paper writes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rlqlib.data import degrade as D
from rlqlib.engine import evaluate as E
from rlqlib.book import matches as Mt
from rlqlib.engine.config import ExperimentConfig

LABEL_COLUMNS = ("pid", "camid", "clothes_id")

# ------------------------------------------------------------------------------------------ images


def image_tag(paths: Iterable[str], *parts: object) -> str:
    """A feature-cache tag naming a set of images and what was done to them (for :func:`experiments.embed`).

    Args:
        paths: the source images, in order (their list is hashed).
        *parts: anything else that changes the pixels (size, artifact, severity, seed), joined into the tag.
    """
    digest = hashlib.sha256("\n".join(map(str, paths)).encode()).hexdigest()[:12]
    words = [str(p).replace(" ", "").replace("/", "_") for p in parts]
    return "-".join([*words, digest])


def tad_mix(cfg: ExperimentConfig) -> str:
    """The degradation mix a run's TAD pass draws from (as :mod:`rlqlib.engine.train` resolves it)."""
    return cfg.tad.mix or (cfg.data.dataset if cfg.data.dataset in D.MIXES else "generic")


def fixed_degrade(images: Tensor, seed: int, mix: str = "ltcc", artifact: str | None = None,
                  severity: float | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """:func:`rlqlib.data.degrade.degrade` with a fresh generator seeded by ``seed`` (same images → same output).

    Args:
        images: (N,3,H,W) uint8.
        seed: seeds the artifact choice and parameters (and the motion-blur angles of a severity curve).
        mix: the artifact mix (ignored when ``artifact`` is given).
        artifact: force one artifact for every image.
        severity: None for the reference's random draw, else a value in [0, 1] (1 = the paper's extreme).
    """
    gen = torch.Generator(device=images.device).manual_seed(int(seed))
    return D.degrade(images, gen, mix=mix, severity=severity, artifacts=artifact)


def severity_label(artifact: str, severity: float) -> str:
    """The parameter a severity stands for, e.g. ``r=16 px`` (pixelation), ``k=19 px``, ``σ=2.0``."""
    p = D.sample_params(artifact, 1, torch.Generator().manual_seed(0), severity=float(severity))
    if artifact == "pixelation":
        return f"r={int(p['r'])} px"
    if artifact == "motion_blur":
        return f"k={int(p['k'])} px"
    if artifact == "out_of_focus":
        return f"σ={float(p['sigma']):.2f}"
    if artifact == "jpeg":
        return f"q={int(p['q'])}"
    return f"σ={float(p['sigma']):.0f}"


def external_sample(cfg: ExperimentConfig, n: int, seed: int = 0, which: str = "external",
                    splits: Sequence[str] = ("query", "gallery")) -> pd.DataFrame:
    """Up to ``n`` images of a run's external HQ set (test identities: never seen by TAD or the teacher).

    Returns:
        ``path, pid`` rows, a seeded random subset kept in dataset order.
    """
    from rlqlib.data import training as TD

    ds = TD.external_dataset(cfg.data, which, cfg.tad.external_root)
    rows = pd.DataFrame([{"path": x.path, "pid": x.pid} for sp in splits for x in ds.splits[sp]])
    if rows.empty:
        raise ValueError(f"the external set {which!r} of {cfg.data.root} has no {'/'.join(splits)} images")
    if len(rows) > n:
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=n, replace=False))
        rows = rows.iloc[keep].reset_index(drop=True)
    return rows


def subsample_counts(pids: Sequence[int] | np.ndarray, fractions: Iterable[float]) -> pd.DataFrame:
    """Images and identities :func:`rlqlib.data.training.subsample_per_identity` keeps at each fraction
    (floor(n_id · fraction) per identity, so small identities vanish at small fractions).

    Returns:
        ``fraction, images, ids, share`` (share of all images, %).
    """
    per_id = np.bincount(np.unique(np.asarray(pids), return_inverse=True)[1])  # (I,) images per identity
    rows = []
    for f in fractions:
        kept = np.floor(per_id * float(f)).astype(int) if f < 1 else per_id  # (I,) as int(n · f)
        rows.append({"fraction": float(f), "images": int(kept.sum()), "ids": int((kept > 0).sum()),
                     "share": 100.0 * kept.sum() / per_id.sum()})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ LQ clusters


@dataclass(frozen=True)
class LQClusterScore:
    """How much LQ features cluster among themselves (Fig. 6 as a number).

    Attributes:
        rate: % of each LQ feature's k nearest neighbours that are LQ, averaged (50 % = HQ and LQ mixed).
        per_item: (N,) that share per LQ item, % (for paired comparisons between models).
        twin_cosine: mean cosine between each HQ feature and its own LQ twin.
        k: neighbours looked at.
        n: pairs.
    """

    rate: float
    per_item: np.ndarray
    twin_cosine: float
    k: int
    n: int


def lq_cluster_score(hq: Tensor, lq: Tensor, k: int = 1) -> LQClusterScore:
    """For every LQ feature, the share of LQ features among its k nearest neighbours (cosine) in the pooled
    HQ ∪ LQ set, **excluding itself and its own HQ twin**.

    The twin is excluded because its closeness is what TAD trains for and is measured separately
    (``twin_cosine``); with it included, a model that maps every LQ image onto its HQ twin would look "mixed"
    even if the LQ features still formed their own cluster elsewhere. Without self and twin, each LQ item sees
    N − 1 HQ and N − 1 LQ candidates, so a feature space that ignores quality scores 50 %.

    Args:
        hq: (N, D) features of the HQ images.
        lq: (N, D) features of their LQ twins, same order.
        k: neighbours (1 = the nearest only); at most 2N − 2.
    """
    if hq.shape != lq.shape or hq.dim() != 2 or hq.shape[0] < 2:
        raise ValueError(f"hq and lq must be two (N, D) feature sets with N >= 2, got {tuple(hq.shape)} and "
                         f"{tuple(lq.shape)}")
    n = hq.shape[0]
    if not 1 <= k <= 2 * n - 2:
        raise ValueError(f"k={k} neighbours: choose 1 <= k <= 2N-2 = {2 * n - 2}")
    h = torch.nn.functional.normalize(hq.detach().float(), dim=1)  # (N, D)
    q = torch.nn.functional.normalize(lq.detach().float(), dim=1)  # (N, D)
    with D.full_fp32_matmul():
        sims = q @ torch.cat([h, q]).T  # (N, 2N): columns 0..N-1 HQ, N..2N-1 LQ
    rows = torch.arange(n)
    sims[rows, rows] = -torch.inf  # the own HQ twin
    sims[rows, rows + n] = -torch.inf  # itself
    nearest = sims.topk(k, dim=1).indices  # (N, k)
    per_item = (nearest >= n).float().mean(dim=1).numpy()  # (N,)
    twin = (h * q).sum(dim=1)  # (N,)
    return LQClusterScore(100.0 * float(per_item.mean()), 100.0 * per_item, float(twin.mean()), k, n)


def tsne_pairs(hq: Tensor, lq: Tensor, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE (scikit-learn, PCA init, fixed ``random_state``) of the pooled features.

    Returns:
        (2N, 2): rows 0..N-1 the HQ items, N..2N-1 the LQ items.
    """
    from sklearn.manifold import TSNE

    x = torch.cat([hq, lq]).float().numpy()  # (2N, D)
    perplexity = min(perplexity, (len(x) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


# ------------------------------------------------------------------------------------------ top-1 matches


class Top1(NamedTuple):
    """Each query's rank-1 gallery item under a protocol (junk items removed, ties to the lower index).

    Attributes:
        index: (Q,) gallery row of the top-1 match (-1 when every gallery item is junk for the query).
        correct: (Q,) whether it has the query's identity.
        valid: (Q,) whether the query has any good match (the others are skipped by the metrics).
    """

    index: np.ndarray
    correct: np.ndarray
    valid: np.ndarray

    @property
    def top1(self) -> float:
        """Top-1 accuracy over the valid queries, in % (equals :func:`rlqlib.engine.evaluate.evaluate`'s top1)."""
        return 100.0 * float(self.correct[self.valid].mean()) if self.valid.any() else float("nan")


def _check_columns(df: pd.DataFrame, what: str) -> None:
    missing = [c for c in LABEL_COLUMNS if c not in df]
    if missing:
        raise KeyError(f"{what} labels lack columns {missing}; pass experiments.labels(s, split)")


def _label_arrays(df: pd.DataFrame, what: str) -> list[Tensor]:
    _check_columns(df, what)
    return [torch.tensor(df[c].to_numpy(np.int64)) for c in LABEL_COLUMNS]


def top1_matches(q_feats: Tensor, g_feats: Tensor, q: pd.DataFrame, g: pd.DataFrame, protocol: str = "cc",
                 chunk: int = 1024) -> Top1:
    """Rank-1 match of every query as the evaluation ranks it: :func:`rlqlib.book.matches.rank_matches` (k = 1, no AP)
    on −(q·g) in float32, one chunk of queries at a time (ties to the lower gallery index, junk items of the
    protocol removed: docs/spec.md §8, :data:`rlqlib.engine.evaluate.JUNK_RULES`).

    Args:
        q_feats, g_feats: (Q, D) and (G, D) features (L2-normalised).
        q, g: per-image labels with ``pid, camid, clothes_id`` in feature order.
        protocol: ``general``, ``cc`` or ``sc``.
        chunk: queries per distance block.
    """
    if protocol not in E.JUNK_RULES:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {sorted(E.JUNK_RULES)}")
    if len(q) != q_feats.shape[0] or len(g) != g_feats.shape[0]:
        raise ValueError(f"{q_feats.shape[0]} query / {g_feats.shape[0]} gallery features for {len(q)} / {len(g)} "
                         "label rows; labels must be in feature order")
    _check_columns(q, "query")
    _check_columns(g, "gallery")
    qf, gf = q_feats.detach().float().cpu(), g_feats.detach().float().cpu()
    parts = [Mt.rank_matches(Mt.distances(qf[s:s + chunk], gf), q.iloc[s:s + chunk], g, protocol, k=1, chunk=chunk,
                             ap=False) for s in range(0, len(q), chunk)]
    return Top1(np.concatenate([r.index[:, 0] for r in parts]), np.concatenate([r.correct[:, 0] for r in parts]),
                np.concatenate([r.first_hit >= 0 for r in parts]))


def score(q_feats: Tensor, g_feats: Tensor, q: pd.DataFrame, g: pd.DataFrame,
          protocols: Sequence[str] = ("general", "cc")) -> dict[str, dict[str, float]]:
    """Top-1 and mAP (%) of any query subset against a gallery (:func:`rlqlib.engine.evaluate.evaluate`), with
    ``valid`` = queries that had a good match."""
    qp, qc, qcl = _label_arrays(q, "query")
    gp, gc, gcl = _label_arrays(g, "gallery")
    res = E.evaluate(q_feats, g_feats, qp, gp, qc, gc, qcl, gcl, protocols=tuple(protocols), ranks=(1,))
    return {p: {"top1": 100.0 * r["top1"], "mAP": 100.0 * r["mAP"], "valid": r["num_valid_queries"]}
            for p, r in res.items()}


def accuracy_by(t: Top1, groups: Sequence | pd.Series, order: Sequence | None = None) -> pd.DataFrame:
    """Top-1 accuracy per query group (e.g. its artifact), over the valid queries.

    Returns:
        Indexed by group: ``top1`` (%), ``se`` (%, the Agresti–Coull standard error sqrt(p̃(1 − p̃)/(n + 4)) with
        p̃ = (hits + 2)/(n + 4), which stays positive at 0 % and 100 % where the plain binomial one is 0),
        ``n`` (valid queries), ``skipped`` (queries without a good match).
    """
    groups = np.asarray(groups)
    if len(groups) != len(t.valid):
        raise ValueError(f"{len(groups)} group labels for {len(t.valid)} queries")
    df = pd.DataFrame({"group": groups, "correct": t.correct.astype(float), "valid": t.valid})
    kept = df[df["valid"]].groupby("group", sort=True)["correct"]
    out = pd.DataFrame({"top1": 100 * kept.mean(), "n": kept.size()})
    adjusted = (kept.sum() + 2) / (out["n"] + 4)  # Agresti–Coull
    out["se"] = 100 * np.sqrt(adjusted * (1 - adjusted) / (out["n"] + 4))
    out["skipped"] = (~df["valid"]).groupby(df["group"]).sum().reindex(out.index).astype(int)
    out = out[["top1", "se", "n", "skipped"]]
    return out.reindex([o for o in order if o in out.index]) if order is not None else out


def paired_difference(a: Top1, b: Top1) -> tuple[float, float, int]:
    """Top-1 of ``a`` minus ``b`` over the queries valid for both, in points, with the standard error of the
    per-query paired differences (within-test-set noise only: one model each, no seed variation)."""
    both = a.valid & b.valid
    d = 100.0 * (a.correct[both].astype(float) - b.correct[both].astype(float))  # (V,)
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return float(d.mean()) if len(d) else float("nan"), se, int(len(d))


# ------------------------------------------------------------------------------------------ gender, error cases


def f1_with_se(y_true: np.ndarray, y_pred: np.ndarray, pos_label: int, n_boot: int = 1000,
               seed: int = 0) -> tuple[float, float]:
    """F1 of class ``pos_label`` (as :func:`sklearn.metrics.f1_score`) and its bootstrap standard error
    (``n_boot`` resamples of the items, all at once)."""
    from sklearn.metrics import f1_score

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        return float("nan"), float("nan")
    f1 = float(f1_score(y_true, y_pred, pos_label=pos_label, average="binary", zero_division=0.0))
    idx = np.random.default_rng(seed).integers(0, len(y_true), size=(n_boot, len(y_true)))  # (B, n)
    t, p = y_true[idx] == pos_label, y_pred[idx] == pos_label  # (B, n) each
    tp = (t & p).sum(1)
    denom = 2 * tp + (~t & p).sum(1) + (t & ~p).sum(1)  # 2TP + FP + FN
    boot = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)  # (B,)
    return f1, float(boot.std(ddof=1))


def gender_on_errors(t: Top1, q_gender: Sequence[int], g_gender: Sequence[int], pos_label: int = 0,
                     n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Fig. 7d: on a model's valid top-1 *mispredictions*, treat the wrong match's gender as a prediction of the
    query's gender and score it.

    Args:
        t: the model's top-1 matches.
        q_gender, g_gender: per-image gender codes (SynthCC: 1 male, 0 female).
        pos_label: the class whose F1 is reported (the paper: female, its minority class).

    Returns:
        ``f1`` and ``f1_se`` (bootstrap), ``same_gender`` (% of errors whose match has the query's gender),
        ``errors`` (count), ``pos_share`` (% of those queries in ``pos_label``).
    """
    qg, gg = np.asarray(q_gender), np.asarray(g_gender)
    wrong = t.valid & ~t.correct  # (Q,)
    y_true, y_pred = qg[wrong], gg[t.index[wrong]]
    f1, se = f1_with_se(y_true, y_pred, pos_label, n_boot, seed)
    n = int(wrong.sum())
    return {"f1": f1, "f1_se": se, "same_gender": 100.0 * float((y_true == y_pred).mean()) if n else float("nan"),
            "errors": n, "pos_share": 100.0 * float((y_true == pos_label).mean()) if n else float("nan")}


ERROR_CASES = ("gender", "pose", "lq", "both_wrong")


def error_cases(q: pd.DataFrame, g: pd.DataFrame, model: Top1, ref: Top1) -> pd.DataFrame:
    """Fig. 8's cases per query, where ``model`` (RLQ) and ``ref`` (CAL) are two models' top-1 matches.

    Columns (booleans, valid queries only): ``gender`` — ref wrong with a match of the other gender, model right;
    ``pose`` — ref wrong with a match in the query's ``pose_family`` (same body pose, possibly mirrored), model
    right; ``lq`` — an LQ query whose ref match is an LQ image of another identity, model right;
    ``both_wrong`` — both wrong. Plus ``model_index``/``ref_index`` (gallery rows) for the galleries.
    """
    missing = [c for c in ("gender", "pose_family", "artifact") if c not in q or c not in g]
    if missing:
        raise KeyError(f"error cases need SynthCC metadata columns {missing} in the query and gallery labels")
    valid = model.valid & ref.valid
    m_ok = model.correct & valid
    r_wrong = valid & ~ref.correct
    rg = g.iloc[ref.index].reset_index(drop=True)  # (Q rows) ref's match per query
    return pd.DataFrame({
        "gender": r_wrong & m_ok & (rg["gender"].to_numpy() != q["gender"].to_numpy()),
        "pose": r_wrong & m_ok & (rg["pose_family"].to_numpy() == q["pose_family"].to_numpy()),
        "lq": r_wrong & m_ok & (q["artifact"].to_numpy() != "none") & (rg["artifact"].to_numpy() != "none"),
        "both_wrong": valid & ~model.correct & ~ref.correct,
        "model_index": model.index, "ref_index": ref.index,
    })


def pick(mask: Sequence[bool] | pd.Series, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` row positions where ``mask`` holds, chosen at random with ``seed``, in ascending order."""
    rows = np.flatnonzero(np.asarray(mask))
    if len(rows) <= n:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=n, replace=False))


# ------------------------------------------------------------------------------------------ pose clusters


def cluster_agreement(labels: Sequence, truth: Sequence) -> dict[str, float]:
    """How well clusters recover a ground-truth grouping: adjusted Rand index, normalised mutual information
    (scikit-learn) and purity (share of items carrying their cluster's most common true class)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels, truth = np.asarray(labels), np.asarray(truth)
    if labels.shape != truth.shape or labels.ndim != 1 or not len(labels):
        raise ValueError(f"need two equally long non-empty 1-d arrays, got {labels.shape} and {truth.shape}")
    table = pd.crosstab(labels, truth)
    return {"ari": float(adjusted_rand_score(truth, labels)),
            "nmi": float(normalized_mutual_info_score(truth, labels)),
            "purity": float(table.max(axis=1).sum() / len(labels))}
