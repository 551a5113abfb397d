"""The book: notebook hygiene, the papermill runner, a full smoke build, and the offline HTML in Chromium.

* static checks on every ``notebooks/*.ipynb`` (fast);
* the runner (:mod:`rlqlib.book.runner`) on tiny throwaway notebooks (fast: a few kernel starts);
* ``slow``: papermill every ``_toc.yml`` notebook with ``preset="smoke"`` on a freshly generated SynthCC-smoke,
  into a temporary copy of the book, then ``jupyter-book build -W -n --keep-going`` on it;
* ``browser``: headless Chromium, with every host name unresolvable but 127.0.0.1, renders the built pages and
  must find MathJax, tables, figures and widgets, and no asset that failed to load.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import http.server
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from queue import Empty

import nbformat
import pytest

from browser import cells, choose, chromium, remote, requests, wait_for
from rlqlib.book import runner as book

REPO = Path(__file__).resolve().parents[2]
TOC = REPO / "_toc.yml"
SOURCES = sorted((REPO / "notebooks").glob("*.ipynb"))
TOC_NOTEBOOKS = book.toc_notebooks(TOC, REPO / "book" / "experiments")
TOC_PAGES = [str(Path(page).with_suffix("")) for page in book.toc_pages(TOC)]
SMOKE_PARAMETERS = {"preset": "smoke", "dataset": "synthcc", "device": "cpu", "seed": 0, "seeds": [0]}
CHROMIUM = Path(os.environ.get("RLQ_CHROMIUM", "/usr/bin/chromium"))
#: A rendered widget view: ipywidgets controls (``widget-*``) or the book's explorers (``rlqx-*``).
WIDGET_CLASS = r"class=\"[^\"]*\b(?:widget-|rlqx-)"


# --------------------------------------------------------------------------------------------- static checks


def _code_without_magics(source: str) -> str:
    """Cell source with IPython magics/shell lines blanked (keeps line numbers), so ``ast`` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_notebook_source_is_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    tagged = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: cells tagged `parameters`: {tagged}; exactly one is required"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [] and cell.execution_count is None, (
            f"{path.name} cell {i} has committed outputs/execution count; clear them before committing"
        )
        try:
            tree = ast.parse(_code_without_magics(cell.source))
        except SyntaxError as exc:
            pytest.fail(f"{path.name} cell {i} does not parse: {exc}")
        defs = [
            f"line {node.lineno}: {type(node).__name__} {node.name}"
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        ]
        assert not defs, f"{path.name} cell {i} defines {defs}; move the code into rlqlib/"


@pytest.mark.parametrize("name", TOC_NOTEBOOKS)
def test_toc_notebook_has_a_source(name: str) -> None:
    assert (REPO / "notebooks" / f"{name}.ipynb").is_file(), f"_toc.yml lists {name}; notebooks/{name}.ipynb missing"


def test_only_book_pages_are_visible_to_sphinx() -> None:
    """Sphinx walks the whole repository (the book root); every document outside book/ must be excluded."""
    import yaml
    from sphinx.util.matching import Matcher

    patterns = yaml.safe_load((REPO / "_config.yml").read_text())["exclude_patterns"]
    excluded = Matcher([*patterns, "_build"])
    visible = []
    for folder, dirs, files in os.walk(REPO):  # pruned like Sphinx's own walk
        rel = Path(folder).relative_to(REPO)
        dirs[:] = [d for d in dirs if not excluded((rel / d).as_posix())]
        visible += [
            (rel / f).as_posix() for f in files
            if Path(f).suffix in {".md", ".ipynb", ".rst"} and not excluded((rel / f).as_posix())
        ]
    stray = [path for path in visible if not path.startswith("book/")]
    assert not stray, f"documents Sphinx would read outside book/: {stray}; add them to exclude_patterns"


def test_toc_lists_the_intro_and_experiments() -> None:
    assert TOC_PAGES[0] == "book/intro"
    assert TOC_NOTEBOOKS and TOC_NOTEBOOKS[0] == "tab1_datasets"


# --------------------------------------------------------------------------------------------- the runner


