"""The match explorer's computations against explicit loops, and the static match figure and identity browser on tiny
images (the explorer widget itself: ``test_explorers.py``)."""

from __future__ import annotations


import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from rlqlib.engine import evaluate as E
from rlqlib.book import matches as M
from rlqlib.book import match_figure as W

# --------------------------------------------------------------------------------------------- fixtures


def _labels(rng: np.random.Generator, n: int, paths: list[str] | None = None, extra: bool = True) -> pd.DataFrame:
    df = pd.DataFrame({"path": paths or [f"img{i}.png" for i in range(n)], "pid": rng.integers(0, 4, n),
                       "camid": rng.integers(0, 3, n), "clothes_id": rng.integers(0, 2, n)})
    if extra:
        df["gender"] = df["pid"] % 2
        df["pose_family"] = rng.choice(["run", "walk"], n)
        df["view"] = rng.choice(["front", "back"], n)
        df["artifact"] = rng.choice(["none", "pixelation", "motion_blur"], n)
    return df


@pytest.fixture
def problem() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    q, g = _labels(rng, 9), _labels(rng, 17)
    dist = np.round(rng.random((9, 17)), 1).astype(np.float32)  # rounded: many exact ties
    return q, g, dist


def _loop_rank(dist, q, g, protocol, k):
    """Per query: kept gallery items sorted by (distance, index), then top-k, first hit and AP by hand."""
    out = []
    for i in range(len(q)):
        kept, good = [], []
        for j in range(len(g)):
            same = q.pid[i] == g.pid[j]
            same_cam, same_clothes = q.camid[i] == g.camid[j], q.clothes_id[i] == g.clothes_id[j]
            rule = {"general": same_cam, "cc": same_cam or same_clothes, "sc": same_cam or not same_clothes}
            junk = same and rule[protocol]
            if not junk:
                kept.append(j)
        kept.sort(key=lambda j: (dist[i, j], j))
        good = [q.pid[i] == g.pid[j] for j in kept]
        hits = [r for r, ok in enumerate(good) if ok]
        ap = np.mean([(n + 1) / (r + 1) for n, r in enumerate(hits)]) if hits else np.nan
        out.append((kept[:k], good[:k], hits[0] if hits else -1, ap))
    return out


# --------------------------------------------------------------------------------------------- computations


@pytest.mark.parametrize("protocol", ["general", "cc", "sc"])
@pytest.mark.parametrize("k", [1, 3, 20])
@pytest.mark.parametrize("ap", [True, False])
def test_rank_matches_equals_a_loop(problem, protocol, k, ap):
    q, g, dist = problem
    r = M.rank_matches(dist, q, g, protocol, k, chunk=4, ap=ap)
    for i, (kept, good, first, a) in enumerate(_loop_rank(dist, q, g, protocol, k)):
        n = len(kept)
        assert r.index[i, :n].tolist() == kept and (r.index[i, n:] == -1).all()
        assert r.correct[i, :n].tolist() == good and not r.correct[i, n:].any()
        np.testing.assert_array_equal(r.dist[i, :n], dist[i, kept])
        assert np.isnan(r.dist[i, n:]).all()
        assert r.first_hit[i] == first
        if ap:
            assert (np.isnan(a) and np.isnan(r.ap[i])) or r.ap[i] == pytest.approx(a, rel=1e-12)
        else:
            assert np.isnan(r.ap[i])


@pytest.mark.parametrize("ap", [True, False])
def test_rank_matches_when_every_item_is_junk(ap):
    q = pd.DataFrame({"path": ["q"], "pid": [0], "camid": [0], "clothes_id": [0]})
    g = pd.DataFrame({"path": ["a", "b", "c"], "pid": [0, 0, 1], "camid": [0, 0, 1], "clothes_id": [0, 1, 0]})
    r = M.rank_matches(np.array([[0.3, 0.1, 0.2]], np.float32), q, g, "general", k=3, ap=ap)
    assert r.index.tolist() == [[2, -1, -1]] and r.correct.tolist() == [[False] * 3] and r.first_hit.tolist() == [-1]
    r = M.rank_matches(np.array([[0.3, 0.1]], np.float32), q, g.iloc[:2], "general", k=1, ap=ap)
    assert r.index.tolist() == [[-1]] and r.first_hit.tolist() == [-1] and np.isnan(r.dist[0, 0])


