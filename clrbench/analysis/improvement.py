"""Two answers beside a difference: how often a family beats the baseline, and what tuning buys.

- **Probability of improvement** (rliable, Agarwal et al. 2021; Bouthillier et al. 2021):
  P(A > B) over (study, seed) pairs — within each study (stratum) the share of its seeds on
  which A's score beats B's on the same seed (a tie counts ½), averaged over the studies with
  equal weight. Its 95% interval is a *stratified* percentile bootstrap: seeds are resampled
  with replacement within each study, never across (rliable's ``StratifiedBootstrap``).
- **Expected best validation score against tuning budget** (Dodge et al. 2019, "Show Your
  Work"; Sivaprasad et al. 2020): of N trials with sorted scores v_(1) ≤ … ≤ v_(N), the expected
  best of n drawn with replacement is Σ_i v_(i) [(i/N)^n − ((i−1)/N)^n], n = 1 … N; over
  several studies, the mean of the studies' curves. Its 95% band: the same curve on trials
  resampled with replacement within each study (a stratified bootstrap of the expectation).

Both are seeded (``numpy.random.default_rng``) so a report renders the same numbers twice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000


@dataclass(frozen=True)
class Improvement:
    """P(A > B) over (study, seed) pairs with its stratified bootstrap interval; ``pairs``:
    how many pairs; the interval is NaN with fewer than 2 pairs."""

    probability: float
    low: float
    high: float
    pairs: int


def _wins(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 where a beats b, ½ on a tie, 0 where it loses (element-wise)."""
    return (a > b).astype(np.float64) + 0.5 * (a == b)


def probability_of_improvement(
    strata: Sequence[tuple[np.ndarray, np.ndarray]],
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Improvement:
    """P(A > B) from ``strata``: per study, A's and B's scores on the same seeds (equal
    lengths; pairs with a NaN side left out; empty studies left out). NaN without a pair."""
    wins = []
    for a, b in strata:
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        keep = np.isfinite(a) & np.isfinite(b)
        if keep.any():
            wins.append(_wins(a[keep], b[keep]))
    pairs = sum(w.size for w in wins)
    if not wins:
        return Improvement(math.nan, math.nan, math.nan, 0)
    estimate = float(np.mean([w.mean() for w in wins]))
    if pairs < 2:
        return Improvement(estimate, math.nan, math.nan, pairs)
    rng = np.random.default_rng(seed)
    boot = np.zeros(resamples)
    for w in wins:  # resample within the stratum only
        boot += w[rng.integers(0, w.size, size=(resamples, w.size))].mean(axis=1)
    boot /= len(wins)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    return Improvement(estimate, float(low), float(high), pairs)


def expected_best(values: np.ndarray, budgets: np.ndarray | int | None = None) -> np.ndarray:
    """Expected best of n trials drawn with replacement from ``values`` (Dodge et al. 2019),
    for each n in ``budgets`` (default 1 … N): Σ_i v_(i) [(i/N)^n − ((i−1)/N)^n]. NaN values
    are left out; without values every budget gives NaN."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    ordered = ordered[np.isfinite(ordered)]
    n_all = ordered.size
    budgets = np.arange(1, n_all + 1) if budgets is None else np.atleast_1d(budgets)
    if n_all == 0:
        return np.full(np.shape(budgets), math.nan)
    cdf = (np.arange(0, n_all + 1) / n_all)[None, :] ** np.asarray(budgets)[:, None]
    return (np.diff(cdf, axis=1) * ordered[None, :]).sum(axis=1)


@dataclass(frozen=True)
class BudgetCurve:
    """Expected best validation score at each budget n = 1 … (fewest trials of a study),
    averaged over the studies, with its stratified bootstrap band."""

    budgets: np.ndarray
    expected: np.ndarray
    low: np.ndarray
    high: np.ndarray


def budget_curve(
    studies: Sequence[np.ndarray], resamples: int = RESAMPLES, seed: int = 0
) -> BudgetCurve:
    """:func:`expected_best` per study (its trials' scores), averaged over the studies, up to
    the fewest trials any study scored; the band resamples each study's trials (with
    replacement, within the study). One trial: the band is that trial's score."""
    scored = [np.asarray(v, dtype=np.float64) for v in studies]
    scored = [v[np.isfinite(v)] for v in scored]
    scored = [v for v in scored if v.size]
    if not scored:
        empty = np.array([], dtype=np.float64)
        return BudgetCurve(np.array([], dtype=np.int64), empty, empty, empty)
    budgets = np.arange(1, min(v.size for v in scored) + 1)
    expected = np.mean([expected_best(v, budgets) for v in scored], axis=0)
    rng = np.random.default_rng(seed)
    boot = np.zeros((resamples, budgets.size))
    for v in scored:
        draws = np.sort(v[rng.integers(0, v.size, size=(resamples, v.size))], axis=1)
        cdf = (np.arange(0, v.size + 1) / v.size)[None, :] ** budgets[:, None]
        boot += draws @ np.diff(cdf, axis=1).T
    boot /= len(scored)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(boot, [tail, 1 - tail], axis=0)
    return BudgetCurve(budgets, expected, low, high)
