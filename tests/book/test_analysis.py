"""rlqlib.book.analysis against explicit per-query / per-item loops and hand-computed values on tiny inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score

from rlqlib.book import analysis as A
from rlqlib.engine import evaluate as E
from rlqlib.data import training as TD

# ------------------------------------------------------------------------------------------ LQ clusters


def test_lq_cluster_score_hand_made_cases() -> None:
    # LQ features all at one point, HQ features spread far away: every LQ neighbour is LQ.
    hq = torch.eye(4)  # (4, 4)
    lq = F.normalize(torch.tensor([[1.0, 1, 1, 1]]).repeat(4, 1) + 0.01 * torch.eye(4), dim=1)
    s = A.lq_cluster_score(hq, lq)
    assert s.rate == 100.0 and s.n == 4 and s.k == 1
    # twin cosine: LQ i = HQ i tilted by 60 degrees towards the next axis
    lq2 = 0.5 * torch.eye(4) + (3**0.5 / 2) * torch.roll(torch.eye(4), 1, dims=1)
    assert A.lq_cluster_score(torch.eye(4), lq2).twin_cosine == pytest.approx(0.5)
    # Hand-made mixed case: two pairs; LQ0's candidates are HQ1 and LQ1 only.
    hq3 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    lq3 = torch.tensor([[0.6, 0.8], [0.8, 0.6]])  # LQ0 · HQ1 = 0.8, LQ0 · LQ1 = 0.96 -> LQ; LQ1 likewise
    assert A.lq_cluster_score(hq3, lq3).rate == 100.0
    lq4 = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # LQ0 = HQ1 exactly, LQ0 · LQ1 = 0 -> HQ
    s4 = A.lq_cluster_score(hq3, lq4)
    assert s4.rate == 0.0 and s4.twin_cosine == pytest.approx(0.0)


def test_lq_cluster_score_matches_a_loop() -> None:
    g = torch.Generator().manual_seed(0)
    hq = F.normalize(torch.randn(9, 5, generator=g), dim=1)
    lq = F.normalize(hq + 0.8 * torch.randn(9, 5, generator=g), dim=1)
    for k in (1, 3):
        pool = torch.cat([hq, lq])  # (18, 5)
        fractions = []
        for i in range(9):
            cands = [j for j in range(18) if j not in (i, 9 + i)]
            sims = [float(lq[i] @ pool[j]) for j in cands]
            top = [cands[j] for j in np.argsort(sims)[::-1][:k]]
            fractions.append(np.mean([j >= 9 for j in top]))
        s = A.lq_cluster_score(hq, lq, k=k)
        np.testing.assert_allclose(s.per_item, 100 * np.array(fractions))
        assert s.rate == pytest.approx(100 * np.mean(fractions))
    with pytest.raises(ValueError, match="k=17"):
        A.lq_cluster_score(hq, lq, k=17)
    with pytest.raises(ValueError, match="N >= 2"):
        A.lq_cluster_score(hq[:1], lq[:1])


# ------------------------------------------------------------------------------------------ top-1 matches


def _toy(seed: int, nq: int = 12, ng: int = 30, ids: int = 5):
    rng = np.random.default_rng(seed)
    lab = lambda n: pd.DataFrame({"pid": rng.integers(0, ids, n), "camid": rng.integers(0, 3, n),  # noqa: E731
                                  "clothes_id": rng.integers(0, 3, n)})
    q, g = lab(nq), lab(ng)
    qf = F.normalize(torch.from_numpy(rng.normal(size=(nq, 6))).float(), dim=1)
    gf = F.normalize(torch.from_numpy(rng.normal(size=(ng, 6))).float(), dim=1)
    gf[7] = gf[3]  # an exact tie: the lower index must win
    return qf, gf, q, g


@pytest.mark.parametrize("protocol", ["general", "cc", "sc"])
def test_top1_matches_equal_an_explicit_loop_and_the_evaluation(protocol: str) -> None:
    qf, gf, q, g = _toy(1)
    t = A.top1_matches(qf, gf, q, g, protocol, chunk=5)
    for i in range(len(q)):
        same = g["pid"].to_numpy() == q["pid"][i]
        same_cam = g["camid"].to_numpy() == q["camid"][i]
        same_cl = g["clothes_id"].to_numpy() == q["clothes_id"][i]
        junk = same & {"general": same_cam, "cc": same_cam | same_cl, "sc": same_cam | ~same_cl}[protocol]
        kept = [j for j in range(len(g)) if not junk[j]]
        sims = [float(qf[i] @ gf[j]) for j in kept]
        best = kept[int(np.argmax(sims))]  # np.argmax: first maximum
        assert t.index[i] == best
        assert t.correct[i] == same[best]
        assert t.valid[i] == bool((same & ~junk).any())
    ref = E.evaluate(qf, gf, q["pid"], g["pid"], q["camid"], g["camid"], q["clothes_id"], g["clothes_id"],
                     protocols=(protocol,), ranks=(1,))[protocol]
    assert t.valid.sum() == ref["num_valid_queries"]
    assert t.top1 == pytest.approx(100 * ref["top1"])
    scored = A.score(qf, gf, q, g, (protocol,))[protocol]
    assert scored == {"top1": pytest.approx(t.top1), "mAP": pytest.approx(100 * ref["mAP"]), "valid": t.valid.sum()}


def test_top1_tie_goes_to_the_lower_gallery_index() -> None:
    q = pd.DataFrame({"pid": [0], "camid": [0], "clothes_id": [0]})
    g = pd.DataFrame({"pid": [1, 2, 0], "camid": [1, 1, 1], "clothes_id": [1, 1, 1]})
    qf = torch.tensor([[1.0, 0.0]])
    gf = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])  # items 1 and 2 tie
    t = A.top1_matches(qf, gf, q, g, "cc")
    assert t.index.tolist() == [1] and t.correct.tolist() == [False] and t.valid.tolist() == [True]
    with pytest.raises(KeyError, match="clothes_id"):
        A.top1_matches(qf, gf, q.drop(columns="clothes_id"), g)


def test_accuracy_by_and_paired_difference_by_hand() -> None:
    t = A.Top1(np.zeros(6, int), np.array([1, 0, 1, 1, 0, 1], bool), np.array([1, 1, 1, 1, 1, 0], bool))
    acc = A.accuracy_by(t, ["a", "a", "b", "b", "b", "b"], order=["b", "a"])
    assert acc.index.tolist() == ["b", "a"]
    assert acc.loc["a", "top1"] == 50.0 and acc.loc["a", "n"] == 2 and acc.loc["a", "skipped"] == 0
    assert acc.loc["b", "top1"] == pytest.approx(200 / 3) and acc.loc["b", "skipped"] == 1
    assert acc.loc["a", "se"] == pytest.approx(100 * np.sqrt(0.25 / 6))  # p~ = (1 + 2) / (2 + 4)
    assert acc.loc["b", "se"] == pytest.approx(100 * np.sqrt(4 / 7 * 3 / 7 / 7))  # p~ = (2 + 2) / (3 + 4)
    u = A.Top1(np.zeros(6, int), np.array([0, 0, 1, 1, 1, 1], bool), np.ones(6, bool))
    d, se, n = A.paired_difference(t, u)  # valid for both: 0..4; t - u per query: 1, 0, 0, 0, -1
    assert n == 5 and d == pytest.approx(0.0)
    assert se == pytest.approx(100 * np.std([1, 0, 0, 0, -1], ddof=1) / np.sqrt(5))


# ------------------------------------------------------------------------------------------ gender, errors


def test_f1_with_se_equals_sklearn_and_bootstrap_loop() -> None:
    y_true = np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 0])
    y_pred = np.array([0, 1, 1, 0, 0, 1, 1, 1, 1, 0])
    f1, se = A.f1_with_se(y_true, y_pred, pos_label=0, n_boot=50, seed=3)
    assert f1 == pytest.approx(f1_score(y_true, y_pred, pos_label=0))
    idx = np.random.default_rng(3).integers(0, 10, size=(50, 10))
    boot = [f1_score(y_true[i], y_pred[i], pos_label=0, zero_division=0.0) for i in idx]
    assert se == pytest.approx(np.std(boot, ddof=1))


def test_gender_on_errors_and_error_cases_by_hand() -> None:
    q = pd.DataFrame({"gender": [0, 0, 1, 1], "pose_family": ["run", "walk", "run", "walk"],
                      "artifact": ["none", "pixelation", "motion_blur", "none"]})
    g = pd.DataFrame({"gender": [1, 0, 1, 0], "pose_family": ["run", "walk", "walk", "run"],
                      "artifact": ["pixelation", "none", "motion_blur", "none"]})
    ref = A.Top1(np.array([0, 2, 2, 3]), np.array([0, 0, 0, 1], bool), np.ones(4, bool))
    model = A.Top1(np.array([1, 1, 2, 0]), np.array([1, 1, 0, 0], bool), np.ones(4, bool))
    # ref's errors: q0 -> g0 (male, female query), q1 -> g2 (male), q2 -> g2 (male); female F1 = 0
    r = A.gender_on_errors(ref, q["gender"], g["gender"], pos_label=0, n_boot=20)
    assert r["errors"] == 3 and r["f1"] == 0.0 and r["same_gender"] == pytest.approx(100 / 3)
    assert r["pos_share"] == pytest.approx(200 / 3)
    cases = A.error_cases(q, g, model, ref)
    assert cases["gender"].tolist() == [True, True, False, False]
    assert cases["pose"].tolist() == [True, True, False, False]  # g0 'run' = q0; g2 'walk' = q1
    assert cases["lq"].tolist() == [False, True, False, False]  # q0 is an HQ query; q1 (PX) -> g2 (MB)
    assert cases["both_wrong"].tolist() == [False, False, True, False]


def test_pick_is_deterministic_and_sorted() -> None:
    mask = np.array([1, 0, 1, 1, 0, 1, 1], bool)
    assert A.pick(mask, 10).tolist() == [0, 2, 3, 5, 6]
    a, b = A.pick(mask, 3, seed=1), A.pick(mask, 3, seed=1)
    assert a.tolist() == b.tolist() and len(a) == 3 and set(a) <= {0, 2, 3, 5, 6} and list(a) == sorted(a)


# ------------------------------------------------------------------------------------------ misc


def test_subsample_counts_match_the_training_subsample() -> None:
    pids = np.repeat([0, 1, 2, 3], [29, 13, 12, 3])
    table = A.subsample_counts(pids, [0.08, 0.29, 0.5, 1.0])
    for f, row in zip([0.08, 0.29, 0.5, 1.0], table.itertuples()):
        kept = TD.subsample_per_identity(pids, f, seed=0) if f < 1 else np.arange(len(pids))
        assert row.images == len(kept) and row.ids == len(np.unique(pids[kept]))
    assert table["images"].tolist()[0] == 2 + 1  # floor(29 · .08) + floor(13 · .08)


def test_cluster_agreement_by_hand() -> None:
    perfect = A.cluster_agreement([1, 1, 2, 2], ["a", "a", "b", "b"])
    assert perfect == {"ari": pytest.approx(1.0), "nmi": pytest.approx(1.0), "purity": 1.0}
    mixed = A.cluster_agreement([1, 1, 1, 2], ["a", "a", "b", "b"])
    assert mixed["purity"] == 0.75


def test_fixed_degrade_is_reproducible_and_labels_name_parameters() -> None:
    x = torch.randint(0, 256, (3, 3, 40, 24), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    a, info = A.fixed_degrade(x, seed=5, artifact="motion_blur", severity=1.0)
    b, _ = A.fixed_degrade(x, seed=5, artifact="motion_blur", severity=1.0)
    assert torch.equal(a, b) and not torch.equal(a, x) and info["strength"].tolist() == [1.0] * 3
    assert A.severity_label("pixelation", 1.0) == "r=16 px"
    assert A.severity_label("motion_blur", 0.0) == "k=8 px"
    assert A.severity_label("out_of_focus", 1.0) == "σ=2.00"
    assert A.image_tag(["a/b.png"], "lq", 0.5) == A.image_tag(["a/b.png"], "lq", 0.5) != A.image_tag(["c"], "lq", 0.5)


# ------------------------------------------------------------------------------------------ figure pages


def test_models_name_variants_as_the_book_does() -> None:
    from rlqlib.book.figure_page import models

    assert models("cal", "bm", "rlq", "fire2") == {"CAL": "cal", "BM": "bm", "RLQ": "rlq", "FIRe²": "fire2"}
    assert list(models("bm", "tad", tad="BM+TAD").items()) == [("BM", "bm"), ("BM+TAD", "tad")]


def test_cluster_size_shares_sort_the_clusters_and_keep_no_pose_apart(tmp_path) -> None:
    from rlqlib.book.pages.pose_clusters import OURS, cluster_size_shares

    shares = cluster_size_shares(np.array([0, 1, 2, 2, 2, 3, 3, 1, 2, 0]), 3, tmp_path / "absent.csv")
    assert list(shares.columns) == [OURS] and list(shares.index) == ["no pose", "#1", "#2", "#3"]
    assert shares[OURS].tolist() == [20.0, 40.0, 20.0, 20.0]


def test_artifact_panel_groups_queries_and_pairs_models() -> None:
    from rlqlib.book.pages.artifacts import artifact_panel
    from rlqlib.book.figure_page import QueryMatches

    art = ["none", "none", "pixelation", "pixelation", "motion_blur", "motion_blur", "out_of_focus", "out_of_focus"]
    q = pd.DataFrame({"artifact": art})
    valid = np.ones(8, bool)
    hit = {"RLQ": [1, 1, 1, 1, 0, 1, 1, 1], "CAL": [1, 0, 1, 0, 0, 0, 1, 1], "BM": [1, 1, 1, 0, 0, 0, 1, 0]}
    top1 = {n: A.Top1(np.zeros(8, int), np.array(h, bool), valid) for n, h in hit.items()}
    b = artifact_panel(QueryMatches(q, q, top1, "cc"))
    assert b.n_lq == 6 and b.accuracy["RLQ"].loc["motion_blur", "top1"] == 50.0
    assert (b.worst["worst artifact"] == "motion_blur").all()
    assert b.versus.loc[("RLQ − CAL", "all queries"), "Δ top-1 (points)"] == pytest.approx(100 * 3 / 8)
    assert b.versus.loc[("RLQ − BM", "LQ queries"), "n"] == 6
    glue = b.glue()
    assert glue["fig7b_n_lq"] == 6 and {"fig7b_d_cal_all", "fig7b_v_bm_lq"} <= set(glue)
    assert [r["claim"] for r in b.summary()][-2:] == ["RLQ beats CAL (CC top-1, all queries)",
                                                     "RLQ beats BM (CC top-1, all queries)"]
