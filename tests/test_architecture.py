"""The package's architecture, read from the source with ``ast`` (nothing is imported):

* the import graph of ``rlqlib`` has no cycle (every ``import``/``from … import``, including those inside
  functions and under ``if TYPE_CHECKING:``; relative imports resolved);
* imports point down the tiers data → synthcc → methods → engine → book → cli (docs/architecture.md);
* notebooks import from ``rlqlib`` only the public API (``rlqlib`` and ``rlqlib.book`` top-level names) and stay
  short (at most 80 code lines);
* every ``docs/spec.md §x.y`` / ``docs/fire2-spec.md §x`` the sources cite exists in that document.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "rlqlib"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
MAX_NOTEBOOK_LINES = 80
PUBLIC_API = {PACKAGE, f"{PACKAGE}.book"}

# Tier -> the tiers its modules may import (itself included). ``rlqlib`` (the top-level __init__) is the notebooks'
# entry point: no tier imports it.
ALLOWED = {
    "data": {"data"},
    "synthcc": {"synthcc", "data"},
    "methods": {"methods", "data"},
    "engine": {"engine", "methods", "synthcc", "data"},
    "book": {"book", "engine", "methods", "synthcc", "data"},
    "cli": {"cli", "book", "engine", "methods", "synthcc", "data"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _sources() -> dict[str, tuple[Path, ast.Module]]:
    """Every module of the package: name -> (file, parsed tree)."""
    return {_module_name(p): (p, ast.parse(p.read_text(), filename=str(p)))
            for p in sorted((REPO / PACKAGE).rglob("*.py"))}


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules one import statement binds to; for ``from base import name`` the submodule ``base.name`` when
    it exists, else ``base`` itself (the name is an attribute of that module)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    out = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.add(sub if sub in known else base)
    return out


def _imports(tree: ast.AST, module: str = "", is_package: bool = False, known: set[str] = frozenset()) -> set[str]:
    """All modules imported anywhere in ``tree`` (module level, functions, ``if TYPE_CHECKING:``, ``try``)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= _targets(node, module, is_package, known)
    return found


