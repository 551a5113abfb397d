"""Parameter counts of the book's variants, as the paper's Table 8 counts them, built without training.

The ``paper`` preset's ResNet-50 models are built on PyTorch's meta device (no weights, no memory,
:func:`rlqlib.methods.registry.count_parameters`), so the paper's counts are checked without a GPU; the setting's
own preset is counted with its dataset's training identities and clothes classes.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from rlqlib.book import experiments as X
from rlqlib.engine import presets as Pr
from rlqlib.methods.registry import count_parameters


def parameter_counts(s: X.Setting, variants: Mapping[str, str], reported: pd.DataFrame) -> pd.DataFrame:
    """Millions of parameters per row: the paper's reported count (``reported``: Table 8 with ``variant`` and
    ``params_m`` columns), the ``paper`` preset's model built here, and the setting's preset's model.

    Args:
        s: the setting (its preset and dataset give the last column).
        variants: row label → variant.
        reported: the paper's table.

    Returns:
        Index ``row``; columns ``paper (reported, M)``, ``paper preset, built (M)``, ``<preset> preset (M)``.
    """
    ds = X.dataset(s.dataset, str(s.root))
    rows = []
    for row, variant in variants.items():
        pc, oc = Pr.make("paper", variant), X.config(s, variant)
        rows.append({
            "row": row,
            "paper (reported, M)": float(reported.loc[reported["variant"] == variant, "params_m"].iloc[0]),
            "paper preset, built (M)": count_parameters(pc.model.variant, pc.model.backbone, pc.model.num_ids,
                                                        pc.model.num_clothes, pc.data.pose_k + 1)["params"] / 1e6,
            f"{s.preset} preset (M)": count_parameters(oc.model.variant, oc.model.backbone, ds.num_train_pids,
                                                       ds.num_train_clothes, oc.data.pose_k + 1)["params"] / 1e6,
        })
    return pd.DataFrame(rows).set_index("row")