def _write_nb(path: Path, cells: list[tuple[str, str, list[str]]], rlq: dict | None = None) -> None:
    """A notebook from (cell_type, source, tags) triples; ``rlq`` goes to ``metadata["rlq"]``."""
    nb = nbformat.v4.new_notebook()
    make = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell}
    nb.cells = [make[kind](source, metadata={"tags": tags} if tags else {}) for kind, source, tags in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if rlq is not None:
        nb.metadata["rlq"] = rlq
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_toc_notebooks_walks_parts_and_sections(tmp_path: Path) -> None:
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n"
        "  - caption: A\n    chapters:\n      - file: book/experiments/one\n      - file: book/notes\n"
        "      - file: book/experiments/two.ipynb\n        sections:\n          - file: book/experiments/sub/three\n"
        "          - file: book/experiments/page.md\n"
        "  - caption: B\n    chapters:\n      - file: book/experiments/four\n"
    )
    out = tmp_path / "book" / "experiments"
    assert book.toc_notebooks(tmp_path / "_toc.yml", out) == ["one", "two", "sub/three", "four"]
    assert book.toc_pages(tmp_path / "_toc.yml") == [
        "book/intro", "book/experiments/one", "book/notes", "book/experiments/two.ipynb",
        "book/experiments/sub/three", "book/experiments/page.md", "book/experiments/four",
    ]
    with pytest.raises(book.BookError, match="not found"):
        book.toc_notebooks(tmp_path / "missing.yml", out)


def _toc(tmp_path: Path, names: list[str]) -> Path:
    chapters = "".join(f"      - file: book/experiments/{n}\n" for n in names)
    toc = tmp_path / "_toc.yml"
    toc.write_text(f"format: jb-book\nroot: book/intro\nparts:\n  - caption: E\n    chapters:\n{chapters}")
    return toc


def test_run_injects_only_declared_parameters(tmp_path: Path) -> None:
    src, out = tmp_path / "notebooks", tmp_path / "book" / "experiments"
    _write_nb(
        src / "a.ipynb",
        [("code", 'preset = "cpu"\nseed = 1', ["parameters"]), ("code", "result = (preset, seed)", []),
         ("code", "import pathlib\nfrom rlqlib.engine import runs\np = pathlib.Path('runs')\n"
                  "# a line of another process (untagged) while the notebook runs, then the notebook's own runs\n"
                  "p.joinpath('ledger.jsonl').open('a').write('{\"event\": \"loaded\", \"run\": \"x\"}\\n')\n"
                  "for e in ['trained'] * 3 + ['loaded'] * 2: runs._record(p, e, p / 'r')", [])],
    )
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "ledger.jsonl").write_text('{"event": "trained", "run": "before"}\n')  # not this notebook's
    rows = book.run_notebooks(
        _toc(tmp_path, ["a"]), {"preset": "smoke", "seed": 7, "root": "/nowhere", "device": "cpu"},
        out_dir=out, src_dir=src, log_output=False, cwd=tmp_path,
    )
    executed = nbformat.read(out / "a.ipynb", as_version=4)
    assert executed.metadata.papermill.parameters == {"preset": "smoke", "seed": 7}
    assert "injected-parameters" in executed.cells[1].metadata.tags
    assert [(r["notebook"], r["status"], r["runs_trained"], r["runs_loaded"]) for r in rows] == [("a", "ok", 3, 2)]
    assert rows[0]["injected"] == ["preset", "seed"] and rows[0]["minutes"] > 0


def test_run_stops_at_a_failing_notebook_and_keeps_outputs(tmp_path: Path) -> None:
    src, out = tmp_path / "notebooks", tmp_path / "book" / "experiments"
    _write_nb(src / "good.ipynb", [("code", "x = 1", ["parameters"])])
    _write_nb(
        src / "bad.ipynb",
        [("code", "x = 1", ["parameters"]), ("markdown", "text", []), ("code", "y = 2\nraise ValueError('boom')", [])],
    )
    _write_nb(src / "never.ipynb", [("code", "x = 1", ["parameters"])])
    with pytest.raises(book.NotebookFailed) as info:
        book.run_notebooks(
            _toc(tmp_path, ["good", "bad", "never"]), {"x": 5}, out_dir=out, src_dir=src, log_output=False,
            cwd=tmp_path,
        )
    message = str(info.value)
    assert "'bad'" in message and "cell 2 " in message and "`y = 2`" in message and "ValueError: boom" in message
    assert info.value.notebook == "bad"
    assert [(r["notebook"], r["status"]) for r in info.value.rows] == [("good", "ok"), ("bad", "failed")]
    assert (out / "good.ipynb").is_file() and (out / "bad.ipynb").is_file() and not (out / "never.ipynb").exists()


