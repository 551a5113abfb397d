"""Table 1: a dataset's identities, images, clothes, artifacts and protocols, as ``rlqlib`` loads it, beside the
paper's rows (:mod:`rlqlib.book.reported`)::

    t = dataset_table("synthcc", "data/synthcc-cpu", "cpu")
    t.table          # our row first, then the paper's (all cells strings)
    t.splits         # ids, images, clothes per split
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rlqlib.book import reported
from rlqlib.data import datasets as Dt

ARTIFACT_COLUMNS = ("pixelation", "out_of_focus", "motion_blur")  # the paper's column order


@dataclass(frozen=True)
class DatasetTable:
    """Table 1 for one dataset.

    Attributes:
        table: our row (``dataset``, ``quality``, ids/images/clothes per train/test, the artifact shares of
            SynthCC, ``protocols``), then the paper's rows; strings, empty = not reported.
        splits: ``ids, images, clothes`` per split.
        stats: :func:`rlqlib.data.datasets.dataset_stats`.
        lq_share: % of SynthCC's train/query/test images with an artifact (None: not measured, a real dataset).
        source: the paper's table the other rows come from.
    """

    table: pd.DataFrame
    splits: pd.DataFrame
    stats: dict
    lq_share: float | None
    source: str

    def glue(self) -> dict:
        """The page's glue values (identities, images, clothes, LQ share)."""
        tr, te = self.stats["train"], self.stats["test"]
        return {"n_train_ids": tr["ids"], "n_test_ids": te["ids"], "n_train_images": tr["images"],
                "n_test_images": te["images"], "n_train_clothes": tr["clothes"],
                "lq_share": f"{self.lq_share:.0f} %" if self.lq_share is not None else "(not measured)"}


def dataset_table(dataset: str, root: str | Path, preset: str) -> DatasetTable:
    """Table 1 of ``dataset`` at ``root`` (``preset`` only names our row)."""
    ds = Dt.load_dataset(dataset, Path(root))
    stats = Dt.dataset_stats(ds)
    row = {"dataset": f"{dataset} ({preset})", "quality": "ours"}
    for part in ("ids", "images", "clothes"):
        row.update({f"train_{part}": stats["train"][part], f"test_{part}": stats["test"][part]})
    row["protocols"] = ", ".join(p.upper() if p != "general" else "General" for p in ds.protocols)
    lq_share = None
    if dataset == "synthcc":
        meta = Dt.synthcc_metadata(Path(root))
        share = meta[meta["split"].isin(["train", "query", "test"])]["artifact"].value_counts(normalize=True)
        row.update({name: f"{100 * share.get(name, 0.0):.0f}%" for name in ARTIFACT_COLUMNS})
        lq_share = 100 * (1 - share.get("none", 0.0))
        row["quality"] = f"LQ ({lq_share:.0f}% of images)"
    ours = pd.DataFrame([row])
    table = pd.concat([ours.astype(str), reported.load("tab1_datasets")], ignore_index=True).fillna("")
    return DatasetTable(table, pd.DataFrame(stats["splits"]).T, stats, lq_share, reported.source("tab1_datasets"))
