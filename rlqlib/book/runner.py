"""The book runner: papermill executes the notebooks listed in ``_toc.yml``, then Jupyter Book renders them.

Flow (what ``make book`` does)::

    notebooks/<name>.ipynb  --papermill-->  book/experiments/<name>.ipynb  --jupyter-book build .-->  _build/html

Every chapter of ``_toc.yml`` that lives under the output folder (``book/experiments/``) is a notebook to run,
in table-of-contents order, from the source folder (``notebooks/``). Each notebook receives only the
parameters its ``parameters`` cell declares (``preset``, ``dataset``, ``root``, ``device``, ``seed``/``seeds``...).
A failing notebook stops the run with :class:`NotebookFailed`, which names the notebook, the cell and the error;
the executed notebooks before it, and the partial output of the failing one, stay on disk.

Command line (``print`` is used only here)::

    python -m rlqlib.book.runner run [--preset P --dataset D --root R --device X --seed N --seeds 0,1,2 --only NAME
                                      --jobs N --order-from RECORD]
    python -m rlqlib.book.runner build [-W]
    python -m rlqlib.book.runner plan --from RUNS_SMOKE [--preset P --dataset D --root R --runs-dir RUNS]  (rlqlib.book.plan)
    (the plan's runs not done, N at a time, locally or on SLURM: ``rlq runs --plan RUNS_SMOKE ...``,
    rlqlib.book.train_plan)
    python -m rlqlib.book.runner pretrain [--preset P --dataset D --root R --runs-dir RUNS --threads 1]
        (the shared pretraining run the preset's runs start from, if any: rlqlib.engine.pretrain)
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlqlib.book.toc import BookError, toc_notebooks, toc_pages

log = logging.getLogger(__name__)

#: Per-notebook counts in the summary, from the run cache's ledger (``runs/ledger.jsonl``).
REPORTED_COUNTS = ("runs_trained", "runs_loaded")
#: Pages that read what the other pages wrote (the claims page gathers every page's claims): when pages run in
#: parallel (:func:`run_notebooks` ``jobs``), these start once all the others have finished.
AFTER_THE_OTHERS = ("claims",)


class NotebookFailed(BookError):
    """A notebook raised while papermill executed it.

    Attributes:
        notebook: the chapter name (``tab1_datasets``).
        rows: summary rows of every notebook attempted so far, the failed one last.
    """

    def __init__(self, message: str, notebook: str, rows: list[dict]):
        super().__init__(message)
        self.notebook = notebook
        self.rows = rows


#: Longest wait (s) on one kernel socket before polling it again; see :func:`kernel_manager_class`.
SOCKET_POLL_S = 1.0


@functools.cache
def kernel_manager_class() -> type:
    """A Jupyter kernel manager whose clients never wait on a kernel socket without a time limit.

    Works around an upstream hang (nbclient issue #312, pyzmq issue #1558): nbclient waits for a cell's
    ``execute_reply`` with ``shell_channel.get_msg(timeout=None)``; with ``zmq.asyncio`` the wake-up for a
    message can be missed (edge-triggered socket FD), and then papermill waits forever on an idle kernel.
    Measured here: about 1 run in 5 of a notebook that displays an ``ipywidgets.Output`` hung (0 in 25 with
    this class). A poll *with* a timeout does see the message when it expires, so these channels split every
    wait into polls of at most :data:`SOCKET_POLL_S`: same messages, same order, same overall timeout, at most
    that much extra latency when a wake-up is missed.
    """
    from queue import Empty

    from jupyter_client import AsyncKernelManager
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.channels import AsyncZMQSocketChannel
    from traitlets import Type

    class PollingChannel(AsyncZMQSocketChannel):
        async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                left = SOCKET_POLL_S if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    return await super().get_msg(min(SOCKET_POLL_S, left))
                except Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise

    class PollingKernelClient(AsyncKernelClient):
        shell_channel_class = Type(PollingChannel)
        iopub_channel_class = Type(PollingChannel)

    class PollingKernelManager(AsyncKernelManager):
        client_factory = Type(PollingKernelClient, klass=AsyncKernelClient, config=True)

    return PollingKernelManager


def _declared_parameters(notebook: Path) -> dict[str, Any]:
    """Names assigned in the notebook's ``parameters`` cell (papermill's own inference), with their default values
    (the literal, or its source text when it is not a literal)."""
    import ast

    from papermill import inspect_notebook

    declared: dict[str, Any] = {}
    for name, info in inspect_notebook(str(notebook)).items():
        try:
            declared[name] = ast.literal_eval(info.get("default") or "None")
        except (ValueError, SyntaxError):
            declared[name] = info.get("default")
    return declared


def _first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip()]
    return lines[0].strip() if lines else "<empty cell>"


def _source_cell_index(src: Path, source: str) -> int | None:
    """Index (0-based) of the source-notebook cell whose text is ``source``; None when not found."""
    import nbformat

    cells = nbformat.read(src, as_version=4).cells
    return next((i for i, cell in enumerate(cells) if cell.source == source), None)


def _failure_message(name: str, src: Path, dst: Path, exc: Exception) -> str:
    """One paragraph naming the notebook, the cell (index in the source notebook, first line) and the error."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        index = _source_cell_index(src, exc.source)
        cell = f"cell {index}" if index is not None else f"cell {exc.cell_index} of the executed notebook"
        where = f"{cell} (In [{exc.exec_count}], `{_first_line(exc.source)}`)"
        error = f"{exc.ename}: {exc.evalue}"
    else:
        where = "outside a cell (kernel start, timeout or kernel death)"
        error = f"{type(exc).__name__}: {exc}"
    return (
        f"notebook '{name}' ({src}) failed at {where} with {error}. "
        f"The partial output is in {dst}; fix the notebook or rerun only it with "
        f"`python -m rlqlib.book.runner run --only {name}`."
    )


