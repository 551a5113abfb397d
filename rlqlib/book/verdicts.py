"""Verdicts: does our difference point the paper's way, beyond our noise?

Every comparison in the book ends in ``agrees``, ``differs`` or ``inconclusive`` by one rule (:func:`decide`):
``inconclusive`` when |difference| is within the noise (or a value is missing, or the paper reports no
difference), else ``agrees`` when its sign is the paper's and ``differs`` when it is not. What changes between
the book's comparisons is only how the noise is estimated:

* :func:`over_seeds` — methods trained with several seeds: twice the standard error of the seed-paired mean
  difference, never below :data:`MIN_NOISE`; one seed: twice the seed-to-seed spread of a difference *measured* on
  Table 2's runs at the same preset and dataset (:func:`seed_noise`, from the run cache by
  :func:`rlqlib.book.noise.table2_seed_noise`), or a fixed
  :data:`ONE_SEED_NOISE` where none was measured (Tables 2–10, Fig. 7a/c).
* :func:`one_run` — one run per method, where the test set's own sampling error is known (a per-query paired
  standard error, a bootstrap F1 error): the larger of twice it and :data:`ONE_SEED_NOISE` (Figs. 6–8, severity).
* :func:`shares` — two proportions of counted cases (e.g. the share of mistakes that are look-alikes): twice the
  standard error of their difference under the pooled proportion, as a two-proportion z-test (match explorer).

None of them measures seed-to-seed variation when only one seed was run; the pages say so where it applies.

Each page also saves its claims (:func:`save_claims`: claim, ours, paper, seeds, verdict) to
``results/generated/claims/``; the book's last page gathers them (:func:`load_claims`) into one table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

VERDICTS = ("agrees", "differs", "inconclusive")
MIN_NOISE = 0.5  # points: differences this small are never interpreted, whatever the seed spread
ONE_SEED_NOISE = 1.0  # points: the noise assumed for one run when nothing better is known


def decide(delta: float, noise: float, expected: float) -> str:
    """``agrees`` | ``differs`` | ``inconclusive`` for our ``delta`` against the paper's ``expected`` (only its
    sign counts), given the ``noise`` (same unit as ``delta``); NaN anywhere or ``expected == 0``: inconclusive."""
    if not (math.isfinite(delta) and math.isfinite(noise) and math.isfinite(expected)) or expected == 0:
        return "inconclusive"
    if abs(delta) <= noise:
        return "inconclusive"
    return "agrees" if (delta > 0) == (expected > 0) else "differs"


def over_seeds(delta: float, std: float, expected: float, n: int, seed_std: float = math.nan) -> str:
    """Verdict on a mean difference over ``n`` seeds (:func:`rlqlib.book.experiments.paired_delta`).

    Noise = 2·std/√n, at least :data:`MIN_NOISE`. With one seed (or a NaN std) the difference's own spread is
    unknown: noise = 2·``seed_std`` (the spread measured elsewhere, :func:`seed_noise`), at least
    :data:`ONE_SEED_NOISE`; :data:`ONE_SEED_NOISE` when ``seed_std`` is NaN.

    Args:
        delta: our mean difference (method − baseline), points.
        std: std (ddof=1) of our per-seed differences (NaN for one seed).
        expected: the paper's difference, points (its sign is the claim).
        n: seeds.
        seed_std: the seed-to-seed std of one difference, points, measured on other runs (used for one seed only).
    """
    if n < 1:
        return "inconclusive"
    if n < 2 or math.isnan(std):
        noise = max(2.0 * seed_std, ONE_SEED_NOISE) if math.isfinite(seed_std) else ONE_SEED_NOISE
    else:
        noise = max(2.0 * std / math.sqrt(n), MIN_NOISE)
    return decide(delta, noise, expected)


def one_run(delta: float, se: float, expected: float) -> str:
    """Verdict on one run per method, with the test set's sampling error ``se`` of ``delta``.

    Noise = max(2·se, :data:`ONE_SEED_NOISE`); ``se`` NaN (unknown): :data:`ONE_SEED_NOISE`.

    Args:
        delta: our difference, points (or F1 × 100).
        se: its standard error, same unit.
        expected: the paper's difference or any number with its sign.
    """
    noise = max(2.0 * se, ONE_SEED_NOISE) if math.isfinite(se) else ONE_SEED_NOISE
    return decide(delta, noise, expected)


def shares(share_a: float, n_a: int, share_b: float, n_b: int, expected_sign: int = -1) -> str:
    """Verdict on share A − share B (%), each over ``n`` counted cases.

    Noise = twice the standard error of a difference of two proportions under the pooled proportion; a share
    over no cases (``n < 1``) or NaN: inconclusive.

    Args:
        share_a, share_b: the shares, % (e.g. a :func:`rlqlib.book.matches.mistake_table` column).
        n_a, n_b: how many cases each share is over.
        expected_sign: -1 if A's share should be lower (the paper's claim for RLQ's mistakes), +1 if higher.
    """
    if n_a < 1 or n_b < 1 or not (math.isfinite(share_a) and math.isfinite(share_b)):
        return "inconclusive"
    pooled = (share_a * n_a + share_b * n_b) / (100.0 * (n_a + n_b))
    noise = 2.0 * 100.0 * math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    return decide(share_a - share_b, noise, expected_sign)


# ------------------------------------------------------------------------------------------ the claims record

#: One row per claim a page checks: what is claimed, our difference, the paper's, the seeds behind ours, the verdict.
CLAIM_COLUMNS = ("claim", "ours", "paper", "seeds", "verdict")
NOT_CHECKED = ("n/a", "not run")  # verdict cells of claims a page could not check with the data it was given
CLAIMS_DIR = "results/generated/claims"


def fmt_delta(mean: float, std: float = float("nan"), n: int = 1, unit: str = "") -> str:
    """``+3.9 ± 3.2`` (mean ± std over n > 1 seeds), ``+3.9`` (one seed or no std), ``–`` (NaN); minus signs
    as −."""
    if not math.isfinite(mean):
        return "–"
    text = f"{mean:+.1f}" + (f" ± {std:.1f}" if n > 1 and math.isfinite(std) else "") + unit
    return text.replace("-", "−")


def claims(claim: Sequence[str], ours: Sequence, paper: Sequence | str, verdict: Sequence[str],
           std: Sequence[float] | None = None, se: Sequence[float] | None = None, seeds: Sequence[int] | int = 1
           ) -> pd.DataFrame:
    """A claims table (:data:`CLAIM_COLUMNS`) from a page's columns: numbers are formatted with :func:`fmt_delta`
    (``std`` over ``seeds``, or a test-set ``se`` shown as "(SE x)"), text is kept as it is."""
    n = len(claim)
    seeds = [seeds] * n if isinstance(seeds, int) else [int(x) for x in seeds]
    std = [float("nan")] * n if std is None else list(std)
    se = [float("nan")] * n if se is None else list(se)
    paper = [paper] * n if isinstance(paper, str) else list(paper)

    def text(x, sd=float("nan"), k=1, e=float("nan")):
        if isinstance(x, str):
            return x
        return fmt_delta(float(x), float(sd), k) + (f" (SE {e:.1f})" if math.isfinite(e) else "")

    return pd.DataFrame({"claim": list(claim), "ours": [text(*a) for a in zip(ours, std, seeds, se)],
                         "paper": [text(x) for x in paper], "seeds": seeds, "verdict": list(verdict)})


def _record(kind: str, dataset: str, preset: str, folder: str | Path, suffix: str) -> Path:
    """Where a page's record for ``dataset`` and ``preset`` lives: ``<folder>/<kind>_<dataset>_<preset><suffix>``."""
    return Path(folder) / f"{kind}_{dataset}_{preset}{suffix}"


