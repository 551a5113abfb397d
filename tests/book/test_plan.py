"""The book's run plan: a smoke book's runs replayed at another preset, looked up in a target run cache."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rlqlib.engine import config as C
from rlqlib.engine import presets as Pr
from rlqlib.engine import pretrain as Pt
from rlqlib.engine import teacher as Tc
from rlqlib.book import plan as P
from rlqlib.engine import runs as R


@pytest.fixture(scope="module")
def source(smoke_config, tmp_path_factory) -> Path:
    """A smoke run cache as two pages would leave it: page-a trains CAL and a TAD student (and its teacher),
    page-b loads CAL again and trains CAL with a higher learning rate."""
    runs = tmp_path_factory.mktemp("runs-smoke")
    mp = pytest.MonkeyPatch()
    for page, jobs in (("page-a", [("cal", {}), ("tad", {})]), ("page-b", [("cal", {}), ("cal", {"schedule.lr": 1e-3})])):
        mp.setenv(R.TAG_ENV, f"{page}:1:2")
        for variant, extra in jobs:
            R.run_or_load(smoke_config(variant, epochs=1, **extra), runs)
    mp.undo()
    return runs


def test_overrides_are_what_a_page_set_beyond_preset_and_variant(smoke_config):
    cfg = C.to_dict(smoke_config("bm", seed=3, **{"data.cloth_aug": False, "terms": ["id_cal"]}))
    assert P.overrides(json.loads(json.dumps(cfg))) == {"data.cloth_aug": False, "terms": ["id_cal"]}
    assert P.overrides(C.to_dict(Pr.make("smoke", "bm", root="/elsewhere", seed=1, device="cuda"))) == {}


def test_requests_read_pages_from_the_ledger_tags(source):
    req = P.requests(source)
    pages = {(r.config["variant"], r.page) for r in req.itertuples()}
    assert pages == {("cal", "page-a"), ("teacher", "page-a"), ("tad", "page-a"), ("cal", "page-b")}
    assert len(req) == 5  # CAL once per page, the new-LR CAL on page-b


def test_plan_replays_the_runs_at_the_target_preset(source, smoke_config, synthcc_smoke, tmp_path):
    # target: the same preset (any preset works the same way), in an empty run cache
    table = P.plan(source, "smoke", "synthcc", str(synthcc_smoke), tmp_path)
    assert table["variant"].tolist() == ["cal", "teacher", "tad", "cal"]
    assert table["pages"].tolist() == ["page-a, page-b", "page-a", "page-a", "page-b"]
    assert json.loads(table["overrides"].iloc[3]) == {"schedule.epochs": 1, "schedule.lr": 1e-3}
    assert set(table["state"]) == {"to do"} and table["minutes"].isna().all()
    # the folders are exactly where run_or_load puts these configs (the student's teacher resolved)
    tad = smoke_config("tad", epochs=1)
    teacher = R.run_or_load(Tc.teacher_config(tad), tmp_path)
    assert table["run"].iloc[1] == teacher.dir.name
    assert table["run"].iloc[2] == R.run_dir_for(Tc.resolve(tad, teacher.hash), tmp_path).name
    # now the teacher is done: its own estimate, and the cost class's for the untrained one-branch runs
    again = P.plan(source, "smoke", "synthcc", str(synthcc_smoke), tmp_path)
    assert again["state"].tolist() == ["to do", "done", "to do", "to do"]
    assert again["minutes"].iloc[1] > 0 and math.isnan(again["minutes"].iloc[0])
    n = teacher.config.schedule.epochs  # the teacher's own schedule
    assert again["epochs"].tolist() == ["0/1", f"{n}/{n}", "0/1", "0/1"]
    (tmp_path / table["run"].iloc[0]).mkdir()
    (tmp_path / table["run"].iloc[0] / "checkpoint.pt").write_bytes(b"")
    assert P.plan(source, "smoke", "synthcc", str(synthcc_smoke), tmp_path)["state"].iloc[0] == "started"
    assert P.summary(again) == {"done": 1, "started": 0, "to do": 3, "runs": 4, "minutes_left": 0.0,
                                "unestimated": 3}


def test_plan_needs_an_executed_book(tmp_path):
    with pytest.raises(FileNotFoundError, match="make book PRESET=smoke"):
        P.requests(tmp_path)


def test_book_plan_command(source, synthcc_smoke, tmp_path, capsys):
    from rlqlib.book import runner as book

    assert book.main(["plan", "--from", str(source), "--preset", "smoke", "--root", str(synthcc_smoke),
                      "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert sum(line.lstrip().startswith("to do") for line in out.splitlines()) == 4 and "page-a, page-b" in out
    assert "4 runs at preset smoke: 0 done, 0 started, 4 to do" in out
    assert book.main(["plan", "--from", str(tmp_path / "none")]) == 1


def test_a_started_run_counts_only_its_epochs_left(smoke_config, synthcc_smoke, tmp_path):
    from rlqlib.engine import train as T

    source, target = tmp_path / "runs-smoke", tmp_path / "runs"
    cfg = smoke_config("cal", epochs=2)
    R.run_or_load(cfg, source)
    R.run_or_load(smoke_config("cal", epochs=2, seed=1), target)  # the variant's estimate
    whole = json.loads(next(target.glob("cal-*/provenance.json")).read_text())["wall_s"] / 60
    with pytest.raises(T.TrainingInterrupted):
        T.fit(Tc.resolve(cfg), R.run_dir_for(Tc.resolve(cfg), target), stop_after_epoch=1)
    row = P.plan(source, "smoke", "synthcc", str(synthcc_smoke), target).iloc[0]
    assert (row["state"], row["epochs"]) == ("started", "1/2")
    assert row["minutes"] == pytest.approx(whole / 2)


def _drop_recorded_overrides(runs: Path) -> None:
    """Rewrite a ledger as it was before the overrides were recorded."""
    ledger = runs / R.LEDGER
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    ledger.write_text("".join(json.dumps({k: v for k, v in e.items() if k != "overrides"}) + "\n"
                              for e in lines if e["event"] != "planned"))


def test_plan_replays_what_a_page_asked_for_and_declared(synthcc_smoke, tmp_path, monkeypatch):
    from rlqlib.book import experiments as X

    source, root = tmp_path / "runs-smoke", str(synthcc_smoke)
    s = X.Setting("smoke", "synthcc", root, "cpu", str(source))
    monkeypatch.setenv(R.TAG_ENV, "fig7_analysis:1:2")
    # (a) k = 5 is the smoke preset's own pose_k: the config alone cannot tell it was asked for
    X.train(s, "bm+p", [0], **{"data.pose_k": 5, "epochs": 1})
    # (b) a run the page skips at this scale (no smoke image kept) but trains at the target preset
    X.declare(s, "tad", [0], **{"tad.subsample": 0.08})
    monkeypatch.delenv(R.TAG_ENV)
    assert [e["event"] for e in map(json.loads, (source / R.LEDGER).read_text().splitlines())] == ["trained", "planned"]

    table = P.plan(source, "cpu", "synthcc", root, tmp_path / "runs")
    # the cpu preset's runs start from the shared pretraining run: it comes first; the declared student's teacher
    # comes before the student
    assert table["variant"].tolist() == ["pretrain", "bm+p", "teacher", "tad"]
    assert set(table["pages"]) == {"fig7_analysis"} and set(table["state"]) == {"to do"}
    asked = {"data.pose_k": 5, "schedule.epochs": 1}
    assert json.loads(table["overrides"].iloc[1]) == asked
    assert json.loads(table["overrides"].iloc[3]) == {"tad.subsample": 0.08}
    cpu = Pr.make("cpu", "bm+p", root=root, seed=0, device="cpu", **asked)
    assert cpu.data.pose_k == 5 and table["run"].iloc[1] == P.target_dir(cpu, tmp_path).name
    assert table["run"].iloc[0] == R.run_dir_for(Pt.pretrain_config(cpu), tmp_path).name
    tad = Pr.make("cpu", "tad", root=root, seed=0, device="cpu", **{"tad.subsample": 0.08})
    assert table["run"].iloc[3] == P.target_dir(tad, tmp_path).name
    assert table["run"].iloc[2] == R.run_dir_for(Tc.resolve(Tc.teacher_config(tad)), tmp_path).name
    # at the preset it was skipped at, the declared run (and its teacher) is not part of the plan
    assert P.plan(source, "smoke", "synthcc", root, tmp_path / "runs")["variant"].tolist() == ["bm+p"]

    # a ledger written before the overrides were recorded: k = 5 is lost (the cpu preset's k), nothing declared
    _drop_recorded_overrides(source)
    old = P.plan(source, "cpu", "synthcc", root, tmp_path / "runs")
    assert old["variant"].tolist() == ["pretrain", "bm+p"]
    assert json.loads(old["overrides"].iloc[1]) == {"schedule.epochs": 1}


def test_plan_derives_teachers_from_their_students_not_from_the_ledger(synthcc_smoke, tmp_path, monkeypatch):
    """Students of two seeds share one teacher (tad.teacher_seed = 0); a teacher that a smoke book trained for a
    student under another rule (here: its own seed's, as before that key) is not planned, while a page's own request
    for the teacher variant is."""
    from rlqlib.book import experiments as X

    source, root = tmp_path / "runs-smoke", str(synthcc_smoke)
    s = X.Setting("smoke", "synthcc", root, "cpu", str(source))
    monkeypatch.setenv(R.TAG_ENV, "tab2_main:1:2")
    X.train(s, "tad", [0, 1], epochs=1)
    stale = Pr.make("smoke", "tad", root=root, seed=1, **{"tad.teacher_seed": None})
    R.run_or_load(Tc.teacher_config(stale), source)  # trained for a student, as a dependency: no overrides
    monkeypatch.setenv(R.TAG_ENV, "tab10_external:1:2")
    X.train(s, "teacher", [0])
    monkeypatch.delenv(R.TAG_ENV)
    req = P.requests(source)
    assert [(r.variant, r.seed, r.page) for r in req.itertuples()] == [
        ("tad", 0, "tab2_main"), ("tad", 1, "tab2_main"), ("teacher", 0, "tab10_external")]
    table = P.plan(source, "smoke", "synthcc", root, tmp_path / "runs")
    assert table["variant"].tolist() == ["teacher", "tad", "tad"]
    assert table["seed"].tolist() == [0, 0, 1]
    assert table["pages"].iloc[0] == "tab2_main, tab10_external"


def test_asked_overrides_are_dotted_keys_with_the_configs_values(smoke_config):
    from rlqlib.book.experiments import asked

    overrides = {"epochs": 3, "data.image_size": (64, 32), "weights": {"triplet": 2}, "terms": ("id_cal",)}
    cfg = smoke_config("bm", **overrides)
    got = asked(cfg, overrides)
    assert got == {"schedule.epochs": 3, "data.image_size": [64, 32], "weights.triplet": 2.0, "terms": ["id_cal"]}
    again = Pr.make("smoke", "bm", root=cfg.data.root, **json.loads(json.dumps(got)))  # as the plan replays it
    assert again == cfg and P.make_args(again) == P.make_args(cfg)


def test_dependencies_put_the_shared_pretraining_run_before_teacher_and_student():
    """A TAD student starting from the pretrained trunk needs the pretraining run, then its teacher (which starts from
    the same trunk and so needs the pretraining run too); a scratch run needs nothing."""
    from rlqlib.book import plan as P
    from rlqlib.engine import presets, pretrain, teacher

    student = presets.make("smoke", "tad", **{"model.init": "synthcc"})
    deps = P.dependencies(student)
    assert [d.variant for d in deps] == ["pretrain", "teacher"]
    assert deps[0] == pretrain.pretrain_config(student) and deps[1] == teacher.teacher_config(student)
    assert [d.variant for d in P.dependencies(deps[1])] == ["pretrain"]
    assert P.dependencies(deps[0]) == []
    assert P.dependencies(presets.make("smoke", "tad")) == [teacher.teacher_config(presets.make("smoke", "tad"))]


def test_estimates_come_only_from_runs_of_the_target_preset(smoke_config, synthcc_smoke, tmp_path):
    """A run cache holding smoke runs gives no estimate for the cpu plan (their seconds say nothing about cpu runs)."""
    source = tmp_path / "runs-smoke"
    R.run_or_load(smoke_config("cal", epochs=1), source)  # a finished smoke cal run in the same cache
    smoke_rows = P.plan(source, "smoke", "synthcc", str(synthcc_smoke), source)
    cpu_rows = P.plan(source, "cpu", "synthcc", str(synthcc_smoke), source)
    assert smoke_rows["minutes"].notna().all()
    assert cpu_rows["minutes"].isna().all() and P.summary(cpu_rows)["unestimated"] == len(cpu_rows)


def test_book_pretrain_command_trains_the_shared_run_once_and_only_for_presets_that_start_from_it(
        synthcc_smoke_pretrain, tmp_path, capsys, monkeypatch):
    from dataclasses import replace

    from rlqlib.book import runner as book
    from rlqlib.engine import pretrain as Pt

    args = ["pretrain", "--preset", "smoke", "--root", str(synthcc_smoke_pretrain), "--runs-dir", str(tmp_path)]
    assert book.main(args) == 0 and "no shared pretraining run" in capsys.readouterr().out
    assert not list(tmp_path.glob("pretrain-*"))
    smoke = dict(Pr.PRESETS["smoke"])
    monkeypatch.setitem(Pr.PRESETS, "smoke", {**smoke, "model": replace(smoke["model"], init="synthcc")})
    assert book.main(args + ["--quiet"]) == 0
    expect = R.run_dir_for(Pt.pretrain_config(Pr.make("smoke", "cal", root=str(synthcc_smoke_pretrain))), tmp_path)
    assert (expect / "metrics.json").is_file() and "ready" in capsys.readouterr().out
