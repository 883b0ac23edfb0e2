"""Statistics over a results folder: pure DataFrame -> DataFrame functions (no plotting, no I/O).

Every function takes a :class:`clrbench.store.results.Results` (or frames derived from it) and
returns a new DataFrame; nothing is modified in place. Statistics across seeds use the runs
whose status is ``ok`` only; diverged and failed runs are counted (``runs`` vs ``ok``) and
listed by the report, never dropped silently.

Accuracies are fractions in [0, 1] throughout; "pp" (percentage points) appear only in text.
Test accuracy is compared with a target at the data's own resolution: it is k / n for n test
examples, stored as float32 (96.50% reads 0.96499997), so it is turned back into the count k
before any comparison.

Time to target is resolved to one evaluation interval (test accuracy is measured once per
epoch); a run that never reaches the target counts as never (infinitely slow), not as missing.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from clrbench.data.registry import DATASETS
from clrbench.errors import ResultsError

if TYPE_CHECKING:
    from clrbench.store.results import Results

ALPHA = 0.05  # family-wise error rate of the comparisons (Holm)
CONFIDENCE = 0.95
MIN_SEEDS = 3  # ok runs needed in each group before a difference is tested
TARGET_STEP = 0.005  # default targets are multiples of half a percentage point
TARGET_SHARE = 0.8  # ... reached by at least this share of ok runs
FALLBACK_TARGET = 0.98


def final_metrics(results: Results) -> pd.DataFrame:
    """One row per run (every status): its last and best epoch, train loss and wall time.

    Columns: ``run_id, schedule, seed, status, epochs_done, final_test_accuracy,
    best_test_accuracy, final_test_loss, final_train_loss, wall_s, train_s, diverged_step,
    error``. ``train_s`` is the run's training time (every epoch's steps and test evaluation),
    without the one-off start-up (imports, data, model build) that ``wall_s`` includes.
    A run without epochs (failed before the first one) has NaN metrics.
    """
    epochs = results.epochs.sort_values(["run_id", "epoch"], kind="stable")
    by_run = epochs.groupby("run_id", observed=True)
    per_run = pd.DataFrame(
        {
            "epochs_done": by_run["epoch"].count(),
            "final_test_accuracy": by_run["test_accuracy"].last(),
            "best_test_accuracy": by_run["test_accuracy"].max(),
            "final_test_loss": by_run["test_loss"].last(),
            "final_train_loss": by_run["train_loss"].last(),
        }
    )
    runs = results.runs[
        ["run_id", "schedule", "seed", "status", "wall_s", "train_s", "diverged_step", "error"]
    ]
    merged = runs.merge(per_run, left_on="run_id", right_index=True, how="left")
    merged["epochs_done"] = merged["epochs_done"].fillna(0).astype("int64")
    columns = ["run_id", "schedule", "seed", "status", "epochs_done", "final_test_accuracy"]
    columns += ["best_test_accuracy", "final_test_loss", "final_train_loss", "wall_s", "train_s"]
    columns += ["diverged_step", "error"]
    return merged[columns].sort_values(["schedule", "seed"], kind="stable").reset_index(drop=True)


def test_examples(results: Results) -> pd.Series:
    """Number of test examples behind each run's accuracy, indexed by run_id (recorded by the
    run; for records that predate it, the dataset's test-set size)."""
    runs = results.runs.set_index("run_id")
    fallback = runs["dataset"].map(
        lambda name: DATASETS[name].test_count if name in DATASETS else 0
    )
    recorded = runs["test_examples"] if "test_examples" in runs else fallback * np.nan
    counts = recorded.fillna(fallback).astype("int64")
    if (counts <= 0).any():
        raise ResultsError("cannot tell the test-set size of some runs (unknown dataset)")
    return counts


def correct_count(accuracy: pd.Series | np.ndarray, examples: pd.Series | np.ndarray) -> np.ndarray:
    """Accuracy back to the number of correct test examples (float32 noise removed)."""
    return np.rint(np.asarray(accuracy, dtype=np.float64) * np.asarray(examples)).astype("int64")


