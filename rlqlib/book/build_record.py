"""How this book was built: the runner's per-page record, and the book page that shows it.

:func:`rlqlib.book.runner.run_notebooks` keeps a JSON record next to the executed notebooks
(``book/experiments/build_record.json``, a build product): one row per page, replaced each time that page executes
(``--only`` replaces only its pages' rows, so the others keep their own time and commit), and the facts of the
latest execution: git commit, Python and package versions, machine. :func:`write_page` renders it as the book page
``book/build.md`` (also a build product), or, when no notebook has run yet, a page saying so, so the table of
contents never points at a missing file.

Record (``schema`` 1)::

    {"schema": 1,
     "book": {"collected_at": "2026-12-05T14:03:11Z", "commit": "4e3ed75…", "dirty": false, "python": "3.12.3",
              "packages": {"torch": "2.13.0", …, "anywidget": "not installed"},
              "machine": {"platform": "Linux-…", "cpu": "…", "cores": 2, "memory_gib": 7.8, "gpus": []},
              "parameters": {"preset": "cpu", "dataset": "synthcc", "root": "data/synthcc-cpu", …}},
     "pages": [{"notebook": "tab1_datasets", "title": "Table 1 — …", "status": "ok", "minutes": 0.21,
                "runs_trained": 0, "runs_loaded": 0, "parameters": {"preset": "cpu", …}, "injected": ["preset", …],
                "finished_at": "2026-12-05T14:03:24Z", "commit": "4e3ed75…", "dirty": false}, …]}

A row's ``parameters`` are the values the notebook ran with: those the runner injected (named in ``injected``) and,
for the others its ``parameters`` cell declares, the cell's defaults.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from rlqlib.book.toc import toc_notebooks, toc_pages

try:
    import fcntl
except ImportError:  # not POSIX: no lock (one runner at a time)
    fcntl = None

SCHEMA = 1
#: The record's file name, in the folder the executed notebooks are written to.
RECORD_NAME = "build_record.json"
#: The page, relative to the book root (listed in ``_toc.yml``).
PAGE = "book/build.md"
#: Distributions whose versions the page lists (``not installed`` when absent).
PACKAGES = (
    "rlqlib", "torch", "torchvision", "numpy", "pandas", "scikit-learn", "matplotlib", "jupyter-book", "papermill",
    "ipywidgets", "anywidget",
)
UNKNOWN = "unknown"
NOT_INSTALLED = "not installed"
#: The parameters the page shows per page (a row's record keeps every declared one).
SHOWN = ("preset", "dataset", "root", "device", "seeds")
#: ``make book`` variables for the runner's parameters (the reproduce command).
MAKE_VARIABLES = {"preset": "PRESET", "dataset": "DATASET", "root": "DATA_ROOT", "device": "DEVICE",
                  "seed": "SEED", "seeds": "SEEDS", "runs_dir": "RUNS_DIR"}


def now() -> str:
    """The current UTC time, ISO 8601 to the second (``2026-12-05T14:03:11Z``)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_state(root: str | Path = ".") -> tuple[str, bool | None]:
    """The commit checked out at ``root`` and whether the working tree has changes (tracked or untracked, not
    ignored); ``("unknown", None)`` without git or outside a repository."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30)
        if head.returncode != 0:
            return UNKNOWN, None
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True,
                                timeout=60)
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return head.stdout.strip() or UNKNOWN, dirty


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution (``not installed`` when absent)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = NOT_INSTALLED
    return versions


def _cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or UNKNOWN


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (AttributeError, ValueError, OSError):
        return None


def _gpus() -> list[str]:
    """Names of the CUDA devices torch sees; torch is imported only where an NVIDIA driver is present."""
    if not (Path("/proc/driver/nvidia").exists() or shutil.which("nvidia-smi")):
        return []
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # a broken driver or torch build: the page says none rather than failing the book
        return []


def machine() -> dict[str, Any]:
    """Platform, CPU model, core count, RAM (GiB) and CUDA device names of this machine."""
    return {"platform": platform.platform(), "cpu": _cpu_model(), "cores": os.cpu_count(),
            "memory_gib": _memory_gib(), "gpus": _gpus()}


def environment(root: str | Path = ".", parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The book-level facts of one ``runner run``: time, commit, Python, package versions, machine, parameters."""
    commit, dirty = git_state(root)
    return {"collected_at": now(), "commit": commit, "dirty": dirty, "python": platform.python_version(),
            "packages": package_versions(), "machine": machine(), "parameters": dict(parameters or {})}


