"""Verdicts: the one rule and its three noise models, on hand-computed cases."""

import math

import pytest

from rlqlib.book import verdicts as V


@pytest.mark.parametrize("delta, noise, expected, out", [
    (2.0, 1.0, 5.0, "agrees"), (-2.0, 1.0, 5.0, "differs"), (1.0, 1.0, 5.0, "inconclusive"),  # |delta| = noise
    (-2.0, 1.0, -0.1, "agrees"), (2.0, 1.0, 0.0, "inconclusive"), (math.nan, 1.0, 5.0, "inconclusive"),
    (2.0, math.nan, 5.0, "inconclusive"), (2.0, 1.0, math.nan, "inconclusive"), (0.1, 0.0, 1.0, "agrees"),
])
def test_decide(delta, noise, expected, out):
    assert V.decide(delta, noise, expected) == out
    assert out in V.VERDICTS


def test_over_seeds_agrees_when_same_sign_beyond_the_noise():
    # noise = 2 · 1.0 / sqrt(3) = 1.155
    assert V.over_seeds(3.0, 1.0, 5.3, 3) == "agrees"
    assert V.over_seeds(-3.0, 1.0, -0.4, 3) == "agrees"


def test_over_seeds_differs_when_opposite_sign_beyond_the_noise():
    assert V.over_seeds(-3.0, 1.0, 5.3, 3) == "differs"
    assert V.over_seeds(2.0, 0.5, -1.0, 3) == "differs"


def test_over_seeds_inconclusive_within_the_noise_of_the_mean_difference():
    assert V.over_seeds(1.1, 1.0, 5.3, 3) == "inconclusive"  # 1.1 <= 1.155
    assert V.over_seeds(1.2, 1.0, 5.3, 3) == "agrees"  # 1.2 > 1.155: the noise is 2 standard errors
    assert V.over_seeds(-1.0, 1.0, 5.3, 4) == "inconclusive"  # exactly at the noise 2 · 1 / 2


def test_over_seeds_single_seed_uses_one_point():
    assert V.over_seeds(0.9, float("nan"), 5.3, 1) == "inconclusive"
    assert V.over_seeds(1.0, float("nan"), 5.3, 1) == "inconclusive"
    assert V.over_seeds(1.5, float("nan"), 5.3, 1) == "agrees"
    assert V.over_seeds(-1.5, float("nan"), 5.3, 1) == "differs"
    assert V.over_seeds(1.5, float("nan"), 5.3, 3) == "agrees"  # NaN std with several seeds: also 1 point


def test_over_seeds_inconclusive_when_the_paper_reports_no_difference():
    assert V.over_seeds(10.0, 0.1, 0.0, 3) == "inconclusive"


def test_over_seeds_nan_and_zero_spread():
    nan = float("nan")
    assert V.over_seeds(nan, 1.0, 5.3, 3) == "inconclusive" and V.over_seeds(3.0, 1.0, nan, 3) == "inconclusive"
    assert V.over_seeds(0.4, 0.0, 5.3, 2) == "inconclusive"  # identical seeds: the 0.5-point floor, not zero noise
    assert V.over_seeds(0.6, 0.0, 5.3, 2) == "agrees"


def test_one_run() -> None:
    assert V.one_run(3.0, 2.0, 1.0) == "inconclusive"  # within 2 SE
    assert V.one_run(5.0, 2.0, 1.0) == "agrees"
    assert V.one_run(-5.0, 2.0, 1.0) == "differs"
    assert V.one_run(0.5, float("nan"), 1.0) == "inconclusive"  # one-seed rule: <= 1 point
    assert V.one_run(1.5, float("nan"), -2.0) == "differs"
    assert V.one_run(0.8, 0.2, 1.0) == "inconclusive"  # 2 SE = 0.4 < the 1-point floor
    assert V.one_run(1.2, 0.2, 1.0) == "agrees"


def test_shares_by_hand():
    # 20% vs 40% of 100 each: pooled 30%, noise 2·100·sqrt(0.3·0.7·0.02) = 12.96 points
    assert V.shares(20, 100, 40, 100) == "agrees"
    assert V.shares(28, 100, 40, 100) == "inconclusive"  # pooled 34%: noise 13.4 > 12 points
    assert V.shares(60, 100, 40, 100) == "differs"  # pooled 50%: noise 14.1 < 20
    assert V.shares(60, 100, 40, 100, expected_sign=+1) == "agrees"
    assert V.shares(0, 5, 0, 7) == "inconclusive"
    assert V.shares(float("nan"), 0, 40, 100) == "inconclusive"


# ------------------------------------------------------------------------------------------ the claims record


