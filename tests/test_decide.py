"""The decided answer (clrbench.analysis.decide): TOST, Welch and paired tests checked against
statsmodels and scipy on the same data; Holm over a question; the edges; more_needed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from clrbench.analysis import decide
from clrbench.analysis.stats import holm

# Final test accuracies of 5 seeds (MNIST-like: ~98.4%, seed sd ~0.05 pp).
CONSTANT = np.array([0.9835, 0.9829, 0.9841, 0.9838, 0.9832])
CYCLE = np.array([0.9843, 0.9840, 0.9846, 0.9839, 0.9845])
MARGIN = 0.001  # 0.1 pp


def test_welch_tost_matches_statsmodels_ttost_ind():
    estimate = decide.welch_estimate(CYCLE, CONSTANT)
    found = decide.tests(estimate, MARGIN)
    p, lower, upper = ttost_ind(CYCLE, CONSTANT, -MARGIN, MARGIN, usevar="unequal")
    assert found.p_equivalence == pytest.approx(p, rel=1e-9)
    assert estimate.df == pytest.approx(lower[2], rel=1e-9)
    welch = sps.ttest_ind(CYCLE, CONSTANT, equal_var=False)
    assert found.p_difference == pytest.approx(welch.pvalue, rel=1e-9)
    interval = welch.confidence_interval(0.95)
    assert found.ci95 == pytest.approx((interval.low, interval.high), rel=1e-9)
    ninety = welch.confidence_interval(0.90)
    assert found.ci90 == pytest.approx((ninety.low, ninety.high), rel=1e-9)


def test_paired_tost_matches_statsmodels_ttost_paired():
    estimate = decide.paired_estimate(CYCLE - CONSTANT)
    found = decide.tests(estimate, MARGIN)
    p, _, _ = ttost_paired(CYCLE, CONSTANT, -MARGIN, MARGIN)
    assert found.p_equivalence == pytest.approx(p, rel=1e-9)
    assert found.p_difference == pytest.approx(sps.ttest_rel(CYCLE, CONSTANT).pvalue, rel=1e-9)


def test_tost_is_the_ninety_percent_interval_inside_the_margin():
    rng = np.random.default_rng(3)
    for _ in range(200):
        a, b = rng.normal(0, 0.001, 5), rng.normal(rng.normal(0, 0.001), 0.001, 6)
        found = decide.tests(decide.welch_estimate(a, b), MARGIN)
        inside = found.ci90[0] > -MARGIN and found.ci90[1] < MARGIN
        assert (found.p_equivalence < 0.05) == inside


def test_outcomes_better_equivalent_undecided():
    rng = np.random.default_rng(0)
    base = rng.normal(0.98, 0.0005, 10)
    estimates = {
        "better": decide.welch_estimate(base + 0.003, base[::-1]),
        "same": decide.welch_estimate(base[::-1] + 1e-5, base),
        "worse": decide.welch_estimate(base - 0.003, base[::-1]),
        "unclear": decide.welch_estimate(base[:3] + rng.normal(0.0007, 0.002, 3), base[:3]),
    }
    verdicts = decide.decide(estimates, MARGIN)
    assert verdicts["better"].outcome == "better" and verdicts["better"].beyond_margin
    assert verdicts["worse"].outcome == "worse" and verdicts["worse"].beyond_margin
    assert verdicts["same"].outcome == "equivalent" and verdicts["same"].beyond_margin is None
    assert verdicts["unclear"].outcome == "undecided"
    assert verdicts["unclear"].more_needed is not None and verdicts["unclear"].more_needed >= 1
    assert all(v.comparisons == 4 for v in verdicts.values())


def test_better_within_the_margin_is_not_beyond_it():
    a = CONSTANT + 0.0005 + np.array([0, 1e-5, -1e-5, 2e-5, -2e-5])
    verdict = decide.decide_one(decide.paired_estimate(a - CONSTANT), MARGIN)
    assert verdict.outcome == "better" and verdict.beyond_margin is False


def test_holm_over_the_question_is_applied_to_both_tests():
    estimates = {name: decide.welch_estimate(CYCLE + shift, CONSTANT)
                 for name, shift in (("a", 0.0), ("b", -0.0004), ("c", -0.0008))}  # fmt: skip
    verdicts = decide.decide(estimates, MARGIN)
    raw = [verdicts[n].p_difference for n in "abc"]
    assert [verdicts[n].p_difference_holm for n in "abc"] == pytest.approx(list(holm(raw)))
    raw_equiv = [verdicts[n].p_equivalence for n in "abc"]
    adjusted = [verdicts[n].p_equivalence_holm for n in "abc"]
    assert adjusted == pytest.approx(list(holm(raw_equiv)))
    # Holm by hand: m = 3, p sorted ascending, (m - j + 1) p_(j), running maximum, capped at 1.
    order = np.argsort(raw)
    by_hand = np.minimum(1, np.maximum.accumulate([(3 - j) * raw[i] for j, i in enumerate(order)]))
    assert [verdicts[n].p_difference_holm for n in np.array(list("abc"))[order]] == pytest.approx(
        list(by_hand)
    )


def test_zero_variance_edges():
    same = np.full(5, 0.98)
    equal = decide.decide_one(decide.welch_estimate(same, same), MARGIN)
    assert equal.outcome == "equivalent" and equal.ci95 == (0.0, 0.0)
    assert equal.p_difference == 1.0 and equal.p_equivalence == 0.0
    higher = decide.decide_one(decide.welch_estimate(same + 0.0005, same), MARGIN)
    assert higher.outcome == "better" and higher.beyond_margin is False
    far = decide.decide_one(decide.welch_estimate(same + 0.002, same), MARGIN)
    assert far.outcome == "better" and far.beyond_margin is True
    at_margin = decide.tests(decide.welch_estimate(same + MARGIN, same), MARGIN)
    assert at_margin.p_equivalence == 1.0  # exactly at the margin is not inside it


def test_one_seed_cannot_be_tested():
    verdict = decide.decide_one(decide.welch_estimate(CYCLE[:1], CONSTANT), MARGIN)
    assert verdict.outcome == "undecided"
    assert verdict.cannot_test == "n = 1 vs 5 (at least 2 each needed)"
    assert verdict.more_needed is None and math.isnan(verdict.p_difference)
    assert decide.paired_estimate(np.array([])).cannot_test == "n = 0 (at least 2 needed)"
    # an untestable comparison does not count in Holm's m
    verdicts = decide.decide(
        {"one": decide.welch_estimate(CYCLE[:1], CONSTANT),
         "five": decide.welch_estimate(CYCLE, CONSTANT)}, MARGIN)  # fmt: skip
    assert verdicts["five"].comparisons == 1
    assert verdicts["five"].p_difference_holm == verdicts["five"].p_difference


def test_without_a_margin_equivalence_is_not_tested():
    verdict = decide.decide_one(decide.welch_estimate(CYCLE[::-1], CYCLE), None)
    assert verdict.outcome == "undecided" and math.isnan(verdict.p_equivalence)
    assert verdict.more_needed is None  # d = 0 exactly: no number of seeds shows a difference


def test_more_needed_follows_the_stated_formula():
    # unit variance 2 * 0.0006², observed difference 0.0004: a difference needs n with
    # (t_{0.975, 2n-2} + t_{0.8, 2n-2}) sqrt(V / n) <= 0.0004
    variance = 2 * 0.0006**2
    estimate = decide.Estimate(0.0004, math.sqrt(variance / 5), 8.0, 5, variance, "welch")
    n = next(
        n for n in range(2, 1000)
        if (sps.t.ppf(0.975, 2 * n - 2) + sps.t.ppf(0.8, 2 * n - 2)) * math.sqrt(variance / n)
        <= 0.0004
    )  # fmt: skip
    assert decide.more_needed(estimate, None) == n - 5
    # the normal approximation, 2 (1.96 + 0.84)² 0.0006² / 0.0004² = 35.3, is close below it
    assert 36 <= n <= 38
    # with a margin of 0.1 pp, equivalence (0.0006 away) is reached sooner
    with_margin = decide.more_needed(estimate, MARGIN)
    assert with_margin is not None and with_margin < n - 5
    # Holm's m = 4 asks for more
    assert decide.more_needed(estimate, None, comparisons=4) > n - 5


def test_more_needed_at_the_margin_exactly_and_without_variance():
    at = decide.Estimate(MARGIN, 0.0, 8.0, 5, 0.0, "welch")
    assert decide.more_needed(at, MARGIN) is None
    unclear = decide.Estimate(MARGIN, 0.0004, 8.0, 5, 8e-7, "welch")
    assert decide.more_needed(unclear, MARGIN) is not None  # a difference can still be shown


def test_verdict_json_is_plain():
    verdict = decide.decide_one(decide.welch_estimate(CYCLE[:1], CONSTANT), MARGIN)
    document = verdict.to_json()
    assert document["ci95"] == [None, None] and document["p_difference"] is None
    assert document["outcome"] == "undecided" and document["margin"] == MARGIN
