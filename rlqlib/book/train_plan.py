"""Train the book's planned runs, N at a time, on this machine or a cluster, before its pages execute.

The run plan (:func:`rlqlib.book.plan.targets`) lists every run the book trains at a preset. :func:`jobs` keeps those
not finished yet, one per run folder (a run asked for by several pages, or a teacher shared by several students, is
one job), and :func:`train_jobs` trains them ``workers`` at a time through an executor (:mod:`rlqlib.book.executors`:
``local`` processes, or ``slurm`` jobs through submitit), the runs others wait for first and then the costliest
(:func:`cost_rank`): each job is one ``rlq train`` process (:func:`command`: the same
:func:`rlqlib.engine.runs.run_or_load` path the pages take, with ``runtime.threads`` and, locally with ``gpus``,
``CUDA_VISIBLE_DEVICES`` per worker), a run only once the runs it depends on have finished (a TAD student's teacher,
:func:`rlqlib.book.plan.dependencies`, is its own job). The run's lock (:mod:`rlqlib.engine.locks`) keeps two workers,
two ``make book`` or two clusters' jobs from training the same run. The pages then only load::

    planned = targets("runs-smoke", "cpu", "synthcc", "data/synthcc-cpu", "runs")
    outcomes = train_jobs(jobs(planned, "runs"), "runs", workers=2)   # one Outcome per job, in job order
    print(summary(outcomes))                                           # run, variant, seed, worker, minutes, state

A failed job (its log: ``<runs_dir>/logs/<run>.log``) does not stop the others; a job that depends on a failed one is
not started. ``runtime.threads`` is not part of a run's cache key, so a run trained here is the one a page asks for (at
``threads=1`` CPU float sums may round differently from a run trained with more threads).
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlqlib.book import executors as X
from rlqlib.book.plan import Planned, cost_class, make_args
from rlqlib.data.progress import bar as progress_bar
from rlqlib.engine import config as C
from rlqlib.engine import resources as Rs

log = logging.getLogger(__name__)

LOGS = "logs"  # <runs_dir>/logs/<run>.log: the output of the process that trained the run
TAIL_LINES = 15
#: Keys given as ``--root``, ``--dataset`` and ``--seed``, not as ``--set`` (``rlq train`` requires ``--root``).
_NAMED = ("data.root", "data.dataset", "runtime.seed")


@dataclass(frozen=True)
class Job:
    """One run to train: its folder name in the run cache, its (unresolved) config, the folders of the runs it waits
    for (those of its dependencies not finished yet) and the pages asking for it."""

    run: str
    config: C.ExperimentConfig
    after: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """How a job ended.

    Attributes:
        job: the job.
        state: ``done`` (its ``metrics.json`` is in the cache) or ``failed``.
        worker: where it ran: the worker slot (local), ``slurm <job id>`` (None: never started, a run it depends on
            failed).
        minutes: from its start (slurm: its submission) to its end.
        log: its log file (None: never started).
        tail: the last lines of the log (failed jobs), or why it was not started.
        started, ended: ``time.monotonic()`` when its process started and ended (NaN: never started).
    """

    job: Job
    state: str
    worker: str | None = None
    minutes: float = 0.0
    log: Path | None = None
    tail: tuple[str, ...] = ()
    started: float = float("nan")
    ended: float = float("nan")


def jobs(planned: Sequence[Planned], runs_dir: str | Path, only: Sequence[str] | None = None) -> list[Job]:
    """The planned runs not finished in ``runs_dir``, in plan order (a run's dependencies before it); with ``only``,
    the runs of those pages and the runs they depend on."""
    runs_dir = Path(runs_dir)
    todo = {p.run: p for p in planned if not (runs_dir / p.run / "metrics.json").is_file()}
    keep: set[str] = set()
    stack = [p.run for p in todo.values() if only is None or set(p.pages) & set(only)]
    while stack:
        run = stack.pop()
        if run in todo and run not in keep:
            keep.add(run)
            stack.extend(todo[run].after)
    return [Job(p.run, p.config, tuple(a for a in p.after if a in todo), p.pages)
            for p in todo.values() if p.run in keep]


def command(job: Job, runs_dir: str | Path, threads: int = 1, python: str = sys.executable) -> list[str]:
    """The ``rlq train`` command line that trains ``job`` into ``runs_dir``: its config as
    :func:`rlqlib.book.plan.make_args` (values as JSON), ``runtime.threads`` and step bars, a line every few seconds
    in the run's log (:mod:`rlqlib.data.progress`; neither is part of the run's cache key)."""
    args = make_args(job.config)
    cfg = job.config
    cmd = [python, "-m", "rlqlib.cli", "-v", "train", "--variant", cfg.variant, "--preset", cfg.preset,
           "--root", cfg.data.root, "--dataset", cfg.data.dataset, "--seed", str(cfg.runtime.seed),
           "--out", str(runs_dir)]
    sets = {**{k: v for k, v in args.items() if k not in _NAMED}, "runtime.threads": threads,
            "runtime.progress": True}
    for key, value in sets.items():
        cmd += ["--set", f"{key}={json.dumps(value)}"]
    return cmd


def bottleneck(job: Job, pending: Sequence[Job]) -> bool:
    """Whether every job in ``pending`` waits for ``job``, directly or through another pending job: no other job can
    start while it runs, so :func:`train_jobs` gives it every worker's threads (the shared pretraining run)."""
    waits: dict[str, bool] = {}
    by_run = {j.run: j for j in pending}

    def waits_for(j: Job) -> bool:
        if j.run not in waits:
            waits[j.run] = False  # a cycle cannot occur (plan order); this only guards the recursion
            waits[j.run] = any(a == job.run or (a in by_run and waits_for(by_run[a])) for a in j.after)
        return waits[j.run]

    return all(waits_for(j) for j in pending if j.run != job.run)


