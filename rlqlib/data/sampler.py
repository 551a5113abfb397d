"""The P×K identity sampler (docs/spec.md §3.4): which dataset indices form each training batch, on every rank."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np

log = logging.getLogger(__name__)


class PKSampler:
    """Identity-balanced batches of ``p*k`` dataset indices (docs/spec.md §3.4).

    Per epoch, with a numpy ``Generator`` seeded with ``seed + epoch`` (so every rank computes the
    same global plan): identities are visited in sorted order; each one's indices are shuffled and
    cut into chunks of ``k`` (an identity with fewer than ``k`` images gives one chunk drawn with
    replacement; remainders are dropped); then the chunks are shuffled.

    * ``distinct_ids=False`` (default, as the reference): the chunks are truncated to a multiple of
      ``world_size``, dealt round-robin to the ranks, and each rank groups its chunks ``p`` at a
      time (drop_last). A batch may then hold two chunks of one identity, as in the reference.
    * ``distinct_ids=True``: the shuffled chunks are packed first-fit into batches of ``p``
      *distinct* identities (each chunk joins the oldest open batch that lacks its identity);
      complete batches are truncated to a multiple of ``world_size`` and dealt round-robin.
      Chunks left in incomplete batches are dropped, so the batch count can vary by epoch.

    Whatever is dropped by design is counted in :attr:`last_stats` for the last planned epoch
    (``upsampled_ids``, ``remainder_images_dropped``, ``chunks_dropped_*``/``batches_dropped_*``),
    and logged at debug level.

    Args:
        pids: identity of every dataset index.
        p: chunks (identities) per batch.
        k: images per chunk.
        seed: base seed, shared by all ranks.
        rank, world_size: this process's slot among the data-parallel processes.
        distinct_ids: guarantee ``p`` distinct identities per batch (see above).
    """

    def __init__(
        self,
        pids: Sequence[int],
        p: int,
        k: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        distinct_ids: bool = False,
    ) -> None:
        pid_arr = np.asarray(pids)
        if pid_arr.ndim != 1 or pid_arr.size == 0 or not np.issubdtype(pid_arr.dtype, np.integer):
            raise ValueError(f"pids must be a non-empty 1-D sequence of ints, got {pid_arr.shape}")
        if p < 1 or k < 1:
            raise ValueError(f"p and k must be >= 1, got p={p}, k={k}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        self.p, self.k, self.seed, self.rank = int(p), int(k), int(seed), int(rank)
        self.world_size, self.distinct_ids = int(world_size), bool(distinct_ids)
        self.num_indices = pid_arr.size
        self.epoch = 0
        self.last_stats: dict[str, int] = {}
        order = np.argsort(pid_arr, kind="stable")
        uniq, starts = np.unique(pid_arr[order], return_index=True)
        self._groups = np.split(order, starts[1:])  # indices of each identity, sorted pids
        n_chunks = sum(max(1, len(g) // self.k) for g in self._groups)
        if n_chunks // self.world_size < self.p:
            raise ValueError(
                f"PKSampler: {n_chunks} chunks of k={k} over {world_size} rank(s) cannot fill "
                f"one batch of p={p} chunks; lower p or k"
            )
        if self.distinct_ids and len(uniq) < self.p:
            raise ValueError(f"distinct_ids=True needs >= p={p} identities, got {len(uniq)}")
        self._cache: tuple[int, list[np.ndarray]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose shuffle the next iteration uses (seed ``seed + epoch``)."""
        self.epoch = int(epoch)

    def _chunks(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        chunks, owners, remainder, upsampled = [], [], 0, 0
        for owner, idxs in enumerate(self._groups):
            if len(idxs) < self.k:
                upsampled += 1
                chunk = rng.choice(idxs, size=(1, self.k), replace=True)
            else:
                n = len(idxs) // self.k
                remainder += len(idxs) - n * self.k
                chunk = rng.permutation(idxs)[: n * self.k].reshape(n, self.k)
            chunks.append(chunk)
            owners.append(np.full(len(chunk), owner))
        perm = rng.permutation(sum(len(c) for c in chunks))
        self.last_stats = {"upsampled_ids": upsampled, "remainder_images_dropped": remainder}
        return np.concatenate(chunks)[perm], np.concatenate(owners)[perm]  # (n,k), (n,)

    def _pack_distinct(self, owners: np.ndarray) -> list[list[int]]:
        open_batches: list[tuple[set[int], list[int]]] = []
        full: list[list[int]] = []
        for ci, owner in enumerate(owners.tolist()):
            target = next((b for b in open_batches if owner not in b[0]), None)
            if target is None:
                target = (set(), [])
                open_batches.append(target)
            target[0].add(owner)
            target[1].append(ci)
            if len(target[1]) == self.p:
                full.append(target[1])
                open_batches.remove(target)
        self.last_stats["chunks_dropped_unpacked"] = sum(len(b[1]) for b in open_batches)
        return full

    def _plan(self) -> list[np.ndarray]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        chunks, owners = self._chunks(np.random.default_rng(self.seed + self.epoch))
        ws, stats = self.world_size, self.last_stats
        if self.distinct_ids:
            full = self._pack_distinct(owners)
            keep = len(full) // ws * ws
            stats["batches_dropped_world"] = len(full) - keep
            plan = [chunks[members].reshape(-1) for members in full[self.rank : keep : ws]]
        else:
            keep = len(chunks) // ws * ws
            mine = chunks[self.rank : keep : ws]  # (m,k)
            n = len(mine) // self.p
            stats["chunks_dropped_world"] = len(chunks) - keep
            stats["chunks_dropped_last_batch"] = len(mine) - n * self.p
            plan = list(mine[: n * self.p].reshape(n, self.p * self.k))
        log.debug("PKSampler epoch %d rank %d: %d batches, %s", self.epoch, self.rank, len(plan),
                  stats)
        self._cache = (self.epoch, plan)
        return plan

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._plan():
            yield batch.tolist()

    def __len__(self) -> int:
        return len(self._plan())
