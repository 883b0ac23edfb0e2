"""The headline across repeated studies on constructed final runs: paired differences per
study, median, spread, wins, the sign test and its edges (one study, two, ties, zero spread, a
winner that diverged on a final seed)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from clrbench.study.repeats import across_studies, per_study, sign_test, smallest_p

CHANCE = 1 / 10  # MNIST's ten classes: what a diverged run scores


def per_study_at_chance(finals, baseline="constant"):
    return per_study(finals, baseline, chance=CHANCE)


def _final(accuracies: dict[str, list[float]], status: dict | None = None) -> pd.DataFrame:
    """One study's final runs: family -> final test accuracy per seed 0, 1, 2, ..."""
    status = status or {}
    rows = [
        (family, seed, status.get((family, seed), "ok"), accuracy)
        for family, values in accuracies.items()
        for seed, accuracy in enumerate(values)
    ]
    return pd.DataFrame(rows, columns=["schedule", "seed", "status", "final_test_accuracy"])


def _studies(differences: list[float], spread: float = 0.001) -> list[pd.DataFrame]:
    """Studies in which clr's mean over 3 seeds is the constant's + the given difference."""
    return [
        _final({"constant": [0.98 - spread, 0.98, 0.98 + spread], "clr": [0.98 + d] * 3})
        for d in differences
    ]


def test_differences_are_paired_on_the_final_seeds_and_the_best_wins():
    table = per_study_at_chance(
        [_final({"constant": [0.97, 0.98, 0.99], "clr": [0.975, 0.985, 0.99]})]
    )
    rows = table.set_index("family")
    assert rows.loc["clr", "difference"] == pytest.approx((0.005 + 0.005 + 0.0) / 3)
    assert rows.loc["constant", "difference"] == 0 and rows.loc["clr", "paired"] == 3
    assert rows["best"].to_dict() == {"constant": False, "clr": True}
    # a failed seed (a crash) is left out of the pairing, not counted
    failed = _final({"constant": [0.97, 0.98, 0.99], "clr": [0.975, 0.985, 0.0]},
                    status={("clr", 2): "failed"})  # fmt: skip
    row = per_study_at_chance([failed]).set_index("family").loc["clr"]
    assert row["paired"] == 2 and row["difference"] == pytest.approx(0.005)


def test_a_winner_that_diverged_on_a_final_seed_scores_chance_there_and_loses():
    diverged = _final({"constant": [0.98] * 3, "clr": [0.99, 0.99, 0.99]},
                      status={("clr", 1): "diverged"})  # fmt: skip
    row = per_study_at_chance([diverged]).set_index("family").loc["clr"]
    assert row["diverged"] == 1 and row["paired"] == 3
    assert row["mean"] == pytest.approx((0.99 * 2 + CHANCE) / 3)
    assert row["difference"] == pytest.approx((0.01 * 2 + CHANCE - 0.98) / 3)
    assert not row["best"]  # the study counts as a loss for it
    across = across_studies(per_study_at_chance([diverged] * 3)).set_index("family").loc["clr"]
    assert across["wins"] == 0 and across["negative"] == 3


def test_one_study_is_one_draw_and_cannot_be_tested():
    across = across_studies(per_study_at_chance(_studies([0.002]))).iloc[0]
    assert across["studies"] == 1 and across["median"] == pytest.approx(0.002)
    assert across["low"] == across["high"] == pytest.approx(0.002) and across["wins"] == 1
    assert across["verdict"] == "undecided: cannot test, 1 study (at least 2 needed)"
    assert math.isnan(across["p_sign"]) and math.isnan(across["ci_low"])
    two = across_studies(per_study_at_chance(_studies([0.002, -0.001]))).iloc[0]
    assert two["outcome"] == "undecided" and two["cannot_test"] is None  # 2 studies: tested
    assert math.isnan(two["p_sign"])  # the sign test still needs 3
    assert (two["median"], two["low"], two["high"]) == pytest.approx((0.0005, -0.001, 0.002))
    assert two["wins"] == 1 and (two["positive"], two["negative"]) == (1, 1)


def test_the_primary_test_over_study_means_is_scipys_t_test():
    differences = [0.002, 0.003, -0.001, 0.004, 0.002]
    across = across_studies(per_study_at_chance(_studies(differences))).iloc[0]
    assert across["median"] == pytest.approx(0.002)
    assert across["p_sign"] == pytest.approx(scipy_stats.binomtest(4, 5).pvalue)
    assert across["p_holm"] == pytest.approx(across["p_sign"])  # one family: Holm is the same
    reference = scipy_stats.ttest_1samp(differences, 0.0)
    assert across["p_difference"] == pytest.approx(reference.pvalue, rel=1e-6)
    interval = reference.confidence_interval(0.95)
    assert (across["ci_low"], across["ci_high"]) == pytest.approx((interval.low, interval.high))
    assert across["seeds_design"] == "one mean difference per study"
    assert across["p_difference"] > 0.05 and across["outcome"] == "undecided"
    assert (
        across["verdict"]
        == f"undecided: ~{int(across['more_studies'])} more studies would likely decide it"
    )
    assert smallest_p(5) == pytest.approx(0.0625)  # the sign test could never reach 0.05
    # zero spread: the interval is the point itself, and it excludes 0
    same = across_studies(per_study_at_chance(_studies([0.002] * 3))).iloc[0]
    assert (same["ci_low"], same["ci_high"]) == pytest.approx((0.002, 0.002))
    assert same["outcome"] == "better" and same["verdict"] == "better"