def test_run_executes_pages_at_a_time_with_the_claims_page_after_the_others(tmp_path: Path) -> None:
    """jobs=2: two kernels at once (a and b each wait for the other to start), each with cores // 2 threads; claims
    starts after every other page finished (it reads their files here); rows come back in table-of-contents order;
    the ledger still counts each page's runs."""
    src, out = tmp_path / "notebooks", tmp_path / "book" / "experiments"
    names = ["a", "b", "c", "claims", "d"]
    for name, other in (("a", "b"), ("b", "a"), ("c", None), ("d", None)):  # a and b wait for each other to start
        wait = (f"deadline = time.time() + 60\nwhile not Path('{other}.start').exists():\n"
                "    assert time.time() < deadline, 'ran alone'\n    time.sleep(0.1)\n") if other else ""
        _write_nb(src / f"{name}.ipynb", [
            ("code", "x = 1", ["parameters"]),
            ("code", "import os, time\nfrom pathlib import Path\nfrom rlqlib.engine import runs\n"
                     f"Path('{name}.start').touch()\n{wait}"
                     f"Path('{name}.done').write_text(os.environ['OMP_NUM_THREADS'])\n"
                     "runs._record(Path('runs'), 'trained', Path('runs/r'))", [])])
    _write_nb(src / "claims.ipynb", [
        ("code", "x = 1", ["parameters"]),
        ("code", "from pathlib import Path\nassert all(Path(f'{n}.done').is_file() for n in 'abcd')", [])])
    (tmp_path / "runs").mkdir()
    rows = book.run_notebooks(_toc(tmp_path, names), {"x": 2}, out_dir=out, src_dir=src, log_output=False,
                              cwd=tmp_path, jobs=2)
    assert [(r["notebook"], r["status"], r["runs_trained"]) for r in rows] == [
        ("a", "ok", 1), ("b", "ok", 1), ("c", "ok", 1), ("claims", "ok", 0), ("d", "ok", 1)]
    threads = str(max(1, len(os.sched_getaffinity(0)) // 2))
    assert {(tmp_path / f"{n}.done").read_text() for n in "abcd"} == {threads}
    assert all((out / f"{n}.ipynb").is_file() for n in names)


def _record_of(folder: Path, minutes: dict[str, float]) -> Path:
    """A build record in ``folder`` with these pages' minutes."""
    from rlqlib.book import build_record as B

    record = folder / B.RECORD_NAME
    for name, value in minutes.items():
        B.update(record, {"notebook": name, "status": "ok", "minutes": value}, {})
    return record


def test_pages_at_a_time_start_longest_first_and_a_failure_names_its_page(tmp_path: Path) -> None:
    record = _record_of(tmp_path / "smoke", {"b": 4.5, "c": 0.4})
    assert book.page_order(["a", "b", "c", "d"], record) == ["b", "c", "a", "d"]
    assert book.page_order(["a", "b"], tmp_path / "absent.json") == ["a", "b"]
    src, out = tmp_path / "notebooks", tmp_path / "book" / "experiments"
    # "good" is still running when "bad" fails (it waits for bad's marker, then 3 s), so no job is free before then
    _write_nb(src / "good.ipynb", [("code", "x = 1", ["parameters"]), (
        "code", "import time\nfrom pathlib import Path\nwhile not Path('bad.raised').exists(): time.sleep(0.1)\n"
                "time.sleep(3)", [])])
    _write_nb(src / "bad.ipynb", [("code", "x = 1", ["parameters"]),
                                  ("code", "open('bad.raised', 'w').close()\nraise ValueError('boom')", [])])
    _write_nb(src / "later.ipynb", [("code", "x = 1", ["parameters"])])
    _write_nb(src / "claims.ipynb", [("code", "x = 1", ["parameters"])])
    with pytest.raises(book.NotebookFailed) as info:  # one job: "later" waits behind "bad" and never starts
        book.run_notebooks(_toc(tmp_path, ["good", "bad", "later", "claims"]), {}, out_dir=out, src_dir=src,
                           log_output=False, cwd=tmp_path, runs_dir=None, jobs=2,
                           order_from=_record_of(tmp_path, {"good": 3.0, "bad": 2.0, "later": 1.0}))
    assert info.value.notebook == "bad" and "ValueError: boom" in str(info.value)
    assert [(r["notebook"], r["status"]) for r in info.value.rows] == [("good", "ok"), ("bad", "failed")]
    assert not (out / "later.ipynb").exists()
    assert not (out / "claims.ipynb").exists()  # it would have gathered a failed book


def test_run_checks_names_and_sources_before_running(tmp_path: Path) -> None:
    src, out = tmp_path / "notebooks", tmp_path / "book" / "experiments"
    _write_nb(src / "a.ipynb", [("code", "x = 1", ["parameters"])])
    toc = _toc(tmp_path, ["a", "b"])
    with pytest.raises(book.BookError, match=r"notebooks/b\.ipynb"):
        book.run_notebooks(toc, {}, out_dir=out, src_dir=src)
    with pytest.raises(book.BookError, match=r"\['zzz'\] not in"):
        book.run_notebooks(toc, {}, only=["zzz"], out_dir=out, src_dir=src)
    assert not out.exists()


def test_kernel_sockets_are_polled_with_a_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client.channels import AsyncZMQSocketChannel

    client_cls = book.kernel_manager_class().class_traits()["client_factory"].default_value
    channel_cls = client_cls.class_traits()["shell_channel_class"].default_value
    assert client_cls.class_traits()["iopub_channel_class"].default_value is channel_cls
    calls: list[float | None] = []

    async def fake_get_msg(self, timeout=None):  # the stock channel: Empty twice, then a message
        calls.append(timeout)
        if len(calls) < 3:
            raise Empty
        return {"n": len(calls)}

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", fake_get_msg)
    channel = channel_cls.__new__(channel_cls)  # no socket needed: get_msg is faked
    assert asyncio.run(channel.get_msg()) == {"n": 3}
    assert calls == [book.SOCKET_POLL_S] * 3
    calls.clear()
    with pytest.raises(Empty):  # a zero timeout stays a single non-blocking poll
        asyncio.run(channel.get_msg(0))
    assert calls == [0.0]


def test_format_summary() -> None:
    rows = [{"notebook": "tab1", "status": "ok", "minutes": 1.234, "runs_trained": 2, "runs_loaded": 10}]
    assert book.format_summary(rows).splitlines() == [
        "notebook  status  minutes  runs_trained  runs_loaded",
        "--------  ------  -------  ------------  -----------",
        "tab1      ok      1.23     2             10",
    ]


# --------------------------------------------------------------------------------------------- smoke book build


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory, synthcc_smoke: Path) -> Path:
    """A temporary copy of the book, its notebooks executed with the smoke preset and rendered with -W -n."""
    widgets = REPO / "_widgets"
    if not (widgets / "embed-amd.js").is_file():
        pytest.fail(f"{widgets} is missing: run `make assets` (scripts/vendor_assets.sh) first")
    copy = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(REPO / name, copy / name)
    shutil.copytree(REPO / "notebooks", copy / "notebooks")
    shutil.copytree(REPO / "book", copy / "book", ignore=shutil.ignore_patterns("experiments"))
    (copy / "_widgets").symlink_to(widgets, target_is_directory=True)
    book.run_notebooks(
        copy / "_toc.yml", {**SMOKE_PARAMETERS, "root": str(synthcc_smoke)},
        out_dir=copy / "book" / "experiments", src_dir=copy / "notebooks", log_output=False, cwd=copy,
        cell_timeout=900,  # a stuck cell fails the test instead of blocking CI
    )
    book.build_book(copy, strict=True, capture=True)
    return copy


@pytest.mark.slow
def test_smoke_book_builds_every_page(built_book: Path) -> None:
    html = built_book / "_build" / "html"
    assert (html / "index.html").is_file()
    missing = [page for page in TOC_PAGES if not (html / f"{page}.html").is_file()]
    assert not missing, f"pages not rendered: {missing}"
    for name in TOC_NOTEBOOKS:
        executed = nbformat.read(built_book / "book" / "experiments" / f"{name}.ipynb", as_version=4)
        assert executed.metadata.papermill.parameters.get("preset", "smoke") == "smoke"


# --------------------------------------------------------------------------------------------- offline browser


def _expected_content(notebook: Path) -> dict[str, bool]:
    """What a rendered notebook page must show, from its visible outputs (removed cells and glue records skipped)."""
    nb = nbformat.read(notebook, as_version=4)
    found = {"table": False, "figure": False, "widget": False}
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type != "code" or tags & {"remove-output", "remove-cell"}:
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            found["table"] |= "<table" in str(data.get("text/html", ""))
            found["figure"] |= any(key.startswith("image/") for key in data)
            found["widget"] |= "application/vnd.jupyter.widget-view+json" in data
    return found


class _Server:
    """``http.server`` on 127.0.0.1 (any free port), serving one folder and recording every failed request."""

    def __init__(self, folder: Path):
        failed: list[str] = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def send_error(self, code, message=None, explain=None):
                failed.append(f"{code} {self.path}")
                super().send_error(code, message, explain)

        self.failed = failed
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="session")
def book_server(built_book: Path):
    server = _Server(built_book / "_build" / "html")
    yield server
    server.httpd.shutdown()


