"""Where the book's run list trains: :data:`EXECUTORS` maps a name to an executor, all with one interface.

* ``local`` (:class:`Local`) — ``rlq train`` processes on this machine, one per worker slot, each with
  ``runtime.threads`` threads (a run every other one waits for, the shared pretraining run, gets them all) and, with
  GPUs, one GPU per slot (``CUDA_VISIBLE_DEVICES``). Each is forked from a server process that has imported torch
  and rlqlib once (:data:`PRELOAD`), instead of starting an interpreter that imports them again (~2.5 s a run).
* ``slurm`` (:class:`Slurm`) — one SLURM job per run, submitted through submitit, asking for the run's
  :func:`rlqlib.engine.resources.for_config` (GPUs, CPUs — also its thread count —, memory, time limit) on
  ``partition``; a job cut by its time limit (or preempted) is requeued and resumes from its last checkpoint.
  ``cluster="local"`` or ``"debug"`` runs the same path without a cluster (submitit's local and in-process
  executors: the tests).

:func:`rlqlib.book.train_plan.train_jobs` schedules the runs (dependencies first, ``workers`` at a time) and hands
each to the executor::

    executor = EXECUTORS["slurm"](Options(workers=16, partition="gpu", folder="runs/slurm"))
    handle = executor.start(task, slot=0)   # a Task: the run's name, command line, log file, resources
    handle.poll()                           # None while it runs, then its exit status; handle.worker: "slurm 4242"

Both write the run's output to ``task.log`` (``<runs_dir>/logs/<run>.log``) on the filesystem the runs share.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rlqlib.engine import runs as R
from rlqlib.engine.resources import Request


@dataclass(frozen=True)
class Options:
    """How runs are executed (each executor reads the fields it needs).

    Attributes:
        workers: runs at a time (local: processes; slurm: jobs queued or running).
        threads: local: ``runtime.threads`` of each process (slurm: the run's CPUs).
        gpus: local: worker slot ``i`` sees only GPU ``gpus[i % len(gpus)]``; empty: no GPU pinning.
        python: the interpreter that runs ``rlq`` (on a cluster: a path valid on its nodes).
        partition: slurm: the partition (None: the cluster's default).
        folder: slurm: submitit's folder (job scripts, pickles, submitit's own logs).
        cluster: slurm: submitit's cluster (None: SLURM; ``local`` or ``debug`` to run the path without one).
        time_limit_min: slurm: the time limit of every job (None: the run's, from its preset and epochs).
    """

    workers: int = 1
    threads: int = 1
    gpus: tuple[str, ...] = ()
    python: str = sys.executable
    partition: str | None = None
    folder: Path = Path("runs/slurm")
    cluster: str | None = None
    time_limit_min: int | None = None


@dataclass(frozen=True)
class Task:
    """One run to train.

    Attributes:
        name: its run folder's name (the job's name).
        command: its ``rlq train`` command line for a thread count.
        log: the file its output goes to.
        request: what it asks a cluster for (:func:`rlqlib.engine.resources.for_config`).
        alone: every other pending run waits for it (local: it gets every worker's threads).
    """

    name: str
    command: Callable[[int], list[str]]
    log: Path
    request: Request
    alone: bool = False


class Handle(Protocol):
    """A started task: ``worker`` names where it runs (a slot, a SLURM job id)."""

    worker: str

    def poll(self) -> int | None:
        """None while the task runs, then its exit status."""

    def reason(self) -> str:
        """Why it failed beyond its log ('' if nothing more is known), e.g. a SLURM job's error."""

    def cancel(self) -> None:
        """Stop it (interrupted run list); its checkpoint lets a rerun resume."""


class Executor(Protocol):
    """Starts tasks (:data:`EXECUTORS`' values are classes taking :class:`Options`); ``poll_s``: seconds between two
    looks at its running tasks."""

    poll_s: float

    def start(self, task: Task, slot: int) -> Handle:
        """Start ``task`` in worker slot ``slot`` (0 … workers-1; a free one)."""


def _environment() -> dict[str, str]:
    """This process's environment without the pages' ledger tag (a worker's ledger lines are not a page's)."""
    return {k: v for k, v in os.environ.items() if k != R.TAG_ENV}


# ------------------------------------------------------------------------------------------ local


@dataclass
class _Process:
    worker: str
    proc: subprocess.Popen
    handle: Any

    def poll(self) -> int | None:
        status = self.proc.poll()
        if status is not None:
            self.handle.close()
        return status

    def reason(self) -> str:
        return ""

    def cancel(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        self.handle.close()


#: What the local fork server imports before it forks a run's process: what ``rlq train`` needs.
PRELOAD = ("torch", "rlqlib.engine.runs", "rlqlib.engine.presets", "rlqlib.methods.registry",
           "rlqlib.data.training", "rlqlib.book.executors")
_CLI = ["-m", "rlqlib.cli"]


def _cli_child(args: list[str], log: str, env: dict[str, str]) -> None:
    """In a forked process: ``rlq <args>`` with ``env`` as the environment and its output in ``log``; its exit status
    is the command's."""
    os.environ.clear()
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.argv = [sys.executable, *args]
    try:
        runpy.run_module(_CLI[1], run_name="__main__", alter_sys=True)  # what `python -m rlqlib.cli` runs; it exits
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


@dataclass
class _Forked:
    worker: str
    proc: Any  # multiprocessing.Process

    def poll(self) -> int | None:
        return self.proc.exitcode

    def reason(self) -> str:
        return ""

    def cancel(self) -> None:
        self.proc.terminate()
        self.proc.join()


class Local:
    """``rlq train`` processes on this machine, ``options.threads`` threads each (``workers × threads`` for a task
    every other one waits for), one GPU per slot with ``options.gpus``. A command of this interpreter's ``rlq`` is
    forked from a fork server that imported :data:`PRELOAD` once; any other command line is a new process."""

    poll_s = 0.2

    def __init__(self, options: Options) -> None:
        self.options = options
        self._context: Any = None

    def _fork_server(self) -> Any:
        if self._context is None:
            import multiprocessing

            self._context = multiprocessing.get_context("forkserver")
            self._context.set_forkserver_preload(list(PRELOAD))
        return self._context

    def start(self, task: Task, slot: int) -> Handle:
        o = self.options
        env = _environment()
        worker = str(slot)
        if o.gpus:
            gpu = o.gpus[slot % len(o.gpus)]
            env["CUDA_VISIBLE_DEVICES"] = gpu
            worker = f"{slot} (GPU {gpu})"
        threads = o.threads * o.workers if task.alone else o.threads
        command = task.command(threads)
        if command[:3] == [sys.executable, *_CLI] and os.name == "posix":
            proc = self._fork_server().Process(target=_cli_child, args=(command[3:], str(task.log), env),
                                               name=task.name)
            main = sys.modules["__main__"]
            sys.modules["__main__"] = types.ModuleType("__main__")  # the child runs rlq, not the caller's script again
            try:
                proc.start()
            finally:
                sys.modules["__main__"] = main
            return _Forked(worker, proc)
        handle = open(task.log, "w")
        proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        return _Process(worker, proc, handle)


# ------------------------------------------------------------------------------------------ slurm


class LoggedCommand:
    """What a SLURM job executes: a command line with its output appended to a log file (a requeued job appends to
    its log); returns the exit status. Checkpointable for submitit: on a time-out or preemption the job is requeued
    with the same command, which resumes the run from its checkpoint."""

    def __init__(self, command: list[str], log: str) -> None:
        self.command, self.log = command, log

    def __call__(self) -> int:
        with open(self.log, "a") as fh:
            return subprocess.run(self.command, stdout=fh, stderr=subprocess.STDOUT, env=_environment(),
                                  check=False).returncode

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's requeue hook: run the same command again."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


@dataclass
class _Job:
    worker: str
    job: Any  # submitit.Job
    error: str = ""

    def poll(self) -> int | None:
        if not self.job.done():
            return None
        try:
            return int(self.job.result())
        except Exception as err:  # noqa: BLE001 - submitit raises its own errors for failed, cancelled, timed-out jobs
            self.error = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
            return 1

    def reason(self) -> str:
        return self.error

    def cancel(self) -> None:
        self.job.cancel(check=False)


class Slurm:
    """One SLURM job per run through submitit (:class:`LoggedCommand`), with the run's resources."""

    poll_s = 5.0  # a look is a stat of a result file on the shared filesystem (submitit asks sacct now and then)

    def __init__(self, options: Options) -> None:
        self.options = options

    def configured(self, task: Task) -> Any:
        """A ``submitit.AutoExecutor`` set up for the job of ``task``: its name, time limit, memory, CPUs, GPUs (no
        GPU line at all for a CPU run: some clusters refuse a request of 0 GPUs) and partition."""
        import submitit

        o, r = self.options, task.request
        params: dict[str, Any] = {"name": f"rlq-{task.name}", "timeout_min": o.time_limit_min or r.minutes,
                                  "mem_gb": r.mem_gb, "cpus_per_task": r.cpus, "nodes": 1, "tasks_per_node": 1}
        if r.gpus:
            params["gpus_per_node"] = r.gpus
        if o.partition:
            params["slurm_partition"] = o.partition
        executor = submitit.AutoExecutor(folder=str(o.folder), cluster=o.cluster)
        executor.update_parameters(**params)
        return executor

    def start(self, task: Task, slot: int) -> _Job:
        task.log.write_text("")
        job = self.configured(task).submit(LoggedCommand(task.command(task.request.cpus), str(task.log)))
        return _Job(f"slurm {job.job_id}", job)


#: Executor name -> class taking :class:`Options`.
EXECUTORS: dict[str, Callable[[Options], Executor]] = {"local": Local, "slurm": Slurm}


def make(name: str, options: Options) -> Executor:
    """The executor ``name`` (a key of :data:`EXECUTORS`) with ``options``."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; choose from {', '.join(EXECUTORS)}")
    return EXECUTORS[name](options)
