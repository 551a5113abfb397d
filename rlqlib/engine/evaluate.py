"""Exact, fast re-id evaluation (CMC and mAP), docs/spec.md §8, of the inference features of
:mod:`rlqlib.engine.features` (docs/spec.md §1.5).

Metrics (:func:`evaluate`, :func:`evaluate_distmat`): distance = −(q·g) in float32, gallery ranked ascending,
**ties broken by gallery index** (a stable sort; the reference's unstable ``np.argsort`` is not reproducible under
exact ties: two equal distances can come out in either order). Per query, each protocol splits the same-identity gallery items into *good*
and *junk* (docs/spec.md §8); junk items are removed from the ranking, other identities are always kept:

======== ================================================ ==========================================
protocol junk (same pid and ...)                          good (same pid and ...)
======== ================================================ ==========================================
general  same camera                                      different camera
cc       same camera or same clothes                      different camera and different clothes
sc       same camera or different clothes                 different camera and same clothes
======== ================================================ ==========================================

A query without a good item is skipped and counted (``num_queries − num_valid_queries``). CMC_k is the fraction
of valid queries whose first good item ranks within k after junk removal; AP = (1/n_good) Σ_i i / rank_i.

How it is fast and still exact: every same-identity item is good or junk under every protocol, so only the
ranks of the P same-identity items of a query matter (P ≈ 20-130 against G = 7k-125k). Per chunk of queries,
each item's count of strictly closer gallery items comes either from sorting the distance *values* once and
binary-searching (backend ``sort``) or, on CPU when P is small against G (LaST), from two vectorised
comparison passes per item (backend ``count``); ``auto`` picks the cheaper. Where an item's distance ties
exactly with other items', those at a lower gallery index are counted too (float32 ties are rare but real).
Subtracting the junk items ranked before an item gives its rank among the kept items, for all protocols at
once. The (C, G) work stays on the device; the (C, P) bookkeeping runs in numpy. AP terms are summed in the
reference's float64 order (per query in rank order, then over queries in query order), so results match a
per-query loop bit for bit.

The numpy part (protocols, CPU ranking, tallies, the loop, :func:`score_files`) is
:mod:`rlqlib.engine.ranking`, which imports no torch (``rlq score`` uses it directly); this module adds the torch
front-ends: features and distance matrices on any device, the GPU ranking.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from rlqlib.data.datasets import ReIDDataset
from rlqlib.data.degrade import full_fp32_matmul
from rlqlib.engine.ranking import (BACKENDS, JUNK_RULES, PROTOCOLS, CpuRanker, EvaluationError, run,  # noqa: F401
                                   score_files)

logger = logging.getLogger(__name__)

ArrayLike = Tensor | np.ndarray | Sequence[int]


def _labels(values: ArrayLike | None) -> np.ndarray | None:
    """Labels as numpy (tensors copied to the host); checked by :func:`rlqlib.engine.ranking.labels`."""
    return values.detach().cpu().numpy() if isinstance(values, Tensor) else values


class _Ranker(CpuRanker):
    """:class:`~rlqlib.engine.ranking.CpuRanker` for torch distance chunks: CPU chunks are ranked in numpy (shared
    memory, no copy), others with ``torch.sort`` and ``torch.searchsorted`` on their device (backend ``sort``).
    """

    def __init__(self, backend: str, device: torch.device) -> None:
        if backend == "count" and device.type != "cpu":
            raise EvaluationError(f"backend 'count' runs on the CPU only, not {device}; use 'sort' or 'auto'")
        self.cpu = device.type == "cpu"
        super().__init__(backend, max(1, torch.get_num_threads()) if self.cpu else 1)

    def positions(self, dist: Tensor, items: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """(C, P) int64 positions on the host (0 = first) of ``items`` (C, P) in the rows of ``dist`` (C, G)."""
        if self.cpu:
            return super().positions(dist.numpy(), items, valid)
        num_cols = dist.shape[1]
        sorted_vals = torch.sort(dist, dim=1).values  # (C, G)
        d = dist.gather(1, torch.from_numpy(items).to(dist.device))  # (C, P)
        left = torch.searchsorted(sorted_vals, d)  # (C, P): items strictly closer
        ties = (torch.searchsorted(sorted_vals, d, right=True) - left).cpu().numpy()  # itself included
        left = left.cpu().numpy()
        rows, cols = np.nonzero(valid & (ties > 1))  # (T,), (T,): rare items with an exact tie
        if rows.size:
            r = torch.from_numpy(rows).to(dist.device)
            idx = torch.from_numpy(items[rows, cols]).to(dist.device)  # (T,)
            same = dist[r] == dist[r, idx][:, None]  # (T, G)
            earlier = torch.arange(num_cols, device=dist.device)[None, :] < idx[:, None]  # (T, G)
            left[rows, cols] += (same & earlier).sum(1).cpu().numpy()  # tied items of lower index come first
        return left


def _finite(dist: Tensor) -> bool:
    return math.isfinite(float(dist.sum())) or bool(torch.isfinite(dist).all())  # sum: the cheap test first


def _run(
    shape: tuple[int, int],
    chunk_distances: Callable[[int, int], Tensor],
    device: torch.device,
    labels: tuple[ArrayLike, ArrayLike, ArrayLike, ArrayLike, ArrayLike | None, ArrayLike | None],
    *,
    protocols: Sequence[str] | None,
    ranks: Sequence[int],
    chunk: int,
    return_cmc: bool,
    progress: bool,
    backend: str,
) -> dict[str, dict]:
    """The evaluation loop shared by :func:`evaluate` and :func:`evaluate_distmat` (:func:`rlqlib.engine.ranking.run`
    with the torch chunk ranker)."""
    ranker = _Ranker(backend, device)
    try:
        return run(shape, chunk_distances, ranker.positions, _finite, tuple(_labels(v) for v in labels),
                   protocols=protocols, ranks=ranks, chunk=chunk, return_cmc=return_cmc, progress=progress)
    finally:
        ranker.close()


def evaluate(
    q_feats: Tensor,
    g_feats: Tensor,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    q_clothes: ArrayLike | None = None,
    g_clothes: ArrayLike | None = None,
    protocols: Sequence[str] | None = None,
    ranks: Sequence[int] = (1, 5, 10, 20),
    chunk: int = 512,
    return_cmc: bool = False,
    progress: bool = False,
    backend: str = "auto",
) -> dict[str, dict]:
    """CMC and mAP of every protocol from features, on the features' device.

    Distances are −(q·g) of the features *as given* (pass L2-normalised features, as from
    :func:`rlqlib.engine.features.extract_features`), computed in float32 one chunk of queries at a time, so memory
    stays at about two (chunk, G) float32 buffers. On CUDA, TF32 is switched off for the duration.

    Args:
        q_feats, g_feats: (Q, D) and (G, D) features on one device; other float dtypes are cast to float32.
        q_pids, g_pids, q_camids, g_camids: (Q,) / (G,) integer labels (tensors, arrays or lists).
        q_clothes, g_clothes: clothes labels, needed for ``cc`` and ``sc``.
        protocols: names from :data:`PROTOCOLS`; default: all three with clothes labels, else ``general``.
        ranks: the k of each reported ``top{k}``.
        chunk: queries per distance chunk.
        return_cmc: add the full CMC curve (length G) as ``"cmc"``.
        progress: show a tqdm bar over chunks.
        backend: how same-identity items are ranked, ``auto``, ``sort`` or ``count`` (:data:`BACKENDS`);
            all give identical results.

    Returns:
        ``{protocol: {"top1", "top5", ..., "mAP", ["cmc"], "num_valid_queries", "num_queries"}}`` with
        fractions in [0, 1]; metrics are NaN when no query has a valid match.
    """
    for name, f in (("q_feats", q_feats), ("g_feats", g_feats)):
        if not isinstance(f, Tensor) or f.dim() != 2 or not f.dtype.is_floating_point:
            got = f"{f.dtype} {tuple(f.shape)}" if isinstance(f, Tensor) else type(f).__name__
            raise EvaluationError(f"{name} must be a floating (N, D) tensor, got {got}")
    if q_feats.shape[1] != g_feats.shape[1] or q_feats.device != g_feats.device:
        raise EvaluationError(f"query features {tuple(q_feats.shape)} on {q_feats.device} and gallery features "
                              f"{tuple(g_feats.shape)} on {g_feats.device} must share D and device")
    if chunk < 1:
        raise EvaluationError(f"chunk must be ≥ 1, got {chunk}")
    q, g = q_feats.detach().float(), g_feats.detach().float()
    device = q.device
    buf = torch.empty((min(chunk, q.shape[0]), g.shape[0]), dtype=torch.float32, device=device)  # (C, G)

    def distances(start: int, stop: int) -> Tensor:
        out = buf[: stop - start]
        return torch.mm(q[start:stop], g.t(), out=out).neg_()  # (C, G) = −(q·g), no transposed copy

    with full_fp32_matmul():
        return _run((q.shape[0], g.shape[0]), distances, device,
                    (q_pids, g_pids, q_camids, g_camids, q_clothes, g_clothes), protocols=protocols, ranks=ranks,
                    chunk=chunk, return_cmc=return_cmc, progress=progress, backend=backend)


def evaluate_distmat(
    distmat: Tensor | np.ndarray,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    q_clothes: ArrayLike | None = None,
    g_clothes: ArrayLike | None = None,
    protocols: Sequence[str] | None = None,
    ranks: Sequence[int] = (1, 5, 10, 20),
    chunk: int = 512,
    return_cmc: bool = False,
    progress: bool = False,
    backend: str = "auto",
) -> dict[str, dict]:
    """Like :func:`evaluate` from a precomputed (Q, G) distance matrix (smaller = closer).

    float32 and float64 matrices are ranked as given; other float dtypes are cast (exactly) to float32.
    Arguments and result as in :func:`evaluate`.
    """
    dm = torch.from_numpy(np.asarray(distmat)) if not isinstance(distmat, Tensor) else distmat.detach()
    if dm.dim() != 2 or not dm.dtype.is_floating_point:
        raise EvaluationError(f"distmat must be a floating (Q, G) matrix, got {dm.dtype} {tuple(dm.shape)}")
    if dm.dtype not in (torch.float32, torch.float64):
        dm = dm.float()

    def distances(start: int, stop: int) -> Tensor:
        return dm[start:stop].contiguous()  # (C, G)

    return _run(tuple(dm.shape), distances, dm.device, (q_pids, g_pids, q_camids, g_camids, q_clothes, g_clothes),
                protocols=protocols, ranks=ranks, chunk=chunk, return_cmc=return_cmc, progress=progress,
                backend=backend)


# ------------------------------------------------------------------------------------------------ datasets, files


def evaluate_dataset(ds: ReIDDataset, feats_by_split: Mapping[str, Tensor], **kwargs) -> dict[str, dict]:
    """Score a :class:`rlqlib.data.datasets.ReIDDataset` the way the reference does (docs/spec.md §8).

    Every key of ``ds.query_sets`` is one evaluation: its (query split, gallery split) scored with the rule
    ``ds.eval_rules[key]`` (PRCC: ``sc`` = query_same vs gallery and ``cc`` = query_diff vs gallery, both with
    the general rule). Evaluations sharing a query/gallery pair share one distance pass.

    Args:
        ds: the dataset (its ``splits``, ``query_sets`` and ``eval_rules``).
        feats_by_split: split name → (N, D) features in the order of ``ds.splits[split]``.
        **kwargs: passed to :func:`evaluate` (``ranks``, ``chunk``, ``return_cmc``, ``progress``).

    Returns:
        ``{key: metrics}`` for each key of ``ds.query_sets``, metrics as in :func:`evaluate`.
    """
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for key, pair in ds.query_sets.items():
        groups.setdefault(tuple(pair), []).append((key, ds.eval_rules.get(key, key)))
    out: dict[str, dict] = {}
    for (qs, gs), keys in groups.items():
        feats = []
        for split in (qs, gs):
            if split not in feats_by_split:
                raise EvaluationError(f"{ds.name}: no features for split {split!r}; got {sorted(feats_by_split)}")
            if feats_by_split[split].shape[0] != len(ds.splits[split]):
                raise EvaluationError(f"{ds.name}: {feats_by_split[split].shape[0]} features for split {split!r}, "
                                      f"which has {len(ds.splits[split])} images")
            feats.append(feats_by_split[split])
        lab = [np.array([(s.pid, s.camid, s.clothes_id) for s in ds.splits[split]], dtype=np.int64).reshape(-1, 3)
               for split in (qs, gs)]
        rules = tuple(dict.fromkeys(rule for _, rule in keys))
        res = evaluate(feats[0], feats[1], lab[0][:, 0], lab[1][:, 0], lab[0][:, 1], lab[1][:, 1],
                       lab[0][:, 2], lab[1][:, 2], protocols=rules, **kwargs)
        out.update({key: res[rule] for key, rule in keys})
    return {key: out[key] for key in ds.query_sets}
