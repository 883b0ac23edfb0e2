"""The headline across repeated studies on constructed final runs: paired differences per
study, median, spread, wins, the sign test and its edges (one study, two, ties, zero spread, a
winner that diverged on a final seed)."""

from __future__ import annotations

import math

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
    assert across["verdict"] == "cannot test: 1 study (at least 3 needed)"
    assert math.isnan(across["p_sign"]) and math.isnan(across["ci_low"])
    two = across_studies(per_study_at_chance(_studies([0.002, -0.001]))).iloc[0]
    assert two["verdict"] == "cannot test: 2 studies (at least 3 needed)"
    assert (two["median"], two["low"], two["high"]) == pytest.approx((0.0005, -0.001, 0.002))
    assert two["wins"] == 1 and (two["positive"], two["negative"]) == (1, 1)


def test_three_or_more_studies_get_a_sign_test_and_a_t_interval_over_studies():
    differences = [0.002, 0.003, -0.001, 0.004, 0.002]
    across = across_studies(per_study_at_chance(_studies(differences))).iloc[0]
    assert across["median"] == pytest.approx(0.002)
    assert across["p_sign"] == pytest.approx(scipy_stats.binomtest(4, 5).pvalue)
    assert across["p_holm"] == pytest.approx(across["p_sign"])  # one family: Holm is the same
    values = pd.Series(differences)
    half = scipy_stats.t.ppf(0.975, 4) * values.std(ddof=1) / math.sqrt(5)
    assert (across["ci_low"], across["ci_high"]) == pytest.approx(
        (values.mean() - half, values.mean() + half)
    )
    assert across["verdict"] == "no difference beyond tuning luck and seed noise"
    assert smallest_p(5) == pytest.approx(0.0625)  # 5 studies can never reach 0.05
    better = across_studies(per_study_at_chance(_studies([0.002] * 7))).iloc[0]
    assert better["p_holm"] == pytest.approx(2 * 0.5**7) and better["verdict"] == "better"
    # zero spread: the interval is the point itself
    assert (better["ci_low"], better["ci_high"]) == pytest.approx((0.002, 0.002))


def test_ties_and_all_equal_differences_are_defined():
    tied = across_studies(per_study_at_chance(_studies([0.0, 0.0, 0.0], spread=0.0))).iloc[0]
    assert tied["verdict"] == "no difference in any study" and tied["p_sign"] == 1.0
    assert tied["wins"] == 3  # a tie is a win for each tied family
    table = per_study_at_chance(_studies([0.0], spread=0.0))
    assert table["best"].tolist() == [True, True]
    assert sign_test(pd.Series([0.0, 0.001, -0.002]).to_numpy()) == (1, 1, 1.0)


def test_a_study_without_the_baseline_has_no_difference():
    table = per_study_at_chance([_final({"clr": [0.98] * 3})])
    across = across_studies(table).iloc[0]
    assert math.isnan(table["difference"].iloc[0]) and across["studies"] == 0
    assert across["verdict"] == "no study to compare"
    assert across_studies(pd.DataFrame()).empty


def test_a_consistent_sign_the_sign_test_cannot_confirm_is_named_not_called_no_difference():
    """3 studies all above (or below) zero: the sign test gives p = 0.25 at best, so it is not
    significant; the t-interval over studies excludes 0, and the verdict and headline say so."""
    from clrbench.study.prose import answer_repeats

    up = across_studies(per_study_at_chance(_studies([0.0006, 0.0007, 0.0008]))).iloc[0]
    assert up["p_sign"] == pytest.approx(0.25) and up["ci_low"] > 0
    assert up["verdict"] == "sign test not significant; t-interval over studies above 0"
    down = across_studies(per_study_at_chance(_studies([-0.0006, -0.0007, -0.0008]))).iloc[0]
    assert down["verdict"] == "sign test not significant; t-interval over studies below 0"
    # one study against the others: the interval straddles 0, the old verdict stands
    mixed = across_studies(per_study_at_chance(_studies([0.0006, 0.0007, -0.0008]))).iloc[0]
    assert mixed["verdict"] == "no difference beyond tuning luck and seed noise"

    table = per_study_at_chance(_studies([0.0006, 0.0007, 0.0008]))
    text = answer_repeats(across_studies(table), table, 3, "constant")
    assert "No family beats the tuned constant beyond tuning luck and seed noise" in text
    assert "3 studies can give no p below 0.25" in text
    low, high = f"+{100 * up['ci_low']:.2f} pp", f"+{100 * up['ci_high']:.2f} pp"
    assert f"excludes zero for clr ({low} to {high}; above zero in 3 of 3 studies)" in text
    mixed_table = per_study_at_chance(_studies([0.0006, 0.0007, -0.0008]))
    assert "excludes zero" not in answer_repeats(
        across_studies(mixed_table), mixed_table, 3, "constant"
    )
