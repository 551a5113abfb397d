"""The notebook-facing table functions of :mod:`rlqlib.book.experiments` on hand-made fake runs, and the paper tables
the main-claim pages read (``rlqlib/reported``), checked against the paper's own stated differences.

A fake run only needs what the table functions read: ``.metrics["eval"]``, ``.config.runtime.seed`` and ``.dir``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from rlqlib.book import experiments as X
from rlqlib.book import reported


@dataclass(frozen=True)
class FakeRun:
    """Stands in for :class:`rlqlib.engine.runs.Run`: metrics as fractions, like ``metrics.json``."""

    seed: int
    eval: dict
    dir: Path = Path("runs/fake")
    config: SimpleNamespace = field(init=False)
    metrics: dict = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", SimpleNamespace(runtime=SimpleNamespace(seed=self.seed)))
        object.__setattr__(self, "metrics", {"eval": self.eval})


def fake(seed: int, cc: tuple[float, float], general: tuple[float, float] = (0.5, 0.25)) -> FakeRun:
    """A run with CC and general (top1, mAP) fractions; top5 = top1 + 0.1; extra keys as metrics.json has."""
    ev = {p: {"top1": t, "top5": t + 0.1, "top10": 0.99, "mAP": m, "num_queries": 7.0}
          for p, (t, m) in {"cc": cc, "general": general}.items()}
    return FakeRun(seed, ev, Path(f"runs/fake-{seed}"))


@pytest.fixture
def runs() -> dict[str, list[FakeRun]]:
    # CC top-1 in %: A = 10, 20, 30 (mean 20, std 10); B = 5, 10, 30 (mean 15); A − B = 5, 10, 0 (mean 5, std 5)
    return {
        "A": [fake(0, (0.10, 0.04)), fake(1, (0.20, 0.06)), fake(2, (0.30, 0.08))],
        "B": [fake(0, (0.05, 0.02)), fake(1, (0.10, 0.03)), fake(2, (0.30, 0.10))],
    }


# --------------------------------------------------------------------------------------------- results


def test_results_is_one_row_per_method_seed_protocol_in_percent(runs):
    long = X.results(runs)
    assert list(long.columns) == ["method", "seed", "protocol", "top1", "top5", "mAP"]
    assert len(long) == 2 * 3 * 2
    row = long[(long["method"] == "B") & (long["seed"] == 1) & (long["protocol"] == "cc")].iloc[0]
    assert row["top1"] == pytest.approx(10.0) and row["top5"] == pytest.approx(20.0)
    assert row["mAP"] == pytest.approx(3.0)
    assert "top10" not in long and "num_queries" not in long  # only METRICS are kept
    assert list(long["method"].unique()) == ["A", "B"]


def test_results_keeps_only_the_asked_protocols(runs):
    long = X.results(runs, protocols=["general"])
    assert set(long["protocol"]) == {"general"} and len(long) == 6
    assert long["top1"].tolist() == pytest.approx([50.0] * 6)


def test_results_names_the_run_and_its_protocols_when_one_is_missing(runs):
    with pytest.raises(KeyError, match=r"fake-0.*\['sc'\].*\['cc', 'general'\]"):
        X.results(runs, protocols=["cc", "sc"])


def test_results_of_no_runs_is_an_empty_table_with_the_columns():
    long = X.results({})
    assert long.empty and list(long.columns) == ["method", "seed", "protocol", "top1", "top5", "mAP"]


# --------------------------------------------------------------------------------------------- aggregate


def test_aggregate_mean_sample_std_and_count(runs):
    agg = X.aggregate(X.results(runs))
    assert list(agg.columns) == ["method", "protocol", "metric", "mean", "std", "n"]
    assert len(agg) == 2 * 2 * 3  # methods × protocols × metrics
    a = agg.set_index(["method", "protocol", "metric"])
    assert a.loc[("A", "cc", "top1"), "mean"] == pytest.approx(20.0)
    assert a.loc[("A", "cc", "top1"), "std"] == pytest.approx(10.0)  # ddof=1: sqrt((100 + 0 + 100) / 2)
    b = [5.0, 10.0, 30.0]
    assert a.loc[("B", "cc", "top1"), "mean"] == pytest.approx(15.0)
    assert a.loc[("B", "cc", "top1"), "std"] == pytest.approx(math.sqrt(sum((v - 15) ** 2 for v in b) / 2))
    assert a.loc[("A", "cc", "mAP"), "mean"] == pytest.approx(6.0)
    assert a.loc[("A", "general", "top1"), "std"] == pytest.approx(0.0)
    assert (agg["n"] == 3).all()
    assert list(agg["method"].unique()) == ["A", "B"]


def test_aggregate_one_seed_has_nan_std():
    agg = X.aggregate(X.results({"only": [fake(4, (0.25, 0.125))]}))
    row = agg[(agg["protocol"] == "cc") & (agg["metric"] == "top1")].iloc[0]
    assert row["mean"] == pytest.approx(25.0) and np.isnan(row["std"]) and row["n"] == 1


# --------------------------------------------------------------------------------------------- mean_std


def test_mean_std_cells_rows_and_columns(runs):
    table = X.mean_std(X.results(runs))
    assert list(table.index) == ["A", "B"]
    assert list(table.columns) == [("cc", "top1"), ("cc", "mAP"), ("general", "top1"), ("general", "mAP")]
    assert table.loc["A", ("cc", "top1")] == "20.0 ± 10.0"
    assert table.loc["A", ("cc", "mAP")] == "6.0 ± 2.0"
    assert table.loc["B", ("general", "top1")] == "50.0 ± 0.0"


def test_mean_std_one_seed_shows_the_mean_only_and_digits_apply():
    long = X.results({"only": [fake(0, (0.12345, 0.5))]})
    table = X.mean_std(long, metrics=("top1",), digits=2)
    assert list(table.columns) == [("cc", "top1"), ("general", "top1")]
    assert table.loc["only", ("cc", "top1")] == "12.35"


def test_mean_std_keeps_method_order_of_the_input(runs):
    table = X.mean_std(X.results({"Z": runs["B"], "A": runs["A"]}))
    assert list(table.index) == ["Z", "A"]


# --------------------------------------------------------------------------------------------- paired_delta


def test_paired_delta_against_hand_computed_values(runs):
    long = X.results(runs)
    mean, std, n = X.paired_delta(long, "A", "B", "cc")
    assert (mean, std, n) == (pytest.approx(5.0), pytest.approx(5.0), 3)  # A − B = 5, 10, 0
    mean, std, n = X.paired_delta(long, "A", "B", "cc", metric="mAP")  # 2, 3, −2
    assert mean == pytest.approx(1.0) and std == pytest.approx(math.sqrt((1 + 4 + 9) / 2)) and n == 3
    mean, std, _ = X.paired_delta(long, "B", "A", "cc")
    assert mean == pytest.approx(-5.0) and std == pytest.approx(5.0)


def test_paired_delta_uses_only_the_seeds_both_methods_have(runs):
    long = X.results({"A": runs["A"], "B": runs["B"][:2], "C": [fake(2, (0.5, 0.5))]})
    assert X.paired_delta(long, "A", "B", "cc") == (pytest.approx(7.5), pytest.approx(math.sqrt(12.5)), 2)
    mean, std, n = X.paired_delta(long, "C", "A", "cc")  # one shared seed (2): 50 − 30
    assert mean == pytest.approx(20.0) and np.isnan(std) and n == 1


def test_paired_delta_names_a_missing_method(runs):
    with pytest.raises(KeyError, match="'Q'"):
        X.paired_delta(X.results(runs), "Q", "B", "cc")
    with pytest.raises(KeyError, match="'sc'"):
        X.paired_delta(X.results(runs), "A", "B", "sc")


# --------------------------------------------------------------------------------------------- verdict


# --------------------------------------------------------------------------------------------- paper tables

MAIN_TABLES = ("tab2_main", "tab3_deepchange", "tab4_last", "tab8_components", "fire2", "tab5_cal_fragility",
               "tab6_attribute_branch", "tab7_tad_external", "tab9_tad_variants", "tab10_external")


@pytest.mark.parametrize("name", MAIN_TABLES)
def test_reported_tables_name_their_source_and_are_in_range(name):
    assert reported.source(name).startswith("Source: ")
    df = reported.load(name)
    assert {"method", "dataset", "protocol", "top1", "mAP"} <= set(df.columns)
    values = pd.to_numeric(pd.concat([df["top1"], df["mAP"]]).replace("", np.nan)).dropna()
    assert len(values) and values.between(0, 100).all()
    assert not df.duplicated(["method", "dataset", "protocol"]).any()


def _value(df: pd.DataFrame, method: str, dataset: str, protocol: str, metric: str) -> float:
    sel = df[(df["method"] == method) & (df["dataset"] == dataset) & (df["protocol"] == protocol)]
    assert len(sel) == 1, (method, dataset, protocol)
    return float(sel.iloc[0][metric])


def test_table2_matches_its_own_increments_over_the_base_model():
    """Table 2 prints '+x' after CAP/TAD/RLQ: x = method − Base Model. The transcription must reproduce them."""
    t2 = reported.load("tab2_main")
    increments = {  # (method, dataset, protocol): (Δtop1, ΔmAP) as printed
        ("CAP", "LTCC", "cc"): (2.3, 0.4), ("CAP", "LTCC", "general"): (-1.0, 0.5),
        ("CAP", "PRCC", "cc"): (2.2, 0.9),
        ("TAD", "LTCC", "cc"): (2.3, 1.3), ("TAD", "LTCC", "general"): (0.4, 0.4),
        ("TAD", "PRCC", "cc"): (3.2, 1.7),
        ("RLQ", "LTCC", "cc"): (5.3, 1.2), ("RLQ", "LTCC", "general"): (1.2, 0.4),
        ("RLQ", "PRCC", "cc"): (6.0, 3.8),
    }
    for (method, ds, protocol), (d1, dm) in increments.items():
        for metric, d in (("top1", d1), ("mAP", dm)):
            got = _value(t2, method, ds, protocol, metric) - _value(t2, "BM", ds, protocol, metric)
            assert got == pytest.approx(d, abs=1e-9), (method, ds, protocol, metric)


def test_table8_agrees_with_table2_on_the_shared_rows():
    t2, t8 = reported.load("tab2_main"), reported.load("tab8_components")
    for m8, m2 in (("BM", "BM"), ("BM+G+P", "CAP"), ("BM+TAD", "TAD"), ("BM+G+P+TAD", "RLQ")):
        for ds in ("LTCC", "PRCC"):
            for metric in ("top1", "mAP"):
                assert _value(t8, m8, ds, "cc", metric) == _value(t2, m2, ds, "cc", metric), (m8, ds, metric)
    params = t8.drop_duplicates("method").set_index("method")["params_m"]
    assert params.to_dict() == {"BM": "45.9", "BM+G": "45.9", "BM+P": "69.3", "BM+G+P": "69.3",
                                "BM+TAD": "45.9", "BM+G+TAD": "45.9", "BM+P+TAD": "69.3", "BM+G+P+TAD": "69.3"}


def test_dataset_options_file_applies_to_every_config(tmp_path):
    s = X.Setting(preset="smoke", dataset="synthcc", root=str(tmp_path))
    assert X.config(s, "cap").data.gender_csv is None
    (tmp_path / X.OPTIONS_FILE).write_text('{"data.gender_csv": "/a/g.csv", "tad.external_root": "/celeb"}')
    cfg = X.config(s, "rlq", 1)
    assert cfg.data.gender_csv == "/a/g.csv" and cfg.tad.external_root == "/celeb" and cfg.runtime.seed == 1
    assert X.config(s, "rlq", **{"data.gender_csv": "/b.csv"}).data.gender_csv == "/b.csv"  # call overrides win
    (tmp_path / X.OPTIONS_FILE).write_text('{"data.no_such_field": 1}')
    with pytest.raises(KeyError, match="rlq-options.json"):
        X.config(s, "cap")
    (tmp_path / X.OPTIONS_FILE).write_text('["data.gender_csv"]')
    with pytest.raises(ValueError, match="dotted config keys"):
        X.config(s, "cap")


def test_describe_runs_has_its_columns_even_without_runs():
    assert list(X.describe_runs({"TAD teacher": []}).columns) == ["method", "seed", "run", "trained_now", "minutes"]


# --------------------------------------------------------------------------------------------- the run cache, read only


def _fake_finished(cfg, runs_dir: Path) -> str:
    """Write a finished run folder for an already resolved config (what run_or_load would leave); its hash."""
    from rlqlib.engine import config as C
    from rlqlib.engine import hashing as H
    from rlqlib.engine import runs as R

    h = H.run_hash(cfg)
    d = R.run_dir_for(cfg, runs_dir)
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"hash": h, "config": C.to_dict(cfg)}))
    (d / "metrics.json").write_text(json.dumps({"eval": {"cc": {"top1": 0.5, "mAP": 0.25}}}))
    return h


def test_cached_finds_finished_runs_and_their_teachers_without_training(tmp_path):
    from rlqlib.engine import teacher as Tc

    s = X.Setting("smoke", "synthcc", str(tmp_path / "data"), "cpu", str(tmp_path / "runs"))
    assert X.cached(s, "bm", [0]) is None and X.cached(s, "tad", [0]) is None  # nothing there
    _fake_finished(Tc.resolve(X.config(s, "bm", 0)), Path(s.runs_dir))
    assert [r.config.runtime.seed for r in X.cached(s, "bm", [0])] == [0]
    assert X.cached(s, "bm", [0, 1]) is None  # seed 1 missing: not all there
    student = X.config(s, "tad", 0)
    teacher_hash = _fake_finished(Tc.resolve(Tc.teacher_config(student)), Path(s.runs_dir))
    assert X.cached(s, "tad", [0]) is None  # the teacher is there, the student is not
    _fake_finished(Tc.resolve(student, teacher_hash), Path(s.runs_dir))
    (tad,) = X.cached(s, "tad", [0])
    assert tad.config.tad.teacher_hash == teacher_hash
    (teacher,) = X.teachers({"TAD": [tad], "BM": X.cached(s, "bm", [0])})
    assert teacher.hash == teacher_hash and teacher.config.variant == "teacher"
    assert list(X.describe_teachers({"TAD": [tad]})["method"]) == ["TAD teacher"]
    assert not (Path(s.runs_dir) / "ledger.jsonl").exists()  # reading the cache records nothing


def test_describe_configs_shows_what_the_overrides_change(tmp_path):
    s = X.Setting("smoke", "synthcc", str(tmp_path), "cpu", str(tmp_path / "runs"))
    table = X.describe_configs(s, "bm", {"no aug": {"data.cloth_aug": False}, "BM": {}})
    assert list(table.index) == ["no aug", "BM"] and list(table["cloth aug"]) == [False, True]
    assert table.loc["BM", "overrides"] == "(none)" and "triplet" in table.loc["BM", "terms"]


def test_run_model_is_loaded_once_per_checkpoint_and_device_and_embed_reuses_it(tmp_path, monkeypatch):
    from rlqlib.engine import train as T

    loads = []

    def load(run_dir, device):
        loads.append((run_dir, device))
        return torch.nn.Flatten()  # (N,3,H,W) → (N, 3·H·W)

    monkeypatch.setattr(T, "load_run_model", load)
    X._loaded_model.cache_clear()
    (tmp_path / T.CHECKPOINT).write_bytes(b"weights")
    runtime = SimpleNamespace(amp="none", device="cpu")
    run = SimpleNamespace(dir=tmp_path, config=SimpleNamespace(runtime=runtime))
    first = X.run_model(run, "cpu")
    assert X.run_model(run, torch.device("cpu")) is first and len(loads) == 1
    os.utime(tmp_path / T.CHECKPOINT, ns=(1, 1))  # a retrained run: another checkpoint
    assert X.run_model(run, "cpu") is not first and len(loads) == 2
    monkeypatch.setattr(X, "run_features", lambda model, images, rt, dev: model(images.float()))
    s = X.Setting("smoke", "synthcc", str(tmp_path), "cpu", str(tmp_path / "runs"))
    images = torch.arange(2 * 3 * 2 * 2, dtype=torch.uint8).reshape(2, 3, 2, 2)
    a = X.embed(run, images, s, "a")
    b = X.embed(run, images.flip(0), s, "b")
    assert len(loads) == 2  # two feature sets, no new load
    torch.testing.assert_close(a, images.flatten(1).float())
    torch.testing.assert_close(b, a.flip(0))
    X._loaded_model.cache_clear()