@cache
def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (edges outside the package dropped)."""
    sources = _sources()
    known = set(sources)
    return {name: {t for t in _imports(tree, name, path.name == "__init__.py", known) if t in known and t != name}
            for name, (path, tree) in sources.items()}


def _tier(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, …, a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_graph_sees_every_kind_of_import():
    known = {"p", "p.a", "p.a.b", "p.a.c", "p.t"}
    tree = ast.parse(
        "import p.a\nfrom . import c\nfrom .c import f\nfrom .. import t\nfrom p.a import b, const\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p import t\n"
        "def g():\n    from .b import h\n")
    assert _imports(tree, "p.a.b", False, known) == {"p.a", "p.a.c", "p.t", "p.a.b", "typing"}
    assert _imports(ast.parse("from . import b\nfrom .c import x"), "p.a", True, known) == {"p.a.b", "p.a.c"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 20 and any(graph.values())  # the source was found and parsed
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_point_down_the_tiers():
    graph = import_graph()
    assert {_tier(m) for m in graph} - {PACKAGE} <= set(ALLOWED), "a new tier: add it to ALLOWED and the doc"
    wrong = sorted(f"{m} ({_tier(m)}) imports {t} ({_tier(t)})"
                   for m, targets in graph.items() if _tier(m) in ALLOWED
                   for t in targets if _tier(t) not in ALLOWED[_tier(m)])
    assert not wrong, "imports that point up (or sideways) the tiers:\n" + "\n".join(wrong)


def _code_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells if c["cell_type"] == "code"]


def _parse_cell(source: str, where: str) -> ast.Module:
    # IPython magics and shell escapes are not Python: blank them out before parsing
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError as err:
        pytest.fail(f"{where}: code cell is not valid Python ({err})")


def _private_imports(tree: ast.Module) -> list[str]:
    """The imports of a notebook cell that reach past the public API (``rlqlib``, ``rlqlib.book`` names)."""
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad += [a.name for a in node.names
                    if (a.name == PACKAGE or a.name.startswith(PACKAGE + ".")) and a.name != PACKAGE]
        elif isinstance(node, ast.ImportFrom) and (node.level or node.module.split(".")[0] == PACKAGE):
            if node.level or node.module not in PUBLIC_API:
                bad.append(f"from {'.' * node.level}{node.module or ''} import {', '.join(a.name for a in node.names)}")
            elif node.module == PACKAGE:  # from rlqlib import X: a name, or the book, not another tier
                bad += [f"from {PACKAGE} import {a.name}" for a in node.names
                        if f"{PACKAGE}.{a.name}" in _sources() and a.name != "book"]
    return bad


def test_notebook_import_check_itself():
    ok = "import rlqlib\nfrom rlqlib import book\nfrom rlqlib.book import tables, plots\nimport numpy as np"
    assert _private_imports(ast.parse(ok)) == []
    bad = ("import rlqlib.book\nfrom rlqlib.engine import config\nfrom rlqlib.book.plots import x\nfrom . import y\n"
           "from rlqlib import engine, __version__")
    assert len(_private_imports(ast.parse(bad))) == 5


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_uses_only_the_public_api(notebook: Path):
    bad = [f"cell {i}: {imp}" for i, src in enumerate(_code_cells(notebook))
           for imp in _private_imports(_parse_cell(src, f"{notebook.name} cell {i}"))]
    assert not bad, (f"{notebook.name} imports past the public API (import rlqlib / from rlqlib import X / "
                     f"from rlqlib.book import X):\n" + "\n".join(bad))


def _code_lines(source: str) -> int:
    return sum(1 for line in source.splitlines() if line.strip() and not line.strip().startswith("#"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_short(notebook: Path):
    n = sum(_code_lines(src) for src in _code_cells(notebook))
    assert n <= MAX_NOTEBOOK_LINES, (f"{notebook.name} has {n} non-blank, non-comment code lines "
                                     f"(at most {MAX_NOTEBOOK_LINES}): move the logic into rlqlib.book")


# ------------------------------------------------------------------------------------ citations of the specification

SPECS = ("docs/spec.md", "docs/fire2-spec.md")
CITED_IN = ("rlqlib", "tests", "bench", "notebooks", "book", "scripts")
_REF = r"[0-9][0-9.]*(?:-P[0-9]+)?"
CITATION = re.compile(rf"(docs/(?:fire2-)?spec\.md) §({_REF}(?:(?:[–/-]|, )§?{_REF})*)")
BARE = re.compile(r"(?<![\w./-])(?:fire2-)?[Ss]pec §")  # a citation without its document's path


def spec_sections(text: str) -> set[str]:
    """The § numbers a specification defines: ``## n.`` and ``### n.m`` headings; under a ``## n.`` heading, the
    numbered items (``§n.m`` = item m) and the ``**Pk —`` items (``§n-Pk``)."""
    found: set[str] = set()
    top = None
    for line in text.splitlines():
        if m := re.match(r"(#{2,3}) ([0-9]+(?:\.[0-9]+)?)\.? ", line):
            found.add(m.group(2))
            top = m.group(2) if len(m.group(1)) == 2 else None
        elif top and (m := re.match(r"([0-9]+)\. ", line)):
            found.add(f"{top}.{m.group(1)}")
        elif top and (m := re.match(r"\* \*\*(P[0-9]+) ", line)):
            found.add(f"{top}-{m.group(1)}")
    return found


def _cited_files() -> list[Path]:
    return [p for folder in CITED_IN for p in sorted((REPO / folder).rglob("*"))
            if p.suffix in {".py", ".ipynb", ".md"} and p.is_file()
            and p != Path(__file__).resolve()  # this file's examples are not citations
            and not any(part.startswith(".") or part in {"experiments", "__pycache__"}
                        for part in p.relative_to(REPO).parts)]


def test_spec_section_parser():
    doc = "## 2. Losses\n### 2.1 CE\n1. a list item inside 2.1\n## 9. Bugs\n1. one\n10. ten\n## 8. X\n* **P1 — y**"
    assert spec_sections(doc) == {"2", "2.1", "9", "9.1", "9.10", "8", "8-P1"}
    text = "docs/spec.md §1.1–1.6 and docs/spec.md §2.10, §9.1; docs/fire2-spec.md §8-P1. docs/spec.md §2 pair10"
    assert [m.groups() for m in CITATION.finditer(text)] == [
        ("docs/spec.md", "1.1–1.6"), ("docs/spec.md", "2.10, §9.1"), ("docs/fire2-spec.md", "8-P1"),
        ("docs/spec.md", "2")]
    assert BARE.search("(spec §4)") and BARE.search("Spec §3.7") and not BARE.search("docs/spec.md §4")


def test_every_cited_spec_section_exists():
    sections = {doc: spec_sections((REPO / doc).read_text()) for doc in SPECS}
    assert {"1.1", "2.10", "3.11", "9.22", "12"} <= sections["docs/spec.md"]
    assert {"1", "8-P1", "9"} <= sections["docs/fire2-spec.md"]
    missing, bare = [], []
    for path in _cited_files():
        text = path.read_text(errors="replace")
        where = path.relative_to(REPO)
        if n := len(BARE.findall(text)):
            bare.append(f"{where}: {n}")
        for m in CITATION.finditer(text):
            refs = re.split(r"[–/-](?!P)|, ", m.group(2).replace("§", ""))
            missing += [f"{where}: {m.group(1)} §{r.rstrip('.')}" for r in refs
                        if r.rstrip(".") not in sections[m.group(1)]]
    assert not bare, "citations without the document's path (write docs/spec.md § or docs/fire2-spec.md §):\n" + \
        "\n".join(bare)
    assert not missing, "cited sections that the specification does not have:\n" + "\n".join(missing)
