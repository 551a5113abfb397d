"""The match explorer's computations against explicit loops, and its widget wiring on tiny images."""

from __future__ import annotations

import base64
import io
import re

import matplotlib

matplotlib.use("Agg")

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from rlqlib.engine import evaluate as E
from rlqlib.book import matches as M
from rlqlib.book import widgets as W

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


def _hand_case():
    """Two queries (ids 0 and 1) against four gallery images; distances chosen by hand."""
    q = pd.DataFrame({"path": ["q0", "q1"], "pid": [0, 1], "camid": [0, 0], "clothes_id": [0, 0],
                      "gender": [1, 0], "pose_family": ["run", "walk"], "artifact": ["none", "pixelation"]})
    g = pd.DataFrame({"path": [f"g{i}" for i in range(4)], "pid": [0, 1, 2, 1], "camid": [1, 1, 1, 0],
                      "clothes_id": [1, 0, 0, 0], "gender": [1, 0, 1, 0], "pose_family": ["run", "run", "walk", "walk"],
                      "artifact": ["none", "none", "pixelation", "none"]})
    da = np.array([[0.1, 0.5, 0.3, 0.9], [0.9, 0.2, 0.1, 0.0]])  # A: q0 right at 1; q1 wrong (g2, then g1)
    db = np.array([[0.4, 0.1, 0.2, 0.9], [0.9, 0.1, 0.3, 0.0]])  # B: q0 wrong (g1, g2, g0); q1 right
    return q, g, da, db


def test_query_table_filters_and_examples_by_hand():
    q, g, da, db = _hand_case()
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


def test_mistake_table_by_hand():
    q, g, da, db = _hand_case()
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


@pytest.fixture
def images(tmp_path):
    """The hand case with real 16x8 PNG files (colour = gallery/query index)."""
    q, g, da, db = _hand_case()
    for df, tag in ((q, "q"), (g, "g")):
        paths = []
        for i in range(len(df)):
            p = tmp_path / f"{tag}{i}.png"
            Image.new("RGB", (8, 16), (40 * i, 100, 200)).save(p)
            paths.append(str(p))
        df["path"] = paths
    return q, g, da, db


def test_thumbnail_uri_scales_down_only(images, tmp_path):
    q = images[0]
    for height, want in ((8, (4, 8)), (96, (8, 16))):
        uri = W.thumbnail_uri(q["path"][0], height)
        assert uri.startswith("data:image/png;base64,")
        assert Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size == want
    with pytest.raises(M.MatchExplorerError, match="missing.png"):
        W.thumbnail_uri(str(tmp_path / "missing.png"))


def _parts(box):
    filters, (query, count), (info, col_a, col_b) = box.children[0].children, box.children[1].children, \
        box.children[2].children
    return {w.description: w for w in filters}, query, count, info, col_a, col_b


def _marks(html):
    return re.findall(r"border:3px solid (#[0-9a-f]{6})", html)


def test_explorer_shows_the_informative_query_and_rewires(images):
    q, g, da, db = images
    box = W.match_explorer(q, g, da, db, names=("RLQ", "CAL"), k=3, protocols=("general", "cc"),
                           protocol="general")
    filters, query, count, info, col_a, col_b = _parts(box)
    assert query.value == 0 and count.value == "2 of 2 queries"  # largest AP gain of A
    assert _marks(col_a.value) == [M.GOOD_COLOR, M.BAD_COLOR, M.BAD_COLOR]  # g0, g2, g1
    assert _marks(col_b.value) == [M.BAD_COLOR, M.BAD_COLOR, M.GOOD_COLOR]  # g1, g2, g0
    assert "RLQ: first correct at rank 1, AP 100.0%" in col_a.value and "male" in info.value
    query.value = 1
    assert _marks(col_a.value) == [M.BAD_COLOR, M.GOOD_COLOR, M.BAD_COLOR]
    filters["top-1"].value = "a_only"  # q1 does not pass: the selection moves to q0
    assert [v for _, v in query.options] == [0] and query.value == 0
    filters["top-1"].value = M.ANY
    filters["artifact"].value = "pixelation"
    assert query.value == 1
    filters["protocol"].value = "cc"  # q1's only match g1 wears the same clothes: junk under cc, as is g3
    assert query.value == 1 and "RLQ: no correct match under cc" in col_a.value
    assert _marks(col_a.value) == [M.BAD_COLOR, M.BAD_COLOR]  # g2, g0: only two items are not junk
    filters["correct matches wear"].value = "both"
    assert query.value is None and "no query passes" in info.value and count.value == "0 of 2 queries"
    filters["correct matches wear"].value = M.ANY
    assert query.value == 1
    filters["artifact"].value = M.ANY  # q1 still passes: kept
    assert query.value == 1 and [v for _, v in query.options] == [0, 1]
    query.value = 0  # under cc, q0's match g0 (other clothes) still counts
    assert _marks(col_a.value) == [M.GOOD_COLOR, M.BAD_COLOR, M.BAD_COLOR]


def test_explorer_without_metadata_and_its_errors(images):
    q, g, da, db = images
    base = ["path", "pid", "camid", "clothes_id"]
    box = W.match_explorer(q[base], g[base], torch.from_numpy(da), db, k=2, protocols=("general",))
    filters, query, _, info, col_a, _ = _parts(box)
    assert set(filters) == {"protocol", "camera", "correct matches wear", "top-1"}
    assert len(_marks(col_a.value)) == 2 and "LQ" not in info.value
    with pytest.raises(M.MatchExplorerError, match="not among the offered"):
        W.match_explorer(q, g, da, db, protocols=("general",), protocol="cc")
    with pytest.raises(M.MatchExplorerError, match="out of range"):
        W.match_explorer(q, g, da, db, query=5)
    with pytest.raises(M.MatchExplorerError, match=r"dist must be a floating \(2, 4\)"):
        W.match_explorer(q, g, da[:, :3], db)


def test_explorer_updates_its_widgets_in_place(images):
    """The saved widget state must hold only what is shown: no new widgets (and images) per selection."""
    q, g, da, db = images
    box = W.match_explorer(q, g, da, db, k=3)
    filters, query, *_ = _parts(box)
    alive = len(ipywidgets.Widget.get_manager_state()["state"])
    for value in (1, 0, 1):
        query.value = value
    filters["protocol"].value = "general"
    assert len(ipywidgets.Widget.get_manager_state()["state"]) == alive
    html_values = [w.value for w in box.children[2].children]
    assert sum(v.count("data:image/png") for v in html_values) == 1 + 3 + 3  # query + two top-3 columns


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


def test_identity_browser_still_builds(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "train").mkdir()
    rows = []
    for i, (outfit, cam) in enumerate([(1, 0), (2, 1)]):
        Image.new("RGB", (8, 16), (i * 90, 0, 0)).save(tmp_path / "train" / f"x{i}.png")
        rows.append({"split": "train", "image": f"x{i}.png", "pid": 4, "camid": cam, "outfit": outfit,
                     "gender": 1, "artifact": "none"})
    pd.DataFrame(rows).to_csv(tmp_path / "annotations" / "metadata.csv", index=False)
    box = W.identity_browser(tmp_path)
    assert isinstance(box, ipywidgets.VBox) and box.children[0].value == 4
    plt.close("all")