@pytest.mark.parametrize("protocol", ["general", "cc"])
def test_rank_matches_agrees_with_the_evaluation(problem, protocol):
    q, g, dist = problem
    r = M.rank_matches(torch.from_numpy(dist), q, g, protocol, 5)
    ev = E.evaluate_distmat(dist, q.pid, g.pid, q.camid, g.camid, q.clothes_id, g.clothes_id, protocols=(protocol,))
    valid = r.first_hit >= 0
    assert ev[protocol]["num_valid_queries"] == valid.sum()
    assert ev[protocol]["top1"] == pytest.approx(r.correct[valid, 0].mean())
    assert ev[protocol]["top5"] == pytest.approx((r.first_hit[valid] < 5).mean())
    assert ev[protocol]["mAP"] == pytest.approx(np.nanmean(r.ap))


def test_distances_rank_like_the_evaluation():
    gen = torch.Generator().manual_seed(0)
    qf, gf = torch.randn(4, 6, generator=gen), torch.randn(5, 6, generator=gen)
    np.testing.assert_array_equal(M.distances(qf, gf), -(qf @ gf.T).numpy())


def test_bad_inputs_are_named():
    q = pd.DataFrame({"path": ["a"], "pid": [0], "camid": [0], "clothes_id": [0]})
    with pytest.raises(M.MatchExplorerError, match=r"\(1, 1\) matrix"):
        M.rank_matches(np.zeros((2, 1)), q, q)
    with pytest.raises(M.MatchExplorerError, match="NaN/inf"):
        M.rank_matches(np.full((1, 1), np.nan), q, q)
    with pytest.raises(M.MatchExplorerError, match=r"lacks columns \['clothes_id'\]"):
        M.rank_matches(np.zeros((1, 1)), q.drop(columns="clothes_id"), q)
    with pytest.raises(M.MatchExplorerError, match="unknown protocol 'xx'"):
        M.rank_matches(np.zeros((1, 1)), q, q, "xx")


def test_clothes_kind_equals_a_loop(problem):
    q, g, _ = problem
    for protocol in ("general", "cc"):
        got = M.clothes_kind(q, g, protocol, chunk=2)
        for i in range(len(q)):
            good = [j for j in range(len(g)) if q.pid[i] == g.pid[j] and q.camid[i] != g.camid[j]
                    and not (protocol == "cc" and q.clothes_id[i] == g.clothes_id[j])]
            same = {bool(q.clothes_id[i] == g.clothes_id[j]) for j in good}
            want = {frozenset(): "none", frozenset({True}): "same", frozenset({False}): "other"}.get(frozenset(same),
                                                                                                  "both")
            assert got[i] == want
        if protocol == "cc":
            assert set(got) <= {"other", "none"}


def test_query_table_filters_and_examples_by_hand(hand_case):
    q, g, da, db = hand_case
    a, b = M.rank_matches(da, q, g, "general", 3), M.rank_matches(db, q, g, "general", 3)
    assert a.index.tolist() == [[0, 2, 1], [2, 1, 0]]  # q1's g3 is junk (same id, same camera)
    t = M.query_table(q, g, a, b)
    assert t["outcome"].tolist() == ["a_only", "b_only"]
    assert t["clothes"].tolist() == ["other", "same"]
    assert t["rank_a"].tolist() == [1.0, 2.0] and t["rank_b"].tolist() == [3.0, 1.0]
    assert t["ap_a"].tolist() == pytest.approx([100.0, 50.0]) and t["ap_b"].tolist() == pytest.approx([100 / 3, 100])
    assert M.filter_queries(t).tolist() == [0, 1]
    assert M.filter_queries(t, artifact="pixelation").tolist() == [1]
    assert M.filter_queries(t, camera=0, outcome="a_only").tolist() == [0]
    assert M.filter_queries(t, clothes="both").tolist() == []
    with pytest.raises(M.MatchExplorerError, match="'artifact'"):
        M.filter_queries(t.drop(columns="artifact"), artifact="none")
    assert M.example_queries(t, 3) == [(0, "a_gain"), (1, "b_gain")]  # only two valid queries
    assert M.example_queries(t, 1) == [(0, "a_gain")]


