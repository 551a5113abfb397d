"""The book's table of contents (Jupyter Book's ``_toc.yml``): its pages, and which of them are executed notebooks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


class BookError(RuntimeError):
    """The table of contents, a source notebook or the book build is not what the runner expects."""



def _toc_files(node: Any) -> Iterator[str]:
    """Yield every ``file`` entry of a parsed ``_toc.yml`` (root, parts, chapters, sections), in order."""
    if isinstance(node, dict):
        for key in ("root", "file"):
            if isinstance(node.get(key), str):
                yield node[key]
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key) or []:
                yield from _toc_files(child)
    elif isinstance(node, list):
        for child in node:
            yield from _toc_files(child)


def toc_pages(toc: str | Path = "_toc.yml") -> list[str]:
    """Every page of a jb-book ``_toc.yml`` (root, parts, chapters, sections), in order, as written there.

    Raises:
        BookError: the toc file is missing or not a mapping.
    """
    toc = Path(toc)
    if not toc.is_file():
        raise BookError(f"table of contents {toc} not found; run from the book root or pass toc=")
    parsed = yaml.safe_load(toc.read_text())
    if not isinstance(parsed, dict) or "root" not in parsed:
        raise BookError(f"{toc} is not a jb-book table of contents (expected a mapping with `root:`)")
    return list(_toc_files(parsed))


def toc_notebooks(toc: str | Path = "_toc.yml", out_dir: str | Path = "book/experiments") -> list[str]:
    """Names of the notebooks the book needs: the ``_toc.yml`` entries under ``out_dir``, in order.

    Entries are resolved relative to the folder holding ``toc``; ``out_dir`` relative to the current directory.
    An entry ``book/experiments/tab1_datasets`` (with or without ``.ipynb``) gives ``tab1_datasets``; a nested
    entry ``book/experiments/ablations/taus`` gives ``ablations/taus``. Markdown pages are not notebooks.

    Args:
        toc: path to the Jupyter Book table of contents.
        out_dir: folder the executed notebooks are written to.

    Returns:
        The notebook names, without suffix, in table-of-contents order.

    Raises:
        BookError: the toc file is missing or not a mapping.
    """
    toc = Path(toc)
    entries = toc_pages(toc)
    out = Path(out_dir).resolve()
    names: list[str] = []
    for entry in entries:
        path = Path(entry)
        if path.suffix not in ("", ".ipynb"):
            continue
        target = (toc.parent / path).resolve()
        if target.is_relative_to(out):
            names.append(target.relative_to(out).with_suffix("").as_posix())
    return names