def load(path: str | Path) -> dict[str, Any] | None:
    """The record at ``path``; None when absent, unreadable or of another schema."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA or not isinstance(record.get("pages"), list):
        return None
    return record


def merge(record: dict[str, Any] | None, row: dict[str, Any], book: dict[str, Any]) -> dict[str, Any]:
    """A new record: ``row`` replaces the row of the same notebook (or is appended), the other rows are kept as they
    were, and ``book`` becomes the book-level facts."""
    pages = [r for r in (record or {}).get("pages", []) if r.get("notebook") != row["notebook"]]
    return {"schema": SCHEMA, "book": book, "pages": [*pages, row]}


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` (two runners updating one record keep each other's rows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def update(path: str | Path, row: dict[str, Any], book: dict[str, Any]) -> dict[str, Any]:
    """Merge ``row`` into the record at ``path`` (:func:`merge`) and write it atomically; returns the record."""
    path = Path(path)
    with _locked(path):
        record = merge(load(path), row, book)
        _write(path, json.dumps(record, indent=1, ensure_ascii=False, default=str) + "\n")
    return record


# ------------------------------------------------------------------------------------------------- the page


def _short(commit: str | None, dirty: bool | None) -> str:
    if not commit or commit == UNKNOWN:
        return UNKNOWN
    return f"`{commit[:7]}`" + ("\\*" if dirty else "")


def _time(stamp: str | None) -> str:
    return stamp.replace("T", " ").rstrip("Z") if stamp else "–"


def _cell(value: Any) -> str:
    """A value for a markdown table cell (lists as ``0, 1, 2``; pipes escaped)."""
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    return str(value).replace("|", "\\|")


def _shown(row: dict[str, Any], key: str) -> str:
    """A row's parameter for the page; ``seeds`` falls back to ``seed``; a notebook default gets a dagger."""
    params = row.get("parameters") or {}
    if key == "seeds" and "seeds" not in params:
        key = "seed"
    if key not in params:
        return "–"
    return _cell(params[key]) + ("" if key in (row.get("injected") or []) else " †")


def make_command(parameters: dict[str, Any], only: str | None = None) -> str:
    """The ``make book`` command line for the runner's parameters (``SEEDS=0,1,2``)."""
    words = ["make book"]
    for key, var in MAKE_VARIABLES.items():
        if key in parameters and parameters[key] is not None:
            value = parameters[key]
            value = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
            words.append(f"{var}={value}")
    if only:
        words.append(f"ONLY={only}")
    return " ".join(words)


NOT_RUN_PAGE = """# How this book was built

The notebooks of this book have not been executed yet: no build record was found ({record}). `make book` executes
every page with papermill and then renders this page from what ran: per page the wall time, the training runs it
trained or loaded from the run cache, and the parameters it ran with; for the book the git commit, the package versions
and the machine.
"""