def needed_count(target: float, examples: pd.Series | np.ndarray) -> np.ndarray:
    """The fewest correct examples whose accuracy is at least ``target``."""
    return np.ceil(target * np.asarray(examples, dtype=np.float64) - 1e-6).astype("int64")


def evaluation_interval(results: Results) -> int | None:
    """Iterations between two test evaluations (one epoch, or the runs' ``eval_every``; the
    coarsest of the runs'), the resolution of time to target."""
    evaluations = results.evaluations
    first = evaluations.groupby("run_id", observed=True)["step"].min()
    return int(first.max()) + 1 if len(first) else None


def steps_to_target(results: Results, target: float) -> pd.DataFrame:
    """Per run: the first evaluation whose test accuracy is at least ``target`` (compared as
    counts of correct test examples): an epoch's end, or with ``eval_every`` an evaluation
    within an epoch (``Results.evaluations``).

    ``iterations`` is the steps trained by then (its ``step`` + 1: steps count from 0) and
    ``seconds`` its ``time_s`` (seconds of training, evaluation left out); both are ``inf``
    and ``reached`` is False for a run that never gets there (NaN for a run without
    evaluations). Columns: ``run_id, schedule, seed, status, reached, epoch, iterations,
    seconds``.
    """
    epochs = results.evaluations.sort_values(["run_id", "step"], kind="stable")
    examples = epochs["run_id"].map(test_examples(results)).to_numpy()
    at_target = correct_count(epochs["test_accuracy"], examples) >= needed_count(target, examples)
    hits = epochs[at_target].groupby("run_id", observed=True).head(1)
    hits = hits.set_index("run_id")[["epoch", "step", "time_s"]]
    runs = results.runs[["run_id", "schedule", "seed", "status"]]
    merged = runs.merge(hits, left_on="run_id", right_index=True, how="left")
    merged["reached"] = merged["step"].notna()
    evaluated = merged["run_id"].isin(epochs["run_id"].unique())
    merged["iterations"] = (merged["step"] + 1).where(merged["reached"], np.inf)
    merged["seconds"] = merged["time_s"].where(merged["reached"], np.inf)
    merged.loc[~evaluated, ["iterations", "seconds"]] = np.nan
    columns = ["run_id", "schedule", "seed", "status", "reached", "epoch", "iterations", "seconds"]
    return merged[columns].sort_values(["schedule", "seed"], kind="stable").reset_index(drop=True)


