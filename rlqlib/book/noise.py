"""The seed noise of one-seed pages: the seed-to-seed spread of Table 2's differences, read through the run cache.

One seed cannot measure its own spread, so a one-seed verdict (:func:`rlqlib.book.verdicts.over_seeds`) is read
against the spread the Table 2 page measures: the pooled std of its seed-paired top-1 differences
(:data:`TABLE2_DIFFERENCES` between the :data:`TABLE2_VARIANTS`, over :data:`TABLE2_SEEDS`). Table 2 computes it
from its own runs (:func:`measure_seed_noise`); every other page gets the same number from the run cache
(:func:`table2_seed_noise`), which loads Table 2's runs when all of them are finished at the page's preset and
dataset — nothing is handed over in a file, and nothing depends on the order the pages ran in. When they are not all there the record says how many
are missing and :func:`rlqlib.book.verdicts.one_seed_rule` names the fixed 1-point rule instead::

    noise = table2_seed_noise(s)                   # {"std": 2.6, "seeds": 3, "differences": 8, "missing": 0, ...}
    over_seeds(delta, std, paper_delta, 1, seed_std=noise["std"])
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from rlqlib.book import experiments as X
from rlqlib.book import verdicts as V
from rlqlib.book.names import METHOD_NAMES

#: Table 2's rows (its ``variants`` parameter's default) and seeds (its ``seeds`` default).
TABLE2_VARIANTS = ("cal", "bm", "cap", "tad", "rlq", "fire2", "id-only")
TABLE2_SEEDS = (0, 1, 2)
#: Table 2's claims: ``(glue key, method, baseline, protocol)``; their seed spreads are the seed noise.
TABLE2_DIFFERENCES = (
    ("rlq_bm_cc", "RLQ", "BM", "cc"),  # the headline: RLQ beats the Base Model
    ("cap_bm_cc", "CAP", "BM", "cc"),  # CAP alone helps
    ("tad_bm_cc", "TAD", "BM", "cc"),  # TAD alone helps
    ("bm_cal_cc", "BM", "CAL", "cc"),  # the Base Model is at least as good as CAL
    ("rlq_cal_cc", "RLQ", "CAL", "cc"),  # RLQ beats CAL
    ("rlq_bm_general", "RLQ", "BM", "general"),  # RLQ also helps under the general protocol
    ("rlq_fire2_cc", "RLQ", "FIRe²", "cc"),  # across papers
    ("cal_idonly_cc", "CAL", "id-only", "cc"),  # CAL paper, Table 3: CAL beats identity-only training
)


def measure_seed_noise(long: pd.DataFrame, seeds: int) -> dict:
    """The seed noise (:func:`rlqlib.book.verdicts.seed_noise`) of Table 2's results ``long`` over ``seeds`` seeds:
    the std of each of :data:`TABLE2_DIFFERENCES` that the results hold (NaN for the others), pooled."""
    methods, protocols = set(long["method"]), set(long["protocol"])
    stds = [X.paired_delta(long, m, b, p)[1] if m in methods and b in methods and p in protocols else float("nan")
            for _, m, b, p in TABLE2_DIFFERENCES]
    return V.seed_noise(stds, seeds)


def table2_seed_noise(s: X.Setting, variants: Sequence[str] = TABLE2_VARIANTS,
                      seeds: Sequence[int] = TABLE2_SEEDS) -> dict:
    """The seed noise Table 2 measures at the setting's preset and dataset, from its runs in the run cache (trains
    nothing); ``missing`` > 0 and a NaN std when some of them are not finished yet."""
    runs, missing = {}, 0
    for variant in variants:
        found = [X.cached(s, variant, [seed]) for seed in seeds]
        missing += sum(r is None for r in found)
        runs[METHOD_NAMES.get(variant, variant)] = [r[0] for r in found if r is not None]
    if missing:
        return V.seed_noise([], len(seeds), missing)
    return measure_seed_noise(X.results(runs), len(seeds))
