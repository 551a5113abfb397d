"""The book's page "Where this code differs from the paper and from the authors' code": the table of
:data:`rlqlib.engine.differences.DIFFERENCES`, with this code's defaults read from real configs.
"""

from __future__ import annotations

import pandas as pd

from rlqlib.engine.differences import DIFFERENCES, default_of

#: the preset and dataset of the reference column: the paper's setting on a real target
REFERENCE_SETTING = ("paper", "ltcc")


def differences_table(preset: str, dataset: str) -> pd.DataFrame:
    """One row per difference: the paper, the authors' code, this code's default under ``preset`` on ``dataset``
    and under the paper preset on LTCC, the switch to the other behaviour, and whether it matters on SynthCC."""
    ref_preset, ref_dataset = REFERENCE_SETTING
    here, there = f"ours ({preset}, {dataset})", f"ours ({ref_preset}, {ref_dataset})"
    rows = [{"": d.key, "what": d.what, "paper": d.paper, "authors' code": d.authors,
             here: default_of(d, preset, dataset), there: default_of(d, ref_preset, ref_dataset),
             "switch": d.switch, "matters on SynthCC": d.synthcc} for d in DIFFERENCES]
    table = pd.DataFrame(rows).set_index("")
    if (preset, dataset) == REFERENCE_SETTING:
        table = table.drop(columns=[there])
    return table