def render(record: dict[str, Any] | None, notebooks: Sequence[str] = (), docs: dict[str, str] | None = None,
           record_path: str = RECORD_NAME) -> str:
    """The page (MyST markdown) for ``record``.

    Args:
        record: a :func:`load`-ed record; None renders the "not executed yet" page.
        notebooks: the book's notebooks in table-of-contents order; rows follow it (a notebook without a row is shown
            as not executed; rows of notebooks no longer in the book come last).
        docs: notebook -> document path relative to the page, for the pages to link to (those that exist).
        record_path: how the page names the record file.
    """
    if record is None:
        return NOT_RUN_PAGE.format(record=f"`{record_path}`")
    docs = docs or {}
    rows = {row["notebook"]: row for row in record["pages"]}
    order = [*notebooks, *(name for name in rows if name not in notebooks)]
    book = record.get("book") or {}
    params = book.get("parameters") or {}
    lines = [
        "# How this book was built",
        "",
        "Every page of this book is a notebook that the runner (`python -m rlqlib.book.runner run`, called by "
        "`make book`) executed with papermill; this page is its record of the latest execution of each page. A page "
        "re-executed alone (`make book ONLY=<notebook>`) replaces only its own row, so rows can come from different "
        "times, commits and settings: each row names its own. *Minutes* are wall-clock minutes on the machine "
        "described below; *trained* / *loaded* count the training runs the page trained itself or found already "
        f"trained in the run cache (`{_cell(params.get('runs_dir', 'runs'))}`), so a page whose runs an earlier page "
        "(or `make book JOBS=N`) trained shows them as loaded.",
        "",
        "To execute the book again with the latest execution's settings, at the same commit:",
        "",
        "```bash",
        *([f"git checkout {book['commit'][:12]}"] if book.get("commit", UNKNOWN) != UNKNOWN else []),
        make_command(params),
        f"{make_command(params, only=order[0] if order else '<notebook>')}   # one page",
        "```",
        "",
        "## Pages",
        "",
        "| Page | Status | Minutes | Runs trained | Runs loaded | Finished (UTC) | Commit |",
        "|---|---|--:|--:|--:|---|---|",
    ]
    status_text = {"ok": "ok", "failed": "**failed**", "started": "started, did not finish"}
    total, settings = 0.0, []
    for name in order:
        title = f"{{doc}}`{docs[name]}`" if name in docs else f"`{name}`"
        row = rows.get(name)
        if row is None:
            lines.append(f"| {title} | not executed | – | – | – | – | – |")
            continue
        total += float(row.get("minutes") or 0.0)
        lines.append(
            f"| {title} | {status_text.get(row.get('status'), _cell(row.get('status')))} "
            f"| {float(row.get('minutes') or 0.0):.2f} | {_cell(row.get('runs_trained', 0))} "
            f"| {_cell(row.get('runs_loaded', 0))} | {_time(row.get('finished_at'))} "
            f"| {_short(row.get('commit'), row.get('dirty'))} |"
        )
        settings.append(f"| `{name}` | " + " | ".join(_shown(row, key) for key in SHOWN) + " |")
    lines += [
        "",
        f"{len(settings)} of {len(order)} pages executed, {total:.1f} minutes in all."
        + (" \\* the working tree had uncommitted changes." if any(r.get("dirty") for r in rows.values()) else ""),
        "",
        "Each page ran with these parameters († the notebook's own default: the runner did not pass it; – the "
        "notebook has no such parameter):",
        "",
        "| Notebook | Preset | Dataset | Data root | Device | Seeds |",
        "|---|---|---|---|---|---|",
        *settings,
    ]
    differ = []
    if len({(r.get("commit"), r.get("dirty")) for r in record["pages"]}) > 1:
        differ.append("commits")
    for key in ("preset", "dataset", "device"):  # among the pages that declare it
        values = {json.dumps(r["parameters"][key], default=str) for r in record["pages"]
                  if key in (r.get("parameters") or {})}
        if len(values) > 1:
            differ.append(f"{key}s")
    failed = [r["notebook"] for r in record["pages"] if r.get("status") != "ok"]
    if differ or failed:
        lines += ["", "```{note}"]
        if differ:
            lines.append(f"The pages were executed at different {' and '.join(differ)}; compare their rows before "
                         "comparing their numbers.")
        if failed:
            lines.append(f"Not every page finished: {', '.join(f'`{name}`' for name in failed)}.")
        lines.append("```")
    mach = book.get("machine") or {}
    gpus = mach.get("gpus") or []
    memory = mach.get("memory_gib")
    lines += [
        "",
        f"## The latest execution (started {_time(book.get('collected_at'))} UTC)",
        "",
        "| | |",
        "|---|---|",
        f"| Commit | {_short(book.get('commit'), book.get('dirty'))}"
        + (" (uncommitted changes)" if book.get("dirty") else "") + " |",
        "| Parameters | " + (", ".join(f"{k} = `{_cell(v)}`" for k, v in params.items()) or "–") + " |",
        f"| Python | {_cell(book.get('python'))} |",
        f"| Platform | {_cell(mach.get('platform'))} |",
        f"| CPU | {_cell(mach.get('cpu'))}, {_cell(mach.get('cores'))} cores |",
        f"| Memory | {f'{memory} GiB' if memory is not None else UNKNOWN} |",
        f"| GPUs | {_cell(gpus) if gpus else 'none'} |",
        "",
        "## Package versions",
        "",
        "| Package | Version |",
        "|---|---|",
        *(f"| {name} | {_cell(version)} |" for name, version in (book.get("packages") or {}).items()),
        "",
    ]
    return "\n".join(lines)


def write_page(
    root: str | Path = ".", toc: str | Path | None = None, out_dir: str | Path | None = None,
    record: str | Path | None = None, page: str | Path | None = None,
) -> Path | None:
    """Render ``record`` (default ``<out_dir>/build_record.json``) as ``page`` (default ``<root>/book/build.md``), if
    the table of contents lists that page; returns the page written, or None when the toc does not list it.

    Args:
        root: the book root; ``toc`` (``_toc.yml``), ``out_dir`` (``book/experiments``) and ``page`` default to
            paths under it.
    """

    root = Path(root)
    toc = Path(toc) if toc is not None else root / "_toc.yml"
    out_dir = Path(out_dir) if out_dir is not None else root / "book" / "experiments"
    page = Path(page) if page is not None else root / PAGE
    record = Path(record) if record is not None else out_dir / RECORD_NAME
    listed = {(toc.parent / entry).resolve().with_suffix("") for entry in toc_pages(toc)}
    if page.resolve().with_suffix("") not in listed:
        return None
    notebooks = toc_notebooks(toc, out_dir)
    docs = {name: Path(os.path.relpath(out_dir.resolve() / name, page.resolve().parent)).as_posix()
            for name in notebooks if (out_dir / f"{name}.ipynb").is_file()}
    shown = os.path.relpath(record.resolve(), toc.parent.resolve())
    text = render(load(record), notebooks, docs, record_path=Path(shown).as_posix())
    page.parent.mkdir(parents=True, exist_ok=True)
    if not page.is_file() or page.read_text() != text:  # unchanged: Sphinx need not re-read it
        _write(page, text)
    return page
