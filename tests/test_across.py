"""Cross-workload statistics (``clrbench.across.analysis``) on constructed frames, against
values computed by hand: Kendall's W with ties and its chi-square, tau-b, the performance
profile's ratios (never = inf) and its exact area, and every edge that has no number."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from clrbench.across import analysis as across


def means(table: dict[str, dict[str, float]]) -> pd.DataFrame:
    """``{workload: {schedule: mean}}`` as the tidy ``workload, schedule, mean`` frame."""
    rows = [(w, s, m) for w, row in table.items() for s, m in row.items()]
    return pd.DataFrame(rows, columns=["workload", "schedule", "mean"])


# Three workloads rank a, b, c: (1, 2, 3), (1.5, 1.5, 3) (a tie), (2, 1, 3).
TIED = {
    "w1": {"a": 0.9, "b": 0.8, "c": 0.7},
    "w2": {"a": 0.9, "b": 0.9, "c": 0.7},
    "w3": {"a": 0.8, "b": 0.9, "c": 0.7},
}


def test_ranks_are_best_first_with_mid_ranks_for_ties():
    ranked = across.rank(means(TIED))
    assert ranked["rank"].tolist() == [1, 2, 3, 1.5, 1.5, 3, 2, 1, 3]


def test_kendalls_w_with_a_tie_by_hand():
    # rank sums R = 4.5, 4.5, 9 around m(n+1)/2 = 6: S = 2.25 + 2.25 + 9 = 13.5; the tie of
    # two in w2 gives T = 2^3 - 2 = 6; W = 12 S / (m^2 (n^3 - n) - m T) = 162 / 198 = 9 / 11
    agreement = across.rank_agreement(means(TIED))
    assert agreement.status == "tested"
    assert agreement.w == pytest.approx(9 / 11, abs=1e-12)
    assert agreement.chi2 == pytest.approx(54 / 11, abs=1e-12)  # m (n - 1) W
    assert agreement.df == 2
    assert agreement.p_value == pytest.approx(math.exp(-27 / 11), abs=1e-12)  # chi2(2) tail
    columns = [[TIED[w][s] for w in TIED] for s in "abc"]
    friedman = sps.friedmanchisquare(*columns)  # scipy's tie-corrected Friedman statistic
    assert agreement.chi2 == pytest.approx(friedman.statistic, abs=1e-12)
    assert agreement.p_value == pytest.approx(friedman.pvalue, abs=1e-12)


def test_kendalls_w_is_one_for_the_same_order_and_zero_for_opposite_orders():
    same = across.kendalls_w(np.array([[1.0, 2, 3], [1, 2, 3]]))
    assert same is not None
    w, chi2, df, p = same
    assert (w, chi2, df) == (1.0, 4.0, 2) and p == pytest.approx(math.exp(-2))
    opposite = across.kendalls_w(np.array([[1.0, 2, 3], [3, 2, 1]]))
    assert opposite is not None and opposite[0] == 0.0 and opposite[3] == 1.0


def test_pairwise_tau_b_by_hand():
    taus = across.rank_agreement(means(TIED)).taus.set_index(["workload_a", "workload_b"])
    # w1 vs w3: pairs (a,b) discordant, (a,c) and (b,c) concordant: (2 - 1) / 3
    assert taus.loc[("w1", "w3"), "tau"] == pytest.approx(1 / 3)
    # w1 vs w2: 2 concordant, 0 discordant, one pair tied in w2: 2 / sqrt(3 * 2)
    assert taus.loc[("w1", "w2"), "tau"] == pytest.approx(2 / math.sqrt(6))
    tau = sps.kendalltau([0.9, 0.8, 0.7], [0.8, 0.9, 0.7])
    assert taus.loc[("w1", "w3"), "p_value"] == pytest.approx(tau.pvalue)
    assert set(taus["status"]) == {"tested"}


def test_only_schedules_in_every_workload_are_ranked_and_the_rest_named():
    table = {"w1": {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6}, "w2": {"a": 0.8, "b": 0.9}}
    table["w2"] |= {"c": math.nan, "e": 0.5}  # c: no ok run on w2; d, e: on one workload only
    agreement = across.rank_agreement(means(table))
    assert agreement.schedules == ["a", "b"]
    assert agreement.left_out == ["c", "d", "e"]
    assert agreement.status == "tested"  # two schedules: W defined
    assert agreement.w == pytest.approx(0.0)  # opposite orders of a and b
    assert sorted(agreement.ranks["schedule"].unique()) == ["a", "b"]


@pytest.mark.parametrize(
    "table",
    [
        {"w1": {"a": 0.9, "b": 0.8}},  # one workload
        {"w1": {"a": 0.9, "b": 0.8}, "w2": {"a": 0.9, "c": 0.8}},  # one common schedule
        {"w1": {"a": 0.9}, "w2": {"b": 0.9}},  # none in common
    ],
)
def test_fewer_than_two_workloads_or_common_schedules_cannot_be_tested(table):
    agreement = across.rank_agreement(means(table))
    assert agreement.status.startswith("cannot test")
    assert agreement.w is None and agreement.p_value is None and agreement.chi2 is None


def test_every_schedule_tied_everywhere_leaves_w_undefined_without_a_warning():
    table = {"w1": {"a": 0.9, "b": 0.9, "c": 0.9}, "w2": {"a": 0.8, "b": 0.8, "c": 0.8}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        agreement = across.rank_agreement(means(table))
    assert agreement.status.startswith("undefined")
    assert agreement.w is None
    assert agreement.taus["status"].str.startswith("undefined").all()
    assert agreement.taus["tau"].isna().all()
    assert across.kendalls_w(np.full((2, 3), 2.0)) is None


def test_common_schedules_keep_first_seen_order():
    common, rest = across.common_schedules({"x": ["c", "a", "b"], "y": ["a", "b", "c", "d"]})
    assert common == ["c", "a", "b"] and rest == ["d"]


# --- the performance profile ---


def steps(table: dict[str, dict[str, float]]) -> pd.DataFrame:
    rows = [(w, s, v) for w, row in table.items() for s, v in row.items()]
    return pd.DataFrame(rows, columns=["workload", "schedule", "steps"])


STEPS = {
    "w1": {"a": 100, "b": 200, "c": math.inf},
    "w2": {"a": math.inf, "b": math.inf, "c": math.inf},  # no schedule reaches the target
    "w3": {"a": 300, "b": 150, "c": 1200},
}


def test_ratios_to_the_fastest_with_never_as_infinity():
    ratios = across.profile_ratios(steps(STEPS)).set_index(["workload", "schedule"])["ratio"]
    assert ratios.loc["w1"].tolist() == [1.0, 2.0, math.inf]
    assert ratios.loc["w2"].tolist() == [math.inf] * 3  # nobody reached it: nobody is 1
    assert ratios.loc["w3"].tolist() == [2.0, 1.0, 8.0]


def test_a_missing_steps_value_counts_as_never():
    frame = steps({"w1": {"a": 100, "b": math.nan}})
    assert across.profile_ratios(frame)["ratio"].tolist() == [1.0, math.inf]


@pytest.mark.parametrize(
    ("ratios", "area"),
    [
        ([1, 2, math.inf], (3 + 2 + 0) / 3),  # within 1x from tau = 1, 2x from 2, never
        ([1, 1, 1], 3.0),  # fastest everywhere
        ([math.inf, math.inf], 0.0),
        ([1.5, 4, 5], (2.5 + 0 + 0) / 3),  # exactly 4 counts at tau = 4 only: no area
        ([3.25], 0.75),
        ([1, 2.5], (3 + 1.5) / 2),
    ],
)
def test_the_area_under_rho_is_exact(ratios, area):
    assert across.profile_area(ratios) == pytest.approx(area, abs=1e-12)
    assert across.profile_score(ratios) == pytest.approx(area / 3, abs=1e-12)


def test_scores_and_rho_of_the_profile_by_hand():
    profile = across.performance_profile(steps(STEPS))
    scores = profile.scores.set_index("schedule")["score"]
    # a: ratios 1, inf, 2 -> (3 + 0 + 2) / 3 / 3; b: 2, inf, 1 -> the same; c: inf, inf, 8 -> 0
    assert scores.to_dict() == pytest.approx({"a": 5 / 9, "b": 5 / 9, "c": 0.0}, abs=1e-12)
    curve = profile.curve.set_index(["schedule", "tau"])["rho"]
    assert curve[("a", 1.0)] == pytest.approx(1 / 3)
    assert curve[("a", 2.0)] == pytest.approx(2 / 3)
    assert curve[("a", 4.0)] == pytest.approx(2 / 3)
    assert curve.loc["c"].eq(0).all()
    assert len(profile.curve) == 3 * len(across.TAU_GRID)
    assert across.TAU_GRID[0] == 1.0 and across.TAU_GRID[-1] == 4.0


def test_rho_counts_ratios_at_most_tau():
    assert across.rho([1, 2, math.inf], 1.999) == pytest.approx(1 / 3)
    assert across.rho([1, 2, math.inf], 2) == pytest.approx(2 / 3)
    assert math.isnan(across.rho([], 2))


def test_the_step_curve_has_a_corner_at_each_jump():
    curve = across.step_curve([1, 2, 5, math.inf])
    assert curve["tau"].tolist() == [1.0, 2.0, 4.0]
    assert curve["rho"].tolist() == [0.25, 0.5, 0.5]
    area = (np.diff(curve["tau"]) * curve["rho"].to_numpy()[:-1]).sum()
    assert area == pytest.approx(across.profile_area([1, 2, 5, math.inf]))
