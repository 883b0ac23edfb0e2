"""Statistics of a study: frames in, frames out, no I/O, no prose (see ``clrbench.study.prose``).

- trial scores and the winner of each family (best final *validation* accuracy);
- the expected best validation accuracy after k = 1..N trials, by bootstrap over the trials
  (Sivaprasad et al., ICML 2020), with the exact value from order statistics beside it;
- the sensitivity curve around each winner and its flatness;
- the final comparison on test, with ``clrbench.analysis.stats`` (Welch + Holm, Mann-Whitney).

Scores: a trial that finished ``ok`` scores its final validation accuracy. A diverged trial
gives no usable model: it cannot win, and in the best-vs-budget curve it scores chance
(``1 / classes``), the accuracy of guessing. A failed trial (a crash, not a result) is left out.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clrbench.analysis import stats
from clrbench.analysis.margin import Margin
from clrbench.analysis.record import RunAnalysis, analyse_run

if TYPE_CHECKING:
    from clrbench.store.results import Results

CONFIDENCE = 0.95


def subset(results: Results, labels: list[str]) -> Results:
    """The runs of the given schedule labels only (in that order)."""
    frames = {}
    for name in results.FRAMES:
        frame = getattr(results, name)
        frame = frame[frame["schedule"].isin(labels)].copy()
        frame["schedule"] = pd.Categorical(frame["schedule"].astype(str), categories=labels)
        frame["run_id"] = frame["run_id"].astype(str).astype("category")
        frames[name] = frame.reset_index(drop=True)
    return replace(results, **frames)


def trial_scores(results: Results, trials: list[dict[str, Any]], chance: float) -> pd.DataFrame:
    """One row per planned trial: ``family, index, label, status, validation_accuracy, score``
    (status ``missing`` for a trial without a complete run; a diverged one scores ``chance``,
    1 / the workload's classes)."""
    final = stats.final_metrics(results).set_index("schedule")
    rows = []
    for trial in trials:
        label = trial["label"]
        run = final.loc[label] if label in final.index else None
        status = "missing" if run is None else run["status"]
        accuracy = math.nan if run is None else float(run["final_test_accuracy"])
        score = accuracy if status == "ok" else (chance if status == "diverged" else math.nan)
        rows.append(
            {"family": trial["family"], "index": trial["index"], "label": label, "status": status}
            | {"validation_accuracy": accuracy, "score": score, "params": trial["params"]}
        )
    return pd.DataFrame(rows)


def select_winners(scores: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per family, the ok trial with the highest final validation accuracy (ties: the earlier
    trial). Families without an ok trial have no winner."""
    winners = {}
    for family, group in scores.groupby("family", sort=False):
        ok = group[group["status"] == "ok"].sort_values(
            ["validation_accuracy", "index"], ascending=[False, True], kind="stable"
        )
        if len(ok):
            best = ok.iloc[0]
            winners[str(family)] = {
                "label": best["label"],
                "index": int(best["index"]),
                "validation_accuracy": float(best["validation_accuracy"]),
                "params": dict(best["params"]),
            }
    return winners


def expected_best_exact(values: np.ndarray, k: int) -> float:
    """E[max of k draws with replacement from ``values``], from order statistics:
    sum_i v_(i) [(i/N)^k - ((i-1)/N)^k] with v_(1) <= ... <= v_(N)."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n = ordered.size
    cdf = (np.arange(1, n + 1) / n) ** k
    return float(np.sum(ordered * np.diff(cdf, prepend=0.0)))


def bootstrap_best(
    values: np.ndarray, k: int, resamples: int, rng: np.random.Generator
) -> tuple[float, float, float]:
    """Bootstrap of the best of k trials: ``resamples`` draws of k trials (with replacement)
    from ``values``; returns the mean of their maxima and its central 95% range (inverted-CDF
    quantiles: values that occur)."""
    values = np.asarray(values, dtype=np.float64)
    maxima = values[rng.integers(0, values.size, size=(resamples, k))].max(axis=1)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(maxima, [tail, 1 - tail], method="inverted_cdf")
    return float(maxima.mean()), float(low), float(high)


def best_vs_budget(scores: pd.DataFrame, resamples: int, seed: int = 0) -> pd.DataFrame:
    """Per family and k = 1..N (N: its scored trials): the expected best validation accuracy
    after k trials by bootstrap (``expected``, with the 95% range ``low``/``high`` of the best of
    k) and exactly (``exact``)."""
    rows: list[dict[str, Any]] = []
    for family, group in scores.groupby("family", sort=False):
        values = group["score"].dropna().to_numpy()
        rng = np.random.default_rng([seed, len(rows)])
        for k in range(1, values.size + 1):
            mean, low, high = bootstrap_best(values, k, resamples, rng)
            rows.append({"family": family, "k": k, "expected": mean, "low": low, "high": high})
            rows[-1]["exact"] = expected_best_exact(values, k)
    return pd.DataFrame(rows, columns=["family", "k", "expected", "low", "high", "exact"])


def sensitivity_points(results: Results, labels: dict[str, tuple[str, int]]) -> pd.DataFrame:
    """One row per sensitivity run: ``family, k, multiplier, seed, status, validation_accuracy``."""
    return sweep_points(stats.final_metrics(results), labels)


def sweep_points(final: pd.DataFrame, labels: dict[str, tuple[str, int]]) -> pd.DataFrame:
    """:func:`sensitivity_points` from the sweep's ``stats.final_metrics`` frame."""
    final = final[final["schedule"].astype(str).isin(labels)]
    where = final["schedule"].astype(str).map(labels)
    return pd.DataFrame(
        {
            "family": where.map(lambda pair: pair[0]).to_numpy(),
            "k": where.map(lambda pair: pair[1]).to_numpy(dtype=np.int64),
            "seed": final["seed"].to_numpy(),
            "status": final["status"].to_numpy(),
            "validation_accuracy": final["final_test_accuracy"].to_numpy(),
        }
    ).assign(multiplier=lambda f: 2.0 ** f["k"])


def _point_status(statuses: pd.Series) -> str:
    if (statuses == "ok").all():
        return "ok"
    if (statuses == "diverged").all():
        return "diverged"
    return "partly diverged" if (statuses == "diverged").any() else "failed"


def sensitivity_curve(points: pd.DataFrame) -> pd.DataFrame:
    """Per family and k: ``runs, ok, status`` (ok / diverged / partly diverged / failed) and the
    mean and sd of validation accuracy over its ok seeds."""
    rows = []
    for (family, k), group in points.groupby(["family", "k"], sort=False):
        ok = group.loc[group["status"] == "ok", "validation_accuracy"].dropna()
        rows.append(
            {"family": family, "k": int(k), "multiplier": 2.0**k, "runs": len(group)}
            | {"ok": len(ok), "status": _point_status(group["status"])}
            | {"mean": ok.mean() if len(ok) else math.nan}
            | {"sd": ok.std(ddof=1) if len(ok) > 1 else math.nan}
        )
    columns = ["family", "k", "multiplier", "runs", "ok", "status", "mean", "sd"]
    order = {family: i for i, family in enumerate(dict.fromkeys(points["family"]))}
    return pd.DataFrame(rows, columns=columns).sort_values(
        ["family", "k"], kind="stable", key=lambda c: c.map(order) if c.name == "family" else c
    )


def _edge(curve: pd.DataFrame, start: int, step: int, threshold: float) -> tuple[float, bool]:
    """Walk from the best point while within the threshold; the crossing in octaves, linearly
    interpolated towards an ok neighbour below it (a diverged one ends the range at the last
    good point), and whether the range ran into the end of the grid (censored)."""
    ks, means = curve["k"].to_numpy(), curve["mean"].to_numpy()
    good = (curve["status"] == "ok").to_numpy() & (means >= threshold)
    i = start
    while 0 <= i + step < len(ks) and good[i + step]:
        i += step
    j = i + step
    if not 0 <= j < len(ks):
        return float(ks[i]), True
    if curve["status"].iloc[j] != "ok" or not np.isfinite(means[j]):
        return float(ks[i]), False
    fraction = (means[i] - threshold) / (means[i] - means[j])
    return float(ks[i] + fraction * (ks[j] - ks[i])), False


def flatness(curve: pd.DataFrame, flatness_pp: float) -> pd.DataFrame:
    """Per family: the best multiplier, its mean validation accuracy, and the width in octaves of
    the range around it whose mean stays within ``flatness_pp`` of that best (``censored_*``:
    the range reached the end of the grid, so the width is a lower bound)."""
    rows = []
    for family, group in curve.groupby("family", sort=False):
        group = group.sort_values("k").reset_index(drop=True)
        ok = group[(group["status"] == "ok") & group["mean"].notna()]
        if ok.empty:
            rows.append({"family": family, "best_k": math.nan, "best": math.nan,
                         "low": math.nan, "high": math.nan, "width": math.nan,
                         "censored_low": False, "censored_high": False})  # fmt: skip
            continue
        start = int(ok["mean"].idxmax())
        threshold = group.loc[start, "mean"] - flatness_pp / 100
        low, censored_low = _edge(group, start, -1, threshold)
        high, censored_high = _edge(group, start, +1, threshold)
        rows.append(
            {"family": family, "best_k": int(group.loc[start, "k"])}
            | {"best": float(group.loc[start, "mean"]), "low": low, "high": high}
            | {"width": high - low, "censored_low": censored_low, "censored_high": censored_high}
        )
    return pd.DataFrame(rows)


def final_comparison(
    results: Results,
    labels: list[str],
    target: float | None = None,
    margin: Margin | None = None,
) -> RunAnalysis:
    """The run report's analysis of the given schedules of the final runs (the first is the
    baseline when it is not ``constant``), at ``target`` (default: the data-driven one), its
    outcomes decided at ``margin``."""
    chosen = subset(results, labels)
    if target is None:
        return analyse_run(chosen, stats.default_target(chosen), "data-driven", None, margin)
    return analyse_run(chosen, target, "the study's", None, margin)


def budget_over_studies(scores: list[pd.DataFrame], resamples: int, seed: int = 0) -> pd.DataFrame:
    """Per family and k = 1 … (fewest trials a study scored): the expected best validation
    score after k trials (Dodge et al. 2019, exact per study, averaged over the studies) with
    its 95% band from resampling each study's trials within it
    (:func:`clrbench.analysis.improvement.budget_curve`). Columns ``family, k, expected, low,
    high, studies``."""
    from clrbench.analysis.improvement import budget_curve

    rows: list[dict[str, Any]] = []
    families = list(dict.fromkeys(f for frame in scores for f in frame["family"]))
    for index, family in enumerate(families):
        per_study = [
            frame.loc[frame["family"] == family, "score"].to_numpy(dtype=np.float64)
            for frame in scores
        ]
        curve = budget_curve(per_study, resamples, seed=seed + index)
        rows += [
            {"family": family, "k": int(k), "expected": float(e), "low": float(lo)}
            | {"high": float(hi), "studies": len(per_study)}
            for k, e, lo, hi in zip(
                curve.budgets, curve.expected, curve.low, curve.high, strict=True
            )
        ]
    return pd.DataFrame(rows, columns=["family", "k", "expected", "low", "high", "studies"])
