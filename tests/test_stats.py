"""clrbench.analysis.stats (and report.prose) against numbers computed directly from the tidy
frames and against scipy."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import load_synthetic
from scipy import stats as sps

from clrbench.analysis import stats
from clrbench.errors import ResultsError
from clrbench.reporting import prose
from clrbench.store.results import Results, load_results


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """4 schedules × 5 seeds × 4 epochs of 10 steps; one diverged and one failed run."""
    out = tmp_path_factory.mktemp("synthetic") / "results"
    outcomes = {("step", 1): "diverged", ("constant", 4): "failed"}
    load_synthetic().write_synthetic_results(
        out, ("constant", "step", "clr-iter", "clr-epoch"), seeds=5, epochs=4, train_size=1280,
        outcomes=outcomes,
    )  # fmt: skip
    return load_results(out)


def last_epochs(results) -> pd.DataFrame:
    """Each run's last epoch row, straight from the tidy frame."""
    ordered = results.epochs.sort_values(["run_id", "epoch"])
    return ordered.groupby("run_id", observed=True).tail(1).set_index("run_id")


def ok_final_accuracy(results) -> pd.Series:
    ok_ids = results.runs.loc[results.runs["status"] == "ok", "run_id"]
    last = last_epochs(results)
    return last.loc[last.index.isin(ok_ids), ["schedule", "test_accuracy"]]


def test_final_metrics_has_every_run_with_its_last_epoch(synthetic):
    final = stats.final_metrics(synthetic).set_index("run_id")
    assert set(final.index) == set(synthetic.runs["run_id"])
    last = last_epochs(synthetic)
    for run_id, row in last.iterrows():
        assert final.loc[run_id, "final_test_accuracy"] == row["test_accuracy"]
        assert final.loc[run_id, "final_train_loss"] == row["train_loss"]
    best = synthetic.epochs.groupby("run_id", observed=True)["test_accuracy"].max()
    assert np.allclose(final.loc[best.index, "best_test_accuracy"], best)
    failed = final[final["status"] == "failed"]
    assert len(failed) == 1 and failed["final_test_accuracy"].isna().all()
    assert (failed["epochs_done"] == 0).all()


def test_summarize_matches_groupby_and_t_interval(synthetic):
    summary = stats.summarize(synthetic, target=0.95).set_index("schedule")
    by_schedule = ok_final_accuracy(synthetic).groupby("schedule", observed=True)["test_accuracy"]
    for schedule, values in by_schedule:
        row = summary.loc[schedule]
        assert row["ok"] == len(values)
        assert row["final_test_accuracy_mean"] == pytest.approx(values.mean(), abs=1e-12)
        assert row["final_test_accuracy_std"] == pytest.approx(values.std(ddof=1), abs=1e-12)
        low, high = sps.t.interval(0.95, len(values) - 1, values.mean(), sps.sem(values))
        assert row["final_test_accuracy_ci_low"] == pytest.approx(low)
        assert row["final_test_accuracy_ci_high"] == pytest.approx(high)
    assert summary.loc["constant", ["runs", "ok"]].tolist() == [5, 4]
    assert summary.loc["step", ["runs", "ok"]].tolist() == [5, 4]


def test_summarize_sorts_best_first(synthetic):
    means = stats.summarize(synthetic)["final_test_accuracy_mean"].to_numpy()
    assert np.all(np.diff(means) <= 0)


def test_steps_to_target_is_the_first_epoch_at_or_above_target(synthetic):
    target = 0.95
    reach = stats.steps_to_target(synthetic, target).set_index("run_id")
    for run_id, epochs in synthetic.epochs.groupby("run_id", observed=True):
        hits = epochs.sort_values("epoch").query("test_accuracy >= @target")
        if hits.empty:
            assert not reach.loc[run_id, "reached"]
            assert reach.loc[run_id, "iterations"] == math.inf  # never: slower than any run
        else:
            assert reach.loc[run_id, "iterations"] == hits["step"].iloc[0] + 1
            assert reach.loc[run_id, "seconds"] == hits["time_s"].iloc[0]
    never = stats.steps_to_target(synthetic, 0.999)
    assert not never["reached"].any()