def test_fmt_delta():
    assert V.fmt_delta(3.94, 3.21, 3) == "+3.9 ± 3.2"
    assert V.fmt_delta(-0.96, 1.4, 1) == "−1.0"  # one seed: no spread shown
    assert V.fmt_delta(2.0, math.nan, 3) == "+2.0" and V.fmt_delta(math.nan) == "–"


def test_claims_formats_numbers_and_keeps_text():
    t = V.claims(["a", "b", "c"], [1.25, "best k = 15", -2.0], [2.0, "yes", math.nan], ["agrees", "n/a", "differs"],
                 std=[0.5, math.nan, 1.0], se=[math.nan, math.nan, 0.44], seeds=[3, 1, 1])
    assert list(t.columns) == list(V.CLAIM_COLUMNS)
    assert t["ours"].tolist() == ["+1.2 ± 0.5", "best k = 15", "−2.0 (SE 0.4)"]
    assert t["paper"].tolist() == ["+2.0", "yes", "–"] and t["seeds"].tolist() == [3, 1, 1]


def test_save_and_load_claims_round_trip(tmp_path):
    t = V.claims(["RLQ − BM (CC)"], [3.9], "+1.2 (LTCC)", ["agrees"], std=[3.2], seeds=[3])
    V.save_claims(t, "tab2_main", "synthcc", "cpu", tmp_path)
    V.save_claims(t.assign(verdict="differs"), "tab2_main", "synthcc", "smoke", tmp_path)  # another setting
    table, absent = V.load_claims(["tab1_datasets", "tab2_main", "tab8_components"], "synthcc", "cpu", tmp_path)
    assert absent == ["tab1_datasets", "tab8_components"]
    assert table.to_dict("records") == [{"page": "tab2_main", "claim": "RLQ − BM (CC)", "ours": "+3.9 ± 3.2",
                                         "paper": "+1.2 (LTCC)", "seeds": "3", "verdict": "agrees"}]
    empty, absent = V.load_claims(["x"], "synthcc", "cpu", tmp_path)
    assert empty.empty and list(empty.columns) == ["page", *V.CLAIM_COLUMNS] and absent == ["x"]


def test_save_claims_rejects_bad_tables(tmp_path):
    t = V.claims(["c"], [1.0], "+", ["agrees"])
    with pytest.raises(ValueError, match=r"lacks columns \['verdict'\]"):
        V.save_claims(t.drop(columns="verdict"), "p", "d", "s", tmp_path)
    with pytest.raises(ValueError, match="'maybe'"):
        V.save_claims(t.assign(verdict="maybe"), "p", "d", "s", tmp_path)


def test_over_seeds_single_seed_reads_the_measured_seed_spread():
    # one seed, measured spread 2.0 points: noise = 2 · 2.0 = 4.0
    assert V.over_seeds(3.9, float("nan"), 5.3, 1, seed_std=2.0) == "inconclusive"
    assert V.over_seeds(4.1, float("nan"), 5.3, 1, seed_std=2.0) == "agrees"
    assert V.over_seeds(-4.1, float("nan"), 5.3, 1, seed_std=2.0) == "differs"
    assert V.over_seeds(1.5, float("nan"), 5.3, 1, seed_std=0.1) == "agrees"  # never below the 1-point rule
    assert V.over_seeds(0.9, float("nan"), 5.3, 1, seed_std=0.1) == "inconclusive"
    # several seeds: the difference's own spread, the measured one is not used
    assert V.over_seeds(1.2, 1.0, 5.3, 3, seed_std=5.0) == "agrees"


def test_pooled_std_is_the_root_mean_square_of_the_finite_stds():
    assert V.pooled_std([3.0, 4.0, float("nan")]) == pytest.approx(math.sqrt((9 + 16) / 2))
    assert math.isnan(V.pooled_std([float("nan")])) and math.isnan(V.pooled_std([]))


def test_seed_noise_is_the_pooled_std_and_needs_two_seeds_and_every_run():
    got = V.seed_noise([1.0, 3.0, float("nan")], 3)
    assert got["std"] == pytest.approx(math.sqrt(5.0)) and got["seeds"] == 3 and got["differences"] == 2
    assert got["page"] == V.SEED_NOISE_PAGE and got["missing"] == 0
    assert "4.5 points" in V.one_seed_rule(got)  # read beyond 2 · 2.236
    again = V.seed_noise([1.0, 3.0], 1)  # one seed: nothing measured
    assert math.isnan(again["std"]) and "fixed 1 point" in V.one_seed_rule(again)
    absent = V.seed_noise([], 3, missing=21)  # Table 2's runs not (all) in the cache: nothing measured, and said so
    assert math.isnan(absent["std"]) and "fixed 1 point" in V.one_seed_rule(absent)
    assert "21 of them are not in the run cache" in V.one_seed_rule(absent)
