"""The primary test across studies and its sequential rule (clrbench.analysis.protocol):
the estimates against scipy's one-sample t-test and statsmodels' two-way ANOVA on the same
tables, the edges, and the alpha spent per look."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats as sps

from clrbench.analysis import protocol
from clrbench.analysis.decide import decide_one


def _table(studies: int = 4, seeds: int = 5, seed: int = 0, seed_sd: float = 0.0004) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (
        0.0005
        + rng.normal(0, 0.0003, (studies, 1))
        + rng.normal(0, seed_sd, (1, seeds))
        + rng.normal(0, 0.0004, (studies, seeds))
    )


def test_fresh_seeds_is_the_t_test_over_study_means():
    y = _table()
    estimate = protocol.study_estimate(y, fresh_seeds=True)
    reference = sps.ttest_1samp(y.mean(axis=1), 0.0)
    assert estimate.difference == pytest.approx(y.mean())
    assert estimate.df == 3 and estimate.n == 4
    verdict = decide_one(estimate, 0.001, "studies")
    assert verdict.p_difference == pytest.approx(reference.pvalue, rel=1e-9)
    interval = reference.confidence_interval(0.95)
    assert verdict.ci95 == pytest.approx((interval.low, interval.high), rel=1e-9)


def test_shared_seeds_uses_the_two_way_anova_mean_squares():
    y = _table(studies=5, seeds=4, seed=2, seed_sd=0.001)
    frame = pd.DataFrame(
        [(i, j, y[i, j]) for i in range(5) for j in range(4)], columns=["study", "seed", "y"]
    )
    anova = sm.stats.anova_lm(smf.ols("y ~ C(study) + C(seed)", frame).fit())
    ms = (anova["sum_sq"] / anova["df"]).to_numpy()  # study, seed, residual
    assert ms[1] > ms[2]  # this table has a seed effect
    expected_var = (ms[0] + ms[1] - ms[2]) / 20
    terms = [(ms[0], 4), (ms[1], 3), (ms[2], 12)]
    expected_df = (ms[0] + ms[1] - ms[2]) ** 2 / sum(m**2 / d for m, d in terms)
    estimate = protocol.study_estimate(y, fresh_seeds=False)
    assert estimate.se**2 == pytest.approx(expected_var, rel=1e-9)
    assert estimate.df == pytest.approx(expected_df, rel=1e-9)
    # more studies shrink the study term only; the shared seeds' term stays (the floor)
    assert estimate.unit_variance == pytest.approx(ms[0] / 20 * 5)
    assert estimate.floor_variance == pytest.approx((ms[1] - ms[2]) / 20)


def test_shared_seeds_without_a_seed_effect_falls_back_to_the_study_term():
    y = _table(seed=1)
    y = y - y.mean(axis=0, keepdims=True) + y.mean()  # no seed effect at all: MS_seed = 0
    shared = protocol.study_estimate(y, fresh_seeds=False)
    fresh = protocol.study_estimate(y, fresh_seeds=True)
    assert shared.se == pytest.approx(fresh.se) and shared.df == fresh.df == 3


def test_a_missing_pair_is_analysed_by_row_means():
    y = _table()
    y[1, 2] = math.nan
    estimate = protocol.study_estimate(y, fresh_seeds=False)
    rows = np.nanmean(y, axis=1)
    assert estimate.difference == pytest.approx(rows.mean())
    assert estimate.se == pytest.approx(rows.std(ddof=1) / 2) and estimate.df == 3


def test_edges_of_the_study_estimate():
    one = protocol.study_estimate(_table(studies=1), fresh_seeds=True)
    assert one.cannot_test == "1 study (at least 2 needed)"
    assert decide_one(one, 0.001, "studies").outcome == "undecided"
    gone = protocol.study_estimate(np.full((3, 5), math.nan), fresh_seeds=True)
    assert gone.cannot_test == "no study with a paired seed" and gone.n == 0
    flat = protocol.study_estimate(np.full((3, 5), 0.0002), fresh_seeds=False)
    assert flat.se == 0 and decide_one(flat, 0.001, "studies").outcome == "better"
    assert protocol.study_estimate(np.zeros((3, 5)), True).se == 0
    assert decide_one(protocol.study_estimate(np.zeros((3, 5)), True), 0.001).outcome == (
        "equivalent"
    )


def test_alpha_spending_sums_to_alpha_over_the_looks():
    levels = [protocol.look_level(s, 8) for s in range(1, 10)]
    assert levels[:2] == [0.0, 0.0] and levels[-1] == 0.0  # before the first look, after N
    assert sum(levels) == pytest.approx(0.05)
    # Pocock-type: the first look (3 of 8) spends 0.05 ln(1 + (e - 1) 3/8)
    assert levels[2] == pytest.approx(0.05 * math.log(1 + (math.e - 1) * 3 / 8))
    assert all(level > 0 for level in levels[2:8])
    assert protocol.look_level(3, 3) == pytest.approx(0.05)  # one look: all of alpha
    assert protocol.look_level(2, 2) == pytest.approx(0.05)  # N below the first look


def test_satterthwaite_degrees_of_freedom_never_collapse_below_one():
    """Shared seeds whose seed and residual mean squares nearly cancel and whose studies agree:
    Satterthwaite's ν, computed here from its textbook form, falls far below 1 (an interval of
    ±1e19 pp); the protocol gives the t-interval at least one degree of freedom."""
    table = np.random.default_rng(0).normal(size=(3, 5))
    table = table - table.mean(axis=1, keepdims=True) + 0.2  # every study's mean alike
    s, k = table.shape
    ms_study = k * table.mean(axis=1).var(ddof=1)
    ms_seed = s * table.mean(axis=0).var(ddof=1)
    resid = table - table.mean(1)[:, None] - table.mean(0)[None, :] + table.mean()
    ms_resid = (resid**2).sum() / ((s - 1) * (k - 1))
    assert ms_seed > ms_resid
    total = ms_study + ms_seed - ms_resid
    raw = total**2 / (ms_study**2 / (s - 1) + ms_seed**2 / (k - 1)
                      + ms_resid**2 / ((s - 1) * (k - 1)))  # fmt: skip
    assert raw < 0.02  # the collapse this table was drawn to show
    se, df = protocol.standard_error(table, fresh_seeds=False)
    assert np.sqrt(total / (s * k)) == pytest.approx(float(se))
    assert float(df) == 1.0
    # and where ν is large it is left as Satterthwaite gives it
    table = np.random.default_rng(0).normal(size=(8, 5)) + np.linspace(0, 3, 5)[None, :]
    _, df = protocol.standard_error(table, fresh_seeds=False)
    assert 1.0 < float(df) < 7 * 4