def cost_rank(cfg: C.ExperimentConfig) -> int:
    """A coarse rank of a run's cost per epoch (:func:`rlqlib.book.plan.cost_class`: a TAD pass 2, two branches 2, the
    recoloured replica 1): :func:`train_jobs` starts the costly runs first, so that the last runs, which one worker
    finishes while the other idles, are short ones."""
    cls = cost_class(C.to_dict(cfg))
    return 2 * ("+tad" in cls) + 2 * cls.startswith("two-branch") + ("+cloth-aug" in cls)


def _tail(path: Path, n: int = TAIL_LINES) -> tuple[str, ...]:
    text = path.read_text(errors="replace") if path.is_file() else ""
    lines = [line.rstrip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return tuple(lines[-n:])


@dataclass
class _Running:
    job: Job
    handle: X.Handle
    log: Path
    started: float


def train_jobs(todo: Sequence[Job], runs_dir: str | Path, workers: int = 2, threads: int = 1,
               gpus: Sequence[str] | None = None, progress: bool = True, poll_s: float | None = None,
               python: str = sys.executable, executor: str = "local", **options: Any) -> list[Outcome]:
    """Train ``todo`` with ``workers`` runs at a time through ``executor`` (:mod:`rlqlib.book.executors`), each job
    once, after the jobs it depends on; a failure does not stop the others (a job that depends on a failed one is not
    started).

    Args:
        todo: the jobs (:func:`jobs`), distinct run folders.
        runs_dir: the run cache; logs go to ``<runs_dir>/logs/<run>.log``.
        workers: runs at a time (worker slots 0 … workers-1; slurm: jobs queued or running).
        threads: local: ``runtime.threads`` of every process; ``threads × workers`` for a job that every other
            pending job waits for (:func:`bottleneck`: the shared pretraining run), started while nothing else runs.
            slurm: the run's CPUs (:func:`rlqlib.engine.resources.for_config`).
        gpus: local: worker slot ``i`` sees only GPU ``gpus[i % len(gpus)]`` (``CUDA_VISIBLE_DEVICES``).
        progress: one bar of runs (done/running/failed in its postfix; a line per change in a log:
            :mod:`rlqlib.data.progress`).
        poll_s: seconds between looks at the running jobs (None: the executor's, ``poll_s``).
        python: the interpreter that runs ``rlq``.
        executor: a key of :data:`rlqlib.book.executors.EXECUTORS` (``local``, ``slurm``).
        **options: further :class:`rlqlib.book.executors.Options` (``partition``, ``cluster``, ``time_limit_min``,
            ``folder``: default ``<runs_dir>/slurm``).

    Returns:
        One :class:`Outcome` per job, in the order of ``todo``.
    """
    from tqdm.contrib.logging import logging_redirect_tqdm

    runs_dir = Path(runs_dir)
    if len({j.run for j in todo}) != len(todo):
        raise ValueError("train_jobs: two jobs name the same run folder; deduplicate them (jobs() does)")
    opts = X.Options(workers, threads, tuple(gpus or ()), python, **{"folder": runs_dir / "slurm", **options})
    runner = X.make(executor, opts)
    poll_s = runner.poll_s if poll_s is None else poll_s
    (runs_dir / LOGS).mkdir(parents=True, exist_ok=True)
    names = {j.run for j in todo}
    pending = list(todo)
    running: dict[int, _Running] = {}
    ended: dict[str, Outcome] = {}

    def finish(run: _Running, status: int) -> Outcome:
        now = time.monotonic()
        ok = status == 0 and (runs_dir / run.job.run / "metrics.json").is_file()
        tail = () if ok else _tail(run.log) + ((run.handle.reason(),) if run.handle.reason() else ())
        if not ok:
            log.warning("run %s failed (exit status %s); log: %s", run.job.run, status, run.log)
        return Outcome(run.job, "done" if ok else "failed", run.handle.worker, (now - run.started) / 60, run.log,
                       tail, run.started, now)

    def next_ready() -> Job | None:
        ready = []
        for job in list(pending):
            after = [a for a in job.after if a in names]
            failed = [a for a in after if a in ended and ended[a].state != "done"]
            if failed:
                pending.remove(job)
                ended[job.run] = Outcome(job, "failed", tail=(f"not started: {', '.join(failed)} failed",))
            elif all(a in ended for a in after):
                ready.append(job)
        if not ready:
            return None
        waited_for = {a for j in pending for a in j.after}
        job = min(ready, key=lambda j: (j.run not in waited_for, -cost_rank(j.config)))  # stable: plan order
        pending.remove(job)
        return job

    def start(slot: int, job: Job) -> _Running:
        path = runs_dir / LOGS / f"{job.run}.log"
        alone = not running and bottleneck(job, pending)  # e.g. the shared pretraining run, before everything else
        task = X.Task(job.run, functools.partial(command, job, runs_dir, python=python), path,
                      Rs.for_config(job.config), alone)
        return _Running(job, runner.start(task, slot), path, time.monotonic())

    bar = progress_bar(total=len(todo), desc="planned runs", unit="run", disable=not progress)
    shown: dict[str, int] = {}
    try:
        with logging_redirect_tqdm():
            while pending or running:
                for slot in range(workers):
                    job = None if slot in running else next_ready()
                    if job is not None:
                        running[slot] = start(slot, job)
                if not running:  # nothing could start: only jobs waiting on unfinished ones left (not expected)
                    for job in pending:
                        ended[job.run] = Outcome(job, "failed", tail=(f"not started: {job.after} unfinished",))
                    pending.clear()
                time.sleep(poll_s)
                for slot, run in list(running.items()):
                    status = run.handle.poll()
                    if status is not None:
                        ended[run.job.run] = finish(running.pop(slot), status)
                done = sum(o.state == "done" for o in ended.values())
                counts = {"done": done, "running": len(running), "failed": len(ended) - done}
                if counts != shown:  # redraw on changes only, once (a log gets a line per redraw)
                    bar.n = len(ended)
                    bar.set_postfix(counts)
                    shown = counts
    finally:
        for run in running.values():  # interrupted: stop the workers (their checkpoints let a rerun resume)
            run.handle.cancel()
        bar.close()
    return [ended[j.run] for j in todo]


def summary(outcomes: Sequence[Outcome]) -> str:
    """The table of a run list's outcomes: run, variant, seed, worker (slot or SLURM job), minutes, state."""
    rows = [(o.job.run, o.job.config.variant, str(o.job.config.runtime.seed), o.worker or "-", f"{o.minutes:.1f}",
             o.state) for o in outcomes]
    header = ("run", "variant", "seed", "worker", "minutes", "state")
    widths = [max(len(c) for c in column) for column in zip(header, *rows)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in (header, *rows))
