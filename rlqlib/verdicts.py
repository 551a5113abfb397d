"""Verdicts: does our difference point the paper's way, beyond our noise?

Every comparison in the book ends in ``agrees``, ``differs`` or ``inconclusive`` by one rule (:func:`decide`):
``inconclusive`` when |difference| is within the noise (or a value is missing, or the paper reports no
difference), else ``agrees`` when its sign is the paper's and ``differs`` when it is not. What changes between
the book's comparisons is only how the noise is estimated:

* :func:`over_seeds` — methods trained with several seeds: twice the standard error of the seed-paired mean
  difference, never below :data:`MIN_NOISE`; one seed: a fixed :data:`ONE_SEED_NOISE` (Tables 2–10, Fig. 7a/c).
* :func:`one_run` — one run per method, where the test set's own sampling error is known (a per-query paired
  standard error, a bootstrap F1 error): the larger of twice it and :data:`ONE_SEED_NOISE` (Figs. 6–8, severity).
* :func:`shares` — two proportions of counted cases (e.g. the share of mistakes that are look-alikes): twice the
  standard error of their difference under the pooled proportion, as a two-proportion z-test (match explorer).

None of them measures seed-to-seed variation when only one seed was run; the pages say so where it applies.
"""

from __future__ import annotations

import math

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


def over_seeds(delta: float, std: float, expected: float, n: int) -> str:
    """Verdict on a mean difference over ``n`` seeds (:func:`rlqlib.experiments.paired_delta`).

    Noise = 2·std/√n, at least :data:`MIN_NOISE`; with one seed (or a NaN std) :data:`ONE_SEED_NOISE`.

    Args:
        delta: our mean difference (method − baseline), points.
        std: std (ddof=1) of our per-seed differences (NaN for one seed).
        expected: the paper's difference, points (its sign is the claim).
        n: seeds.
    """
    if n < 1:
        return "inconclusive"
    noise = ONE_SEED_NOISE if n < 2 or math.isnan(std) else max(2.0 * std / math.sqrt(n), MIN_NOISE)
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
        share_a, share_b: the shares, % (e.g. a :func:`rlqlib.matches.mistake_table` column).
        n_a, n_b: how many cases each share is over.
        expected_sign: -1 if A's share should be lower (the paper's claim for RLQ's mistakes), +1 if higher.
    """
    if n_a < 1 or n_b < 1 or not (math.isfinite(share_a) and math.isfinite(share_b)):
        return "inconclusive"
    pooled = (share_a * n_a + share_b * n_b) / (100.0 * (n_a + n_b))
    noise = 2.0 * 100.0 * math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    return decide(share_a - share_b, noise, expected_sign)
