"""The exact re-id metric core in numpy only (no torch import): protocols, per-chunk ranking, CMC/mAP tallies and
:func:`score_files` (what ``rlq score`` runs).

:mod:`rlqlib.engine.evaluate` documents the method (docs/spec.md §8) and adds the torch front-ends (features and
distance matrices on any device, the GPU ranking). This module holds what needs no torch, so that scoring saved
features from the command line starts in a fraction of a second: importing torch costs ~0.8 s, more than scoring
PRCC-size features (3,543 × 3,384, 4096-d) takes. Ranking is exact either way: positions are integer counts, ties
broken by gallery index, so a numpy chunk and a torch chunk of the same distances give identical metrics.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# protocol → junk rule over the same-identity items: f(same_camera, same_clothes) → junk mask. Good = the rest.
JUNK_RULES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "general": lambda same_cam, same_clothes: same_cam,
    "cc": lambda same_cam, same_clothes: same_cam | same_clothes,
    "sc": lambda same_cam, same_clothes: same_cam | ~same_clothes,
}
PROTOCOLS = tuple(JUNK_RULES)
BACKENDS = ("auto", "sort", "count")

# Rough CPU costs in seconds, for the backend choice only (measured on a 2-core AVX-512 VM; only their ratios
# matter): sorting one value of a row of G values costs _SORT_COST·log2(G); one comparison pass over a row
# costs _CALL_COST + G·_COMPARE_COST.
_SORT_COST, _CALL_COST, _COMPARE_COST = 2e-9, 1.5e-6, 1.3e-10


class EvaluationError(ValueError):
    """Features, labels or files given to the evaluation are inconsistent."""


def labels(name: str, values: Any, n: int) -> np.ndarray | None:
    """(n,) int64 labels from an array-like (tensors: pass ``.cpu().numpy()``); None stays None."""
    if values is None:
        return None
    a = np.asarray(values)
    if a.ndim != 1 or a.shape[0] != n:
        raise EvaluationError(f"{name} must have shape ({n},) to match the features, got {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise EvaluationError(f"{name} must hold integers, got {a.dtype}")
    return a.astype(np.int64, copy=False)


class SameIdIndex:
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


class CpuRanker:
    """Stable positions of the same-identity items of a chunk in their rows' rankings, on the CPU, by an exact
    backend.

    ``sort``: sort each row's distance values once (numpy's sort on CPU threads) and binary-search the items.
    ``count``: per item, count the gallery items strictly closer and at exactly its distance with two vectorised
    comparison passes, G·P cheap comparisons instead of a G·log G sort: faster when rows hold few same-identity
    items (LaST: P ≈ 21 of G = 125,000). ``auto``: the cheaper of the two by estimated cost, chunk by chunk.
    Either way, an item tied exactly with others is placed after the tied items of lower gallery index.

    Args:
        threads: numpy work is split over this many row slices (numpy releases the GIL in its loops).
    """

    def __init__(self, backend: str, threads: int = 1) -> None:
        if backend not in BACKENDS:
            raise EvaluationError(f"unknown ranking backend {backend!r}; choose from {', '.join(BACKENDS)}")
        self.backend, self.threads = backend, max(1, threads)
        self.pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        self.buf: np.ndarray | None = None  # reused (C, G) buffer of the sort

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def _over_rows(self, fn: Callable[[slice], None], n: int) -> None:
        """fn(rows) over contiguous row slices, one per thread."""
        bounds = np.linspace(0, n, min(self.threads, n) + 1).astype(int)
        slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        if self.pool is None or len(slices) == 1:
            fn(slices[0])
        else:
            list(self.pool.map(fn, slices))

    def choose(self, num_rows: int, num_cols: int, valid: np.ndarray) -> str:
        """The backend for a chunk: ``sort`` or ``count`` (``auto``: the cheaper by estimated cost)."""
        if self.backend != "auto":
            return self.backend
        count_cost = int(valid.sum()) * 2 * (_CALL_COST + num_cols * _COMPARE_COST)
        sort_cost = num_rows * num_cols * _SORT_COST * math.log2(max(num_cols, 2))
        return "count" if count_cost < sort_cost else "sort"

    def positions(self, dist: np.ndarray, items: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """(C, P) int64 positions (0 = first) of ``items`` (C, P) in the rows of ``dist`` (C, G); padding
        entries (``valid`` False) are meaningless."""
        if self.choose(*dist.shape, valid) == "sort":
            left, ties = self._by_sort(dist, items)
        else:
            left, ties = self._by_count(dist, items, valid)
        rows, cols = np.nonzero(valid & (ties > 1))  # (T,), (T,): rare items with an exact tie
        for r, c in zip(rows.tolist(), cols.tolist()):
            idx = items[r, c]
            left[r, c] += np.count_nonzero(dist[r, :idx] == dist[r, idx])  # tied items of lower index first
        return left

    def _by_sort(self, dist: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.buf is None or self.buf.shape[0] < dist.shape[0] or self.buf.dtype != dist.dtype:
            self.buf = np.empty(dist.shape, dtype=dist.dtype)
        arr = self.buf[: dist.shape[0]]
        np.copyto(arr, dist)
        d = np.take_along_axis(dist, items, 1)  # (C, P)
        left, ties = np.empty(items.shape, np.int64), np.empty(items.shape, np.int64)

        def work(rows: slice) -> None:
            arr[rows].sort(axis=1)
            for r in range(rows.start, rows.stop):
                left[r] = np.searchsorted(arr[r], d[r])  # items strictly closer
                ties[r] = np.searchsorted(arr[r], d[r], side="right") - left[r]  # at that distance, itself included

        self._over_rows(work, arr.shape[0])
        return left, ties

    def _by_count(self, dist: np.ndarray, items: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = np.take_along_axis(dist, items, 1)  # (C, P)
        left, ties = np.zeros(items.shape, np.int64), np.zeros(items.shape, np.int64)  # (C, P) each

        def work(rows: slice) -> None:
            for r in range(rows.start, rows.stop):
                for k in np.flatnonzero(valid[r]):
                    left[r, k] = np.count_nonzero(dist[r] < d[r, k])
                    ties[r, k] = np.count_nonzero(dist[r] == d[r, k])

        self._over_rows(work, dist.shape[0])
        return left, ties


class Tally:
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


def check_protocols(protocols: Sequence[str] | str | None, ranks: Sequence[int], has_clothes: bool) -> tuple[str, ...]:
    """The protocols to score (default: all three with clothes labels, else ``general``), checked."""
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


def run(
    shape: tuple[int, int],
    chunk_distances: Callable[[int, int], Any],
    positions: Callable[[Any, np.ndarray, np.ndarray], np.ndarray],
    finite: Callable[[Any], bool],
    label_arrays: Sequence[np.ndarray | None],
    *,
    protocols: Sequence[str] | None,
    ranks: Sequence[int],
    chunk: int,
    return_cmc: bool,
    progress: bool,
) -> dict[str, dict]:
    """The evaluation loop over chunks of queries, for any array type.

    Args:
        shape: (Q, G).
        chunk_distances: (start, stop) → the (C, G) distances of those queries (numpy or torch).
        positions: (distances, items, valid) → (C, P) int64 positions of the items in their rows.
        finite: distances → whether all are finite.
        label_arrays: (q_pids, g_pids, q_camids, g_camids, q_clothes, g_clothes) as numpy (clothes may be None).
    """
    num_queries, num_gallery = shape
    if num_queries < 1 or num_gallery < 1:
        raise EvaluationError(f"need at least one query and one gallery item, got {num_queries} × {num_gallery}")
    if chunk < 1:
        raise EvaluationError(f"chunk must be ≥ 1, got {chunk}")
    names = ("q_pids", "g_pids", "q_camids", "g_camids", "q_clothes", "g_clothes")
    sizes = (num_queries, num_gallery) * 3
    qp, gp, qc, gc, qcl, gcl = (labels(n, v, s) for n, v, s in zip(names, label_arrays, sizes))
    protocols = check_protocols(protocols, ranks, qcl is not None and gcl is not None)
    if qcl is None or gcl is None:
        qcl, gcl = np.zeros_like(qp), np.zeros_like(gp)
    index = SameIdIndex(gp)
    tallies = {p: Tally() for p in protocols}
    rows = min(chunk, num_queries)
    starts = range(0, num_queries, rows)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="evaluate", unit="chunk", leave=False)
    # Big (C, G) work stays where the distances are; the (C, P) bookkeeping runs in numpy on the host.
    for start in starts:
        stop = min(start + rows, num_queries)
        dist = chunk_distances(start, stop)  # (C, G)
        if not finite(dist):
            raise EvaluationError(f"non-finite distances for queries {start}..{stop - 1}; check the features "
                                  "(NaN/inf) of these queries and of the gallery")
        items, valid = index.items(qp[start:stop])  # (C, P), (C, P)
        pos = positions(dist, items, valid)  # (C, P)
        order = np.argsort(np.where(valid, pos, num_gallery), axis=1, kind="stable")  # ranking order
        pos, items, valid = (np.take_along_axis(a, order, 1) for a in (pos, items, valid))
        same_cam = gc[items] == qc[start:stop, None]  # (C, P)
        same_clothes = gcl[items] == qcl[start:stop, None]  # (C, P)
        for name in protocols:
            junk = JUNK_RULES[name](same_cam, same_clothes) & valid  # (C, P)
            rank = pos - (np.cumsum(junk, axis=1) - junk)  # (C, P): rank among the kept items
            tallies[name].add(rank, valid & ~junk)
    results = {p: t.result(num_gallery, ranks, return_cmc) for p, t in tallies.items()}
    for p, r in results.items():
        skipped = r["num_queries"] - r["num_valid_queries"]
        if skipped:
            logger.info("%s: %d of %d queries have no valid match and were skipped", p, skipped, r["num_queries"])
    return results


def finite_numpy(dist: np.ndarray) -> bool:
    """All distances finite (a cheap sum first; the full check only when the sum is not finite)."""
    return math.isfinite(float(dist.sum(dtype=np.float64))) or bool(np.isfinite(dist).all())


# ------------------------------------------------------------------------------------------------ files


def load_npz(path: str | Path, need_clothes: bool) -> dict[str, np.ndarray]:
    """The arrays of a saved-features ``.npz`` (``feats`` (N, D), ``pids``, ``camids``[, ``clothes_ids``]), checked;
    a warning is logged when the features are not L2-normalised."""
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
    norms = np.sqrt(np.einsum("nd,nd->n", feats, feats, dtype=np.float64))  # (N,), no float64 copy of feats
    if feats.shape[0] and np.abs(norms - 1).max() > 1e-3:
        logger.warning("%s: features are not L2-normalised (norms %.3g..%.3g); ranking by their raw dot product",
                       path, norms.min(), norms.max())
    return arrays


def score_files(query_npz: str | Path, gallery_npz: str | Path, protocol: str = "general",
                chunk: int = 512, threads: int | None = None) -> dict:
    """Score saved features: top-1, top-5, mAP of one protocol, as JSON-ready fractions (numpy on the CPU).

    Each ``.npz`` holds ``feats`` (N, D), ``pids``, ``camids`` and ``clothes_ids`` (N,) (``clothes_ids`` only
    needed for ``cc``/``sc``). Features are used **as given**, in float32: distance = −dot product, which is the
    cosine ranking when they are L2-normalised (as :func:`rlqlib.engine.features.extract_features` writes them); a
    warning is logged if not.

    Args:
        threads: ranking threads (default: the CPU count, at most 8); the matrix products use numpy's BLAS.

    Returns:
        ``{"protocol", "top1", "top5", "mAP", "num_valid_queries", "num_queries"}``; metrics are ``None`` when
        no query has a valid match.
    """
    if protocol not in JUNK_RULES:
        raise EvaluationError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    need = protocol != "general"
    q, g = load_npz(query_npz, need), load_npz(gallery_npz, need)
    qf, gf = (np.ascontiguousarray(a["feats"], dtype=np.float32) for a in (q, g))
    if qf.shape[1] != gf.shape[1]:
        raise EvaluationError(f"query features are {qf.shape[1]}-d, gallery features {gf.shape[1]}-d")
    rows = min(chunk, qf.shape[0])
    buf = np.empty((rows, gf.shape[0]), dtype=np.float32)  # (C, G)

    def distances(start: int, stop: int) -> np.ndarray:
        out = buf[: stop - start]
        np.matmul(qf[start:stop], gf.T, out=out)
        return np.negative(out, out=out)  # (C, G) = −(q·g)

    ranker = CpuRanker("auto", threads or min(8, os.cpu_count() or 1))
    try:
        res = run(qf.shape[:1] + gf.shape[:1], distances, ranker.positions, finite_numpy,
                  (q["pids"], g["pids"], q["camids"], g["camids"], q.get("clothes_ids") if need else None,
                   g.get("clothes_ids") if need else None), protocols=(protocol,), ranks=(1, 5), chunk=chunk,
                  return_cmc=False, progress=False)[protocol]
    finally:
        ranker.close()
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in res.items()}
    return {"protocol": protocol, **clean}