def test_default_target_is_reached_by_most_ok_runs(synthetic):
    target = stats.default_target(synthetic)
    assert round(target / 0.005, 6) == round(target / 0.005)
    final = stats.final_metrics(synthetic)
    best = final.loc[final["status"] == "ok", "best_test_accuracy"]
    assert (best >= target).mean() >= 0.8
    assert (best >= target + 0.005).mean() < 0.8


def test_holm_on_a_hand_example():
    # sorted: 0.01*3 = 0.03; 0.03*2 = 0.06; 0.04*1 = 0.04 -> monotone 0.06
    assert np.allclose(stats.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    assert np.allclose(stats.holm([0.5, 0.2]), [0.5, 0.4])
    assert np.allclose(stats.holm([0.6, 0.9]), [1.0, 1.0])  # capped at 1
    adjusted = stats.holm([0.02, np.nan, 0.01])
    assert np.isnan(adjusted[1]) and np.allclose(adjusted[[0, 2]], [0.02, 0.02])


def test_compare_matches_scipy_welch(synthetic):
    comparison = stats.compare(synthetic).set_index("schedule")
    finals = ok_final_accuracy(synthetic)
    base = finals.loc[finals["schedule"] == "constant", "test_accuracy"].to_numpy()
    p_values = []
    for schedule in ("step", "clr-iter", "clr-epoch"):
        values = finals.loc[finals["schedule"] == schedule, "test_accuracy"].to_numpy()
        row = comparison.loc[schedule]
        welch = sps.ttest_ind(values, base, equal_var=False)
        assert row["p_value"] == pytest.approx(welch.pvalue)
        se2 = values.var(ddof=1) / len(values), base.var(ddof=1) / len(base)
        df = sum(se2) ** 2 / (se2[0] ** 2 / (len(values) - 1) + se2[1] ** 2 / (len(base) - 1))
        half = sps.t.ppf(0.975, df) * math.sqrt(sum(se2))
        difference = values.mean() - base.mean()
        assert row["difference"] == pytest.approx(difference)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(
            (difference - half, difference + half)
        )
        pooled = ((len(values) - 1) * values.var(ddof=1) + (len(base) - 1) * base.var(ddof=1)) / (
            len(values) + len(base) - 2
        )
        g = difference / math.sqrt(pooled) * (1 - 3 / (4 * (len(values) + len(base)) - 9))
        assert row["hedges_g"] == pytest.approx(g)
        p_values.append(welch.pvalue)
    assert comparison.loc[["step", "clr-iter", "clr-epoch"], "p_holm"].tolist() == pytest.approx(
        stats.holm(p_values)
    )
    assert "constant" not in comparison.index  # the baseline is not compared with itself


def test_compare_baseline_choice(synthetic):
    assert set(stats.compare(synthetic, "step")["baseline"]) == {"step"}
    with pytest.raises(ResultsError, match="nope"):
        stats.compare(synthetic, "nope")


def test_compare_refuses_to_test_too_few_seeds(synthetic):
    few = synthetic.runs["seed"] < 2
    results = type(synthetic)(
        synthetic.path,
        synthetic.batches[synthetic.batches["seed"] < 2],
        synthetic.epochs[synthetic.epochs["seed"] < 2],
        synthetic.runs[few].reset_index(drop=True),
        synthetic.experiment,
    )
    comparison = stats.compare(results)
    assert comparison["p_value"].isna().all() and not comparison["significant"].any()
    assert comparison["verdict"].str.startswith("undecided: cannot test, too few seeds").all()
    assert (comparison["outcome"] == "undecided").all() and comparison["more_seeds"].isna().all()
    text = prose.conclusion(stats.summarize(results), comparison)
    assert "Too few seeds" in text and "better" not in text and "equivalent" not in text


def _frames(p_holm: float, top: str = "clr", baseline: str = "constant"):
    summary = pd.DataFrame(
        {
            "schedule": [top, baseline] if top != baseline else [baseline, "clr"],
            "runs": [5, 5],
            "ok": [5, 5],
            "final_test_accuracy_mean": [0.9831, 0.9810],
            "final_test_accuracy_std": [0.0005, 0.0006],
        }
    )
    other = "clr" if top == baseline else top
    comparison = pd.DataFrame(
        {
            "schedule": [other], "baseline": [baseline], "n": [5], "n_baseline": [5],
            "difference": [0.0021 if top != baseline else -0.0021], "ci_low": [0.0012],
            "ci_high": [0.0030], "p_value": [p_holm], "p_holm": [p_holm],
            "significant": [p_holm < 0.05], "margin": [0.001],
            "outcome": ["better" if p_holm < 0.05 and top != baseline else
                        "worse" if p_holm < 0.05 else "undecided"],
            "more_seeds": [None if p_holm < 0.05 else 7],
        }
    )  # fmt: skip
    words = {"better": "better, beyond ±0.1 pp", "worse": "worse, beyond ±0.1 pp"}
    comparison["verdict"] = (
        comparison["outcome"]
        .map(words)
        .fillna("undecided: ~7 more seeds per schedule would likely decide it")
    )
    return summary, comparison


def test_conclusion_claims_significance_only_when_the_table_shows_it():
    text = prose.conclusion(*_frames(0.003))
    assert text.startswith("clr reached the highest final test accuracy (98.31% ± 0.05, 5 seeds)")
    assert "+0.21 pp over constant" in text and ": better, beyond ±0.1 pp at 5 vs 5 seeds" in text
    assert "p = 0.003" in text
    assert (
        "Against constant (Holm over the one comparison tested, α = 0.05, margin ±0.1 pp): "
        "better: clr (+0.21 pp)." in text
    )
    text = prose.conclusion(*_frames(0.2))
    assert text.startswith("clr reached the highest")
    assert "better" not in text and "undecided: ~7 more seeds per schedule" in text
    assert "undecided: clr (+0.21 pp); ~7 more seeds per schedule would likely decide all" in text


def test_conclusion_of_an_undecided_comparison_without_a_seed_estimate():
    """An undecided comparison whose more-seeds estimate is undefined (no variance estimate)
    is named without a hint; the conclusion used to raise ValueError on max() of nothing."""
    summary, comparison = _frames(0.2)
    comparison["more_seeds"] = [np.nan]
    text = prose.conclusion(summary, comparison)
    assert "undecided: clr (+0.21 pp)." in text and "would likely decide all" not in text


def test_conclusion_with_one_tested_comparison_is_singular():
    text = prose.conclusion(*_frames(0.2))
    assert "(Holm over the one comparison tested, α = 0.05, margin ±0.1 pp)" in text
    assert "the 1 tested" not in text


def test_conclusion_when_the_baseline_is_best():
    text = prose.conclusion(*_frames(0.01, top="constant"))
    assert text.startswith("constant (the baseline) reached the highest")
    assert "clr (−0.21 pp)" in text


def test_conclusion_is_consistent_with_the_synthetic_tables(synthetic):
    summary, comparison = stats.summarize(synthetic), stats.compare(synthetic)
    text = prose.conclusion(summary, comparison)
    assert text.startswith(str(summary["schedule"].iloc[0]))
    for row in comparison.itertuples():
        named = f"{row.schedule} ({row.difference * 100:+.2f} pp)" in text
        assert named == bool(row.significant)
    assert "2 of 20 runs did not finish ok" in text
    assert "p = < " not in text


def test_conclusion_on_a_difference_within_seed_noise(synthetic):
    # clr-iter and clr-epoch share the same synthetic curve: they differ by seed noise only
    comparison = stats.compare(synthetic, "clr-epoch").set_index("schedule")
    assert comparison.loc["clr-iter", "p_holm"] >= 0.05
    summary = stats.summarize(synthetic)
    assert summary["schedule"].iloc[0] == "clr-iter"
    text = prose.conclusion(summary, comparison.reset_index())
    assert text.startswith("clr-iter reached the highest final test accuracy")
    first_sentence = text.split(". ")[0]
    row = comparison.loc["clr-iter"]
    assert row["outcome"] in ("undecided", "equivalent") and row["verdict"] in first_sentence
    assert "better" not in first_sentence


@pytest.mark.parametrize("target", [0.9, 0.95])
def test_conclusion_names_the_fastest_schedule_to_target(synthetic, target):
    summary = stats.summarize(synthetic, target=target)
    speed = stats.compare_speed(synthetic, target)
    text = prose.conclusion(summary, stats.compare(synthetic), speed, resolution=10)
    medians = summary.set_index("schedule")["iterations_to_target_median"]
    fastest = medians[medians == medians.min()]
    names = " and ".join(fastest.index.astype(str))
    verb = "tie as fastest" if len(fastest) > 1 else "is fastest"
    assert f"To {target * 100:g}% test accuracy, {names} {verb}" in text
    assert f"median {fastest.iloc[0]:,.0f} iterations" in text
    assert "evaluated every 10 iterations" in text
    unreachable = prose.conclusion(stats.summarize(synthetic, target=1.0), stats.compare(synthetic))
    assert (
        "No schedule reached the 100% test-accuracy target in most of its ok runs." in unreachable
    )


# --- edges, on hand-made frames: zero variance, float32 ties at a target, never reached ---


def hand_made(
    curves: dict[str, list[list[float]]],
    steps_per_epoch: int = 10,
    statuses: dict[str, str] | None = None,
) -> Results:
    """Results whose run i of schedule s has per-epoch test accuracies ``curves[s][i]`` (stored
    through float32, as Keras reports them), 10,000 test examples, all ok but the runs named in
    ``statuses`` (run id ``<schedule>-s<i>`` -> status)."""
    runs, epochs = [], []
    for schedule, per_seed in curves.items():
        for seed, accuracies in enumerate(per_seed):
            run_id = f"{schedule}-s{seed}"
            status = (statuses or {}).get(run_id, "ok")
            runs.append({"run_id": run_id, "schedule": schedule, "seed": seed, "status": status})
            for epoch, accuracy in enumerate(accuracies):
                epochs.append(
                    {"run_id": run_id, "schedule": schedule, "seed": seed, "epoch": epoch}
                    | {"step": (epoch + 1) * steps_per_epoch - 1, "time_s": float(epoch + 1)}
                    | {"test_accuracy": float(np.float32(accuracy)), "test_loss": 0.1}
                    | {"train_loss": 0.1}
                )
    runs_frame = pd.DataFrame(runs).assign(
        wall_s=5.0, train_s=4.0, diverged_step=None, error=None, dataset="mnist"
    )
    order = list(curves)
    frames = []
    for frame in (runs_frame, pd.DataFrame(epochs)):
        frame["schedule"] = pd.Categorical(frame["schedule"], categories=order)
        frames.append(frame)
    return Results(path=Path("hand-made"), batches=pd.DataFrame(), epochs=frames[1],
                   runs=frames[0])  # fmt: skip


def test_zero_variance_on_both_sides_cannot_be_tested():
    results = hand_made({"constant": [[0.98]] * 5, "clr": [[0.9801]] * 5})
    row = stats.compare(results).iloc[0]
    assert row["verdict"] == "undecided: cannot test, no variation between seeds"
    assert math.isnan(row["p_value"]) and not row["significant"]
    assert row["difference"] == pytest.approx(0.0001, abs=1e-7)
    text = prose.conclusion(stats.summarize(results), stats.compare(results))
    assert "better" not in text and "worse" not in text and "equivalent" not in text
    assert "no variation between seeds" in text
    varied = hand_made({"constant": [[0.98]] * 5, "clr": [[0.97], [0.98], [0.99]] * 2})
    assert np.isfinite(stats.compare(varied).iloc[0]["p_value"])  # one side varies: tested


@pytest.mark.parametrize("count", range(9000, 10001, 50))  # the 21 half-point targets 90..100%
def test_an_accuracy_exactly_at_a_target_reaches_it(count):
    target = count / 10_000
    stored = float(np.float32(target))  # e.g. 96.50% is stored as 0.96499997
    results = hand_made({"constant": [[0.5, stored]] * 3, "below": [[(count - 1) / 10_000]] * 3})
    reach = stats.steps_to_target(results, target).set_index("run_id")
    assert reach.loc["constant-s0", "reached"] and reach.loc["constant-s0", "iterations"] == 20
    assert not reach.loc["below-s0", "reached"]  # one example short
    exact = hand_made({"constant": [[stored]] * 5})
    assert stats.default_target(exact) == target


def test_a_schedule_that_rarely_reaches_the_target_is_not_fastest():
    rare = [[0.99, 0.99, 0.99]] + [[0.90, 0.90, 0.90]] * 4  # 1 of 5 at iteration 10
    steady = [[0.90, 0.99, 0.99]] * 5  # 5 of 5 at iteration 20
    results = hand_made({"constant": [[0.90, 0.90, 0.99]] * 5, "rare": rare, "steady": steady})
    summary = stats.summarize(results, target=0.99).set_index("schedule")
    assert summary.loc["rare", "iterations_to_target_median"] == math.inf
    assert summary.loc["rare", "n_reached"] == 1
    speed = stats.compare_speed(results, 0.99).set_index("schedule")
    assert speed.loc["steady", "verdict"] == "significantly faster"
    assert speed.loc["rare", "verdict"] == "slower, not significant"
    text = prose.conclusion(summary.reset_index(), stats.compare(results), speed.reset_index())
    assert "steady is fastest (median 20 iterations, 5 of 5 ok runs reached it" in text
    assert "against 30 for constant (Mann-Whitney, Holm-adjusted p" in text
    assert text.rstrip().endswith("beyond seed noise.")


def test_speed_comparison_edges_ties_and_too_few_seeds():
    results = hand_made(
        {"constant": [[0.9, 0.99]] * 3, "same": [[0.9, 0.99]] * 3, "two": [[0.99]] * 2}
    )
    speed = stats.compare_speed(results, 0.99).set_index("schedule")
    assert speed.loc["same", "verdict"] == "tied (same median)"
    assert speed.loc["two", "verdict"].startswith("too few seeds")
    assert math.isnan(speed.loc["two", "p_value"])
    text = prose.conclusion(
        stats.summarize(results, 0.99), stats.compare(results), speed.reset_index()
    )
    assert "two is fastest" in text and "too few seeds" in text


# --- rules, each on frames small enough to check by eye ---


def test_time_to_target_is_the_median_over_ok_runs_only():
    # ok runs reach 99% at iterations 10, 10 and 40: median 10 (mean 20); two diverged runs
    # first reached it at 40 and 40 (counted, they would move the median to 40)
    fast, slow = [0.99, 0.99, 0.99, 0.99], [0.9, 0.9, 0.9, 0.99]
    results = hand_made(
        {"constant": [fast, fast, slow, slow, slow]},
        statuses={"constant-s3": "diverged", "constant-s4": "diverged"},
    )
    row = stats.summarize(results, target=0.99).iloc[0]
    assert (row["runs"], row["ok"], row["n_reached"]) == (5, 3, 3)
    assert row["iterations_to_target_median"] == 10  # epoch 0 ends at step 9
    assert row["seconds_to_target_median"] == 1.0  # time_s of epoch 0


def test_time_to_target_median_counts_never_as_slowest():
    # 3 of 5 ok runs reach the target: the median is the third-fastest; 2 of 5: never (inf)
    reach = [[0.9, 0.99], [0.9, 0.99], [0.99, 0.99], [0.9, 0.9], [0.9, 0.9]]
    row = stats.summarize(hand_made({"constant": reach}), target=0.99).iloc[0]
    assert (row["n_reached"], row["iterations_to_target_median"]) == (3, 20)
    rarely = hand_made({"constant": reach[2:]})
    row = stats.summarize(rarely, target=0.99).iloc[0]
    assert row["n_reached"] == 1 and row["iterations_to_target_median"] == math.inf


def test_summary_accuracy_statistics_use_ok_runs_only():
    results = hand_made(
        {"constant": [[0.97], [0.98], [0.99], [0.10]]}, statuses={"constant-s3": "diverged"}
    )
    row = stats.summarize(results, target=0.9).iloc[0]
    assert row["final_test_accuracy_mean"] == pytest.approx(0.98, abs=1e-7)
    assert row["final_test_accuracy_std"] == pytest.approx(0.01, abs=1e-7)
    assert row["best_test_accuracy_mean"] == pytest.approx(0.98, abs=1e-7)
    low, high = sps.t.interval(0.95, 2, 0.98, 0.01 / math.sqrt(3))
    assert row["final_test_accuracy_ci_low"] == pytest.approx(low, abs=1e-7)
    assert row["final_test_accuracy_ci_high"] == pytest.approx(high, abs=1e-7)


def test_speed_comparison_uses_ok_runs_only():
    # constant's ok runs reach 99% at 20; its diverged runs first reached it at 10
    curves = {
        "constant": [[0.9, 0.99]] * 3 + [[0.99, 0.99]] * 3,
        "clr": [[0.9, 0.99]] * 3,
    }
    statuses = {f"constant-s{i}": "diverged" for i in (3, 4, 5)}
    speed = stats.compare_speed(hand_made(curves, statuses=statuses), 0.99).iloc[0]
    assert (speed["n_baseline"], speed["reached_baseline"], speed["median_baseline"]) == (3, 3, 20)
    assert speed["verdict"] == "tied (same median)"


def test_compare_uses_ok_runs_only():
    curves = {"constant": [[0.97], [0.98], [0.99], [0.10]], "clr": [[0.97], [0.98], [0.99]]}
    row = stats.compare(hand_made(curves, statuses={"constant-s3": "failed"})).iloc[0]
    assert (row["n"], row["n_baseline"]) == (3, 3)
    assert row["difference"] == pytest.approx(0.0, abs=1e-7)


def test_default_target_is_the_highest_half_point_that_four_in_five_ok_runs_reach():
    # ok runs' best accuracies 99.2 (4 runs) and 98.7: 4 of 5 reach 99%; three diverged runs
    # at 98.7 (counted, only 4 of 8 would reach it)
    curves = [[0.992]] * 4 + [[0.987]] * 4
    diverged = {f"constant-s{i}": "diverged" for i in (5, 6, 7)}
    assert stats.default_target(hand_made({"constant": curves}, statuses=diverged)) == 0.99
    three_in_five = hand_made({"constant": [[0.992]] * 3 + [[0.987]] * 2})
    assert stats.default_target(three_in_five) == 0.985


def test_holm_is_monotone_in_the_sorted_p_values():
    # unadjusted order 0.01 < 0.02 < 0.03; scaled 0.03, 0.04, 0.03 -> monotone 0.03, 0.04, 0.04
    assert stats.holm([0.03, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])


def test_compare_verdict_follows_holm_not_the_raw_p_value():
    # two schedules 2.5 pp above constant, seed sd 1 pp: Welch p = 0.038 each, Holm 0.075
    base = [[0.95], [0.96], [0.97]]
    higher = [[0.975], [0.985], [0.995]]
    table = stats.compare(hand_made({"constant": base, "a": higher, "b": higher}))
    assert (table["p_value"] < 0.05).all() and (table["p_holm"] > 0.05).all()
    assert not table["significant"].any() and (table["outcome"] == "undecided").all()
    assert table["verdict"].str.startswith("undecided: ~").all()


def test_speed_verdict_follows_holm_not_the_raw_p_value():
    # a and b each reach 99% at iterations 10-40, constant at 50-80: Mann-Whitney p = 2/70 =
    # 0.029 each (exact, 4 vs 4, no ties), Holm over the two 0.057: faster, not significant
    early = [[0.9] * i + [0.99] * (8 - i) for i in range(4)]
    late = [[0.9] * i + [0.99] * (8 - i) for i in range(4, 8)]
    speed = stats.compare_speed(hand_made({"constant": late, "a": early, "b": early}), 0.99)
    assert speed["p_value"].tolist() == pytest.approx([2 / 70, 2 / 70])
    assert speed["p_holm"].tolist() == pytest.approx([4 / 70, 4 / 70])
    assert (speed["verdict"] == "faster, not significant").all()


def test_compare_decides_equivalence_at_the_margin_as_statsmodels_does():
    from statsmodels.stats.weightstats import ttost_ind

    base = [[0.9800], [0.9802], [0.9798], [0.9801], [0.9799]]
    close = [[0.9801], [0.9800], [0.9799], [0.9802], [0.9800]]
    far = [[0.9831], [0.9829], [0.9833], [0.9830], [0.9828]]
    results = hand_made({"constant": base, "close": close, "far": far})
    table = stats.compare(results, margin=0.001).set_index("schedule")
    final = stats.final_metrics(results).set_index("schedule")["final_test_accuracy"]
    p, _, _ = ttost_ind(final["close"], final["constant"], -0.001, 0.001, usevar="unequal")
    row = table.loc["close"]
    assert row["p_equivalence"] == pytest.approx(p, rel=1e-9)
    assert row["outcome"] == "equivalent" and row["verdict"] == "equivalent within ±0.1 pp"
    assert row["ci90_low"] > -0.001 and row["ci90_high"] < 0.001
    assert table.loc["far", "outcome"] == "better" and table.loc["far", "beyond_margin"]
    assert table.loc["far", "verdict"] == "better, beyond ±0.1 pp"
    # without a margin the same data cannot be "equivalent"
    assert stats.compare(results).set_index("schedule").loc["close", "outcome"] == "undecided"
    text = prose.conclusion(stats.summarize(results), table.reset_index())
    assert "better: far (+0.30 pp)" in text and "equivalent within ±0.1 pp: close" in text