def test_example_queries_prefer_top1_disagreement():
    t = pd.DataFrame({"outcome": ["both", "a_only", "neither", "b_only", "none", "a_only", "both"],
                      "ap_a": [90.0, 40.0, 5.0, 10.0, np.nan, 60.0, 50.0],
                      "ap_b": [10.0, 35.0, 6.0, 70.0, np.nan, 20.0, 80.0]})
    # a_gain: a_only rows 1 (+5) and 5 (+40) -> 5, then 1; b_gain: b_only row 3; hardest: row 2 (5.5)
    assert M.example_queries(t, 3) == [(5, "a_gain"), (3, "b_gain"), (2, "hardest")]
    assert M.example_queries(t, 5) == [(5, "a_gain"), (3, "b_gain"), (2, "hardest"), (1, "a_gain"), (6, "b_gain")]
    assert len(M.example_queries(t, 9)) == 6  # row 4 has no correct match


def test_mistake_table_by_hand(hand_case):
    q, g, da, db = hand_case
    rk = {"A": M.rank_matches(da, q, g, "general", 3), "B": M.rank_matches(db, q, g, "general", 3)}
    m = M.mistake_table(q, g, rk)
    # A's only mistake: q1 (female, walk, pixelation) -> g2 (male, walk, pixelation)
    assert m.loc["A", "mistakes"] == 1 and m.loc["A", "error"] == 50.0 and m.loc["A", "LQ mistakes"] == 1
    assert m.loc["B", "LQ mistakes"] == 0
    assert (m.loc["A", "opposite gender"], m.loc["A", "same pose family"], m.loc["A", "same artifact"]) == (100, 100, 100)
    # B's only mistake: q0 (male, run, HQ) -> g1 (female, run): no LQ query among its mistakes
    assert (m.loc["B", "opposite gender"], m.loc["B", "same pose family"]) == (100, 100)
    assert np.isnan(m.loc["B", "same artifact"])
    # chance over other identities: q0 vs g1,g2,g3 / q1 vs g0,g2
    assert m.loc["chance", "opposite gender"] == pytest.approx(100 * (2 / 3 + 2 / 2) / 2)
    assert m.loc["chance", "same pose family"] == pytest.approx(100 * (1 / 3 + 1 / 2) / 2)
    assert m.loc["chance", "same artifact"] == pytest.approx(100 * 1 / 2)  # only q1 is LQ
    bare = M.mistake_table(q[["path", "pid", "camid", "clothes_id"]], g, rk)
    assert list(bare.columns) == ["queries", "mistakes", "error"] and "chance" not in bare.index


# --------------------------------------------------------------------------------------------- display


def test_plot_matches_colours_borders(images):
    q, g, da, db = images
    a, b = M.rank_matches(da, q, g, "general", 3), M.rank_matches(db, q, g, "general", 3)
    fig = W.plot_matches(q, g, a, b, [0, 1], names=("RLQ", "CAL"), k=2)
    axes = np.array(fig.axes).reshape(2, 6)  # query, A #1, A #2, gap, B #1, B #2
    colour = matplotlib.colors.to_hex
    assert colour(axes[0, 1].spines["top"].get_edgecolor()) == M.GOOD_COLOR  # A's #1 for q0: correct
    assert colour(axes[0, 4].spines["top"].get_edgecolor()) == M.BAD_COLOR  # B's #1 for q0: wrong
    assert axes[0, 4].get_title().startswith("CAL #1") and not axes[0, 3].axison
    assert axes[1, 2].get_title().startswith("#2") and "id 1" in axes[1, 2].get_title()
    plt.close(fig)
