"""Evaluation against a per-query loop of the reference protocol (docs/spec.md §8) and hand-computed cases.

``reference_eval`` below is the straightforward implementation: one stable argsort per query, junk removed with
``np.isin``, CMC and AP accumulated in float64 in the same order as the reference's ``evaluate`` /
``evaluate_with_clothes``. The fast implementation must match it exactly (full CMC and mAP).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rlqlib.engine import evaluate as evaluate_module
from rlqlib.data.datasets import ReIDDataset, Sample
from rlqlib.engine.evaluate import (
    BACKENDS,
    PROTOCOLS,
    EvaluationError,
    evaluate,
    evaluate_dataset,
    evaluate_distmat,
    score_files,
)


def reference_eval(distmat, q_pids, g_pids, q_cams, g_cams, q_clo, g_clo, protocol):
    """(CMC of length G, mAP, number of valid queries) by an explicit loop over queries."""
    num_q, num_g = distmat.shape
    cmc_sum, ap_sum, valid = np.zeros(num_g), 0, 0
    for i in range(num_q):
        order = np.argsort(distmat[i], kind="stable")
        same_id = g_pids == q_pids[i]
        same_cam = g_cams == q_cams[i]
        same_clo = g_clo == q_clo[i]
        if protocol == "general":
            good, junk = same_id & ~same_cam, same_id & same_cam
        elif protocol == "cc":
            good, junk = same_id & ~same_cam & ~same_clo, same_id & (same_cam | same_clo)
        else:
            good, junk = same_id & ~same_cam & same_clo, same_id & (same_cam | ~same_clo)
        good_idx, junk_idx = np.flatnonzero(good), np.flatnonzero(junk)
        if good_idx.size == 0:
            continue
        valid += 1
        kept = order[~np.isin(order, junk_idx)]
        rows_good = np.flatnonzero(np.isin(kept, good_idx))
        cmc = np.zeros(num_g)
        cmc[rows_good[0]:] = 1.0
        ap = 0
        for j in range(len(rows_good)):
            ap = ap + (1.0 / len(good_idx)) * ((j + 1) * 1.0 / (rows_good[j] + 1))
        cmc_sum = cmc_sum + cmc
        ap_sum += ap
    return cmc_sum / valid, ap_sum / valid, valid


def random_case(seed, num_q, num_g, levels=None, num_ids=6, num_cams=3, num_clothes=3):
    """Random labels and a distance matrix; ``levels`` quantises distances so that exact ties abound."""
    rng = np.random.default_rng(seed)
    dist = rng.random((num_q, num_g)).astype(np.float32)
    if levels:
        dist = (np.floor(dist * levels) / levels).astype(np.float32)
    labels = [rng.integers(0, n, size) for n in (num_ids, num_cams, num_clothes) for size in (num_q, num_g)]
    return dist, labels  # labels: q_pids, g_pids, q_cams, g_cams, q_clo, g_clo


def assert_matches_reference(res, dist, labels, protocol):
    cmc, mean_ap, valid = reference_eval(dist, *labels, protocol)
    r = res[protocol]
    assert r["num_valid_queries"] == valid
    assert r["num_queries"] == dist.shape[0]
    assert r["cmc"] == cmc.tolist()  # exact
    tops = [key for key in r if key.startswith("top")]
    assert "top1" in tops
    for key in tops:
        assert r[key] == cmc[min(int(key[3:]), dist.shape[1]) - 1]
    assert r["mAP"] == mean_ap  # same float64 summation order


# ------------------------------------------------------------------------------------------------ hand cases


def hand_case():
    """One query (pid 0, cam 0, clothes 0) against 6 gallery items ranked by distance 0.1..0.6.

    gallery (rank order): g0 pid1 | g1 pid0 cam0 clo1 | g2 pid0 cam1 clo0 | g3 pid2 | g4 pid0 cam2 clo1 |
    g5 pid0 cam1 clo1.
    """
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]], np.float32)
    labels = (np.array([0]), np.array([1, 0, 0, 2, 0, 0]), np.array([0]), np.array([0, 0, 1, 1, 2, 1]),
              np.array([0]), np.array([5, 1, 0, 5, 1, 1]))
    return dist, labels


def test_hand_computed_general_cc_sc():
    dist, labels = hand_case()
    res = evaluate_distmat(dist, *labels, ranks=(1, 2, 3), return_cmc=True)
    # general: junk g1 (same cam); kept order g0 g2 g3 g4 g5; good g2,g4,g5 at ranks 1,3,4 (0-based).
    # AP = 1/3 (1/2 + 2/4 + 3/5) = 0.5333..., first good rank 1.
    assert res["general"]["cmc"] == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert res["general"]["mAP"] == pytest.approx((1 / 2 + 2 / 4 + 3 / 5) / 3, abs=1e-15)
    # cc: junk g1 (cam), g2 (clothes); kept g0 g3 g4 g5; good g4, g5 at ranks 2, 3. AP = 1/2 (1/3 + 2/4).
    assert res["cc"]["cmc"] == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    assert res["cc"]["top1"] == 0.0 and res["cc"]["top3"] == 1.0
    assert res["cc"]["mAP"] == pytest.approx((1 / 3 + 2 / 4) / 2, abs=1e-15)
    # sc: junk g1 (cam), g4, g5 (other clothes); kept g0 g2 g3; good g2 at rank 1. AP = 1/2.
    assert res["sc"]["cmc"] == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert res["sc"]["mAP"] == pytest.approx(0.5, abs=1e-15)
    for name in PROTOCOLS:
        assert_matches_reference(res, dist, labels, name)


def test_hand_computed_ties_break_by_gallery_index():
    # Query pid 0 cam 0; g0 (pid 1) and g1 (pid 0, cam 1) tie at 0.5: g0 ranks first (lower index), so the
    # match is at rank 1 (0-based). g3 (pid 0, cam 1) ties with g2 (pid 2) and comes after it: rank 3.
    dist = np.array([[0.5, 0.5, 0.7, 0.7]], np.float32)
    labels = (np.array([0]), np.array([1, 0, 2, 0]), np.array([0]), np.array([0, 1, 0, 1]),
              np.array([0]), np.array([0, 0, 0, 0]))
    res = evaluate_distmat(dist, *labels, protocols=("general",), return_cmc=True)["general"]
    assert res["cmc"] == [0.0, 1.0, 1.0, 1.0]
    assert res["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2, abs=1e-15)
    # Now the match comes first in index order: g0 is the match and wins the tie.
    labels2 = (labels[0], np.array([0, 1, 2, 0]), labels[2], np.array([1, 0, 0, 1]), labels[4], labels[5])
    res2 = evaluate_distmat(dist, *labels2, protocols=("general",), return_cmc=True)["general"]
    assert res2["cmc"] == [1.0, 1.0, 1.0, 1.0]
    assert res2["mAP"] == pytest.approx((1 / 1 + 2 / 4) / 2, abs=1e-15)


def test_queries_without_valid_match_are_skipped_and_counted():
    dist = np.array([[0.1, 0.2], [0.3, 0.1], [0.2, 0.4]], np.float32)
    # q0: its only same-id item shares the camera (junk) -> skipped; q1: pid 5 absent -> skipped; q2: valid.
    labels = (np.array([0, 5, 1]), np.array([0, 1]), np.array([0, 0, 0]), np.array([0, 1]),
              np.array([0, 0, 0]), np.array([0, 0]))
    res = evaluate_distmat(dist, *labels, protocols=("general", "cc"))
    assert res["general"]["num_valid_queries"] == 1 and res["general"]["num_queries"] == 3
    assert res["general"]["top1"] == 0.0 and res["general"]["mAP"] == 0.5  # q2's match is second
    assert res["cc"]["num_valid_queries"] == 0  # q2's match wears the same clothes
    assert math.isnan(res["cc"]["top1"]) and math.isnan(res["cc"]["mAP"])


# ------------------------------------------------------------------------------------------------ random cases


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("levels", [None, 4, 12])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_distmat_matches_reference_loop(seed, levels, backend):
    dist, labels = random_case(seed, num_q=23, num_g=41, levels=levels, num_ids=12)
    res = evaluate_distmat(dist, *labels, chunk=5, return_cmc=True, backend=backend)  # last chunk partial
    for name in PROTOCOLS:
        assert_matches_reference(res, dist, labels, name)
    valid = [res[name]["num_valid_queries"] for name in PROTOCOLS]
    assert 0 < min(valid) and max(valid) <= 23 and res["sc"]["num_valid_queries"] < 23  # some skipped


@pytest.mark.parametrize("backend", ["sort", "count"])
def test_random_float64_distmat_and_single_chunk(backend):
    dist, labels = random_case(7, num_q=9, num_g=30, levels=6)
    res = evaluate_distmat(torch.from_numpy(dist.astype(np.float64)), *labels, chunk=100, return_cmc=True,
                           backend=backend)
    for name in PROTOCOLS:
        assert_matches_reference(res, dist.astype(np.float64), labels, name)


@pytest.mark.parametrize("backend", ["sort", "count"])
def test_many_same_id_items_and_larger_gallery(backend):
    # Few identities, so P is a large part of G; ties from quantised distances in every row.
    dist, labels = random_case(3, num_q=40, num_g=300, levels=20, num_ids=3, num_cams=4, num_clothes=2)
    res = evaluate_distmat(dist, *labels, chunk=16, return_cmc=True, backend=backend)
    for name in PROTOCOLS:
        assert_matches_reference(res, dist, labels, name)


def test_auto_backend_picks_counting_for_few_items_in_long_rows(monkeypatch):
    # 2 same-id items per row in 20,000 columns: counting is cheaper than sorting, and exact
    calls = []
    original = evaluate_module._Ranker._by_count
    monkeypatch.setattr(evaluate_module._Ranker, "_by_count", lambda self, *a: calls.append(1) or original(self, *a))
    rng = np.random.default_rng(8)
    dist = rng.integers(0, 50, (6, 20_000)).astype(np.float32)  # heavy ties
    g_pids = np.full(20_000, 9)
    g_pids[rng.choice(20_000, 12, replace=False)] = np.repeat(np.arange(6), 2)
    labels = (np.arange(6), g_pids, np.zeros(6, int), np.ones(20_000, int), np.zeros(6, int), np.zeros(20_000, int))
    ranker_choice = {}
    for backend in BACKENDS:
        ranker_choice[backend] = evaluate_distmat(dist, *labels, protocols=("general",), return_cmc=True,
                                                  backend=backend)["general"]
    assert len(calls) == 2  # "auto" counted too
    assert ranker_choice["auto"] == ranker_choice["sort"] == ranker_choice["count"]
    cmc, mean_ap, _ = reference_eval(dist, *labels, "general")
    assert ranker_choice["auto"]["cmc"] == cmc.tolist() and ranker_choice["auto"]["mAP"] == mean_ap


def test_evaluate_from_features_matches_reference_loop():
    # Features on a 1/4 grid in 5 dims: every dot product is exact in float32, so the distances (and their
    # many ties) are the same whatever the summation order of the matrix product.
    rng = np.random.default_rng(11)
    qf = rng.integers(-2, 3, (17, 5)).astype(np.float32) / 4
    gf = rng.integers(-2, 3, (29, 5)).astype(np.float32) / 4
    _, labels = random_case(11, num_q=17, num_g=29, num_ids=4)
    dist = -(qf.astype(np.float64) @ gf.T.astype(np.float64))
    res = evaluate(torch.from_numpy(qf), torch.from_numpy(gf), *labels, chunk=4, return_cmc=True)
    assert evaluate(torch.from_numpy(qf), torch.from_numpy(gf), *labels, chunk=4, return_cmc=True,
                    backend="count") == res
    for name in PROTOCOLS:
        assert_matches_reference(res, dist.astype(np.float32), labels, name)
    # features are used as given: scaling them changes nothing here, scaling distances keeps the order
    res2 = evaluate(torch.from_numpy(qf * 2), torch.from_numpy(gf), *labels, chunk=4, return_cmc=True)
    assert res2 == res


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    dist, labels = random_case(5, num_q=50, num_g=200, levels=10)
    cpu = evaluate_distmat(dist, *labels, chunk=16, return_cmc=True)
    gpu = evaluate_distmat(torch.from_numpy(dist).cuda(), *labels, chunk=16, return_cmc=True)
    assert gpu == cpu
    with pytest.raises(EvaluationError, match="CPU only"):
        evaluate_distmat(torch.from_numpy(dist).cuda(), *labels, backend="count")


# ------------------------------------------------------------------------------------------------ errors


def test_bad_input_raises_with_clear_message():
    dist, labels = random_case(0, 4, 6)
    with pytest.raises(EvaluationError, match="g_pids must have shape"):
        evaluate_distmat(dist, labels[0], labels[1][:5], *labels[2:])
    with pytest.raises(EvaluationError, match="unknown ranking backend 'fast'"):
        evaluate_distmat(dist, *labels, backend="fast")
    with pytest.raises(EvaluationError, match="unknown protocols"):
        evaluate_distmat(dist, *labels, protocols=("cc", "xx"))
    with pytest.raises(EvaluationError, match="need q_clothes"):
        evaluate_distmat(dist, *labels[:4], protocols=("cc",))
    bad = dist.copy()
    bad[2, 3] = np.nan
    with pytest.raises(EvaluationError, match="non-finite distances for queries 0..3"):
        evaluate_distmat(bad, *labels)
    bad[2, 3] = np.inf
    with pytest.raises(EvaluationError, match="non-finite distances"):
        evaluate_distmat(bad, *labels)
    huge = np.full_like(dist, 3e38)  # finite, though their sum overflows
    huge[:, 0] = 1e38
    assert evaluate_distmat(huge, *labels, protocols=("general",))["general"]["num_queries"] == 4
    with pytest.raises(EvaluationError, match="share D"):
        evaluate(torch.zeros(4, 3), torch.zeros(6, 2), *labels)
    # general works without clothes, and is the default then
    assert evaluate_distmat(dist, *labels[:4], protocols=("general",))["general"]["num_queries"] == 4
    assert list(evaluate_distmat(dist, *labels[:4])) == ["general"]
    assert list(evaluate_distmat(dist, *labels)) == list(PROTOCOLS)


# ------------------------------------------------------------------------------------------------ datasets, files


def test_evaluate_dataset_uses_query_sets_and_rules():
    rng = np.random.default_rng(4)

    def samples(n, cam):
        return [Sample(f"{cam}{i}.jpg", int(rng.integers(0, 3)), cam, int(rng.integers(0, 2))) for i in range(n)]

    splits = {"train": [], "query_same": samples(5, 1), "query_diff": samples(6, 2), "gallery": samples(12, 0)}
    ds = ReIDDataset(name="prcc", root=Path("."), splits=splits, train_pid_names=[], num_train_clothes=0,
                     pid2clothes=np.zeros((0, 0), bool), protocols=("sc", "cc"),
                     query_sets={"sc": ("query_same", "gallery"), "cc": ("query_diff", "gallery")},
                     eval_rules={"sc": "general", "cc": "general"})
    feats = {k: torch.nn.functional.normalize(torch.randn(len(v), 8, generator=torch.Generator().manual_seed(1)),
                                              dim=1) for k, v in splits.items() if k != "train"}
    res = evaluate_dataset(ds, feats, ranks=(1,))
    assert list(res) == ["sc", "cc"]
    for key, qs in (("sc", "query_same"), ("cc", "query_diff")):
        lab = lambda split, f: [getattr(s, f) for s in splits[split]]  # noqa: E731
        direct = evaluate(feats[qs], feats["gallery"], lab(qs, "pid"), lab("gallery", "pid"), lab(qs, "camid"),
                          lab("gallery", "camid"), protocols=("general",), ranks=(1,))["general"]
        assert res[key] == direct
    with pytest.raises(EvaluationError, match="no features for split 'query_diff'"):
        evaluate_dataset(ds, {"query_same": feats["query_same"], "gallery": feats["gallery"]})
    # LTCC-like: three rules on one query/gallery pair, clothes used by cc and sc
    ltcc = ReIDDataset(name="ltcc", root=Path("."), splits={"train": [], "query": splits["query_diff"],
                                                             "gallery": splits["gallery"]},
                       train_pid_names=[], num_train_clothes=0, pid2clothes=np.zeros((0, 0), bool),
                       protocols=PROTOCOLS, query_sets={p: ("query", "gallery") for p in PROTOCOLS},
                       eval_rules={p: p for p in PROTOCOLS})
    res = evaluate_dataset(ltcc, {"query": feats["query_diff"], "gallery": feats["gallery"]})
    q, g = splits["query_diff"], splits["gallery"]
    direct = evaluate(feats["query_diff"], feats["gallery"], *[[getattr(s, f) for s in split] for f in
                      ("pid", "camid", "clothes_id") for split in (q, g)])
    assert res == direct


def test_score_files_roundtrip(tmp_path, caplog):
    dist, labels = hand_case()
    # unit features whose dot products reproduce the hand case's ranking: angle grows with distance
    angles = np.concatenate([[0.0], dist[0]])  # query at angle 0, gallery at 0.1..0.6 rad
    f = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    np.savez(tmp_path / "q.npz", feats=f[:1], pids=labels[0], camids=labels[2], clothes_ids=labels[4])
    np.savez(tmp_path / "g.npz", feats=f[1:], pids=labels[1], camids=labels[3], clothes_ids=labels[5])
    out = score_files(tmp_path / "q.npz", tmp_path / "g.npz", "cc")
    json.dumps(out)
    assert out["protocol"] == "cc" and out["top1"] == 0.0 and out["top5"] == 1.0
    assert out["mAP"] == pytest.approx((1 / 3 + 2 / 4) / 2) and out["num_valid_queries"] == 1
    np.savez(tmp_path / "bad.npz", feats=f[1:], pids=labels[1])
    with pytest.raises(EvaluationError, match="missing arrays \\['camids'\\]"):
        score_files(tmp_path / "q.npz", tmp_path / "bad.npz", "general")
    np.save(tmp_path / "single.npy", f)
    with pytest.raises(EvaluationError, match="not an .npz archive"):
        score_files(tmp_path / "single.npy", tmp_path / "g.npz")
    np.savez(tmp_path / "q2.npz", feats=2 * f[:1], pids=labels[0], camids=labels[2])
    general = score_files(tmp_path / "q.npz", tmp_path / "g.npz")
    assert general["top1"] == 0.0 and general["mAP"] == pytest.approx((1 / 2 + 2 / 4 + 3 / 5) / 3)
    assert score_files(tmp_path / "q2.npz", tmp_path / "g.npz") == general  # scaled query: same ranking
    assert "not L2-normalised" in caplog.text


def test_torch_ranking_path_matches_the_numpy_one_on_ties():
    # the device path of _Ranker (torch.sort + searchsorted, used on GPUs) run on CPU tensors against the CPU
    # (numpy) path, on distances with many exact ties
    rng = np.random.default_rng(3)
    dist = torch.from_numpy(rng.integers(0, 7, (40, 300)).astype(np.float32))
    items = rng.integers(0, 300, (40, 9))
    valid = rng.random((40, 9)) < 0.8
    numpy_path = evaluate_module._Ranker("sort", torch.device("cpu"))
    torch_path = evaluate_module._Ranker("sort", torch.device("cpu"))
    torch_path.cpu = False
    want = numpy_path.positions(dist, items, valid)
    got = torch_path.positions(dist, items, valid)
    assert np.array_equal(got[valid], want[valid])
    # and against counting by hand: items strictly closer, then tied items of lower gallery index
    d = dist.numpy()
    for r, c in zip(*np.nonzero(valid)):
        i = items[r, c]
        assert want[r, c] == (d[r] < d[r, i]).sum() + (d[r, :i] == d[r, i]).sum()
