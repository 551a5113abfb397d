"""Training the book's planned runs in parallel: the same runs and metrics as one at a time, teachers first,
failures reported without stopping the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlqlib.book import plan as P
from rlqlib.book import train_plan as TP
from rlqlib.engine import hashing as H
from rlqlib.engine import presets as Pr
from rlqlib.engine import runs as R
from rlqlib.engine import teacher as Tc


def _planned(cfgs, runs_dir) -> list[P.Planned]:
    """Planned rows of unresolved configs, each TAD student's teacher before it (as plan.targets gives them)."""
    out = []
    for cfg in cfgs:
        after = ()
        if Tc.needs_teacher(cfg):
            teacher_cfg = Tc.teacher_config(cfg)
            after = (R.run_dir_for(Tc.resolve(teacher_cfg), runs_dir).name,)
            out.append(P.Planned(teacher_cfg, after[0], ("page",), {}))
        out.append(P.Planned(cfg, P.target_dir(cfg, runs_dir).name, ("page",), {}, after))
    return out


def _metrics(runs_dir: Path, run: str) -> dict:
    return json.loads((runs_dir / run / "metrics.json").read_text())


def test_the_command_rebuilds_the_planned_config(smoke_config):
    cfg = smoke_config("tad", seed=2, epochs=1, **{"tad.subsample": 0.5, "weights.triplet": 0.5})
    cmd = TP.command(TP.Job("tad-x", cfg), "runs", threads=1)
    sets = dict(cmd[i + 1].split("=", 1) for i, a in enumerate(cmd) if a == "--set")
    assert sets["runtime.threads"] == "1" and sets["tad.subsample"] == "0.5"
    named = dict(zip(cmd[5::2], cmd[6::2]))  # --variant, --preset, --root, --dataset, --seed, --out
    again = Pr.make(named["--preset"], named["--variant"], root=named["--root"], dataset=named["--dataset"],
                    seed=int(named["--seed"]), **{k: json.loads(v) for k, v in sets.items()})
    assert H.run_hash(Tc.resolve(again, "t")) == H.run_hash(Tc.resolve(cfg, "t"))


def test_two_workers_train_what_one_does_teacher_first_and_survive_a_failure(smoke_config, tmp_path):
    cfgs = [smoke_config("tad", epochs=1), smoke_config("cal", epochs=1)]
    broken = smoke_config("cal", epochs=1, dataset="ltcc", **{"data.root": str(tmp_path / "no-such-data")})
    two, one = tmp_path / "two", tmp_path / "one"

    jobs = TP.jobs(_planned([*cfgs, broken], two), two)
    assert [j.config.variant for j in jobs] == ["teacher", "tad", "cal", "cal"] and jobs[1].after == (jobs[0].run,)
    outcomes = {o.job.run: o for o in TP.train_jobs(jobs, two, workers=2, progress=False)}
    teacher, student, cal, failed = (outcomes[j.run] for j in jobs)
    assert [o.state for o in (teacher, student, cal)] == ["done"] * 3 and failed.state == "failed"
    assert teacher.ended <= student.started  # the student waited for its teacher
    assert {teacher.worker, cal.worker} == {"0", "1"}  # the first two jobs ran side by side
    assert failed.log.is_file() and any("no-such-data" in line for line in failed.tail)

    ok = [j for j in jobs if j.run != failed.job.run]
    assert all(o.state == "done" for o in TP.train_jobs(TP.jobs(_planned(cfgs, one), one), one, workers=1,
                                                         progress=False))
    for job in ok:  # same folders, same metrics
        assert _metrics(two, job.run) == _metrics(one, job.run)
    assert TP.jobs(_planned(cfgs, two), two) == []  # nothing left to do


def test_a_student_of_a_failed_teacher_is_not_started(smoke_config, tmp_path):
    cfg = smoke_config("tad", epochs=1, dataset="ltcc", **{"data.root": str(tmp_path / "no-such-data")})
    teacher, student = TP.train_jobs(TP.jobs(_planned([cfg], tmp_path), tmp_path), tmp_path, progress=False)
    assert (teacher.state, student.state, student.worker) == ("failed", "failed", None)
    assert teacher.job.run in student.tail[0] and not (tmp_path / student.job.run).exists()


def test_runs_command_reports_failures(tmp_path, capsys):
    from rlqlib import cli

    source = tmp_path / "runs-smoke"
    source.mkdir()
    (source / R.LEDGER).write_text(json.dumps({"event": "planned", "variant": "cal", "seed": 0,
                                               "overrides": {"schedule.epochs": 1}, "tag": "page:1:2"}) + "\n")
    args = ["runs", "--plan", str(source), "--preset", "smoke", "--root", str(tmp_path / "nothing"),
            "--runs-dir", str(tmp_path / "runs"), "--jobs", "2", "--quiet"]
    assert cli.main(args) == 1
    out, err = capsys.readouterr()
    assert "1 to train, 1 at a time (local)" in out and "0 of 1 runs trained, 1 failed" in out
    assert "failed; log:" in err and str(tmp_path / "runs" / "logs") in err


def test_jobs_of_some_pages_include_the_runs_they_depend_on(smoke_config, tmp_path):
    cal, teacher, tad = _planned([smoke_config("cal"), smoke_config("tad")], tmp_path)
    cal, tad = (P.Planned(p.config, p.run, (page,), {}, p.after) for p, page in ((cal, "a"), (tad, "b")))
    planned = [cal, teacher, tad]
    assert [j.run for j in TP.jobs(planned, tmp_path, only=["b"])] == [teacher.run, tad.run]
    assert [j.run for j in TP.jobs(planned, tmp_path, only=["a"])] == [cal.run]
    (tmp_path / teacher.run).mkdir()
    (tmp_path / teacher.run / "metrics.json").write_text("{}")  # a finished teacher: nothing to wait for
    assert [(j.run, j.after) for j in TP.jobs(planned, tmp_path, only=["b"])] == [(tad.run, ())]


def test_a_job_everything_waits_for_is_the_bottleneck(smoke_config):
    cfg = smoke_config("cal")
    pre, teacher = TP.Job("pre", cfg), TP.Job("teacher", cfg, ("pre",))
    tad, cal = TP.Job("tad", cfg, ("teacher",)), TP.Job("cal", cfg, ("pre",))
    assert TP.bottleneck(pre, [teacher, tad, cal])  # tad waits for it through the teacher
    assert not TP.bottleneck(teacher, [tad, cal])  # cal can run beside the teacher
    assert not TP.bottleneck(pre, [teacher, TP.Job("free", cfg)])
    assert TP.bottleneck(cal, [])  # the last job: nothing else to run


def test_costly_runs_rank_first_and_a_tad_student_outranks_its_base_model(smoke_config):
    ranks = {v: TP.cost_rank(smoke_config(v)) for v in ("id-only", "cal", "bm", "tad", "rlq", "teacher", "fire2")}
    assert ranks["rlq"] == ranks["tad"] == 5 > ranks["bm"] == 3 > ranks["teacher"] == 2 > ranks["cal"] == 0
    assert ranks["id-only"] == ranks["fire2"] == 0
