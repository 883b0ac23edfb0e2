"""A decided answer to "is A different from B?": better, worse, equivalent within ±margin, or
undecided (and how many more seeds or studies would likely decide it).

Every comparison is an *estimate* of a difference d (A − B, accuracy as a fraction) with its
standard error SE and degrees of freedom ν (:class:`Estimate`: Welch's for two independent
groups, a paired t over per-seed differences, or the across-study test of
:mod:`clrbench.analysis.protocol`). From it:

- the difference test, two-sided: p = 2 · P(T_ν > |d| / SE), with the 95% interval d ± t · SE;
- the equivalence test against the margin Δ, two one-sided tests (TOST, Schuirmann 1987):
  p = max(P(T_ν > (d + Δ) / SE), P(T_ν < (d − Δ) / SE)); p < α exactly when the 90%
  interval d ± t_{0.95,ν} · SE lies inside (−Δ, +Δ) (statsmodels ``ttost_ind``/``ttost_paired``
  compute the same p);
- Holm's step-down adjustment (:func:`clrbench.analysis.stats.holm`) over the comparisons of one
  question, separately for the difference p-values and the equivalence p-values.

The outcome, at α = 0.05: **better** / **worse** when the Holm-adjusted difference p is below α
(``beyond_margin``: the 95% interval also lies wholly beyond ±Δ); else **equivalent** when the
Holm-adjusted TOST p is below α; else **undecided**, with :func:`more_needed`, the units (seeds
per group, or studies) that would likely decide it. An estimate that cannot be tested (fewer
than 2 units on a side) is undecided with its reason in ``cannot_test``.

Edges: SE = 0 (no variation) makes the interval the point d itself, so p = 0 when d ≠ 0 (1 when
d = 0) and the TOST p = 0 when |d| < Δ (1 otherwise); without a margin no equivalence is tested.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

from clrbench.analysis.stats import ALPHA, holm

POWER = 0.80  # "would likely decide it": decided with this probability at the observed values
MAX_UNITS = 100_000  # more_needed searches no further (an effect ~0.01 SE away)
OUTCOMES = ("better", "worse", "equivalent", "undecided")


@dataclass(frozen=True)
class Estimate:
    """A difference, its standard error and degrees of freedom, how many ``units`` back it
    (seeds per group, or studies) and the variance of one unit (``unit_variance``: SE² · n for
    this design), or why it cannot be tested (``cannot_test``)."""

    difference: float
    se: float
    df: float
    n: int
    unit_variance: float
    design: str  # "welch" (two groups of n), "paired" (n differences), "studies" (n studies)
    cannot_test: str | None = None
    floor_variance: float = 0.0  # part of SE² that more units do not shrink (shared seeds)

    def df_at(self, n: int | np.ndarray) -> np.ndarray:
        """Degrees of freedom the same design would have with ``n`` units (Welch: 2n − 2 at
        equal variances, its most optimistic value; paired and studies: n − 1)."""
        units = np.asarray(n, dtype=np.float64)
        return 2 * units - 2 if self.design == "welch" else units - 1


def untestable(difference: float, n: int, design: str, reason: str) -> Estimate:
    """An estimate that cannot be tested, with its reason."""
    return Estimate(difference, math.nan, math.nan, n, math.nan, design, reason)


def welch_estimate(a: np.ndarray, b: np.ndarray, minimum: int = 2) -> Estimate:
    """mean(a) − mean(b) with Welch's SE = √(s_a²/n_a + s_b²/n_b) and Welch–Satterthwaite ν
    (scipy ``ttest_ind(equal_var=False)``); the unit variance is s_a² + s_b² (per seed in each
    group), ``n`` the smaller group."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    difference = float(a.mean() - b.mean()) if a.size and b.size else math.nan
    n = int(min(a.size, b.size))
    if n < minimum:
        reason = f"n = {a.size} vs {b.size} (at least {minimum} each needed)"
        return untestable(difference, n, "welch", reason)
    va, vb = a.var(ddof=1), b.var(ddof=1)
    se = math.sqrt(va / a.size + vb / b.size)
    if np.ptp(a) == 0 and np.ptp(b) == 0:  # exactly: float variance of equal values is ~1e-32
        return Estimate(difference, 0.0, float(a.size + b.size - 2), n, 0.0, "welch")
    df = (va / a.size + vb / b.size) ** 2 / (
        (va / a.size) ** 2 / (a.size - 1) + (vb / b.size) ** 2 / (b.size - 1)
    )
    return Estimate(difference, se, float(df), n, float(va + vb), "welch")


