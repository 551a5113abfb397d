"""Run cache on SynthCC-smoke: trains once then loads, teacher dependency, files, CLI train/evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlqlib import cli
from rlqlib.engine import hashing as H
from rlqlib.engine import teacher as Tc
from rlqlib.engine import runs as R


def test_trains_once_then_loads(smoke_config, tmp_path):
    cfg = smoke_config("cal", epochs=1)
    before = dict(R.RUN_COUNTS)
    first = R.run_or_load(cfg, tmp_path)
    assert first.trained and R.RUN_COUNTS["trained"] == before["trained"] + 1
    assert first.dir.name == f"cal-{first.hash[:12]}" and first.dir.parent == tmp_path
    for name in ("config.json", "metrics.json", "metrics.jsonl", "checkpoint.pt", "provenance.json"):
        assert (first.dir / name).is_file(), name
    prov = json.loads((first.dir / "provenance.json").read_text())
    assert {"git_sha", "torch", "numpy", "device", "seed", "threads", "wall_s"} <= set(prov)
    assert not any("host" in k for k in prov)
    mtime = (first.dir / "checkpoint.pt").stat().st_mtime_ns
    second = R.run_or_load(smoke_config("cal", epochs=1, progress=True), tmp_path)
    assert not second.trained and R.RUN_COUNTS["loaded"] == before["loaded"] + 1
    assert R.RUN_COUNTS["trained"] == before["trained"] + 1  # not trained again
    assert (second.dir / "checkpoint.pt").stat().st_mtime_ns == mtime
    assert second.metrics == first.metrics and second.config == first.config
    assert len(second.history()) == 1
    model = second.load_model()
    assert not model.training
    # another hyper-parameter is another run
    third = R.run_or_load(smoke_config("cal", epochs=1, **{"schedule.lr": 1e-3}), tmp_path)
    assert third.trained and third.dir != first.dir
    # the ledger the book runner counts from: trained, loaded, trained — and counting from an offset
    counts, end = R.ledger_counts(tmp_path)
    assert counts == {"trained": 2, "loaded": 1} and end == (tmp_path / R.LEDGER).stat().st_size
    R.run_or_load(smoke_config("cal", epochs=1), tmp_path)
    assert R.ledger_counts(tmp_path, end)[0] == {"trained": 0, "loaded": 1}


def test_ledger_counts_only_the_tagged_lines(tmp_path, monkeypatch):
    R._record(tmp_path, "trained", tmp_path / "a")  # untagged: another process
    monkeypatch.setenv(R.TAG_ENV, "page-1")
    R._record(tmp_path, "loaded", tmp_path / "b")
    R._record(tmp_path, "trained", tmp_path / "c")
    monkeypatch.setenv(R.TAG_ENV, "page-2")
    R._record(tmp_path, "loaded", tmp_path / "d")
    assert R.ledger_counts(tmp_path)[0] == {"trained": 2, "loaded": 2}
    assert R.ledger_counts(tmp_path, tag="page-1")[0] == {"trained": 1, "loaded": 1}
    assert R.ledger_counts(tmp_path, tag="page-2")[0] == {"trained": 0, "loaded": 1}
    lines = (tmp_path / R.LEDGER).read_text().splitlines()
    assert '"tag"' not in lines[0] and '"tag": "page-1"' in lines[1]


def test_tad_student_trains_its_teacher_first(smoke_config, tmp_path):
    cfg = smoke_config("tad", epochs=1)
    run = R.run_or_load(cfg, tmp_path)
    teachers = sorted(tmp_path.glob("teacher-*"))
    assert len(teachers) == 1 and (teachers[0] / "metrics.json").is_file()
    teacher = R.load_run(teachers[0])
    assert run.config.tad.teacher_hash == teacher.hash
    assert teacher.config.data.train_set == "external"
    # the teacher is shared: a second TAD variant loads it instead of training it again
    before = dict(R.RUN_COUNTS)
    R.run_or_load(smoke_config("ss-mse+tad", epochs=1), tmp_path)
    assert R.RUN_COUNTS["loaded"] == before["loaded"] + 1 and R.RUN_COUNTS["trained"] == before["trained"] + 1
    assert len(sorted(tmp_path.glob("teacher-*"))) == 1


def test_students_of_every_seed_share_one_teacher_unless_asked_for_their_own(smoke_config, tmp_path):
    """tad.teacher_seed: 0 (default) = the authors' one teacher for every student seed; None = the student's seed."""
    seed0 = R.run_or_load(smoke_config("tad", epochs=1), tmp_path)
    seed1 = R.run_or_load(smoke_config("tad", seed=1, epochs=1), tmp_path)
    assert seed1.config.tad.teacher_hash == seed0.config.tad.teacher_hash
    assert [R.load_run(d).config.runtime.seed for d in tmp_path.glob("teacher-*")] == [0]
    own = R.run_or_load(smoke_config("tad", seed=1, epochs=1, **{"tad.teacher_seed": None}), tmp_path)
    teacher = R.load_run(next(d for d in tmp_path.glob("teacher-*") if d.name.endswith(own.config.tad.teacher_hash[:12])))
    assert teacher.config.runtime.seed == 1 and own.hash != seed1.hash
    assert Tc.teacher_config(smoke_config("tad", seed=2, **{"tad.teacher_seed": 5})).runtime.seed == 5
    # the key is hashed only where it changes the teacher, so the runs of seed 0 (and own-seed runs) kept theirs
    assert "teacher_seed" not in H.hashed_dict(seed0.config)["tad"]
    assert "teacher_seed" not in H.hashed_dict(own.config)["tad"]
    assert H.hashed_dict(seed1.config)["tad"]["teacher_seed"] == 0


def test_cli_train_and_evaluate(synthcc_smoke, tmp_path, capsys):
    args = ["train", "--variant", "id-only", "--preset", "smoke", "--root", str(synthcc_smoke), "--seed", "1",
            "--out", str(tmp_path), "--set", "schedule.epochs=1", "--set", "runtime.progress=false"]
    assert cli.main(args) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path and (run_dir / "metrics.json").is_file()
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert cli.main(["evaluate", "--run", str(run_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["eval"]) == {"general", "cc", "sc"}
    assert out["eval"]["cc"]["top1"] == pytest.approx(saved["eval"]["cc"]["top1"])
    assert cli.main(["train", "--variant", "nope", "--root", str(synthcc_smoke), "--out", str(tmp_path)]) != 0


def test_parse_sets():
    assert cli._parse_sets(["schedule.epochs=3", "runtime.amp=bf16", "data.cloth_aug=false", "x=[1, 2]"]) == {
        "schedule.epochs": 3, "runtime.amp": "bf16", "data.cloth_aug": False, "x": [1, 2]}
    with pytest.raises(SystemExit):
        cli._parse_sets(["novalue"])


def test_resumed_run_counts_its_earlier_epochs_in_wall_time(smoke_config, tmp_path):
    """A run killed after epoch 1 and finished by run_or_load reports the whole run's training time."""
    from rlqlib.engine import train as T

    cfg = smoke_config("cal", epochs=2)
    target = R.run_dir_for(Tc.resolve(cfg), tmp_path)
    with pytest.raises(T.TrainingInterrupted):
        T.fit(Tc.resolve(cfg), target, stop_after_epoch=1)
    assert R.earlier_epochs(target)[0] == 1
    first_s = json.loads((target / "metrics.jsonl").read_text().splitlines()[0])["seconds"]
    run = R.run_or_load(cfg, tmp_path)
    assert run.dir == target and run.trained
    prov = json.loads((target / "provenance.json").read_text())
    seconds = [json.loads(line)["seconds"] for line in (target / "metrics.jsonl").read_text().splitlines()]
    assert prov["resumed_epochs"] == 1 and seconds[0] == first_s
    assert prov["wall_s"] >= round(sum(seconds), 2) - 0.01
    assert R.earlier_epochs(tmp_path / "absent") == (0, 0.0)
