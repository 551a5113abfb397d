"""The book's last page: every page's saved claims for one preset and dataset, gathered in the book's order.

Each results page saves its claims when it runs (:func:`rlqlib.book.verdicts.save_claims`); :func:`gather` reads
those saved for the given preset and dataset, for the pages the table of contents lists before the summary page. A
page executed with other parameters, or not executed, is listed as missing rather than shown with stale numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rlqlib.book import verdicts as V


@dataclass(frozen=True)
class ClaimsSummary:
    """Attributes:
        table: every saved claim (``page`` + :data:`rlqlib.book.verdicts.CLAIM_COLUMNS`).
        tally: verdict counts per page title, and an ``all pages`` row.
        titles: page → its title.
        checked: the pages with saved claims, in the book's order.
        absent: the pages without.
    """

    table: pd.DataFrame
    tally: pd.DataFrame
    titles: dict[str, str]
    checked: list[str]
    absent: list[str]

    def rows(self, page: str) -> pd.DataFrame:
        """One page's claims, indexed by claim."""
        return self.table[self.table["page"] == page].drop(columns="page").set_index("claim")

    def glue(self, preset: str, dataset: str) -> dict:
        """The summary page's glue values (``claims_*``)."""
        counts = self.tally.loc["all pages"]
        no_claims = [self.titles[p] for p in self.absent]
        return {"claims_n": int(len(self.table)),
                "claims_tally": ", ".join(f"**{int(counts.get(v, 0))} {v}**" for v in V.VERDICTS),
                "claims_unchecked": int(sum(counts.get(v, 0) for v in V.NOT_CHECKED)),
                "claims_pages": len(self.checked), "claims_setting": f"`{preset}` preset on {dataset}",
                "claims_absent": "; ".join(no_claims) if no_claims else "none"}


def gather(dataset: str, preset: str, page: str = "claims", toc: str | Path = "_toc.yml",
           out_dir: str | Path = "book/experiments", src_dir: str | Path = "notebooks",
           folder: str | Path = V.CLAIMS_DIR) -> ClaimsSummary:
    """The saved claims of the pages before ``page`` in the table of contents, for ``dataset`` and ``preset``."""
    from rlqlib.book.runner import page_title, toc_notebooks  # here, so `python -m rlqlib.book.runner` runs clean

    pages = toc_notebooks(toc, out_dir)
    pages = pages[:pages.index(page)] if page in pages else pages
    titles = {p: page_title(Path(src_dir) / f"{p}.ipynb") for p in pages}
    table, absent = V.load_claims(pages, dataset, preset, folder)
    checked = [p for p in pages if p in set(table["page"])]
    tally = pd.crosstab(table["page"].map(titles), table["verdict"]).reindex(
        index=[titles[p] for p in checked], columns=[*V.VERDICTS, *V.NOT_CHECKED], fill_value=0)
    tally = tally.loc[:, (tally.sum() > 0) | tally.columns.isin(V.VERDICTS)]
    tally.loc["all pages"] = tally.sum()
    return ClaimsSummary(table, tally, titles, checked, absent)
