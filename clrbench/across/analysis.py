"""Statistics across workloads: the same schedules trained on several workloads, compared.

Three questions, each answered from tidy frames (no plotting, no I/O):

- *Does a schedule beat the baseline on each workload?* :func:`differences` is
  :func:`clrbench.analysis.stats.compare` per workload (Welch CI and p, Holm within the
  workload), plus a Holm adjustment over every comparison of every workload.
- *Do the workloads rank the schedules alike?* :func:`rank_agreement`: Kendall's coefficient
  of concordance W over the schedules present in every workload (Kendall & Babington Smith
  1939, tie-corrected) with its chi-square test (Friedman 1937), and Kendall's tau-b between
  each pair of workloads.
- *Which schedule gets to the target fastest, everywhere?* :func:`performance_profile`: the
  AlgoPerf performance profile of steps to target (Dahl et al. 2023, after Dolan & Moré 2002)
  and its score, the normalised area under it over tau in [1, 4].

Time is counted in optimizer steps (hardware-independent); seconds are carried beside them.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats as sps

from clrbench.analysis import stats
from clrbench.analysis.margin import results_margin
from clrbench.analysis.workload import workload_target
from clrbench.errors import ResultsError

if TYPE_CHECKING:
    from clrbench.store.results import Results

TAU_MAX = 4.0  # the profile's range is tau in [1, TAU_MAX] (AlgoPerf's choice)
TAU_GRID = np.linspace(1.0, TAU_MAX, 61)  # where rho is tabulated for machines (every 0.05)
COMPARE_COLUMNS = ["schedule", "baseline", "n", "n_baseline", "mean", "mean_baseline"]
COMPARE_COLUMNS += ["difference", "ci_low", "ci_high", "t", "df", "p_value", "p_holm"]
COMPARE_COLUMNS += ["hedges_g", "significant", "outcome", "margin", "ci90_low", "ci90_high"]
COMPARE_COLUMNS += ["p_equivalence", "p_equivalence_holm", "beyond_margin", "more_seeds"]
COMPARE_COLUMNS += ["cannot_test", "verdict"]  # stats.compare's, in its order


# --- schedule against baseline, per workload ---


def common_schedules(schedules: Mapping[str, Sequence[str]]) -> tuple[list[str], list[str]]:
    """Schedules in every workload (in first-seen order), and those in only some of them."""
    seen = list(dict.fromkeys(s for labels in schedules.values() for s in labels))
    common = [s for s in seen if all(s in labels for labels in schedules.values())]
    return common, [s for s in seen if s not in common]


def differences(
    named: Mapping[str, Results], baseline: str | None = None, margin_pp: float | None = None
) -> pd.DataFrame:
    """Each workload's :func:`stats.compare` table (final test accuracy vs ``baseline``, each
    decided at that workload's own margin, or ``margin_pp`` for all) with a ``workload``
    column first and ``p_holm_all``: Holm over every comparison of every workload.

    ``baseline`` must be a schedule of every workload (default: ``constant`` when common, else
    the first common schedule); without a common schedule the table is empty.
    """
    common, _ = common_schedules({w: r.schedules for w, r in named.items()})
    if not common and baseline is not None:
        raise ResultsError(f"baseline schedule {baseline!r}: no schedule is in every workload")
    tables = [pd.DataFrame(columns=COMPARE_COLUMNS)]
    if common:
        chosen = stats.resolve_baseline(common, baseline)
        tables = [
            stats.compare(r, chosen, results_margin(r, margin_pp).value).assign(workload=w)
            for w, r in named.items()
        ]
    frame = pd.concat(tables, ignore_index=True).reindex(columns=["workload", *COMPARE_COLUMNS])
    frame["p_holm_all"] = stats.holm(frame["p_value"].to_numpy(dtype=np.float64))
    return frame


def schedule_times(results: Results, target: float) -> pd.DataFrame:
    """Per schedule: runs, how many ok runs reached ``target``, and the median over all its
    seeds of steps and seconds to it, a seed that missed it (or diverged, or failed) counting
    as never (inf): the median is inf when half or more never got there.

    Columns: ``schedule, runs, reached, steps, seconds``.
    """
    reach = stats.steps_to_target(results, target)
    valid = (reach["status"] == "ok") & reach["reached"].fillna(False).astype(bool)
    steps = reach["iterations"].where(valid, np.inf).to_numpy(np.float64)
    seconds = reach["seconds"].where(valid, np.inf).to_numpy(np.float64)
    frame = pd.DataFrame({"schedule": reach["schedule"].astype(str), "valid": valid})
    frame = frame.assign(steps=steps, seconds=seconds)
    rows = []
    for schedule in results.schedules:
        part = frame[frame["schedule"] == schedule]
        rows.append(
            {"schedule": schedule, "runs": len(part), "reached": int(part["valid"].sum())}
            | {"steps": _median(part["steps"]), "seconds": _median(part["seconds"])}
        )
    return pd.DataFrame(rows, columns=["schedule", "runs", "reached", "steps", "seconds"])


def _median(values: pd.Series) -> float:
    array = values.to_numpy(np.float64)
    return float(np.median(array)) if array.size else math.inf


# --- rank agreement ---


@dataclass(frozen=True)
class Agreement:
    """How alike the workloads rank the schedules (``ranks``: workload, schedule, mean, rank)."""

    workloads: list[str]
    schedules: list[str]  # ranked: present (a mean) in every workload
    left_out: list[str]
    ranks: pd.DataFrame
    w: float | None  # Kendall's W; None when it cannot be computed (see ``status``)
    chi2: float | None
    df: int | None
    p_value: float | None
    status: str  # "tested", or why not ("cannot test: ...", "undefined: ...")
    taus: pd.DataFrame  # workload_a, workload_b, tau, p_value, status


def rank(means: pd.DataFrame) -> pd.DataFrame:
    """Rank the schedules within each workload by ``mean`` (best = 1, ties share mid-ranks).

    ``means``: columns ``workload, schedule, mean``; returns them with ``rank``.
    """
    ranked = means.copy()
    ranked["rank"] = ranked.groupby("workload", sort=False)["mean"].transform(
        lambda values: sps.rankdata(-values.to_numpy(np.float64), method="average")
    )
    return ranked


def kendalls_w(ranks: np.ndarray) -> tuple[float, float, int, float] | None:
    """Kendall's W of an (m workloads × n schedules) array of within-workload ranks, with
    its Friedman chi-square, degrees of freedom and p-value; None when every workload ties
    every schedule (W is then 0 / 0).

    W = 12 S / (m² (n³ − n) − m Σ_i T_i), S = Σ_j (R_j − m (n + 1) / 2)², R_j the rank sum of
    schedule j, T_i = Σ (t³ − t) over the groups of t tied ranks of workload i;
    chi² = m (n − 1) W with n − 1 degrees of freedom.
    """
    m, n = ranks.shape
    totals = ranks.sum(axis=0)
    spread = float(((totals - m * (n + 1) / 2) ** 2).sum())
    ties = sum(float((counts**3 - counts).sum()) for counts in map(_tie_sizes, ranks))
    denominator = m**2 * (n**3 - n) - m * ties
    if denominator <= 0:
        return None
    w = 12 * spread / denominator
    chi2 = m * (n - 1) * w
    return w, chi2, n - 1, float(sps.chi2.sf(chi2, n - 1))


def _tie_sizes(row: np.ndarray) -> np.ndarray:
    return np.unique(row, return_counts=True)[1].astype(np.float64)


def pairwise_tau(ranked: pd.DataFrame, workloads: list[str]) -> pd.DataFrame:
    """Kendall's tau-b (scipy) between the means of each pair of workloads, with its p-value
    (undefined when either workload ties every schedule)."""
    rows = []
    for a, b in itertools.combinations(workloads, 2):
        x = ranked.loc[ranked["workload"] == a, "mean"].to_numpy(np.float64)
        y = ranked.loc[ranked["workload"] == b, "mean"].to_numpy(np.float64)
        row = {"workload_a": a, "workload_b": b, "tau": math.nan, "p_value": math.nan}
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            rows.append(row | {"status": "undefined: one workload ties every schedule"})
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = sps.kendalltau(x, y)
        rows.append(row | {"tau": float(result.statistic), "p_value": float(result.pvalue)})
        rows[-1]["status"] = "tested"
    columns = ["workload_a", "workload_b", "tau", "p_value", "status"]
    return pd.DataFrame(rows, columns=columns)


def rank_agreement(means: pd.DataFrame) -> Agreement:
    """Kendall's W and the pairwise taus of the schedules' mean final test accuracy.

    ``means``: columns ``workload, schedule, mean`` (NaN: no ok run). Only schedules with a
    mean in every workload are ranked (the rest are ``left_out``). Fewer than 2 workloads or
    2 common schedules: "cannot test"; every workload tying every schedule: W "undefined".
    """
    workloads = list(dict.fromkeys(means["workload"]))
    present = means[np.isfinite(means["mean"].to_numpy(np.float64))]
    common, left_out = common_schedules(
        {w: present.loc[present["workload"] == w, "schedule"].tolist() for w in workloads}
    )
    left_out += [s for s in dict.fromkeys(means["schedule"]) if s not in common + left_out]
    ranked = rank(present[present["schedule"].isin(common)][["workload", "schedule", "mean"]])
    ranked = ranked.reset_index(drop=True)
    untested = Agreement(workloads, common, left_out, ranked, None, None, None, None, "", ranked)
    if len(workloads) < 2 or len(common) < 2:
        why = f"{len(workloads)} workload(s), {len(common)} schedule(s) common to all"
        status = f"cannot test: needs 2 workloads and 2 common schedules ({why})"
        return replace(untested, status=status, taus=pairwise_tau(ranked, []))
    matrix = ranked.pivot(index="workload", columns="schedule", values="rank")
    found = kendalls_w(matrix.loc[workloads, common].to_numpy(np.float64))
    taus = pairwise_tau(ranked, workloads)
    if found is None:
        return replace(untested, status="undefined: every workload ties every schedule", taus=taus)
    w, chi2, df, p_value = found
    return replace(untested, w=w, chi2=chi2, df=df, p_value=p_value, status="tested", taus=taus)


# --- performance profile ---


@dataclass(frozen=True)
class Profile:
    """The performance profile: ``ratios`` (workload, schedule, steps, best, ratio), ``curve``
    (schedule, tau, rho on TAU_GRID) and ``scores`` (schedule, score)."""

    ratios: pd.DataFrame
    curve: pd.DataFrame
    scores: pd.DataFrame


def profile_ratios(steps: pd.DataFrame) -> pd.DataFrame:
    """``steps`` (workload, schedule, steps; inf or NaN: never reached) with ``best`` (the
    workload's fewest steps) and ``ratio`` = steps / best: 1 for the fastest, inf for a
    schedule that never reaches the target and for every schedule of a workload none reaches.
    """
    frame = steps.copy()
    frame["steps"] = frame["steps"].astype(np.float64).fillna(np.inf)
    frame["best"] = frame.groupby("workload", sort=False)["steps"].transform("min")
    finite = np.isfinite(frame["best"]) & np.isfinite(frame["steps"])
    frame["ratio"] = np.where(finite, frame["steps"] / frame["best"].where(finite, 1.0), np.inf)
    return frame


def rho(ratios: Sequence[float] | np.ndarray, tau: float) -> float:
    """Fraction of workloads on which a schedule is within ``tau`` of the fastest (r <= tau)."""
    values = np.asarray(ratios, dtype=np.float64)
    return float((values <= tau).mean()) if values.size else math.nan


def profile_area(ratios: Sequence[float] | np.ndarray, tau_max: float = TAU_MAX) -> float:
    """The exact area under the step function rho over [1, tau_max], integrated piece by
    piece between its jumps (each ratio r in [1, tau_max] adds 1/n from tau = r on; this is
    (1/n) Σ_w max(0, tau_max − r_w))."""
    values = np.asarray(ratios, dtype=np.float64)
    if values.size == 0:
        return math.nan
    jumps = np.sort(values[values <= tau_max].clip(min=1.0))
    edges = np.concatenate([jumps, [tau_max]])
    heights = np.arange(1, jumps.size + 1) / values.size  # rho on [jump_k, jump_k+1)
    return float((heights * np.diff(edges)).sum())


def profile_score(ratios: Sequence[float] | np.ndarray, tau_max: float = TAU_MAX) -> float:
    """The area under rho over [1, tau_max] divided by tau_max − 1: 1.0 = fastest on every
    workload, 0 = never within tau_max times the fastest."""
    return profile_area(ratios, tau_max) / (tau_max - 1)


def performance_profile(steps: pd.DataFrame, grid: np.ndarray = TAU_GRID) -> Profile:
    """Ratios, rho on ``grid`` and the score of each schedule (``steps``: workload, schedule,
    steps; every schedule should appear in every workload)."""
    ratios = profile_ratios(steps)
    schedules = list(dict.fromkeys(ratios["schedule"]))
    by_schedule = {s: ratios.loc[ratios["schedule"] == s, "ratio"].to_numpy() for s in schedules}
    curve = pd.DataFrame(
        [
            {"schedule": s, "tau": float(tau), "rho": rho(values, tau)}
            for s, values in by_schedule.items()
            for tau in grid
        ],
        columns=["schedule", "tau", "rho"],
    )
    scores = pd.DataFrame(
        [{"schedule": s, "score": profile_score(v)} for s, v in by_schedule.items()],
        columns=["schedule", "score"],
    )
    return Profile(ratios=ratios, curve=curve, scores=scores)


def step_curve(ratios: Sequence[float] | np.ndarray, tau_max: float = TAU_MAX) -> pd.DataFrame:
    """rho's corners over [1, tau_max] (``tau, rho``), to draw it as a step curve
    (``drawstyle="steps-post"``): exact, not sampled."""
    values = np.asarray(ratios, dtype=np.float64)
    jumps = np.unique(values[values <= tau_max].clip(min=1.0))
    taus = np.unique(np.concatenate([[1.0], jumps, [tau_max]]))
    return pd.DataFrame({"tau": taus, "rho": [rho(values, t) for t in taus]})


# --- everything ---


@dataclass(frozen=True)
class AcrossAnalysis:
    """Every statistic of the cross-workload report."""

    workloads: list[str]
    targets: pd.DataFrame  # workload, target, source, resolution (steps between evaluations)
    summary: pd.DataFrame  # workload, schedule, runs, ok, mean, std, reached, steps, seconds
    differences: pd.DataFrame
    baseline: str | None
    agreement: Agreement
    profile: Profile
    profiled: list[str]  # the schedules of the profile (those in every workload)


def _workload_summary(results: Results, target: float) -> pd.DataFrame:
    summary = stats.summarize(results, target)
    accuracy = summary[["schedule", "runs", "ok", "final_test_accuracy_mean"]]
    accuracy = accuracy.assign(std=summary["final_test_accuracy_std"])
    accuracy = accuracy.rename(columns={"final_test_accuracy_mean": "mean"})
    accuracy = accuracy.assign(schedule=accuracy["schedule"].astype(str))
    times = schedule_times(results, target).drop(columns="runs")
    merged = accuracy.merge(times, on="schedule", how="left")
    order = {s: i for i, s in enumerate(results.schedules)}
    return merged.sort_values("schedule", key=lambda s: s.map(order)).reset_index(drop=True)


def analyse(
    named: Mapping[str, Results], baseline: str | None = None, margin_pp: float | None = None
) -> AcrossAnalysis:
    """The cross-workload statistics of ``{workload name: results}`` (``margin_pp``:
    --margin for every workload, else each workload's own)."""
    workloads = list(named)
    targets, summaries = [], []
    for name, results in named.items():
        target, source = workload_target(results)
        resolution = stats.evaluation_interval(results)
        targets.append({"workload": name, "target": target, "source": source})
        targets[-1]["resolution"] = resolution
        summaries.append(_workload_summary(results, target).assign(workload=name))
    summary = pd.concat(summaries, ignore_index=True)
    summary = summary[["workload", *[c for c in summary.columns if c != "workload"]]]
    table = differences(named, baseline, margin_pp)
    chosen = str(table["baseline"].iloc[0]) if len(table) else _baseline_of(named, baseline)
    common, _ = common_schedules({w: r.schedules for w, r in named.items()})
    profiled = summary[summary["schedule"].isin(common)]
    return AcrossAnalysis(
        workloads=workloads,
        targets=pd.DataFrame(targets),
        summary=summary,
        differences=table,
        baseline=chosen,
        agreement=rank_agreement(summary[["workload", "schedule", "mean"]]),
        profile=performance_profile(profiled[["workload", "schedule", "steps"]]),
        profiled=common,
    )


def _baseline_of(named: Mapping[str, Results], baseline: str | None) -> str | None:
    common, _ = common_schedules({w: r.schedules for w, r in named.items()})
    return stats.resolve_baseline(common, baseline) if common else None