def paired_estimate(differences: np.ndarray, minimum: int = 2) -> Estimate:
    """mean(d) with SE = s_d / √n and ν = n − 1 over per-unit differences d."""
    d = np.asarray(differences, dtype=np.float64)
    mean = float(d.mean()) if d.size else math.nan
    if d.size < minimum:
        reason = f"n = {d.size} (at least {minimum} needed)"
        return untestable(mean, int(d.size), "paired", reason)
    variance = float(d.var(ddof=1)) if np.ptp(d) > 0 else 0.0
    se = math.sqrt(variance / d.size)
    return Estimate(mean, se, float(d.size - 1), int(d.size), variance, "paired")


@dataclass(frozen=True)
class Tests:
    """The unadjusted tests of one estimate (see the module docstring)."""

    ci95: tuple[float, float]
    ci90: tuple[float, float]
    p_difference: float
    p_equivalence: float  # NaN without a margin


def tests(estimate: Estimate, margin: float | None) -> Tests:
    """Two-sided difference test, TOST against ±``margin`` and the 95% / 90% intervals."""
    d, se, df = estimate.difference, estimate.se, estimate.df
    if estimate.cannot_test is not None or not math.isfinite(d):
        return Tests((math.nan, math.nan), (math.nan, math.nan), math.nan, math.nan)
    if se == 0:  # the interval is the point: p is the limit as SE -> 0
        p_equivalence = math.nan if margin is None else (0.0 if abs(d) < margin else 1.0)
        return Tests((d, d), (d, d), 0.0 if d != 0 else 1.0, p_equivalence)
    half95 = float(sps.t.ppf(0.975, df)) * se
    half90 = float(sps.t.ppf(0.95, df)) * se
    p_difference = float(2 * sps.t.sf(abs(d) / se, df))
    p_equivalence = math.nan
    if margin is not None:
        p_lower = float(sps.t.sf((d + margin) / se, df))  # H0: d <= -margin
        p_upper = float(sps.t.cdf((d - margin) / se, df))  # H0: d >= +margin
        p_equivalence = max(p_lower, p_upper)
    return Tests((d - half95, d + half95), (d - half90, d + half90), p_difference, p_equivalence)


@dataclass(frozen=True)
class Verdict:
    """One comparison's decided answer (fractions; see the module docstring)."""

    outcome: str  # one of OUTCOMES
    difference: float
    margin: float | None
    ci95: tuple[float, float]
    ci90: tuple[float, float]
    p_difference: float
    p_equivalence: float
    p_difference_holm: float
    p_equivalence_holm: float
    beyond_margin: bool | None  # better/worse only: the 95% interval lies beyond ±margin
    more_needed: int | None  # undecided only: units to add; None when no number would do
    unit: str  # "seeds" or "studies"
    comparisons: int  # Holm's m: the comparisons of the question
    cannot_test: str | None = None

    def to_json(self) -> dict[str, object]:
        """Plain numbers, NaN as None, intervals as [low, high]."""

        def plain(value: object) -> object:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, tuple):
                return [plain(v) for v in value]
            return value

        return {key: plain(value) for key, value in asdict(self).items()}


def more_needed(
    estimate: Estimate, margin: float | None, alpha: float = ALPHA, comparisons: int = 1
) -> int | None:
    """How many more units (seeds per group, or studies) would likely decide the comparison.

    With V the unit variance, F the floor (the part of SE² more units leave as it is: the
    shared seeds' term of a crossed study design, else 0) and d the observed difference taken
    as the truth, the smallest n with either (difference shown)

        (t_{1−α′/2, ν(n)} + t_{POWER, ν(n)}) · √(V / n + F) ≤ |d|

    or (equivalence shown, only when |d| < Δ)

        (t_{1−α′, ν(n)} + t_{POWER, ν(n)}) · √(V / n + F) ≤ Δ − |d|,

    α′ = α / m (Holm's first step over the m comparisons, the strictest), ν(n) the design's
    degrees of freedom (:meth:`Estimate.df_at`); the usual power approximation (one tail of
    each test), e.g. Julious 2004 for the equivalence bound. Returns n − (units now), at least
    1; None when it cannot be told (untested, no variance) or needs more than ``MAX_UNITS``
    (d = 0 without a margin, or |d| = Δ exactly).
    """
    if estimate.cannot_test is not None or not estimate.unit_variance > 0:
        return None
    level = alpha / max(comparisons, 1)
    n = np.arange(max(estimate.n, 2), _search_limit(estimate, margin, level) + 1)
    df = estimate.df_at(n)
    spread = np.sqrt(estimate.unit_variance / n + estimate.floor_variance)
    power = sps.t.ppf(POWER, df)
    d = abs(estimate.difference)
    enough = (sps.t.ppf(1 - level / 2, df) + power) * spread <= d
    if margin is not None and d < margin:
        enough |= (sps.t.ppf(1 - level, df) + power) * spread <= margin - d
    if not enough.any():
        return None
    return max(int(n[np.argmax(enough)]) - estimate.n, 1)


