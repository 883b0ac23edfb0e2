"""The pre-registered primary test across studies, and its sequential rule
(docs/concepts/protocol.md says why; :mod:`clrbench.analysis.simulate` checks both).

Data: for one family, the table Y (S studies × K final seeds) of paired differences
y_ij = score(family, study i, seed j) − score(tuned constant, study i, seed j). Model:

    y_ij = δ + u_i + s_j + e_ij,   u ~ N(0, σ_u²) tuning luck,  s ~ N(0, σ_s²) the seed,
                                   e ~ N(0, σ_e²) the rest

The estimate is the grand mean δ̂ = mean(Y), and its standard error depends on the design:

- **fresh seeds** (``--fresh-seeds``: every study draws its own final seeds; seeds nested in
  studies): SE² = MS_study / (S K) = var_i(ȳ_i.) / S, ν = S − 1 — the t-test over the studies'
  mean differences, exact for a balanced nested model;
- **shared seeds** (the default: every study re-runs its winners on the same seeds; seeds
  crossed with studies): the seed effect s_j is common to every study, so the spread over
  studies misses it. From the two-way ANOVA mean squares (E[MS_study] = Kσ_u² + σ_e²,
  E[MS_seed] = Sσ_s² + σ_e², E[MS_resid] = σ_e²),

      SE² = (MS_study + max(MS_seed − MS_resid, 0)) / (S K)
          ≈ σ_u²/S + σ_s²/K + σ_e²/(S K) = Var(δ̂),

  with Satterthwaite's ν (1946) for that sum (the seed term left out, ν = S − 1, when its
  estimate is ≤ 0). A table with a missing cell (a failed run) is analysed by its rows' means
  as if nested.

Either estimate goes to :func:`clrbench.analysis.decide.decide` (difference test, TOST at the
margin, Holm over the families). At least 2 studies are needed (ν ≥ 1).

**Sequential rule** (``study --until-decided --max-studies N``): the first look after
``FIRST_LOOK`` studies, then one after every further study, up to N. Look k at S studies tests
at the level α(S/N) − α((S−1)/N) (α(S/N) at the first look) with the Lan–DeMets Pocock-type
spending function α(t) = α · ln(1 + (e − 1) t) (Lan & DeMets 1983); the levels sum to α, so by
the union bound the chance of any false decision over all looks stays ≤ α whatever their
correlation. A family's verdict is the first decided one; studies stop when every family is
decided or N is reached.
"""

from __future__ import annotations

import math

import numpy as np

from clrbench.analysis.decide import Estimate, untestable
from clrbench.analysis.stats import ALPHA

MIN_STUDIES = 2  # the primary test needs nu >= 1
FIRST_LOOK = 3  # the sequential rule's first look


def standard_error(table: np.ndarray, fresh_seeds: bool) -> tuple[np.ndarray, np.ndarray]:
    """SE and ν of the grand mean of complete tables ``(..., S, K)`` (see the module's text);
    vectorised over leading axes."""
    y = np.asarray(table, dtype=np.float64)
    s, k = y.shape[-2], y.shape[-1]
    rows = y.mean(axis=-1)
    ms_study = k * rows.var(axis=-1, ddof=1)
    if fresh_seeds or k < 2:
        return np.sqrt(ms_study / (s * k)), np.full(ms_study.shape, s - 1.0)
    columns = y.mean(axis=-2)
    grand = y.mean(axis=(-2, -1))
    ms_seed = s * columns.var(axis=-1, ddof=1)
    resid = y - rows[..., :, None] - columns[..., None, :] + grand[..., None, None]
    ms_resid = (resid**2).sum(axis=(-2, -1)) / ((s - 1) * (k - 1))
    with_seed = ms_seed > ms_resid
    total = ms_study + np.where(with_seed, ms_seed - ms_resid, 0.0)
    squares = ms_study**2 / (s - 1) + np.where(
        with_seed, ms_seed**2 / (k - 1) + ms_resid**2 / ((s - 1) * (k - 1)), 0.0
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        df = np.where(squares > 0, total**2 / squares, s - 1.0)
    # The seed term enters with a negative coefficient (- MS_resid), so Satterthwaite's ν can
    # collapse towards 0 when the mean squares nearly cancel (an interval of ±1e19 pp); one
    # degree of freedom is the least a t-interval is given (t(0.975, 1) = 12.7: still wide).
    return np.sqrt(total / (s * k)), np.maximum(df, 1.0)


def study_estimate(table: np.ndarray, fresh_seeds: bool) -> Estimate:
    """The primary test's estimate from one family's (S × K) table of paired differences
    (NaN: a missing pair). Studies without a pair are left out; a table with a gap is
    analysed through its rows' means (nested)."""
    y = np.asarray(table, dtype=np.float64)
    y = y[np.isfinite(y).any(axis=1)] if y.size else y.reshape(0, 0)
    studies = int(y.shape[0])
    if studies == 0:
        return untestable(math.nan, 0, "studies", "no study with a paired seed")
    rows = np.nanmean(y, axis=1)
    if not np.isfinite(y).all():
        y, fresh_seeds = rows[:, None], True
    mean = float(y.mean())
    plural = "study" if studies == 1 else "studies"
    if studies < MIN_STUDIES:
        reason = f"{studies} {plural} (at least {MIN_STUDIES} needed)"
        return untestable(mean, studies, "studies", reason)
    if np.ptp(y) == 0:
        return Estimate(mean, 0.0, float(studies - 1), studies, 0.0, "studies")
    se, df = standard_error(y, fresh_seeds)
    nested, _ = standard_error(y, True)  # the part that shrinks with more studies
    floor = max(float(se) ** 2 - float(nested) ** 2, 0.0)
    unit = float(nested) ** 2 * studies
    return Estimate(mean, float(se), float(df), studies, unit, "studies", floor_variance=floor)


def spending(fraction: float | np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Lan–DeMets Pocock-type spending α(t) = α · ln(1 + (e − 1) t), t in [0, 1]."""
    return alpha * np.log1p((math.e - 1) * np.clip(fraction, 0.0, 1.0))


def look_level(studies: int, max_studies: int, alpha: float = ALPHA) -> float:
    """The level of the look after ``studies`` studies (of at most ``max_studies``): the alpha
    spent since the previous look; 0 before the first look or after the last."""
    if studies < min(FIRST_LOOK, max_studies) or studies > max_studies:
        return 0.0
    before = 0.0 if studies == min(FIRST_LOOK, max_studies) else (studies - 1) / max_studies
    return float(spending(studies / max_studies, alpha) - spending(before, alpha))