def default_target(results: Results) -> float:
    """The highest multiple of 0.5 pp of test accuracy that at least 80% of ok runs reach.

    "Reach" means some epoch's test accuracy is at or above it, compared as counts of correct
    test examples (a run at exactly 96.50% reaches 96.5%). Falls back to 0.98 when no run
    finished ok.
    """
    final = final_metrics(results)
    ok = final[(final["status"] == "ok") & final["best_test_accuracy"].notna()]
    if ok.empty:
        return FALLBACK_TARGET
    examples = ok["run_id"].map(test_examples(results)).to_numpy()
    best = correct_count(ok["best_test_accuracy"], examples)
    per_step = round(1 / TARGET_STEP)  # targets are multiples of 1 / per_step
    levels = np.sort(best * per_step // examples)[::-1]  # highest multiple each run reaches
    needed = math.ceil(TARGET_SHARE * levels.size)
    return max(int(levels[needed - 1]), 1) / per_step


def t_half_width(std: Any, count: Any) -> Any:
    """Half the width of the two-sided ``CONFIDENCE`` t-interval of a mean, t(n-1) · s / sqrt(n)
    (element-wise on arrays; n < 2 is given 1 degree of freedom: callers treat it apart)."""
    count = np.asarray(count)
    return sps.t.ppf(0.5 + CONFIDENCE / 2, np.maximum(count - 1, 1)) * std / np.sqrt(count)


def _t_interval(values: np.ndarray) -> tuple[float, float]:
    """Two-sided t confidence interval of the mean: mean ± t(n-1) · s / sqrt(n)."""
    if values.size < 2:
        return (math.nan, math.nan)
    half = float(t_half_width(values.std(ddof=1), values.size))
    return (values.mean() - half, values.mean() + half)


def _median(values: pd.Series) -> float:
    """Median of times to target, ``inf`` (never) included; NaN without values."""
    values = values.dropna().to_numpy(dtype=np.float64)
    return float(np.median(values)) if values.size else math.nan


def _schedule_row(final: pd.DataFrame, reach: pd.DataFrame) -> dict[str, float]:
    ok = final[final["status"] == "ok"]
    accuracy = ok["final_test_accuracy"].dropna().to_numpy()
    ok_reach = reach[reach["status"] == "ok"]
    low, high = _t_interval(accuracy)
    return {
        "runs": len(final),
        "ok": len(ok),
        "final_test_accuracy_mean": accuracy.mean() if accuracy.size else math.nan,
        "final_test_accuracy_std": accuracy.std(ddof=1) if accuracy.size > 1 else math.nan,
        "final_test_accuracy_ci_low": low,
        "final_test_accuracy_ci_high": high,
        "best_test_accuracy_mean": ok["best_test_accuracy"].mean(),
        "final_train_loss_mean": ok["final_train_loss"].mean(),
        "n_reached": int(ok_reach["reached"].sum()),
        "iterations_to_target_median": _median(ok_reach["iterations"]),
        "seconds_to_target_median": _median(ok_reach["seconds"]),
        "train_s_mean": ok["train_s"].mean(),
        "wall_s_mean": ok["wall_s"].mean(),
    }


def summarize(results: Results, target: float | None = None) -> pd.DataFrame:
    """One row per schedule over its ok runs, sorted by mean final test accuracy, best first.

    Columns: ``schedule, runs, ok`` (run counts), ``final_test_accuracy_{mean,std}`` (sample
    std, ddof=1), ``final_test_accuracy_ci_{low,high}`` (95% t-interval of the mean),
    ``best_test_accuracy_mean`` (mean over seeds of each run's best epoch),
    ``final_train_loss_mean``, ``target``, ``n_reached`` (ok runs that reached it),
    ``{iterations,seconds}_to_target_median`` (over all ok runs, a run that never reached the
    target counting as ``inf``: the median is ``inf`` when fewer than half reached it),
    ``train_s_mean`` (training time: steps and evaluation) and ``wall_s_mean`` (whole run,
    start-up included).
    ``target`` defaults to :func:`default_target`. Schedules without ok runs sort last.
    """
    target = default_target(results) if target is None else float(target)
    final = final_metrics(results)
    reach = steps_to_target(results, target)
    rows = []
    for schedule in results.schedules:
        row = _schedule_row(
            final[final["schedule"] == schedule], reach[reach["schedule"] == schedule]
        )
        rows.append({"schedule": schedule, **row, "target": target})
    summary = pd.DataFrame(rows)
    summary["schedule"] = pd.Categorical(summary["schedule"], categories=results.schedules)
    summary = summary.sort_values(
        "final_test_accuracy_mean", ascending=False, kind="stable", na_position="last"
    )
    return summary.reset_index(drop=True)


def holm(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm's step-down adjustment (Holm 1979); NaN p-values are left out and stay NaN.

    With the m finite p-values sorted ascending, p_(i) becomes
    max_{j <= i} min(1, (m - j + 1) · p_(j)); a hypothesis is rejected when its adjusted
    p-value is below alpha, which controls the family-wise error rate at alpha.
    """
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    scaled = (m - np.arange(m)) * p[order]
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """Hedges' g of ``a`` over ``b``: Cohen's d with pooled sd, times 1 - 3 / (4(n_a+n_b) - 9)."""
    n_a, n_b = len(a), len(b)
    pooled = ((n_a - 1) * np.var(a, ddof=1) + (n_b - 1) * np.var(b, ddof=1)) / (n_a + n_b - 2)
    if pooled == 0:
        return math.nan
    return float((np.mean(a) - np.mean(b)) / math.sqrt(pooled) * (1 - 3 / (4 * (n_a + n_b) - 9)))


def _welch(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Welch's t-test of mean(a) - mean(b) with its 95% confidence interval."""
    if len(a) < MIN_SEEDS or len(b) < MIN_SEEDS:
        return {}
    if np.ptp(a) == 0 and np.ptp(b) == 0:  # standard error 0: t is ±inf or undefined
        return {}
    with warnings.catch_warnings():
        # One group without variation (the other varies): scipy warns that its variance is
        # "nearly identical" data; Welch's test is still defined through the other group.
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        test = sps.ttest_ind(a, b, equal_var=False)
    interval = test.confidence_interval(CONFIDENCE)
    return {
        "ci_low": float(interval.low),
        "ci_high": float(interval.high),
        "t": float(test.statistic),
        "df": float(test.df),
        "p_value": float(test.pvalue),
        "hedges_g": hedges_g(a, b),
    }


def _cannot_test(n: int, n_baseline: int, untested: bool) -> str | None:
    """Why a comparison is not tested: too few seeds, or no variation on either side."""
    if n < MIN_SEEDS or n_baseline < MIN_SEEDS:
        return f"too few seeds (n = {n} vs {n_baseline}; need {MIN_SEEDS} each)"
    return "no variation between seeds" if untested else None


def resolve_baseline(schedules: list[str], baseline_schedule: str | None) -> str:
    """The requested baseline, else ``constant`` when present, else the first schedule."""
    if baseline_schedule is not None:
        if baseline_schedule not in schedules:
            known = ", ".join(schedules)
            raise ResultsError(f"baseline schedule {baseline_schedule!r} not in results ({known})")
        return baseline_schedule
    return "constant" if "constant" in schedules else schedules[0]


def _ok_groups(frame: pd.DataFrame, column: str, schedules: list[str]) -> dict[str, np.ndarray]:
    """Each schedule's values of ``column`` over its ok runs (rows without a value left out)."""
    ok = frame[(frame["status"] == "ok") & frame[column].notna()]
    return {s: ok.loc[ok["schedule"] == s, column].to_numpy(np.float64) for s in schedules}


def compare(
    results: Results, baseline_schedule: str | None = None, margin: float | None = None
) -> pd.DataFrame:
    """Each schedule's final test accuracy (ok runs) against the baseline schedule's.

    Per schedule: ``n, n_baseline, mean, mean_baseline, difference`` (schedule − baseline),
    its Welch 95% CI ``ci_low, ci_high``, Welch's ``t, df, p_value``, ``p_holm`` (Holm over
    all tested comparisons), ``hedges_g``, ``significant`` (p_holm < 0.05), and the decided
    answer (:mod:`clrbench.analysis.decide`, ``margin`` a fraction or None): ``outcome``
    (better / worse / equivalent / undecided), ``margin``, the 90% interval
    ``ci90_low, ci90_high``, the TOST ``p_equivalence, p_equivalence_holm``,
    ``beyond_margin``, ``more_seeds`` (per schedule, undecided only), ``cannot_test`` and
    ``verdict`` (the outcome in words). Groups with fewer than 3 ok seeds, or without any
    variation, are not tested (undecided, ``cannot_test`` says why; statistics NaN).
    """
    baseline = resolve_baseline(results.schedules, baseline_schedule)
    groups = _ok_groups(final_metrics(results), "final_test_accuracy", results.schedules)
    base = groups[baseline]
    rows = []
    for schedule in results.schedules:
        if schedule == baseline:
            continue
        values = groups[schedule]
        mean = values.mean() if values.size else math.nan
        mean_base = base.mean() if base.size else math.nan
        row = {"schedule": schedule, "baseline": baseline, "n": values.size}
        row |= {"n_baseline": base.size, "mean": mean, "mean_baseline": mean_base}
        rows.append(row | {"difference": mean - mean_base} | _welch(values, base))
    columns = ["schedule", "baseline", "n", "n_baseline", "mean", "mean_baseline", "difference"]
    columns += ["ci_low", "ci_high", "t", "df", "p_value", "p_holm", "hedges_g"]
    table = pd.DataFrame(rows).reindex(columns=columns)
    table["p_holm"] = holm(table["p_value"].to_numpy(dtype=np.float64))
    table["significant"] = table["p_holm"] < ALPHA
    return _with_verdicts(table, groups, baseline, margin)


def _with_verdicts(
    table: pd.DataFrame, groups: dict[str, np.ndarray], baseline: str, margin: float | None
) -> pd.DataFrame:
    """``compare``'s table with the decided answer of each row (Holm over the tested ones)."""
    from clrbench.analysis import decide  # decide builds on this module's holm

    estimates = {}
    for row in table.itertuples():
        why = _cannot_test(row.n, row.n_baseline, not np.isfinite(row.p_value))
        values, base = groups[str(row.schedule)], groups[baseline]
        estimates[str(row.schedule)] = (
            decide.welch_estimate(values, base)
            if why is None
            else decide.untestable(row.difference, min(row.n, row.n_baseline), "welch", why)
        )
    verdicts = decide.decide(estimates, margin, "seeds")
    found = [verdicts[str(s)] for s in table["schedule"]]
    return table.assign(
        outcome=[v.outcome for v in found],
        margin=margin,
        ci90_low=[v.ci90[0] for v in found],
        ci90_high=[v.ci90[1] for v in found],
        p_equivalence=[v.p_equivalence for v in found],
        p_equivalence_holm=[v.p_equivalence_holm for v in found],
        beyond_margin=[v.beyond_margin for v in found],
        more_seeds=[v.more_needed for v in found],
        cannot_test=[v.cannot_test for v in found],
        verdict=[decide.words(v) for v in found],
    )


def _rank_test(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value (never = inf ranks last; ties get mid-ranks), NaN with
    fewer than MIN_SEEDS on either side."""
    if len(a) < MIN_SEEDS or len(b) < MIN_SEEDS:
        return math.nan
    return float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def _speed_verdict(row: pd.Series) -> str:
    if row["n"] < MIN_SEEDS or row["n_baseline"] < MIN_SEEDS:
        return f"too few seeds (n = {row['n']} vs {row['n_baseline']}; need {MIN_SEEDS} each)"
    if row["median"] == row["median_baseline"]:
        return "tied (same median)"
    word = "faster" if row["median"] < row["median_baseline"] else "slower"
    return f"significantly {word}" if row["p_holm"] < ALPHA else f"{word}, not significant"


def compare_speed(
    results: Results, target: float, baseline_schedule: str | None = None
) -> pd.DataFrame:
    """Each schedule's iterations to ``target`` (ok runs; never = inf) against the baseline's.

    Per schedule: ``n, n_baseline`` (ok runs), ``reached, reached_baseline`` (how many reached the
    target), ``median, median_baseline`` (iterations, inf when fewer than half reached it),
    ``p_value`` (two-sided Mann-Whitney U: a rank test, so runs that never reach the target take
    part as the slowest, and ties at the one-epoch resolution get mid-ranks), ``p_holm`` (Holm
    over the tested comparisons), ``significant`` and ``verdict``.
    """
    baseline = resolve_baseline(results.schedules, baseline_schedule)
    groups = _ok_groups(steps_to_target(results, target), "iterations", results.schedules)
    base = groups[baseline]
    rows = []
    for schedule in results.schedules:
        if schedule == baseline:
            continue
        values = groups[schedule]
        rows.append(
            {"schedule": schedule, "baseline": baseline, "n": values.size, "n_baseline": base.size}
            | {
                "reached": int(np.isfinite(values).sum()),
                "reached_baseline": int(np.isfinite(base).sum()),
            }
            | {"median": _median(pd.Series(values)), "median_baseline": _median(pd.Series(base))}
            | {"p_value": _rank_test(values, base)}
        )
    columns = ["schedule", "baseline", "n", "n_baseline", "reached", "reached_baseline"]
    columns += ["median", "median_baseline", "p_value"]
    table = pd.DataFrame(rows).reindex(columns=columns)
    table["p_holm"] = holm(table["p_value"].to_numpy(dtype=np.float64))
    table["significant"] = table["p_holm"] < ALPHA
    table["verdict"] = [_speed_verdict(row) for _, row in table.iterrows()]
    return table