def test_ties_and_all_equal_differences_are_defined():
    tied = across_studies(per_study_at_chance(_studies([0.0, 0.0, 0.0], spread=0.0))).iloc[0]
    assert tied["p_sign"] == 1.0 and tied["outcome"] == "undecided"  # no margin: no equivalence
    assert tied["verdict"] == "undecided: no number of studies would likely decide it"
    equal = per_study_at_chance(_studies([0.0] * 3, spread=0.0))
    within = across_studies(equal, margin=0.001).iloc[0]
    assert within["verdict"] == "equivalent within ±0.1 pp"
    assert tied["wins"] == 3  # a tie is a win for each tied family
    table = per_study_at_chance(_studies([0.0], spread=0.0))
    assert table["best"].tolist() == [True, True]
    assert sign_test(pd.Series([0.0, 0.001, -0.002]).to_numpy()) == (1, 1, 1.0)


def test_a_study_without_the_baseline_has_no_difference():
    table = per_study_at_chance([_final({"clr": [0.98] * 3})])
    across = across_studies(table).iloc[0]
    assert math.isnan(table["difference"].iloc[0]) and across["studies"] == 0
    assert across["verdict"] == "undecided: cannot test, no study with a paired seed"
    assert across_studies(pd.DataFrame()).empty


def test_a_consistent_sign_the_sign_test_cannot_confirm_is_decided_by_the_primary_test():
    """3 studies all above zero: the sign test gives p = 0.25 at best; the primary test over
    studies decides it, and the headline says which outcome it is."""
    from clrbench.study.prose import answer_repeats

    finals = _studies([0.0006, 0.0007, 0.0008], spread=0.0)
    table = per_study_at_chance(finals)
    up = across_studies(table, "constant", finals, chance=CHANCE, margin=0.001).iloc[0]
    assert up["p_sign"] == pytest.approx(0.25)
    assert up["seeds_design"] == "same final seeds in every study"
    assert up["p_difference"] == pytest.approx(
        scipy_stats.ttest_1samp([0.0006, 0.0007, 0.0008], 0.0).pvalue, rel=1e-6
    )  # no seed effect at all: the crossed SE is the nested one
    assert up["outcome"] == "better" and up["verdict"] == "better, not shown beyond ±0.1 pp"
    assert up["p_improvement"] == 1.0 and up["pairs"] == 9
    decided = across_studies(table, "constant", finals, 0.001, chance=CHANCE)
    text = answer_repeats(decided, table, 3, "constant")
    assert "The pre-registered test over studies × seeds (same final seeds in every study" in text
    assert "clr (+0.07 pp: better, not shown beyond ±0.1 pp)" in text
    # the same study means on seeds that differ by ±0.1 pp, shared by every study: that seed
    # noise does not shrink with more studies, so no number of them would likely decide it
    noisy = _studies([0.0006, 0.0007, 0.0008], spread=0.001)
    row = across_studies(per_study_at_chance(noisy), "constant", noisy, 0.001, chance=CHANCE)
    row = row.iloc[0]
    assert row["outcome"] == "undecided" and row["p_improvement"] == pytest.approx(2 / 3)
    assert row["verdict"] == "undecided: no number of studies would likely decide it"


def test_fresh_seeds_are_analysed_as_nested_and_the_table_pairs_by_seed():
    from clrbench.analysis.protocol import study_estimate
    from clrbench.study.repeats import paired_table, same_seeds

    first = _final({"constant": [0.980, 0.981, 0.979], "clr": [0.982, 0.982, 0.981]})
    second = first.assign(seed=first["seed"] + 10)  # its own seeds
    assert same_seeds([first, first]) and not same_seeds([first, second])
    cells, strata = paired_table([first, second], "clr", "constant", CHANCE)
    assert cells.shape == (2, 6) and np.isfinite(cells).sum() == 6
    assert [len(a) for a, _ in strata] == [3, 3]
    table = per_study_at_chance([first, second])
    across = across_studies(table, "constant", [first, second], chance=CHANCE).iloc[0]
    assert across["seeds_design"] == "final seeds drawn per study"
    nested = study_estimate(np.nanmean(cells, axis=1)[:, None], fresh_seeds=True)
    assert across["se"] == pytest.approx(nested.se) and across["df"] == 1


def test_sequential_rule_keeps_the_first_decided_look_and_waits_for_the_first():
    from clrbench.analysis.protocol import look_level
    from clrbench.study.repeats import all_decided, sequential_across

    finals = _studies([0.0006, 0.0007, 0.0008, 0.0007, 0.0006], spread=0.0)
    table = per_study_at_chance(finals)
    early = sequential_across(
        table[table["study"] < 2], "constant", finals[:2], 0.001, 5, chance=CHANCE
    )
    assert early["verdict"].iloc[0] == "undecided: the first look is after 3 studies"
    assert not all_decided(early)
    rows = sequential_across(table, "constant", finals, 0.001, 5, chance=CHANCE).iloc[0]
    # 3 studies: p = 0.0067 against the first look's level, 0.05 ln(1 + (e - 1) 3/5) = 0.0316
    assert rows["outcome"] == "better" and rows["decided_at"] == 3 and rows["studies"] == 3
    assert rows["level"] == pytest.approx(look_level(3, 5))
    assert all_decided(
        sequential_across(table, "constant", finals, 0.001, 5, chance=CHANCE).iloc[:1]
    )
    # a family still undecided at the last look shows that look
    mixed = _studies([0.0006, -0.0007, 0.0008, -0.0001], spread=0.0)
    last = sequential_across(
        per_study_at_chance(mixed), "constant", mixed, 0.001, 8, chance=CHANCE
    ).iloc[0]
    assert last["outcome"] == "undecided" and math.isnan(last["decided_at"])
    assert last["studies"] == 4 and last["level"] == pytest.approx(look_level(4, 8))
