"""Probability of improvement and expected best vs budget (clrbench.analysis.improvement),
checked against brute-force enumeration and scipy's bootstrap on the same data."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from clrbench.analysis.improvement import budget_curve, expected_best, probability_of_improvement

TRIALS = np.array([0.9781, 0.9712, 0.9803, 0.9655, 0.9790, 0.1, 0.9777])  # one diverged: chance


def test_expected_best_equals_enumeration_of_every_draw():
    values = TRIALS[:5]
    for n in (1, 2, 3):
        draws = itertools.product(values, repeat=n)
        brute = np.mean([max(draw) for draw in draws])
        assert expected_best(values, n)[0] == pytest.approx(brute, rel=1e-12)


def test_expected_best_edges():
    assert expected_best(TRIALS, 1)[0] == pytest.approx(TRIALS.mean())
    curve = expected_best(TRIALS)
    assert curve.size == TRIALS.size and np.all(np.diff(curve) >= 0)
    assert curve[-1] < TRIALS.max()  # N draws with replacement can miss the best
    tied = expected_best(np.full(4, 0.9), np.array([1, 4]))
    assert tied == pytest.approx([0.9, 0.9])
    assert np.isnan(expected_best(np.array([math.nan]), 2)).all()
    assert expected_best(np.array([0.5, math.nan, 0.7]), 1)[0] == pytest.approx(0.6)


def test_budget_curve_averages_studies_and_bands_contain_it():
    studies = [TRIALS, TRIALS[::-1] - 0.001, TRIALS[:5] + 0.001]
    curve = budget_curve(studies, resamples=500, seed=1)
    assert list(curve.budgets) == [1, 2, 3, 4, 5]  # up to the fewest trials of a study
    by_hand = np.mean([expected_best(s, curve.budgets) for s in studies], axis=0)
    assert curve.expected == pytest.approx(by_hand)
    assert np.all(curve.low <= curve.expected) and np.all(curve.expected <= curve.high)
    again = budget_curve(studies, resamples=500, seed=1)
    assert np.array_equal(curve.low, again.low)  # seeded
    one = budget_curve([np.array([0.97])])
    assert one.expected == pytest.approx([0.97]) and one.low == pytest.approx([0.97])
    assert budget_curve([]).budgets.size == 0


def test_probability_of_improvement_counts_ties_as_half():
    a = np.array([0.98, 0.97, 0.96, 0.95])
    b = np.array([0.97, 0.97, 0.97, 0.97])
    found = probability_of_improvement([(a, b)])
    assert found.probability == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert found.pairs == 4


def test_probability_of_improvement_weights_studies_equally():
    found = probability_of_improvement(
        [(np.array([1.0, 1.0]), np.array([0.0, 0.0])), (np.array([0.0] * 6), np.ones(6))]
    )
    assert found.probability == pytest.approx(0.5)  # not 2 / 8
    assert found.low == pytest.approx(0.5) and found.high == pytest.approx(0.5)


def test_single_stratum_interval_matches_scipy_bootstrap():
    rng = np.random.default_rng(7)
    a, b = rng.normal(0.001, 0.001, 40), rng.normal(0.0, 0.001, 40)
    ours = probability_of_improvement([(a, b)], resamples=20_000, seed=3)
    wins = (a > b).astype(float)
    theirs = sps.bootstrap(
        (wins,), np.mean, n_resamples=20_000, method="percentile", random_state=4
    ).confidence_interval
    assert ours.probability == pytest.approx(wins.mean())
    assert ours.low == pytest.approx(theirs.low, abs=0.026)  # one pair of 40 is 0.025
    assert ours.high == pytest.approx(theirs.high, abs=0.026)


def test_stratified_bootstrap_never_mixes_strata():
    # Study 0: A always wins; study 1: A always loses. Resampling within strata keeps 0.5 exact;
    # pooled resampling would spread it.
    strata = [(np.ones(5), np.zeros(5)), (np.zeros(5), np.ones(5))]
    found = probability_of_improvement(strata, resamples=300)
    assert (found.probability, found.low, found.high) == (0.5, 0.5, 0.5)


def test_probability_of_improvement_edges():
    none = probability_of_improvement([(np.array([math.nan]), np.array([0.9]))])
    assert none.pairs == 0 and math.isnan(none.probability)
    one = probability_of_improvement([(np.array([0.99]), np.array([0.98]))])
    assert one.probability == 1.0 and math.isnan(one.low)