def save_claims(frame: pd.DataFrame, page: str, dataset: str, preset: str,
                folder: str | Path = CLAIMS_DIR) -> None:
    """Write a page's claims (columns :data:`CLAIM_COLUMNS`) to ``<folder>/<page>_<dataset>_<preset>.csv`` for the
    summary page (:func:`load_claims`).

    Raises:
        ValueError: a column is missing or a verdict is not one of :data:`VERDICTS` / :data:`NOT_CHECKED`.
    """
    missing = [c for c in CLAIM_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{page}: the claims table lacks columns {missing}; it needs {list(CLAIM_COLUMNS)}")
    bad = sorted(set(frame["verdict"]) - set(VERDICTS) - set(NOT_CHECKED))
    if bad:
        raise ValueError(f"{page}: verdicts {bad} are not among {VERDICTS + NOT_CHECKED}")
    path = _record(page, dataset, preset, folder, ".csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[list(CLAIM_COLUMNS)].to_csv(path, index=False)


def load_claims(pages: Sequence[str], dataset: str, preset: str, folder: str | Path = CLAIMS_DIR
                ) -> tuple[pd.DataFrame, list[str]]:
    """Every page's saved claims for ``dataset`` and ``preset``, in ``pages`` order, with a ``page`` column; and the
    pages that saved none (not executed with these parameters, or checking no claim)."""
    frames, absent = [], []
    for page in pages:
        path = _record(page, dataset, preset, folder, ".csv")
        if path.is_file():
            frames.append(pd.read_csv(path, dtype=str, keep_default_na=False).assign(page=page))
        else:
            absent.append(page)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["page", *CLAIM_COLUMNS])
    return table[["page", *CLAIM_COLUMNS]], absent


# ------------------------------------------------------------------------------ the seed noise of one-seed pages

SEED_NOISE_PAGE = "tab2_main"  # the page that measures it: every main method over several seeds


def pooled_std(stds: Sequence[float]) -> float:
    """Root mean square of the finite per-difference seed stds (points): one spread for a typical difference
    between two methods; NaN when none is finite."""
    finite = [float(x) for x in stds if math.isfinite(float(x))]
    return math.sqrt(sum(x * x for x in finite) / len(finite)) if finite else math.nan


def seed_noise(stds: Sequence[float], seeds: int, missing: int = 0) -> dict:
    """The seed noise of one-seed verdicts, measured on :data:`SEED_NOISE_PAGE`'s differences.

    Args:
        stds: the std over ``seeds`` seeds of each of that page's seed-paired differences (NaN: not measured).
        seeds: how many seeds they are over; with fewer than two nothing is measured.
        missing: how many of that page's runs were not in the run cache (then nothing is measured).

    Returns:
        ``std`` (points, the :func:`pooled_std`; NaN when not measured), ``seeds``, ``differences`` (how many finite
        stds), ``missing``, ``page``.
    """
    std = pooled_std(stds) if seeds >= 2 and not missing else math.nan
    return {"std": std, "seeds": int(seeds), "differences": sum(math.isfinite(float(x)) for x in stds),
            "missing": int(missing), "page": SEED_NOISE_PAGE}


def one_seed_rule(noise: dict) -> str:
    """One markdown sentence saying what noise a one-seed verdict is read against (``noise``: :func:`seed_noise`),
    for the pages to glue beside their verdicts."""
    std = noise["std"]
    if not math.isfinite(std) and noise.get("missing"):
        return (f"With one seed the noise is a fixed {ONE_SEED_NOISE:g} point: the seed-to-seed spread is measured on "
                f"the `{noise['page']}` page's runs, and {noise['missing']} of them are not in the run cache at this "
                "preset and dataset yet (run that page first), so one-seed verdicts are indicative only.")
    if not math.isfinite(std):
        return (f"With one seed the noise is a fixed {ONE_SEED_NOISE:g} point: no seed-to-seed spread was measured "
                f"at this preset and dataset (the `{noise['page']}` page measures it when run with several seeds), "
                "so one-seed verdicts are indicative only.")
    return (f"With one seed the noise is twice the seed-to-seed standard deviation of a top-1 difference between "
            f"two methods, {std:.1f} points, measured on the `{noise['page']}` page ({noise['differences']} seed-paired "
            f"differences over {noise['seeds']} seeds, same preset and dataset): a one-seed difference is read "
            f"only beyond {max(2.0 * std, ONE_SEED_NOISE):.1f} points.")