def _dump_dom(url: str, profile: Path) -> str:
    """The DOM of ``url`` after 10 s of virtual time in headless Chromium, with no DNS but 127.0.0.1."""
    if not CHROMIUM.is_file():
        message = f"{CHROMIUM} not found: install it with `make browser` (Debian chromium + chromium-driver)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # offline: any CDN request fails
        f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout


def _remote_assets(html: str) -> list[str]:
    """``<script>`` and stylesheet/preload ``<link>`` tags of a page that point at another host (a CDN)."""
    tags = re.findall(r"<(?:script|link)\b[^>]*>", html)
    return [
        tag for tag in tags
        if re.search(r"""\b(?:src|href)=["']?(?:https?:)?//""", tag)
        and (tag.startswith("<script") or re.search(r"rel=[\"']?(?:stylesheet|preload|modulepreload)", tag))
    ]


def test_remote_asset_detector() -> None:
    page = (
        '<script src="../_static/require.js"></script><script src="https://cdn.x/embed.js"></script>'
        '<link rel="stylesheet" href="//fonts.x/css"><link rel="canonical" href="https://x/page.html">'
        "<script>var u = 'https://x';</script>"
    )
    assert _remote_assets(page) == [
        '<script src="https://cdn.x/embed.js">', '<link rel="stylesheet" href="//fonts.x/css">'
    ]


