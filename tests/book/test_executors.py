"""The executors of the book's run list: the SLURM path through submitit's local executor (no cluster) trains the same
runs as local workers and reports a failure with its log; the job a cluster is asked for carries the run's resources."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlqlib.book import executors as X
from rlqlib.book import train_plan as TP
from rlqlib.engine import presets as Pr
from rlqlib.engine import resources as Rs

from tests.book.test_train_plan import _planned


def _metrics(runs_dir: Path, run: str) -> dict:
    return json.loads((runs_dir / run / "metrics.json").read_text())


def test_the_slurm_path_trains_what_local_workers_do_and_reports_a_failure(smoke_config, tmp_path):
    cfg = smoke_config("cal", epochs=1)
    broken = smoke_config("cal", epochs=1, dataset="ltcc", **{"data.root": str(tmp_path / "no-such-data")})
    local, slurm = tmp_path / "local", tmp_path / "slurm"
    [done] = TP.train_jobs(TP.jobs(_planned([cfg], local), local), local, workers=1, progress=False)
    jobs = TP.jobs(_planned([cfg, broken], slurm), slurm)
    ok, failed = TP.train_jobs(jobs, slurm, workers=2, progress=False, executor="slurm", cluster="local",
                                 poll_s=0.2)
    assert (done.state, ok.state, failed.state) == ("done", "done", "failed")
    assert ok.worker.startswith("slurm ") and ok.job.run == done.job.run
    assert _metrics(slurm, ok.job.run) == _metrics(local, done.job.run)  # same run, same metrics
    assert failed.log == slurm / TP.LOGS / f"{failed.job.run}.log"
    assert any("no-such-data" in line for line in failed.tail)
    assert list((slurm / "slurm").iterdir())  # submitit's own folder (job pickles and logs) beside the runs


def test_a_slurm_job_runs_its_command_with_the_output_in_the_run_log(tmp_path):
    task = X.Task("demo", lambda threads: [sys.executable, "-c", f"print('threads', {threads})"],
                  tmp_path / "demo.log", Rs.Request(gpus=0, cpus=3, mem_gb=1, minutes=5))
    handle = X.make("slurm", X.Options(folder=tmp_path / "submitit", cluster="debug")).start(task, slot=0)
    assert handle.poll() == 0 and handle.reason() == ""
    assert task.log.read_text().strip() == "threads 3"  # a job's threads are its CPUs


def test_the_sbatch_script_asks_for_the_runs_resources(tmp_path, monkeypatch):
    import submitit.slurm.slurm as submitit_slurm

    monkeypatch.setattr(submitit_slurm.SlurmExecutor, "affinity", staticmethod(lambda: 1))  # no srun here
    cfg = Pr.make("paper", "rlq", root="/data/LTCC_ReID", dataset="ltcc")
    request = Rs.for_config(cfg)
    assert request == Rs.Request(gpus=1, cpus=8, mem_gb=32, minutes=30 + 4 * 60)
    slurm = X.Slurm(X.Options(partition="gpu", folder=tmp_path, cluster="slurm"))
    task = X.Task("rlq-x", list, tmp_path / "x.log", request)
    script = slurm.configured(task)._executor._make_submission_file_text("rlq train", "uid")
    for line in ("--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=8", "--mem=32GB", "--time=270",
                 "--job-name=rlq-rlq-x", "--signal=USR2@90"):  # USR2 before the limit: requeued, resumes
        assert f"#SBATCH {line}" in script, line
    cpu_task = X.Task("cal-y", list, tmp_path / "y.log", Rs.for_config(Pr.make("cpu", "cal")))
    script = slurm.configured(cpu_task)._executor._make_submission_file_text("rlq train", "uid")
    assert "gpus" not in script and "#SBATCH --cpus-per-task=1" in script


def test_resources_follow_the_preset_and_the_device():
    smoke = Rs.for_config(Pr.make("smoke", "cal"))
    cpu = Rs.for_config(Pr.make("cpu", "bm"))
    on_cpu = Rs.for_config(Pr.make("paper", "bm", device="cpu"))
    assert (smoke.gpus, smoke.cpus) == (0, 1) and (cpu.gpus, cpu.cpus) == (0, 1) and on_cpu.gpus == 0
    fire2 = Rs.for_config(Pr.make("paper", "fire2"))  # 80 epochs: a longer limit than 60
    assert fire2.minutes > Rs.for_config(Pr.make("paper", "bm")).minutes


def test_an_unknown_executor_is_named_with_the_choices(tmp_path):
    with pytest.raises(ValueError, match="unknown executor 'pbs'; choose from local, slurm"):
        TP.train_jobs([], tmp_path, executor="pbs")


def _local_task(tmp_path: Path, name: str, command: list[str]) -> X.Task:
    return X.Task(name, lambda threads: command, tmp_path / f"{name}.log", Rs.Request(gpus=0, cpus=1, mem_gb=1,
                                                                                       minutes=5))


def _wait(handle: X.Handle) -> int:
    while (status := handle.poll()) is None:
        time.sleep(0.02)
    return status


def test_a_local_rlq_command_is_forked_with_its_output_and_exit_status(tmp_path):
    executor = X.make("local", X.Options())
    ok = _local_task(tmp_path, "ok", [sys.executable, "-m", "rlqlib.cli", "describe", "--variant", "cal",
                                      "--backbone", "resnet18", "--num-ids", "3", "--num-clothes", "4"])
    bad = _local_task(tmp_path, "bad", [sys.executable, "-m", "rlqlib.cli", "train", "--variant", "cal",
                                        "--preset", "no-such-preset", "--root", str(tmp_path), "--out", str(tmp_path)])
    plain = _local_task(tmp_path, "plain", [sys.executable, "-c", "print('not rlq')"])
    handles = [executor.start(t, slot=0) for t in (ok, bad, plain)]
    assert isinstance(handles[0], X._Forked) and isinstance(handles[2], X._Process)
    assert [_wait(h) for h in handles] == [0, 2, 0]
    assert json.loads(ok.log.read_text())["params"] > 0  # the command's JSON, and nothing else, in its log
    assert "rlq train: error:" in bad.log.read_text() and "no-such-preset" in bad.log.read_text()
    assert plain.log.read_text().strip() == "not rlq"


def test_a_script_without_a_main_guard_can_start_forked_tasks(tmp_path):
    script = tmp_path / "script.py"  # the fork server must not run the caller's script again
    script.write_text(
        "import sys, time\nfrom pathlib import Path\nfrom rlqlib.book import executors as X\n"
        "from rlqlib.engine import resources as Rs\n"
        f"log = Path({str(tmp_path / 'run.log')!r})\n"
        "task = X.Task('t', lambda n: [sys.executable, '-m', 'rlqlib.cli', 'describe', '--variant', 'cal', "
        "'--num-ids', '3', '--num-clothes', '4'], log, Rs.Request(0, 1, 1, 5))\n"
        "h = X.make('local', X.Options()).start(task, 0)\nwhile h.poll() is None: time.sleep(0.02)\n"
        "print('status', h.poll())\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "status 0", done.stderr
    assert "params" in (tmp_path / "run.log").read_text()