def page_title(notebook: str | Path) -> str:
    """A notebook's title: the text of its first markdown heading (its file name when it has none)."""
    import json

    for cell in json.loads(Path(notebook).read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return Path(notebook).stem


def _ledger(runs_dir: Path | None, start: int, tag: str | None = None) -> tuple[dict[str, int], int]:
    """Runs trained/loaded since byte ``start`` of the run cache's ledger with ``tag``
    (:func:`rlqlib.engine.runs.ledger_counts`)."""
    if runs_dir is None:
        return {"trained": 0, "loaded": 0}, start
    from rlqlib.engine.runs import ledger_counts

    return ledger_counts(runs_dir, start, tag)


def run_notebooks(
    toc: str | Path = "_toc.yml",
    parameters: dict[str, Any] | None = None,
    only: Sequence[str] | None = None,
    out_dir: str | Path = "book/experiments",
    src_dir: str | Path = "notebooks",
    kernel: str = "python3",
    log_output: bool = True,
    cwd: str | Path | None = None,
    cell_timeout: float | None = None,
    runs_dir: str | Path | None = "runs",
    write_to: str | Path | None = None,
    jobs: int = 1,
    order_from: str | Path | None = None,
) -> list[dict]:
    """Execute, with papermill, every notebook of the book (or the ``only`` ones), in table-of-contents order, or
    ``jobs`` at a time.

    Args:
        toc: the Jupyter Book ``_toc.yml``.
        parameters: candidate parameters (``preset``, ``dataset``, ``root``, ``device``, ``seed``...). Each notebook
            gets only those its ``parameters`` cell declares; the others keep their defaults.
        only: chapter names to run (e.g. ``["tab1_datasets"]``); None runs all.
        out_dir: where executed notebooks are written (``<out_dir>/<name>.ipynb``), the folder ``_toc.yml`` points at.
        src_dir: where the source notebooks are (``<src_dir>/<name>.ipynb``).
        kernel: Jupyter kernel name.
        log_output: stream each cell's output to the ``papermill`` logger (INFO).
        cwd: working directory of the kernels; None is the current directory (the repository root under make).
        cell_timeout: seconds one cell may run before the notebook fails; None waits as long as it takes.
        runs_dir: the run cache the notebooks use (relative to ``cwd``); a notebook's trained/loaded runs are counted
            from its ledger, only the lines its own kernel wrote (tagged, :data:`rlqlib.engine.runs.TAG_ENV`; None: not
            counted). Passed as the ``runs_dir`` parameter to notebooks declaring it.
        write_to: write the executed notebooks here instead of ``out_dir`` (a scratch execution that must not
            replace the book's pages, e.g. the smoke book behind ``make plan``).
        jobs: notebooks executed at a time, each in its own process whose kernel gets ``cores // jobs`` BLAS/OpenMP
            threads (``OMP_NUM_THREADS``); their cell output is not streamed. The pages of :data:`AFTER_THE_OTHERS`
            run after all the others; the others start longest first (:func:`page_order`). A failure lets the
            running notebooks finish, starts no other and raises :class:`NotebookFailed`. Runs two pages both ask for
            are trained once (the run cache's locks).
        order_from: a build record (e.g. the smoke book's) whose minutes give the start order when ``jobs`` > 1;
            absent: table-of-contents order.

    Before and after each notebook, its row is merged into the build record next to the executed notebooks
    (``<write_to or out_dir>/build_record.json``, :mod:`rlqlib.book.build_record`): a failed or interrupted book
    still records what ran. Without ``write_to``, the page ``book/build.md`` is rendered from it too (when
    ``toc`` lists it); a scratch execution never touches the book's page.

    Returns:
        One row per notebook: ``notebook``, ``status`` (``ok``), ``minutes``, ``injected`` (parameter names),
        ``parameters`` (the values it ran with: injected, else the notebook's defaults) and the counts of
        :data:`REPORTED_COUNTS` (from the run cache's ledger).

    Raises:
        BookError: a requested name is not in the toc, or a source notebook is missing (checked before running).
        NotebookFailed: a notebook raised; its ``rows`` include the failed notebook (status ``failed``).
    """
    import papermill

    from rlqlib.book import build_record as B
    from rlqlib.engine.runs import TAG_ENV

    parameters = dict(parameters or {})
    ledger_dir = None
    if runs_dir is not None:
        parameters.setdefault("runs_dir", str(runs_dir))
        ledger_dir = Path(cwd or ".") / runs_dir
    names = toc_notebooks(toc, out_dir)
    if only:
        unknown = [name for name in only if name not in names]
        if unknown:
            raise BookError(f"--only {unknown} not in {toc}; its notebooks are {names}")
        names = [name for name in names if name in only]
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    missing = [str(src_dir / f"{name}.ipynb") for name in names if not (src_dir / f"{name}.ipynb").is_file()]
    if missing:
        raise BookError(f"{toc} lists notebooks whose sources do not exist: {missing}; add them or edit {toc}")
    if jobs > 1 and len(names) > 1:
        one = dict(toc=toc, parameters=parameters, out_dir=out_dir, src_dir=src_dir, kernel=kernel, log_output=False,
                   cwd=cwd, cell_timeout=cell_timeout, runs_dir=runs_dir, write_to=write_to)
        return _run_at_a_time(names, jobs, order_from, one)

    record_path = Path(write_to or out_dir) / B.RECORD_NAME
    book = B.environment(Path(toc).parent, parameters)

    def record(row: dict[str, Any], title: str, started_at: str) -> None:
        finished_at = None if row["status"] == "started" else B.now()
        entry = {"title": title, **row, "started_at": started_at, "finished_at": finished_at,
                 "commit": book["commit"], "dirty": book["dirty"]}
        B.update(record_path, entry, book)
        if write_to is None:
            B.write_page(Path(toc).parent, toc=toc, out_dir=out_dir)

    rows: list[dict] = []
    for name in names:
        src, dst = src_dir / f"{name}.ipynb", Path(write_to or out_dir) / f"{name}.ipynb"
        declared = _declared_parameters(src)
        injected = {key: value for key, value in parameters.items() if key in declared}
        if not declared:
            log.warning("%s has no cell tagged `parameters`; running it with its own values", src)
        log.info("running %s -> %s with %s", src, dst, injected)
        dst.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        row: dict[str, Any] = {"notebook": name, "status": "ok", "minutes": 0.0, "injected": sorted(injected),
                               "parameters": {**declared, **injected}}
        rows.append(row)
        title, started_at = page_title(src), B.now()
        record({**row, "status": "started", "runs_trained": 0, "runs_loaded": 0}, title, started_at)
        _, offset = _ledger(ledger_dir, 0)
        tag = f"{name}:{os.getpid()}:{time.time_ns()}"  # this execution's ledger lines (the kernel inherits it)
        previous_tag = os.environ.get(TAG_ENV)
        os.environ[TAG_ENV] = tag
        try:
            papermill.execute_notebook(
                str(src), str(dst), parameters=injected, kernel_name=kernel, progress_bar=False,
                log_output=log_output, cwd=str(cwd) if cwd is not None else None,
                execution_timeout=cell_timeout, kernel_manager_class=kernel_manager_class(),
            )
        except Exception as exc:  # any failure stops the book; re-raised with the notebook named
            counts, _ = _ledger(ledger_dir, offset, tag)
            row.update(status="failed", minutes=(time.perf_counter() - start) / 60,
                       runs_trained=counts["trained"], runs_loaded=counts["loaded"])
            record(row, title, started_at)
            raise NotebookFailed(_failure_message(name, src, dst, exc), name, rows) from exc
        finally:
            if previous_tag is None:
                os.environ.pop(TAG_ENV, None)
            else:
                os.environ[TAG_ENV] = previous_tag
        counts, _ = _ledger(ledger_dir, offset, tag)
        row.update(minutes=(time.perf_counter() - start) / 60, runs_trained=counts["trained"],
                   runs_loaded=counts["loaded"])
        record(row, title, started_at)
    return rows


def page_order(names: Sequence[str], record: str | Path | None) -> list[str]:
    """``names`` longest first by the minutes ``record`` (a build record) gives them, the pages it lacks after, in
    the order given; all in the order given when there is no such record. Starting the long pages first keeps one
    long page (the severity sweep) from running alone at the end."""
    from rlqlib.book import build_record as B

    saved = B.load(record) if record is not None and Path(record).is_file() else None
    minutes = {row["notebook"]: row.get("minutes") or 0.0 for row in (saved or {}).get("pages", [])}
    return sorted(names, key=lambda name: (name not in minutes, -minutes.get(name, 0.0)))  # stable sort


def _one_page(name: str, options: dict[str, Any], threads: int) -> tuple[list[dict], str | None]:
    """Worker process of :func:`_run_at_a_time`: execute one page with ``threads`` threads in its kernel; returns
    its row and the failure message (None when it ran)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        return run_notebooks(only=[name], **options), None
    except NotebookFailed as exc:
        return exc.rows, str(exc)


def _run_at_a_time(names: list[str], jobs: int, order_from: str | Path | None, options: dict[str, Any]) -> list[dict]:
    """:func:`run_notebooks` with ``jobs`` processes; rows in table-of-contents order."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1  # as nproc
    threads = max(1, cores // jobs)
    groups = (page_order([n for n in names if n not in AFTER_THE_OTHERS], order_from),
              [n for n in names if n in AFTER_THE_OTHERS])
    rows: dict[str, dict] = {}
    failure: tuple[str, str] | None = None
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for group in groups:
            waiting, running = list(group), {}
            while (waiting and failure is None) or running:
                while waiting and failure is None and len(running) < jobs:  # a page starts only when a job is free
                    name = waiting.pop(0)
                    running[pool.submit(_one_page, name, options, threads)] = name
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    name = running.pop(future)
                    page_rows, message = future.result()
                    rows.update((row["notebook"], row) for row in page_rows)
                    row = rows.get(name, {})
                    log.info("%s: %s, %.2f min", name, row.get("status", "failed"), row.get("minutes", 0.0))
                    if message and failure is None:
                        failure = (name, message)
            if failure:
                break
    if options["write_to"] is None:  # once more, now that every row is in (two pages may have rendered at once)
        from rlqlib.book import build_record as B

        B.write_page(Path(options["toc"]).parent, toc=options["toc"], out_dir=options["out_dir"])
    ordered = [rows[name] for name in names if name in rows]
    if failure:
        raise NotebookFailed(failure[1], failure[0], ordered)
    return ordered


def format_summary(rows: Sequence[dict]) -> str:
    """A fixed-width text table of :func:`run_notebooks` rows (notebook, status, minutes, counts)."""
    header = ("notebook", "status", "minutes", *REPORTED_COUNTS)
    body = [
        (r["notebook"], r["status"], f"{r['minutes']:.2f}", *(str(r.get(k, 0)) for k in REPORTED_COUNTS))
        for r in rows
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *body)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in (header, *body)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def jupyter_book_executable() -> Path:
    """The ``jupyter-book`` script of the running virtualenv (next to ``sys.executable``)."""
    exe = Path(sys.executable).parent / "jupyter-book"
    if not exe.is_file():
        raise BookError(f"{exe} not found; install the book extras into this environment (`make setup`)")
    return exe


def build_book(
    root: str | Path = ".", strict: bool = False, capture: bool = False
) -> subprocess.CompletedProcess:
    """Render the HTML book with ``jupyter-book build <root>`` (no notebook execution: ``execute_notebooks: off``).

    First renders the page ``book/build.md`` from the build record of ``book/experiments/`` (or, without one, a page
    saying the notebooks have not been executed), when ``_toc.yml`` lists it
    (:func:`rlqlib.book.build_record.write_page`).

    Args:
        root: the book root (holds ``_config.yml`` and ``_toc.yml``).
        strict: warnings are errors: adds ``-W -n --keep-going`` (nitpicky, report every warning) and ``--all``
            (rebuild every page, so warnings of unchanged pages are not hidden by Sphinx's cache).
        capture: capture stdout+stderr (returned, and quoted in the error) instead of streaming them.

    Returns:
        The completed process (``stdout`` holds the log when ``capture``).

    Raises:
        BookError: the build failed; the message holds the command and, when captured, the last 60 log lines.
    """
    from rlqlib.book import build_record

    build_record.write_page(root)
    cmd = [str(jupyter_book_executable()), "build", str(root)]
    if strict:
        cmd += ["-W", "-n", "--keep-going", "--all"]
    log.info("%s", " ".join(cmd))
    proc = subprocess.run(
        cmd, text=True, stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout or "").splitlines()[-60:])
        raise BookError(f"`{' '.join(cmd)}` exited with {proc.returncode}" + (f":\n{tail}" if tail else ""))
    return proc


def _seed_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds expects comma-separated integers like 0,1,2, got {text!r}")


def _pretrain(args: argparse.Namespace) -> int:
    """``pretrain``: train (or find) the shared pretraining run the preset's runs start from, before anything else
    (``make book`` runs it beside the smoke book); says so and does nothing when the preset starts from none."""
    from dataclasses import replace

    from rlqlib.book import experiments as X
    from rlqlib.engine import pretrain as Pt
    from rlqlib.engine import runs as R

    cfg = X.config(X.Setting(args.preset, args.dataset, args.root, args.device, args.runs_dir), "id-only")
    if not Pt.needs_pretrain(cfg):
        print(f"preset {args.preset}: its runs start from no shared pretraining run")
        return 0
    pre = Pt.pretrain_config(cfg)
    pre = replace(pre, runtime=replace(pre.runtime, threads=args.threads, progress=not args.quiet))
    t0 = time.perf_counter()
    run = R.run_or_load(pre, args.runs_dir)
    print(f"pretraining run {run.dir.name}: ready ({time.perf_counter() - t0:.0f} s)")
    return 0


def _plan_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``plan``: where the run list comes from and the target setting."""
    parser.add_argument("--from", dest="source", required=True, help="run cache of an executed book (e.g. runs-smoke)")
    _setting_arguments(parser)


def _setting_arguments(parser: argparse.ArgumentParser) -> None:
    """The target setting: preset, dataset, its root, device and run cache."""
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--dataset", default="synthcc")
    parser.add_argument("--root", default="data/synthcc-cpu")
    parser.add_argument("--device", default=None)
    parser.add_argument("--runs-dir", default="runs", help="the target run cache")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``python -m rlqlib.book.runner``); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m rlqlib.book.runner", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="papermill every notebook of _toc.yml into book/experiments/")
    run.add_argument("--preset", help="experiment preset (smoke, cpu, paper)")
    run.add_argument("--dataset", help="dataset registry key (synthcc, ltcc, prcc, ...)")
    run.add_argument("--root", help="dataset root folder")
    run.add_argument("--device", help="torch device (cpu, cuda)")
    run.add_argument("--seed", type=int, help="seed for notebooks that declare `seed`")
    run.add_argument("--seeds", type=_seed_list, help="comma-separated seeds for notebooks that declare `seeds`")
    run.add_argument("--runs-dir", default="runs", help="the run cache shared by the notebooks")
    run.add_argument("--only", action="append", metavar="NAME", help="run only this chapter (repeatable)")
    run.add_argument("--toc", default="_toc.yml")
    run.add_argument("--out-dir", default="book/experiments")
    run.add_argument("--src-dir", default="notebooks")
    run.add_argument("--write-to", help="write the executed notebooks here instead of --out-dir (scratch runs)")
    run.add_argument("--kernel", default="python3")
    run.add_argument("--quiet", action="store_true", help="do not stream cell output")
    run.add_argument("--jobs", type=int, default=1,
                     help="notebooks executed at a time (default 1); each kernel gets cores/JOBS threads")
    run.add_argument("--order-from", help="a build record (e.g. the smoke book's) whose minutes set the start "
                                          "order with --jobs > 1, longest first (absent: table-of-contents order)")
    build = sub.add_parser("build", help="jupyter-book build the HTML book (no execution)")
    build.add_argument("-W", dest="strict", action="store_true", help="warnings are errors (-W -n --keep-going)")
    build.add_argument("--root", default=".", help="book root (default: .)")
    plan = sub.add_parser("plan", help="the runs the book trains at a preset (from an executed smoke book), "
                                       "which are done, and the estimated time left")
    _plan_arguments(plan)
    pt = sub.add_parser("pretrain", help="train the shared pretraining run the preset's runs start from (if any)")
    _setting_arguments(pt)
    pt.add_argument("--threads", type=int, default=1, help="runtime.threads (default 1)")
    pt.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    if args.command == "plan":
        from rlqlib.book import plan as P

        try:
            table = P.plan(args.source, args.preset, args.dataset, args.root, args.runs_dir, args.device)
        except (FileNotFoundError, KeyError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        shown = table.assign(minutes=table["minutes"].round(1))[
            ["state", "epochs", "minutes", "variant", "seed", "run", "overrides", "pages"]]  # the long lists last
        print(shown.to_string(index=False, justify="left", formatters={c: f"{{:<{shown[c].str.len().max()}}}".format
                                                       for c in ("variant", "run", "overrides", "pages")}))
        t = P.summary(table)
        left = t["to do"] + t["started"]
        cost = ("no time estimate yet (no finished run of this preset in the run cache)"
                if left and t["unestimated"] == left else f"about {t['minutes_left'] / 60:.1f} single-run hours left"
                + (f" ({t['unestimated']} runs without an estimate yet)" if t["unestimated"] else ""))
        print(f"\n{t['runs']} runs at preset {args.preset}: {t['done']} done, {t['started']} started, "
              f"{t['to do']} to do; {cost}")
        return 0

    if args.command == "pretrain":
        return _pretrain(args)

    if args.command == "build":
        try:
            build_book(args.root, strict=args.strict)
        except BookError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"book: {Path(args.root) / '_build' / 'html' / 'index.html'}")
        return 0

    from rlqlib.book.build_record import RECORD_NAME

    record = Path(args.write_to or args.out_dir) / RECORD_NAME
    keys = ("preset", "dataset", "root", "device", "seed", "seeds")
    parameters = {key: getattr(args, key) for key in keys if getattr(args, key) is not None}
    try:
        rows = run_notebooks(
            args.toc, parameters, only=args.only, out_dir=args.out_dir, src_dir=args.src_dir,
            kernel=args.kernel, log_output=not args.quiet, runs_dir=args.runs_dir, write_to=args.write_to,
            jobs=args.jobs, order_from=args.order_from,
        )
    except NotebookFailed as exc:
        print("\n" + format_summary(exc.rows) + f"\n\nbuild record: {record}")
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    except BookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n" + format_summary(rows) + f"\n\nbuild record: {record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