@pytest.mark.browser
@pytest.mark.parametrize("page", TOC_PAGES)
def test_page_renders_offline(page: str, built_book: Path, book_server: _Server, tmp_path: Path) -> None:
    html_file = built_book / "_build" / "html" / f"{page}.html"
    remote = _remote_assets(html_file.read_text())
    assert not remote, f"{page}.html loads assets from the network (a CDN): {remote}"
    before = len(book_server.failed)
    dom = _dump_dom(f"{book_server.url}/{page}.html", tmp_path / "profile")
    assert "<article" in dom, f"{page}: Chromium returned no rendered page"
    failed = [entry for entry in book_server.failed[before:] if not entry.endswith("/favicon.ico")]
    assert not failed, f"{page}: requests for missing files (vendored assets incomplete?): {failed}"
    if page == "book/intro":
        assert "<mjx-container" in dom, "intro: MathJax did not render the display math (offline)"
    name = Path(page).relative_to("book/experiments").as_posix() if page.startswith("book/experiments/") else None
    if name is not None:
        expected = _expected_content(built_book / "book" / "experiments" / f"{name}.ipynb")
        if expected["table"]:
            assert "<table" in dom, f"{page}: the notebook shows a table; the page has none"
        if expected["figure"]:
            assert "<img" in dom, f"{page}: the notebook shows a figure; the page has no <img>"
        if expected["widget"]:
            assert re.search(WIDGET_CLASS, dom), f"{page}: widgets did not render (offline)"
            local = _dump_dom(html_file.resolve().as_uri(), tmp_path / "profile-file")  # the README's way
            assert re.search(WIDGET_CLASS, local), f"{page}: widgets did not render from file://"


