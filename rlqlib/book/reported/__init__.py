"""The papers' reported numbers, transcribed once into CSV files (one per paper item) with their source.

``load("tab1_datasets")`` returns a pandas DataFrame; the first line of each CSV is a ``#`` comment naming the
source table.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd


def available() -> list[str]:
    """Names of the transcribed tables."""
    return sorted(p.name[:-4] for p in resources.files(__name__).iterdir() if p.name.endswith(".csv"))


def source(name: str) -> str:
    """The source line (paper, table) of a transcribed table."""
    with resources.files(__name__).joinpath(f"{name}.csv").open() as fh:
        return fh.readline().lstrip("# ").strip()


def load(name: str) -> pd.DataFrame:
    """A transcribed table as a DataFrame (empty cells = not reported)."""
    if name not in available():
        raise KeyError(f"no reported table {name!r}; available: {available()}")
    with resources.files(__name__).joinpath(f"{name}.csv").open() as fh:
        return pd.read_csv(fh, comment="#", dtype=str, keep_default_na=False)
