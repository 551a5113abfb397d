"""The claims machinery of the results pages: checks, tables, the seed noise and the page set-up (no runs)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rlqlib.book import checks as K
from rlqlib.book import noise as N
from rlqlib.book import tables as T
from rlqlib.book import verdicts as V
from rlqlib.book.page import headline_protocol, seeds_text


def long_table(values: dict[str, list[float]], protocol: str = "cc", map_offset: float = 1.0) -> pd.DataFrame:
    """Results in the shape of experiments.results: method → top-1 per seed; mAP = top-1 − ``map_offset``."""
    rows = [{"method": m, "seed": s, "protocol": protocol, "top1": v, "top5": v, "mAP": v - map_offset}
            for m, vs in values.items() for s, v in enumerate(vs)]
    return pd.DataFrame(rows)


PAPER = pd.DataFrame({"top1": ["40.0", "37.0", "45.0", "45.2"], "mAP": ["20.0", "19.0", "22.0", "22.0"]},
                     index=pd.Index(["A", "A+x", "B", "B+x"], name="method"))


# --------------------------------------------------------------------------------------------- ablation


def test_ablation_rows_verdicts_glue_and_record():
    long = long_table({"A": [40.0], "A+x": [30.0], "B": [50.0], "B+x": [50.4]})
    claims = [("ax", "A+x", "A", "-"), ("bx", "B+x", "B", "=")]
    checked = K.ablation(claims, long, PAPER, "cc", "t0", seed_std=2.0)  # one seed: noise 2 · 2.0 = 4 points
    t = checked.table
    assert list(t.columns) == ["comparison", "paper claims", "metric", "ours Δ", "ours std", "seeds", "paper Δ",
                               "verdict"]
    assert list(t["comparison"]) == ["A+x − A"] * 2 + ["B+x − B"] * 2
    assert list(t["metric"]) == ["R-1", "mAP", "R-1", "mAP"]
    assert list(t["verdict"]) == ["agrees", "agrees", "agrees", "agrees"]  # −10 beyond 4; +0.4 within: no effect
    assert t["paper Δ"].tolist() == pytest.approx([-3.0, -1.0, 0.2, 0.0])
    g = checked.glue
    assert g["t0_ax_top1"] == "−10.0" and g["t0_ax_top1_paper"] == "−3.0" and g["t0_ax_top1_verdict"] == "**agrees**"
    assert g["t0_bx_mAP"] == "+0.4" and g["t0_agree"] == "2 of 2" and g["t0_differ"] == "0"
    assert list(checked.record.columns) == list(V.CLAIM_COLUMNS)
    assert checked.record["claim"][0] == "A+x − A, R-1 (paper: lower)"
    assert checked.shown["ours std"][0] == ""  # NaN shown empty


def test_ablation_no_effect_claim_differs_beyond_the_noise():
    long = long_table({"B": [50.0], "B+x": [56.0]})
    checked = K.ablation([("bx", "B+x", "B", "=")], long, PAPER, "cc", "t0")  # no measured spread: 1 point
    assert set(checked.table["verdict"]) == {"differs"}


def test_ablation_not_run_gives_not_run_verdicts():
    checked = K.ablation([("ax", "A+x", "A", "-")], None, PAPER, "cc", "t0")
    assert set(checked.table["verdict"]) == {"not run"} and set(checked.table["seeds"]) == {0}
    assert checked.glue["t0_ax_top1"] == "n/a" and checked.glue["t0_ax_top1_paper"] == "−3.0"
    assert checked.glue["t0_agree"] == "0 of 1"


def test_interaction_is_a_seed_paired_difference_of_differences():
    long = long_table({"A": [40.0, 42.0], "A+x": [38.0, 41.0], "B": [50.0, 50.0], "B+x": [55.0, 54.0]})
    gap = K.interaction(long, PAPER, ("B+x", "B"), ("A+x", "A"), "t0")
    # per seed: (5 − (−2)) = 7, (4 − (−1)) = 5 → mean 6, std √2; paper: 0.2 − (−3) = 3.2
    assert gap.table.loc["R-1", "ours"] == pytest.approx(6.0)
    assert gap.table.loc["R-1", "ours std"] == pytest.approx(math.sqrt(2))
    assert gap.table.loc["R-1", "paper"] == pytest.approx(3.2) and gap.table.loc["R-1", "verdict"] == "agrees"
    assert gap.glue["t0_gap_top1"] == "+6.0" and gap.record is None


# --------------------------------------------------------------------------------------------- differences


def _paper_long() -> pd.Series:
    frame = pd.DataFrame({"method": ["X", "Y", "X", "Y"], "dataset": ["LTCC", "LTCC", "PRCC", "PRCC"],
                          "protocol": ["cc"] * 4, "top1": ["45.0", "40.0", "60.0", ""]})
    return K.paper_values(frame)


def test_differences_rows_glue_and_record_against_the_reference_dataset():
    long = pd.concat([long_table({"X": [50.0, 52.0, 54.0], "Y": [45.0, 46.0, 47.0]}),
                      long_table({"X": [70.0], "Y": [60.0]}, "general")])
    claims = [("xy", "X", "Y", "cc"), ("xz", "X", "Z", "cc"), ("xy_sc", "X", "Y", "sc")]
    checked = K.differences(claims, long, _paper_long(), ("LTCC", "PRCC"), "t0", ref="LTCC", label_protocol=True,
                            paper_sep=" and ")
    t = checked.table
    assert list(t.index) == ["X − Y (CC)", "X − Z (CC)", "X − Y (SC)"]
    assert t.loc["X − Y (CC)", "ours"] == "+6.0\u00a0±\u00a01.0" and t.loc["X − Y (CC)", "n"] == 3
    assert t.loc["X − Y (CC)", "paper LTCC"] == "+5.0" and t.loc["X − Y (CC)", "paper PRCC"] == "–"
    assert t.loc["X − Y (CC)", "verdict vs LTCC"] == "agrees" and t.loc["X − Y (CC)", "verdict vs PRCC"] == "n/a"
    assert t.loc["X − Z (CC)", "ours"] == "not run" and t.loc["X − Y (SC)", "ours"] == "no SC protocol here"
    g = checked.glue
    assert g["t0_xy"] == "+6.0 ± 1.0" and g["t0_xy_paper"] == "+5.0 (LTCC)" and g["t0_xy_verdict"] == "**agrees**"
    assert g["t0_xz_paper"] == "not reported" and "t0_xy_verdict_ltcc" not in g
    assert list(checked.record["paper"]) == ["+5.0 (LTCC)", "– (LTCC)", "– (LTCC)"]


def test_differences_per_dataset_names_baselines_and_suffix():
    long = long_table({"x": [50.0], "y": [45.0]}, "general")
    paper = pd.Series([45.0, 40.0, 30.0, 20.0],
                      index=pd.MultiIndex.from_tuples([("vx", "A"), ("vy", "A"), ("vx", "B"), ("vy", "B")]))
    checked = K.differences([("k", "x", "y", "general"), ("best", "x", "y", "general")], long, paper, ("A", "B"),
                            "t0", seed_std=1.0, paper_names={"x": "vx", "y": "vy"},
                            paper_baselines={"best": {"A": 50.0, "B": 25.0}}, record_suffix=" (general)")
    t = checked.table
    assert list(t["paper A"]) == ["+5.0", "-5.0"] and list(t["paper B"]) == ["+10.0", "+5.0"]
    assert checked.glue["t0_k_verdict_a"] == "**agrees**" and checked.glue["t0_best_verdict_a"] == "**differs**"
    assert checked.glue["t0_k_paper"] == "+5.0 (A), +10.0 (B)"
    assert list(checked.record["claim"]) == ["x − y (general)"] * 4  # one row per claim and dataset


def test_sign_checks_and_tally():
    long = long_table({"F": [50.0, 51.0], "G": [45.0, 47.0]})
    rows = K.sign_checks([("k", "F", "G", -1.0)], long, ("cc", "general"), metrics=("top1",))
    assert list(rows["protocol"]) == ["cc", "general"]
    assert list(rows["verdict"]) == ["differs", "n/a"] and rows["text"][1] == "no General protocol here"
    assert rows["text"][0] == "+4.5 ± 0.7"
    assert K.tally_text(pd.Series(["agrees", "agrees", "n/a"])) == "2 agrees, 0 differs, 0 inconclusive"


# --------------------------------------------------------------------------------------------- seed noise


def test_measure_seed_noise_pools_the_table2_differences_it_has():
    long = long_table({"RLQ": [50.0, 52.0, 57.0], "BM": [45.0, 46.0, 47.0], "CAL": [40.0, 40.0, 40.0]})
    noise = N.measure_seed_noise(long, 3)
    # RLQ − BM: 5, 6, 10 (std √7); RLQ − CAL: 10, 12, 17 (√13); BM − CAL: 5, 6, 7 (1); the rest are not run
    assert noise["differences"] == 3 and noise["seeds"] == 3
    assert noise["std"] == pytest.approx(math.sqrt((7 + 13 + 1) / 3))
    assert math.isnan(N.measure_seed_noise(long[long["seed"] == 0], 1)["std"])


# --------------------------------------------------------------------------------------------- tables


def test_ablation_table_orders_like_the_paper_and_marks_not_run():
    long = long_table({"B": [50.0], "A": [40.0]})
    table = T.ablation_table(long, PAPER.loc[["A", "B"]], "cc", "ours", "paper")
    assert list(table.index) == ["A", "B"] and table[("ours", "R-1")].tolist() == ["40.0", "50.0"]
    empty = T.ablation_table(None, PAPER, "cc", "ours", "paper")
    assert set(empty[("ours", "mAP")]) == {"not run"}


def test_stack_and_by_source():
    long = long_table({"X": [50.0, 52.0]})
    paper = pd.DataFrame({"method": ["X", "Z", "X"], "dataset": ["LTCC", "LTCC", "PRCC"], "protocol": ["cc"] * 3,
                          "top1": ["45.0", "", "60.0"], "mAP": ["20.0", "", "30.0"]})
    parts = [T.ours_rows(long, "ours"), T.reported_rows(paper, "paper: ")]
    table = T.stack(parts, rows=[("X", "ours"), ("X", "paper: PRCC"), ("Z", "paper: LTCC"), ("Q", "ours")])
    assert list(table.index) == [("X", "ours"), ("X", "paper: PRCC")]  # Z has nothing, Q is not there
    assert table.loc[("X", "ours"), ("CC", "R-1")] == "51.0\u00a0±\u00a01.4"
    wide = T.by_source(T.stack(parts), ["ours", "paper: LTCC"])
    assert list(wide.columns) == [("ours", "CC", "R-1"), ("ours", "CC", "mAP"), ("paper: LTCC", "CC", "R-1"),
                                  ("paper: LTCC", "CC", "mAP")]
    assert wide.loc["Z", ("ours", "CC", "R-1")] == "–"


def test_page_texts():
    assert headline_protocol(["general", "cc"]) == "cc" and headline_protocol(["general"]) == "general"
    assert seeds_text([0]) == "1 seed (0)" and seeds_text([0, 1, 2]) == "3 seeds (0, 1, 2)"
    assert not np.isnan(V.ONE_SEED_NOISE)