def _open(driver, url: str, css: str):
    """Load ``url`` and wait until ``css`` exists (an explorer drawn from its saved state)."""
    driver.get(url)
    return wait_for(driver, css, timeout=60)


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["file", "http"])
def test_explorers_interact_offline(scheme: str, built_book: Path, book_server: _Server, tmp_path: Path) -> None:
    """The built explorer pages work without a kernel and without the network, opened as files (the README's way)
    and served: a filter and another query change the shown gallery; pointing at a t-SNE dot shows its images."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    html = built_book / "_build" / "html" / "book" / "experiments"
    url = {"file": lambda name: (html / f"{name}.html").resolve().as_uri(),
           "http": lambda name: f"{book_server.url}/book/experiments/{name}.html"}[scheme]
    with chromium(tmp_path / "profile") as driver:
        _open(driver, url("explore_matches"), '[data-role="gallery-a"] [data-cell]')
        count = driver.find_element(By.CSS_SELECTOR, '[data-role="count"]')
        total, shown = count.text, cells(driver, "gallery-a")
        queries = [o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, 'select[data-role="query"] option')]
        views = {tuple(shown)}
        for q in queries[1:]:
            choose(driver, "query", q)
            views.add(tuple(cells(driver, "gallery-a")))
        assert len(views) > 1, "picking other queries never changed the shown gallery"
        choose(driver, "query", queries[0])
        shown = cells(driver, "gallery-a")
        changed = []
        for outcome in ("both", "a_only", "b_only", "neither"):
            choose(driver, "filter-outcome", outcome)
            changed.append((count.text != total, cells(driver, "gallery-a") != shown))
        assert any(c for c, _ in changed) and any(g for _, g in changed), f"the top-1 filter changed nothing: {changed}"
        assert not remote(requests(driver)), f"explore_matches ({scheme}) requested the network"

        _open(driver, url("fig6_tsne"), ".rlqx-tsne circle")
        dot = driver.find_elements(By.CSS_SELECTOR, ".rlqx-tsne circle")[-1]  # an LQ twin
        ActionChains(driver).move_to_element(dot).perform()
        assert len(cells(driver, "detail")) == 2, "pointing at a t-SNE dot did not show its HQ image and LQ twin"
        assert not remote(requests(driver)), f"fig6_tsne ({scheme}) requested the network"


def test_page_title(tmp_path: Path) -> None:
    _write_nb(tmp_path / "a.ipynb", [("code", "x = 1", []), ("markdown", "intro\n# Table 9 — TAD variants\n## (a)", [])])
    assert book.page_title(tmp_path / "a.ipynb") == "Table 9 — TAD variants"
    _write_nb(tmp_path / "b.ipynb", [("markdown", "no heading", [])])
    assert book.page_title(tmp_path / "b.ipynb") == "b"


def test_run_can_write_elsewhere_than_the_book(tmp_path: Path) -> None:
    src, out, scratch = tmp_path / "notebooks", tmp_path / "book" / "experiments", tmp_path / "scratch"
    _write_nb(src / "a.ipynb", [("code", "x = 1", ["parameters"]), ("code", "y = x + 1", [])])
    rows = book.run_notebooks(_toc(tmp_path, ["a"]), {"x": 2}, out_dir=out, src_dir=src, log_output=False,
                              cwd=tmp_path, runs_dir=None, write_to=scratch)
    assert rows[0]["status"] == "ok" and (scratch / "a.ipynb").is_file() and not out.exists()