def _search_limit(estimate: Estimate, margin: float | None, level: float) -> int:
    """Where :func:`more_needed` stops looking: 4 × the normal approximation's n (t quantiles
    exceed z ones, by little once ν is moderate) plus 50, at most ``MAX_UNITS``."""
    z_power = float(sps.norm.ppf(POWER))
    d = abs(estimate.difference)
    gaps = [(d, float(sps.norm.ppf(1 - level / 2)))]
    if margin is not None and d < margin:
        gaps.append((margin - d, float(sps.norm.ppf(1 - level))))
    normal = [estimate.unit_variance * (z + z_power) ** 2 / gap**2 for gap, z in gaps if gap > 0]
    if not normal:
        return max(estimate.n, 2)
    return int(min(MAX_UNITS, 4 * min(normal) + 50 + estimate.n))


def decide(
    estimates: Mapping[str, Estimate],
    margin: float | None,
    unit: str = "seeds",
    alpha: float = ALPHA,
    levels: Mapping[str, float] | None = None,
) -> dict[str, Verdict]:
    """The verdict of each comparison of one question, Holm-adjusted over them (m = the
    testable ones). ``levels``: a nominal level per comparison replacing ``alpha`` (the
    sequential rule's spent alpha, :mod:`clrbench.analysis.protocol`)."""
    found = {name: tests(estimate, margin) for name, estimate in estimates.items()}
    names = list(found)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p_diff = holm([found[n].p_difference for n in names])
        p_equiv = holm([found[n].p_equivalence for n in names])
    m = sum(math.isfinite(found[n].p_difference) for n in names)
    verdicts = {}
    for i, name in enumerate(names):
        level = alpha if levels is None else levels[name]
        verdicts[name] = _verdict(
            estimates[name], found[name], margin, (p_diff[i], p_equiv[i]), level, unit, m
        )
    return verdicts


def _verdict(
    estimate: Estimate,
    found: Tests,
    margin: float | None,
    adjusted: tuple[float, float],
    level: float,
    unit: str,
    comparisons: int,
) -> Verdict:
    p_diff, p_equiv = (float(p) for p in adjusted)
    d, (low, high) = estimate.difference, found.ci95
    outcome, beyond, more = "undecided", None, None
    if p_diff < level:
        outcome = "better" if d > 0 else "worse"
        beyond = margin is not None and (low > margin or high < -margin)
    elif p_equiv < level:
        outcome = "equivalent"
    else:
        more = more_needed(estimate, margin, level, comparisons)
    return Verdict(
        outcome, d, margin, found.ci95, found.ci90, found.p_difference, found.p_equivalence,
        p_diff, p_equiv, beyond, more, unit, comparisons, estimate.cannot_test,
    )  # fmt: skip


def decide_one(estimate: Estimate, margin: float | None, unit: str = "seeds") -> Verdict:
    """:func:`decide` of a question with one comparison (no multiplicity)."""
    return decide({"": estimate}, margin, unit)[""]


def words(verdict: Verdict) -> str:
    """The outcome in a few words: "better, beyond ±0.1 pp", "equivalent within ±0.1 pp",
    "undecided: ~12 more seeds would likely decide it", "undecided: cannot test (why)"."""
    margin = "" if verdict.margin is None else f"±{verdict.margin * 100:.3g} pp"
    if verdict.outcome in ("better", "worse"):
        if not margin:
            return verdict.outcome
        where = "beyond" if verdict.beyond_margin else "not shown beyond"
        return f"{verdict.outcome}, {where} {margin}"
    if verdict.outcome == "equivalent":
        return f"equivalent within {margin}"
    if verdict.cannot_test is not None:
        return f"undecided: cannot test, {verdict.cannot_test}"
    if verdict.more_needed is None:
        return f"undecided: no number of {_unit(verdict.unit, 2)} would likely decide it"
    more = verdict.more_needed
    return f"undecided: ~{more} more {_unit(verdict.unit, more)} would likely decide it"


def _unit(unit: str, count: int) -> str:
    """ "seeds per schedule" / "seed per schedule", "studies" / "study"."""
    if unit == "studies":
        return "study" if count == 1 else "studies"
    return f"{unit.removesuffix('s') if count == 1 else unit} per schedule"
