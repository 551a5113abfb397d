"""rlqlib.data.sampler: the P×K identity sampler (tiny, CPU)."""

from __future__ import annotations

from collections import Counter

import pytest

from rlqlib.data.sampler import PKSampler

# identity -> number of images; with k=4, ids 3 and 5 are up-sampled; 2+1+1+1+2+1 = 8 chunks
COUNTS = {0: 10, 1: 7, 2: 4, 3: 2, 4: 9, 5: 1}
PIDS = [pid for pid, n in COUNTS.items() for _ in range(n)]


def _chunks(batch: list[int], k: int) -> list[list[int]]:
    return [batch[i : i + k] for i in range(0, len(batch), k)]


def test_sampler_batches_are_pk_and_chunks_share_one_pid():
    s = PKSampler(PIDS, p=2, k=4, seed=0)
    batches = list(s)
    assert len(batches) == len(s) == 4  # 8 chunks / p=2
    seen = Counter()
    for b in batches:
        assert len(b) == 8
        for chunk in _chunks(b, 4):
            assert len({PIDS[i] for i in chunk}) == 1
        seen.update(b)
    # ids with >= k images: each image at most once; remainders dropped and counted
    assert all(seen[i] <= 1 for i in seen if COUNTS[PIDS[i]] >= 4)
    assert s.last_stats["remainder_images_dropped"] == 2 + 3 + 0 + 1
    assert s.last_stats["upsampled_ids"] == 2


def test_sampler_upsamples_small_ids_with_replacement():
    s = PKSampler(PIDS, p=1, k=4, seed=3)
    small = {pid: {i for i, q in enumerate(PIDS) if q == pid} for pid in (3, 5)}
    found = {3: 0, 5: 0}
    for b in s:
        pid = PIDS[b[0]]
        if pid in small:
            found[pid] += 1
            assert len(b) == 4 and set(b) <= small[pid]
    assert found == {3: 1, 5: 1}  # exactly one chunk each


def test_sampler_deterministic_per_seed_and_epoch():
    a, b = PKSampler(PIDS, 2, 4, seed=7), PKSampler(PIDS, 2, 4, seed=7)
    assert list(a) == list(b)
    e0 = list(a)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) != e0
    assert list(PKSampler(PIDS, 2, 4, seed=8)) != e0


@pytest.mark.parametrize("p,world_size", [(1, 3), (2, 3), (1, 2), (2, 2)])
def test_sampler_ranks_disjoint_equal_and_len_matches(p, world_size):
    ranks = [PKSampler(PIDS, p, 4, seed=1, rank=r, world_size=world_size)
             for r in range(world_size)]
    plans = [list(s) for s in ranks]
    for s, plan in zip(ranks, plans):
        assert len(s) == len(plan) > 0
    # 8 chunks truncated to a multiple of world_size, then p chunks per batch, on every rank
    assert {len(plan) for plan in plans} == {(8 // world_size) // p}
    for i in range(world_size):
        for j in range(i + 1, world_size):
            idx_i = {x for b in plans[i] for x in b}
            idx_j = {x for b in plans[j] for x in b}
            assert not idx_i & idx_j  # no image on two ranks (up-sampled ids have one chunk)


def test_sampler_distinct_ids():
    pids = [0] * 40 + [1] * 12 + [2] * 12 + [3] * 8  # one dominant identity, 18 chunks of 4
    default_dup = 0
    for epoch in range(5):
        default = PKSampler(pids, p=3, k=4, seed=0)
        default.set_epoch(epoch)
        default_dup += sum(len({pids[c[0]] for c in _chunks(b, 4)}) < 3 for b in default)
        s = PKSampler(pids, p=3, k=4, seed=0, distinct_ids=True)
        s.set_epoch(epoch)
        batches = list(s)
        assert len(s) == len(batches) > 0
        for b in batches:
            assert len(b) == 12
            assert len({pids[c[0]] for c in _chunks(b, 4)}) == 3
            assert all(len({pids[i] for i in c}) == 1 for c in _chunks(b, 4))
        stats = s.last_stats
        dropped = stats["chunks_dropped_unpacked"] + 3 * stats["batches_dropped_world"]
        assert 3 * len(batches) + dropped == 18
    assert default_dup > 0  # the faithful default does repeat identities inside a batch


def test_sampler_rejects_bad_input():
    with pytest.raises(ValueError, match="cannot fill"):
        PKSampler([0, 0, 1], p=3, k=2, seed=0)
    with pytest.raises(ValueError, match="rank"):
        PKSampler(PIDS, 1, 4, seed=0, rank=2, world_size=2)
    with pytest.raises(ValueError, match="distinct_ids"):
        PKSampler([0] * 40, p=2, k=4, seed=0, distinct_ids=True)
