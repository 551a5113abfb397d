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
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rlqlib.data.datasets import ReIDDataset
from rlqlib.data.degrade import full_fp32_matmul

logger = logging.getLogger(__name__)

ArrayLike = Tensor | np.ndarray | Sequence[int]

# protocol → junk rule over the same-identity items: f(same_camera, same_clothes) → junk mask. Good = the rest.
JUNK_RULES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "general": lambda same_cam, same_clothes: same_cam,
    "cc": lambda same_cam, same_clothes: same_cam | same_clothes,
    "sc": lambda same_cam, same_clothes: same_cam | ~same_clothes,
}
PROTOCOLS = tuple(JUNK_RULES)


class EvaluationError(ValueError):
    """Features, labels or files given to the evaluation are inconsistent."""


# ------------------------------------------------------------------------------------------------ labels


def _labels(name: str, values: ArrayLike | None, n: int) -> np.ndarray | None:
    if values is None:
        return None
    a = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    if a.ndim != 1 or a.shape[0] != n:
        raise EvaluationError(f"{name} must have shape ({n},) to match the features, got {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise EvaluationError(f"{name} must hold integers, got {a.dtype}")
    return a.astype(np.int64, copy=False)


class _SameIdIndex:
    """Gallery items grouped by identity (CSR), ascending gallery index within a group."""

    def __init__(self, g_pids: np.ndarray) -> None:
        self.order = np.argsort(g_pids, kind="stable")  # (G,)
        self.uniq, self.starts, self.counts = np.unique(g_pids[self.order], return_index=True,
                                                        return_counts=True)  # (U,) each

    def items(self, q_pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Same-identity gallery indices (C, P) of each query, padded with 0, and their validity mask."""
        slot = np.searchsorted(self.uniq, q_pids).clip(max=self.uniq.size - 1)  # (C,)
        count = np.where(self.uniq[slot] == q_pids, self.counts[slot], 0)  # (C,)
        offs = np.arange(max(int(count.max()), 1))  # (P,)
        valid = offs[None, :] < count[:, None]  # (C, P)
        return self.order[np.where(valid, self.starts[slot][:, None] + offs[None, :], 0)], valid


# ------------------------------------------------------------------------------------------------ ranking


BACKENDS = ("auto", "sort", "count")

# Rough CPU costs in seconds, for the backend choice only (measured on a 2-core AVX-512 VM; only their ratios
# matter): sorting one value of a row of G values costs _SORT_COST·log2(G); one comparison pass over a row
# costs _CALL_COST + G·_COMPARE_COST.
_SORT_COST, _CALL_COST, _COMPARE_COST = 2e-9, 1.5e-6, 1.3e-10


class _Ranker:
    """Stable positions of the same-identity items of a chunk in their rows' rankings, by an exact backend.

    ``sort``: sort each row's distance values once (numpy's sort on CPU threads, 3x torch's CPU sort;
    ``torch.sort`` elsewhere) and binary-search the items. ``count`` (CPU only): per item, count the gallery
    items strictly closer and at exactly its distance with two vectorised comparison passes, G·P cheap
    comparisons instead of a G·log G sort: faster when rows hold few same-identity items (LaST: P ≈ 21 of
    G = 125,000). ``auto``: the cheaper of the two by estimated cost, chunk by chunk (``sort`` off the CPU).
    Either way, an item tied exactly with others is placed after the tied items of lower gallery index.
    """

    def __init__(self, backend: str, device: torch.device) -> None:
        if backend not in BACKENDS:
            raise EvaluationError(f"unknown ranking backend {backend!r}; choose from {', '.join(BACKENDS)}")
        if backend == "count" and device.type != "cpu":
            raise EvaluationError(f"backend 'count' runs on the CPU only, not {device}; use 'sort' or 'auto'")
        self.backend, self.cpu = backend, device.type == "cpu"
        self.threads = max(1, torch.get_num_threads()) if self.cpu else 1
        self.pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        self.buf: np.ndarray | None = None  # reused (C, G) buffer of the CPU sort

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def _over_rows(self, fn: Callable[[slice], None], n: int) -> None:
        """fn(rows) over contiguous row slices, one per thread (numpy releases the GIL in its loops)."""
        bounds = np.linspace(0, n, min(self.threads, n) + 1).astype(int)
        slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        if self.pool is None or len(slices) == 1:
            fn(slices[0])
        else:
            list(self.pool.map(fn, slices))

    def positions(self, dist: Tensor, items: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """(C, P) int64 positions on the host (0 = first) of ``items`` (C, P) in the rows of ``dist`` (C, G).

        Entries where ``valid`` is False (padding) are meaningless.
        """
        num_rows, num_cols = dist.shape
        backend = self.backend
        if backend == "auto":
            count_cost = int(valid.sum()) * 2 * (_CALL_COST + num_cols * _COMPARE_COST)
            sort_cost = num_rows * num_cols * _SORT_COST * math.log2(max(num_cols, 2))
            backend = "count" if self.cpu and count_cost < sort_cost else "sort"
        left, ties = self._by_sort(dist, items) if backend == "sort" else self._by_count(dist, items, valid)
        rows, cols = np.nonzero(valid & (ties > 1))  # (T,), (T,): rare items with an exact tie
        if rows.size:
            r = torch.from_numpy(rows).to(dist.device)
            idx = torch.from_numpy(items[rows, cols]).to(dist.device)  # (T,)
            same = dist[r] == dist[r, idx][:, None]  # (T, G)
            earlier = torch.arange(num_cols, device=dist.device)[None, :] < idx[:, None]  # (T, G)
            left[rows, cols] += (same & earlier).sum(1).cpu().numpy()  # tied items of lower index come first
        return left

    def _by_sort(self, dist: Tensor, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.cpu:
            if self.buf is None or self.buf.shape[0] < dist.shape[0]:
                self.buf = np.empty(dist.shape, dtype=dist.numpy().dtype)
            arr = self.buf[: dist.shape[0]]
            np.copyto(arr, dist.numpy())
            self._over_rows(lambda s: arr[s].sort(axis=1), arr.shape[0])
            sorted_vals = torch.from_numpy(arr)  # (C, G)
        else:
            sorted_vals = torch.sort(dist, dim=1).values  # (C, G)
        d = dist.gather(1, torch.from_numpy(items).to(dist.device))  # (C, P)
        left = torch.searchsorted(sorted_vals, d)  # (C, P): items strictly closer
        ties = torch.searchsorted(sorted_vals, d, right=True) - left  # (C, P): at that distance, itself included
        return left.cpu().numpy(), ties.cpu().numpy()

    def _by_count(self, dist: Tensor, items: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        arr = dist.numpy()  # (C, G)
        d = np.take_along_axis(arr, items, 1)  # (C, P)
        left, ties = np.zeros(items.shape, np.int64), np.zeros(items.shape, np.int64)  # (C, P) each

        def work(rows: slice) -> None:
            for r in range(rows.start, rows.stop):
                for k in np.flatnonzero(valid[r]):
                    left[r, k] = np.count_nonzero(arr[r] < d[r, k])
                    ties[r, k] = np.count_nonzero(arr[r] == d[r, k])

        self._over_rows(work, arr.shape[0])
        return left, ties


class _Tally:
    """Per-protocol accumulation of first-good ranks and APs, in query order."""

    def __init__(self) -> None:
        self.first: list[np.ndarray] = []
        self.ap: list[np.ndarray] = []
        self.num_queries = 0

    def add(self, rank: np.ndarray, good: np.ndarray) -> None:
        """rank (C, P) rank of each item among the kept items; good (C, P); items in ranking order."""
        self.num_queries += rank.shape[0]
        ngood = good.sum(1)  # (C,)
        ok = ngood > 0
        rank, good, ngood = rank[ok], good[ok], ngood[ok]
        self.first.append(rank[np.arange(rank.shape[0]), good.argmax(1)])
        k = np.cumsum(good, axis=1)  # (V, P): at the i-th good item (from 0), i + 1
        terms = np.zeros(rank.shape)  # (V, P) float64; zeros elsewhere leave the sums unchanged
        recall = np.broadcast_to(1.0 / ngood[:, None], rank.shape)
        terms[good] = recall[good] * (k[good] / (rank[good] + 1))  # (1/n_good)·(i+1)/(r+1), the reference's terms
        self.ap.append(np.cumsum(terms, axis=1)[:, -1])  # summed left to right, as the reference

    def result(self, num_gallery: int, ranks: Sequence[int], return_cmc: bool) -> dict:
        first = np.concatenate(self.first) if self.first else np.zeros(0, np.int64)
        nvalid = int(first.size)
        out: dict = {}
        if nvalid:
            hits = np.cumsum(np.bincount(first, minlength=num_gallery))  # (G,)
            cmc = hits / nvalid
            ap = np.concatenate(self.ap)
            mean_ap = float(np.cumsum(ap)[-1] / nvalid)  # sequential sum over queries, as the reference
        else:
            cmc, mean_ap = np.full(num_gallery, math.nan), math.nan
        for k in ranks:
            out[f"top{k}"] = float(cmc[min(k, num_gallery) - 1])
        out["mAP"] = mean_ap
        if return_cmc:
            out["cmc"] = cmc.tolist()
        out["num_valid_queries"] = nvalid
        out["num_queries"] = self.num_queries
        return out


def _check_protocols(protocols: Sequence[str] | None, ranks: Sequence[int], has_clothes: bool) -> tuple[str, ...]:
    if protocols is None:
        protocols = PROTOCOLS if has_clothes else ("general",)
    protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
    unknown = [p for p in protocols if p not in JUNK_RULES]
    if unknown or not protocols:
        raise EvaluationError(f"unknown protocols {unknown or '(none given)'}; choose from {', '.join(PROTOCOLS)}")
    if not has_clothes and any(p != "general" for p in protocols):
        raise EvaluationError(f"protocols {protocols} need q_clothes and g_clothes; pass them or use ('general',)")
    if any(int(k) < 1 for k in ranks):
        raise EvaluationError(f"ranks must be ≥ 1, got {tuple(ranks)}")
    return protocols


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
    """The evaluation loop shared by :func:`evaluate` and :func:`evaluate_distmat`."""
    num_queries, num_gallery = shape
    if num_queries < 1 or num_gallery < 1:
        raise EvaluationError(f"need at least one query and one gallery item, got {num_queries} × {num_gallery}")
    if chunk < 1:
        raise EvaluationError(f"chunk must be ≥ 1, got {chunk}")
    names = ("q_pids", "g_pids", "q_camids", "g_camids", "q_clothes", "g_clothes")
    sizes = (num_queries, num_gallery) * 3
    qp, gp, qc, gc, qcl, gcl = (_labels(n, v, s) for n, v, s in zip(names, labels, sizes))
    protocols = _check_protocols(protocols, ranks, qcl is not None and gcl is not None)
    if qcl is None or gcl is None:
        qcl, gcl = np.zeros_like(qp), np.zeros_like(gp)
    index = _SameIdIndex(gp)
    tallies = {p: _Tally() for p in protocols}
    rows = min(chunk, num_queries)
    ranker = _Ranker(backend, device)
    from tqdm.auto import tqdm

    # Big (C, G) work stays on the device; the (C, P) bookkeeping runs in numpy on the host.
    try:
        for start in tqdm(range(0, num_queries, rows), desc="evaluate", unit="chunk", disable=not progress,
                          leave=False):
            stop = min(start + rows, num_queries)
            dist = chunk_distances(start, stop)  # (C, G)
            if not math.isfinite(float(dist.sum())) and not bool(torch.isfinite(dist).all()):  # sum: cheap test
                raise EvaluationError(f"non-finite distances for queries {start}..{stop - 1}; check the features "
                                      "(NaN/inf) of these queries and of the gallery")
            items, valid = index.items(qp[start:stop])  # (C, P), (C, P)
            pos = ranker.positions(dist, items, valid)  # (C, P)
            order = np.argsort(np.where(valid, pos, num_gallery), axis=1, kind="stable")  # ranking order
            pos, items, valid = (np.take_along_axis(a, order, 1) for a in (pos, items, valid))
            same_cam = gc[items] == qc[start:stop, None]  # (C, P)
            same_clothes = gcl[items] == qcl[start:stop, None]  # (C, P)
            for name in protocols:
                junk = JUNK_RULES[name](same_cam, same_clothes) & valid  # (C, P)
                rank = pos - (np.cumsum(junk, axis=1) - junk)  # (C, P): rank among the kept items
                tallies[name].add(rank, valid & ~junk)
    finally:
        ranker.close()
    results = {p: t.result(num_gallery, ranks, return_cmc) for p, t in tallies.items()}
    for p, r in results.items():
        skipped = r["num_queries"] - r["num_valid_queries"]
        if skipped:
            logger.info("%s: %d of %d queries have no valid match and were skipped", p, skipped, r["num_queries"])
    return results


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


def _load_npz(path: str | Path, need_clothes: bool) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"feature file {path} does not exist")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"cannot read feature file {path} ({exc}); write it with numpy.savez") from exc
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise EvaluationError(f"{path} is a single array, not an .npz archive; write it with numpy.savez(path, "
                              "feats=..., pids=..., camids=..., clothes_ids=...)")
    with z:
        arrays = {k: z[k] for k in z.files}
    needed = ("feats", "pids", "camids") + (("clothes_ids",) if need_clothes else ())
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise EvaluationError(f"{path}: missing arrays {missing}; expected feats (N,D), pids, camids, clothes_ids "
                              f"(N,) (found {sorted(arrays)})")
    feats = arrays["feats"]
    if feats.ndim != 2 or not np.issubdtype(feats.dtype, np.floating):
        raise EvaluationError(f"{path}: feats must be a floating (N, D) array, got {feats.dtype} {feats.shape}")
    norms = np.linalg.norm(feats.astype(np.float64), axis=1)
    if feats.shape[0] and np.abs(norms - 1).max() > 1e-3:
        logger.warning("%s: features are not L2-normalised (norms %.3g..%.3g); ranking by their raw dot product",
                       path, norms.min(), norms.max())
    return arrays


def score_files(query_npz: str | Path, gallery_npz: str | Path, protocol: str = "general") -> dict:
    """Score saved features: top-1, top-5, mAP of one protocol, as JSON-ready fractions.

    Each ``.npz`` holds ``feats`` (N, D), ``pids``, ``camids`` and ``clothes_ids`` (N,) (``clothes_ids`` only
    needed for ``cc``/``sc``). Features are used **as given**: distance = −dot product, which is the cosine
    ranking when they are L2-normalised (as :func:`rlqlib.engine.features.extract_features` writes them); a
    warning is logged if not.

    Returns:
        ``{"protocol", "top1", "top5", "mAP", "num_valid_queries", "num_queries"}``; metrics are ``None`` when
        no query has a valid match.
    """
    if protocol not in JUNK_RULES:
        raise EvaluationError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    need = protocol != "general"
    q, g = _load_npz(query_npz, need), _load_npz(gallery_npz, need)
    res = evaluate(torch.from_numpy(q["feats"]).float(), torch.from_numpy(g["feats"]).float(), q["pids"], g["pids"],
                   q["camids"], g["camids"], q.get("clothes_ids") if need else None,
                   g.get("clothes_ids") if need else None, protocols=(protocol,), ranks=(1, 5))[protocol]
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in res.items()}
    return {"protocol": protocol, **clean}
