"""The run cache under concurrency (SynthCC-smoke): two processes racing for one run train it once, and a run whose
worker was killed mid-way is resumed from its last checkpoint by the next process that asks for it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from rlqlib.engine import locks as L
from rlqlib.engine import presets as Pr
from rlqlib.engine import runs as R
from rlqlib.engine import teacher as Tc
from tests.engine.polling import until


def _train_cmd(root: Path, out: Path, epochs: int, verbose: bool = False) -> list[str]:
    return [sys.executable, "-m", "rlqlib.cli", *(["-v"] if verbose else []), "train", "--variant", "id-only",
            "--preset", "smoke", "--root", str(root), "--seed", "0", "--out", str(out),
            "--set", f"schedule.epochs={epochs}"]


def _events(runs_dir: Path) -> list[tuple[str, str]]:
    lines = (runs_dir / R.LEDGER).read_text().splitlines()
    return [(e["event"], e["run"]) for e in map(json.loads, lines)]


def test_two_processes_racing_for_one_run_train_it_once(synthcc_smoke, tmp_path):
    cfg = Pr.make("smoke", "id-only", root=str(synthcc_smoke), seed=0, **{"schedule.epochs": 2})
    run_dir = R.run_dir_for(Tc.resolve(cfg), tmp_path)
    run_dir.mkdir(parents=True)
    gate = L.acquire(run_dir / L.LOCK)  # held here until both processes wait for it: they certainly race
    logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
    handles = [open(log, "w") for log in logs]
    procs = [subprocess.Popen(_train_cmd(synthcc_smoke, tmp_path, 2, verbose=True), stdout=subprocess.PIPE,
                              stderr=fh, text=True) for fh in handles]
    try:
        assert until(lambda: all("waiting" in log.read_text() for log in logs), 300.0)  # "… is being trained by …"
    finally:
        gate.release()
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for fh in handles:
        fh.close()
    assert [p.returncode for p in procs] == [0, 0]
    assert [out.strip().splitlines()[-1] for out in outs] == [str(run_dir)] * 2
    assert _events(tmp_path) == [("trained", run_dir.name), ("loaded", run_dir.name)]  # one trained, one loaded
    assert json.loads((run_dir / "provenance.json").read_text())["resumed_epochs"] == 0
    assert not (run_dir / L.LOCK).exists()


def test_a_killed_workers_run_is_resumed_by_the_next_process(synthcc_smoke, tmp_path):
    epochs = 12
    worker = subprocess.Popen(_train_cmd(synthcc_smoke, tmp_path, epochs), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)

    def checkpoints() -> list[Path]:
        return list(tmp_path.glob("id-only-*/checkpoint.pt"))

    until(lambda: worker.poll() is not None or bool(checkpoints()), 600.0)
    run_dir = checkpoints()[0].parent if checkpoints() else None
    worker.send_signal(signal.SIGKILL)  # after its first checkpoint, before the last epoch
    worker.wait()
    assert run_dir is not None and (run_dir / L.LOCK).is_file() and not (run_dir / "metrics.json").exists()
    cut_at = len((run_dir / "metrics.jsonl").read_text().splitlines())
    assert 1 <= cut_at < epochs

    cfg = Pr.make("smoke", "id-only", root=str(synthcc_smoke), seed=0, **{"schedule.epochs": epochs})
    run = R.run_or_load(cfg, tmp_path)  # the dead worker's lock is taken over at once (same host, pid gone)
    assert run.trained and run.dir == run_dir and len(run.history()) == epochs
    prov = json.loads((run_dir / "provenance.json").read_text())
    assert prov["resumed_epochs"] >= cut_at  # it continued from the checkpoint, not from scratch
    assert not (run_dir / L.LOCK).exists()
    assert not R.run_or_load(cfg, tmp_path).trained
