"""The run cache: every training run lives in ``<runs_dir>/<variant>-<hash12>/``, keyed by its resolved config.

:func:`run_or_load` trains a configuration once and loads it afterwards::

    run = run_or_load(make("cpu", "rlq", root="data/synthcc-cpu"), "runs")
    run.metrics["eval"]["cc"]["top1"], run.dir, run.trained

A run folder holds ``config.json`` (the resolved config, its hash and the data fingerprint), ``metrics.jsonl``
(one line per epoch), ``metrics.json`` (final; its presence marks the run as complete), ``checkpoint.pt``
(resumable; an interrupted run continues from it on the next call) and ``provenance.json`` (git SHA and
dirty flag, package versions, device, seed, threads, world size, wall time; no host name, no timestamps).

Concurrency: the run cache may be shared by several processes and machines (a shared filesystem). A run is trained
under its lock, ``<run folder>/.lock`` (:mod:`rlqlib.engine.locks`): a second process asking for it waits for the
holder and then loads the finished run, or, if the holder died, takes the lock over and resumes from the last
checkpoint. ``metrics.json`` is written last and atomically, so a folder that holds it is a finished run.

A TAD student depends on its teacher run (variant ``teacher``, :func:`rlqlib.engine.teacher.teacher_config`): the
teacher is trained or loaded first and its hash becomes part of the student's resolved config. A run with
``model.init = "synthcc"`` (its teacher too, if it has one) depends likewise on the shared pretraining run
(variant ``pretrain``, :func:`rlqlib.engine.pretrain.pretrain_config`), trained or loaded before it.
:data:`RUN_COUNTS` counts the runs trained and loaded in this process, and every call appends a line
``{"event": "trained"|"loaded", "run": "<folder name>"[, "overrides": {...}][, "tag": ...]}`` to
``<runs_dir>/ledger.jsonl`` (:func:`ledger_counts`); ``overrides`` are what the caller asked for (``asked``), which
the book's run plan replays at another preset. :func:`record_planned` writes ``{"event": "planned", "variant": ...,
"seed": ..., "overrides": {...}, "skipped_at": preset}`` for a run a caller skips at this scale but would train at
another. The book runner counts a notebook's runs from the ledger: it sets :data:`TAG_ENV` for the notebook's
kernel, every line that kernel writes carries the tag, and only those lines are counted — so ``rlq train`` processes
filling the same runs folder at the same time do not inflate a notebook's counts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rlqlib.engine import config as C
from rlqlib.engine import hashing as H
from rlqlib.engine import locks as L
from rlqlib.engine import pretrain as Pt
from rlqlib.engine import teacher as Tc
from rlqlib.engine import train as T

log = logging.getLogger(__name__)

RUN_COUNTS: dict[str, int] = {"trained": 0, "loaded": 0}
LEDGER = "ledger.jsonl"
TAG_ENV = "RLQ_LEDGER_TAG"  # environment variable: a tag written on this process's ledger lines


def _append(runs_dir: str | Path, line: dict[str, Any]) -> None:
    """Append one ledger line (rank 0 only; one short write, so concurrent notebooks do not interleave lines),
    tagged with :data:`TAG_ENV` when it is set."""
    if _rank() == 0:
        Path(runs_dir).mkdir(parents=True, exist_ok=True)
        if os.environ.get(TAG_ENV):
            line = {**line, "tag": os.environ[TAG_ENV]}
        with open(Path(runs_dir) / LEDGER, "a") as fh:
            fh.write(json.dumps(line) + "\n")


def _record(runs_dir: str | Path, event: str, run_dir: Path, asked: Mapping[str, Any] | None = None) -> None:
    """Count a trained/loaded run and append its ledger line (with the caller's ``asked`` overrides, if given)."""
    RUN_COUNTS[event] += 1
    line: dict[str, Any] = {"event": event, "run": run_dir.name}
    if asked is not None:
        line["overrides"] = dict(asked)
    _append(runs_dir, line)


def record_planned(runs_dir: str | Path, variant: str, seed: int, overrides: Mapping[str, Any],
                   skipped_at: str) -> None:
    """Declare, on the ledger, a run the caller does not train at this scale (preset ``skipped_at``) but would at
    another (e.g. an external subsample that keeps no image of the smoke set): ``overrides`` as dotted keys with JSON
    values. Nothing is trained or counted; the book's run plan (:mod:`rlqlib.book.plan`) replays the line like a
    trained one at any other preset."""
    _append(runs_dir, {"event": "planned", "variant": variant, "seed": int(seed), "overrides": dict(overrides),
                       "skipped_at": skipped_at})


def ledger_counts(runs_dir: str | Path, start: int = 0, tag: str | None = None) -> tuple[dict[str, int], int]:
    """Runs trained/loaded recorded in ``<runs_dir>/ledger.jsonl`` from byte offset ``start``.

    Args:
        tag: count only the lines with this tag (:data:`TAG_ENV`); None counts every line.

    Returns:
        (``{"trained": n, "loaded": m}``, the ledger's current size, to pass as ``start`` next time).
    """
    path = Path(runs_dir) / LEDGER
    counts = {"trained": 0, "loaded": 0}
    if not path.is_file():
        return counts, 0
    with open(path, "rb") as fh:
        fh.seek(start)
        chunk = fh.read()
    for line in chunk.decode().splitlines():
        entry = json.loads(line)
        if entry.get("event") in counts and (tag is None or entry.get("tag") == tag):
            counts[entry["event"]] += 1
    return counts, start + len(chunk)


@dataclass(frozen=True)
class Run:
    """A finished run.

    Attributes:
        dir: the run folder.
        config: the resolved config.
        hash: its run-cache key (full sha256 hex).
        metrics: the final metrics (``metrics.json``).
        trained: True if this call trained it, False if it was loaded from the cache.
    """

    dir: Path
    config: C.ExperimentConfig
    hash: str
    metrics: dict[str, Any]
    trained: bool

    def load_model(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """The trained model in eval mode (its forward gives the inference feature [f_cal, f_bot])."""
        return T.load_run_model(self.dir, device)

    def history(self) -> list[dict[str, Any]]:
        """Per-epoch records from ``metrics.jsonl``."""
        path = self.dir / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _rank() -> int:
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _git(args: list[str]) -> str | None:
    repo = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def provenance(cfg: C.ExperimentConfig, wall_s: float, resumed_epochs: int = 0) -> dict[str, Any]:
    """Where and with what a run was made (no host name, no timestamps).

    ``wall_s`` is the whole run's training time: for a run resumed after ``resumed_epochs`` epochs, the caller adds
    those epochs' recorded seconds (:func:`earlier_epochs`) to the time of the session that finished it.
    """
    import numpy

    dist = torch.distributed
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    dev = torch.device(cfg.runtime.device)
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" and torch.cuda.is_available() else \
        (platform.processor() or platform.machine())
    status = _git(["status", "--porcelain", "--untracked-files=no"])
    return {
        "git_sha": _git(["rev-parse", "HEAD"]), "git_dirty": bool(status) if status is not None else None,
        "python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
        "device": str(cfg.runtime.device), "device_name": device_name, "amp": cfg.runtime.amp,
        "seed": cfg.runtime.seed, "threads": torch.get_num_threads(), "world_size": world,
        "wall_s": round(wall_s, 2), "resumed_epochs": resumed_epochs,
    }


def earlier_epochs(run_dir: Path) -> tuple[int, float]:
    """Epochs a run folder already holds from earlier sessions, and their recorded seconds (0, 0.0 for a new run)."""
    path = run_dir / "metrics.jsonl"
    if not (run_dir / T.CHECKPOINT).is_file() or not path.is_file():
        return 0, 0.0
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return len(records), float(sum(r.get("seconds", 0.0) for r in records))


def resolve_with_teacher(cfg: C.ExperimentConfig, runs_dir: str | Path = "runs") -> tuple[C.ExperimentConfig,
                                                                                           Run | None]:
    """Resolve ``cfg``, training or loading first the runs it depends on: the shared pretraining run when it starts
    from it (``model.init = "synthcc"``), its teacher run when it distils from one."""
    if Pt.needs_pretrain(cfg):
        run_or_load(Pt.pretrain_config(cfg), runs_dir)
    if not Tc.needs_teacher(cfg):
        return Tc.resolve(cfg), None
    teacher = run_or_load(Tc.teacher_config(cfg), runs_dir)
    return Tc.resolve(cfg, teacher.hash), teacher


def run_dir_for(cfg: C.ExperimentConfig, runs_dir: str | Path = "runs") -> Path:
    """``<runs_dir>/<variant>-<hash12>`` of an already resolved config."""
    return Path(runs_dir) / f"{cfg.variant}-{H.run_hash(cfg)[:12]}"


def load_run(run_dir: str | Path) -> Run:
    """A finished run from its folder (no training)."""
    d = Path(run_dir)
    for name in ("config.json", "metrics.json"):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d} is not a finished run: {name} is missing (train it with `rlq train`)")
    saved = json.loads((d / "config.json").read_text())
    return Run(d, C.from_dict(saved["config"]), saved["hash"], json.loads((d / "metrics.json").read_text()), False)


def run_or_load(cfg: C.ExperimentConfig, runs_dir: str | Path = "runs", asked: Mapping[str, Any] | None = None) -> Run:
    """Train ``cfg`` once (resuming an interrupted attempt) or load the finished run from the cache.

    Safe under concurrency: the run trains under its lock (:mod:`rlqlib.engine.locks`); a process that finds it
    held waits and then loads the finished run, or takes over from a dead holder and resumes from its checkpoint.
    Works unchanged under ``torchrun``: every process calls it; rank 0 takes the lock and writes the files.

    Args:
        cfg: the config (from :func:`rlqlib.engine.presets.make`); its teacher is resolved here.
        runs_dir: the cache folder.
        asked: the overrides the caller asked for (dotted keys, JSON values), written on the run's ledger line so
            that the book's run plan replays exactly them (:func:`rlqlib.book.experiments.train` passes them).

    Returns:
        The :class:`Run`; ``run.trained`` tells whether this call trained it (also counted in
        :data:`RUN_COUNTS`).
    """
    cfg, teacher = resolve_with_teacher(cfg, runs_dir)
    h = H.run_hash(cfg)
    d = Path(runs_dir) / f"{cfg.variant}-{h[:12]}"
    run = _finished(d, h)
    if run is None:
        with _trainer_lock(d) as lock:
            run = _finished(d, h)  # another process finished it while this one waited
            if run is None:
                return _train(cfg, h, d, runs_dir, teacher, lock, asked)
    _record(runs_dir, "loaded", d, asked)
    log.info("loaded run %s", d)
    return run


def _finished(d: Path, h: str) -> Run | None:
    """The finished run in ``d`` (its ``metrics.json`` is there), checked against the hash ``h``; None if unfinished."""
    if not (d / "metrics.json").is_file():
        return None
    run = load_run(d)
    if run.hash != h:
        raise RuntimeError(f"{d}/config.json has hash {run.hash}, expected {h} (hash prefix collision or an "
                           "edited file); delete the folder to retrain")
    return run


@contextlib.contextmanager
def _trainer_lock(d: Path) -> Iterator[L.Lock | None]:
    """The run's lock (:mod:`rlqlib.engine.locks`), taken by rank 0 (the other ranks of a torchrun job wait for it at a
    barrier); None on the other ranks."""
    if _rank() != 0:
        torch.distributed.barrier()
        yield None
        return
    d.mkdir(parents=True, exist_ok=True)
    with L.hold(d / L.LOCK, on_wait=lambda holder: log.warning(  # a warning: the wait may be long
            "run %s is being trained by %s; waiting", d, holder.describe() if holder else "another process")) as lock:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()
        yield lock


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    """Write ``obj`` to ``path`` whole or not at all (a temporary file of this process, then ``os.replace``)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _train(cfg: C.ExperimentConfig, h: str, d: Path, runs_dir: str | Path, teacher: Run | None,
           lock: L.Lock | None, asked: Mapping[str, Any] | None) -> Run:
    """Train (or resume) the resolved ``cfg`` into ``d`` under ``lock``; the trainer stops after an epoch whose lock
    another process has taken over (:class:`rlqlib.engine.locks.LockLost`)."""
    if _rank() == 0:
        record = {"hash": h, "data_fingerprint": H.data_fingerprint(cfg), "config": C.to_dict(cfg)}
        _write_json(d / "config.json", record)
    resumed, earlier_s = earlier_epochs(d)
    t0 = time.perf_counter()
    init_dir = run_dir_for(Tc.resolve(Pt.pretrain_config(cfg)), runs_dir) if Pt.needs_pretrain(cfg) else None
    metrics = T.fit(cfg, d, resume=True, teacher_dir=teacher.dir if teacher else None, init_dir=init_dir,
                    on_epoch=lock.check if lock is not None else None)
    if _rank() == 0:
        prov = provenance(cfg, earlier_s + time.perf_counter() - t0, resumed)
        _write_json(d / "provenance.json", prov)
    _record(runs_dir, "trained", d, asked)
    log.info("trained run %s", d)
    return Run(d, cfg, h, metrics, True)
