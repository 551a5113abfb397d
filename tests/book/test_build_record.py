"""The build record and its page, "How this book was built" (:mod:`rlqlib.book.build_record`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
import pytest

from rlqlib.book import build_record as B
from rlqlib.book import runner

REPO = Path(__file__).resolve().parents[2]


def _write_nb(path: Path, cells: list[tuple[str, str, list[str]]]) -> None:
    nb = nbformat.v4.new_notebook()
    make = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell}
    nb.cells = [make[kind](source, metadata={"tags": tags} if tags else {}) for kind, source, tags in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def _book(tmp_path: Path, names: list[str], page: bool = True) -> Path:
    """A tiny book: intro, the notebooks ``names`` (a title and a parameters cell each), the build page."""
    chapters = "".join(f"      - file: book/experiments/{n}\n" for n in names)
    about = "  - caption: About\n    chapters:\n      - file: book/build\n" if page else ""
    toc = tmp_path / "_toc.yml"
    toc.write_text(f"format: jb-book\nroot: book/intro\nparts:\n  - caption: E\n    chapters:\n{chapters}{about}")
    (tmp_path / "book").mkdir(exist_ok=True)
    (tmp_path / "book" / "intro.md").write_text("# Intro\n\nA tiny book.\n")
    for name in names:
        _write_nb(tmp_path / "notebooks" / f"{name}.ipynb", [
            ("markdown", f"# Page {name.upper()}", []),
            ("code", 'preset = "cpu"\nseeds = [0, 1, 2]', ["parameters"]),
            ("code", "x = len(seeds)", []),
        ])
    return toc


def _row(name: str, commit: str = "a" * 40, **kw) -> dict:
    return {"notebook": name, "title": f"Page {name}", "status": "ok", "minutes": 1.5, "runs_trained": 2,
            "runs_loaded": 3, "injected": ["preset"], "parameters": {"preset": "smoke", "seeds": [0, 1, 2]},
            "started_at": "2026-12-05T10:00:00Z", "finished_at": "2026-12-05T10:01:30Z", "commit": commit,
            "dirty": False, **kw}


BOOK = {"collected_at": "2026-12-05T10:00:00Z", "commit": "b" * 40, "dirty": True, "python": "3.12.3",
        "packages": {"torch": "2.13.0", "anywidget": B.NOT_INSTALLED},
        "machine": {"platform": "Linux-test", "cpu": "Test CPU", "cores": 2, "memory_gib": 7.8, "gpus": []},
        "parameters": {"preset": "smoke", "root": "data/synthcc-smoke", "seeds": [0], "runs_dir": "runs-smoke"}}


def test_merge_replaces_the_rerun_page_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    B.update(path, _row("a", commit="1" * 40), BOOK)
    B.update(path, _row("b", commit="1" * 40), BOOK)
    later = {**BOOK, "commit": "2" * 40}
    record = B.update(path, _row("a", commit="2" * 40, minutes=9.0), later)
    assert B.load(path) == record and record["schema"] == B.SCHEMA and record["book"] == later
    rows = {row["notebook"]: row for row in record["pages"]}
    assert sorted(rows) == ["a", "b"]
    assert rows["a"]["commit"] == "2" * 40 and rows["a"]["minutes"] == 9.0
    assert rows["b"]["commit"] == "1" * 40 and rows["b"]["minutes"] == 1.5


def test_load_rejects_other_schemas_and_garbage(tmp_path: Path) -> None:
    assert B.load(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert B.load(tmp_path / "bad.json") is None
    (tmp_path / "old.json").write_text(json.dumps({"schema": 0, "pages": []}))
    assert B.load(tmp_path / "old.json") is None
    assert B.update(tmp_path / "bad.json", _row("a"), BOOK)["pages"] == [_row("a")]


def test_page_shows_every_row_the_commit_and_the_versions() -> None:
    record = {"schema": 1, "book": BOOK,
              "pages": [_row("b", commit="c" * 40, status="failed"), _row("a"), _row("gone")]}
    text = B.render(record, ["a", "b", "c"], docs={"a": "experiments/a"})
    lines = text.splitlines()
    assert lines[0] == "# How this book was built"
    table = [line for line in lines if line.startswith("| ")]
    a, b, c, gone = (next(line for line in table if f"`{n}`" in line) for n in ("experiments/a", "b", "c", "gone"))
    assert table.index(a) < table.index(b) < table.index(c) < table.index(gone)  # toc order, then the rest
    assert a == "| {doc}`experiments/a` | ok | 1.50 | 2 | 3 | 2026-12-05 10:01:30 | `aaaaaaa` |"
    assert "| `a` | smoke | – | – | – | 0, 1, 2 † |" in lines  # parameters: injected, else † the default
    assert "**failed**" in b and "`ccccccc`" in b
    assert "not executed" in c
    assert "| Commit | `bbbbbbb`\\* (uncommitted changes) |" in lines
    assert "| torch | 2.13.0 |" in lines and "| anywidget | not installed |" in lines
    assert "| CPU | Test CPU, 2 cores |" in lines and "| GPUs | none |" in lines
    assert "make book PRESET=smoke DATA_ROOT=data/synthcc-smoke SEEDS=0 RUNS_DIR=runs-smoke" in text
    assert "git checkout bbbbbbbbbbbb" in text
    assert "different commits" in text and "Not every page finished: `b`." in text


def test_page_without_a_record_says_nothing_ran() -> None:
    text = B.render(None, ["a"], record_path="book/experiments/build_record.json")
    assert text.startswith("# How this book was built") and "have not been executed yet" in text
    assert "`book/experiments/build_record.json`" in text


def test_unknown_commit_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert B.git_state(tmp_path) == (B.UNKNOWN, None)  # not a repository
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable at all
    assert B.git_state(REPO) == (B.UNKNOWN, None)
    env = B.environment(tmp_path)
    assert env["commit"] == B.UNKNOWN and env["dirty"] is None
    text = B.render({"schema": 1, "book": env, "pages": [_row("a", commit=B.UNKNOWN, dirty=None)]}, ["a"])
    assert "git checkout" not in text and "| Commit | unknown |" in text


def test_git_state_of_a_repository(tmp_path: Path) -> None:
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "f").write_text("1")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "c"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert B.git_state(tmp_path) == (head, False)
    (tmp_path / "f").write_text("2")
    assert B.git_state(tmp_path) == (head, True)


def test_missing_package_and_the_machine() -> None:
    versions = B.package_versions(["numpy", "no-such-distribution-rlq"])
    assert versions["no-such-distribution-rlq"] == B.NOT_INSTALLED and versions["numpy"][0].isdigit()
    assert set(B.package_versions()) == set(B.PACKAGES)
    m = B.machine()
    assert m["cores"] >= 1 and m["cpu"] and isinstance(m["gpus"], list)


def test_make_command() -> None:
    assert B.make_command({"preset": "cpu", "seeds": [0, 1], "runs_dir": "runs"}, only="tab2_main") == (
        "make book PRESET=cpu SEEDS=0,1 RUNS_DIR=runs ONLY=tab2_main")


def test_run_writes_the_record_and_the_page(tmp_path: Path) -> None:
    toc = _book(tmp_path, ["a", "b"])
    src, out = tmp_path / "notebooks", tmp_path / "book" / "experiments"
    kw = {"out_dir": out, "src_dir": src, "log_output": False, "cwd": tmp_path, "runs_dir": None}
    rows = runner.run_notebooks(toc, {"preset": "smoke", "device": "cpu"}, **kw)
    assert rows[0]["parameters"] == {"preset": "smoke", "seeds": [0, 1, 2]}  # injected, else the default
    first = B.load(out / B.RECORD_NAME)
    assert [r["notebook"] for r in first["pages"]] == ["a", "b"]
    assert all(r["status"] == "ok" and r["finished_at"] and r["title"] == f"Page {r['notebook'].upper()}"
               for r in first["pages"])
    assert first["book"]["parameters"] == {"preset": "smoke", "device": "cpu"}
    page = (tmp_path / "book" / "build.md").read_text()
    assert "{doc}`experiments/a`" in page and "{doc}`experiments/b`" in page and "| `a` | smoke | – |" in page

    runner.run_notebooks(toc, {"preset": "cpu"}, only=["b"], **kw)  # one page again
    second = {r["notebook"]: r for r in B.load(out / B.RECORD_NAME)["pages"]}
    assert second["a"] == next(r for r in first["pages"] if r["notebook"] == "a")
    assert second["b"]["parameters"]["preset"] == "cpu"
    assert "different presets" in (tmp_path / "book" / "build.md").read_text()

    scratch = tmp_path / "scratch"  # a scratch execution (make plan's smoke book) leaves the book alone
    before = (out / B.RECORD_NAME).read_text(), (tmp_path / "book" / "build.md").read_text()
    runner.run_notebooks(toc, {"preset": "smoke"}, only=["a"], write_to=scratch, **kw)
    assert [r["notebook"] for r in B.load(scratch / B.RECORD_NAME)["pages"]] == ["a"]
    assert before == ((out / B.RECORD_NAME).read_text(), (tmp_path / "book" / "build.md").read_text())


def test_a_failed_page_is_recorded(tmp_path: Path) -> None:
    toc = _book(tmp_path, ["a", "bad"])
    _write_nb(tmp_path / "notebooks" / "bad.ipynb", [("markdown", "# Bad", []), ("code", "x = 1", ["parameters"]),
                                                     ("code", "raise ValueError('boom')", [])])
    out = tmp_path / "book" / "experiments"
    with pytest.raises(runner.NotebookFailed):
        runner.run_notebooks(toc, {}, out_dir=out, src_dir=tmp_path / "notebooks", log_output=False, cwd=tmp_path,
                             runs_dir=None)
    status = {r["notebook"]: r["status"] for r in B.load(out / B.RECORD_NAME)["pages"]}
    assert status == {"a": "ok", "bad": "failed"}
    assert "Not every page finished: `bad`." in (tmp_path / "book" / "build.md").read_text()


def test_write_page_only_for_a_toc_listing_it(tmp_path: Path) -> None:
    _book(tmp_path, ["a"], page=False)
    assert B.write_page(tmp_path) is None and not (tmp_path / "book" / "build.md").exists()
    _book(tmp_path, ["a"])
    assert B.write_page(tmp_path) == tmp_path / "book" / "build.md"
    assert "have not been executed yet" in (tmp_path / "book" / "build.md").read_text()


def test_the_repository_toc_lists_the_page_and_git_ignores_it() -> None:
    assert runner.toc_pages(REPO / "_toc.yml")[-1] == "book/build"
    ignored = subprocess.run(["git", "-C", str(REPO), "check-ignore", "book/build.md",
                              f"book/experiments/{B.RECORD_NAME}"], capture_output=True, text=True)
    assert ignored.stdout.split() == ["book/build.md", f"book/experiments/{B.RECORD_NAME}"]


def test_the_page_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    """Jupyter Book renders the page (its tables, {doc} links and note) with -W -n, with and without a record."""
    toc = _book(tmp_path, ["a"])
    (tmp_path / "_config.yml").write_text(
        'title: t\nonly_build_toc_files: true\nexecute:\n  execute_notebooks: "off"\n'
        "exclude_patterns: [notebooks, _build]\n")
    runner.build_book(tmp_path, capture=True)  # no record: the placeholder page (page `a` missing: not strict)
    assert "have not been executed yet" in (tmp_path / "_build" / "html" / "book" / "build.html").read_text()
    runner.run_notebooks(toc, {"preset": "smoke"}, out_dir=tmp_path / "book" / "experiments",
                         src_dir=tmp_path / "notebooks", log_output=False, cwd=tmp_path, runs_dir=None)
    runner.build_book(tmp_path, strict=True, capture=True)
    html = (tmp_path / "_build" / "html" / "book" / "build.html").read_text()
    assert "Page A" in html and 'href="experiments/a.html"' in html and "Package versions" in html
