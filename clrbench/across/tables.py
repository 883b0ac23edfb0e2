"""The cross-workload report's tables (header, rows as strings) and its generated conclusion.

Every number comes from :class:`clrbench.across.analysis.AcrossAnalysis`; the sentences say
what holds on how many of the workloads, and on what it is conditional.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clrbench.across.analysis import TAU_MAX, AcrossAnalysis
from clrbench.analysis import stats
from clrbench.reporting.tables import iterations, num
from clrbench.text import format_p, never_or, number, pct, plural, pp


def ratio_text(value: float) -> str:
    return "never" if value == np.inf else f"{number(value, '.2f')}×"


def seconds_text(value: float) -> str:
    return never_or(value, ".1f")


def workloads_table(analysis: AcrossAnalysis, folders: dict[str, str]) -> dict[str, Any]:
    """Each workload: its folder, what ran, and the target its time-to-target uses."""
    headers = ["Workload", "Results folder", "Schedules", "Runs ok/total", "Target",
               "Target from", "Steps between evaluations"]  # fmt: skip
    rows = []
    for target in analysis.targets.itertuples():
        part = analysis.summary[analysis.summary["workload"] == target.workload]
        resolution = "–" if pd.isna(target.resolution) else f"{int(target.resolution):,}"
        rows.append([
            target.workload, folders[target.workload], str(len(part)),
            f"{int(part['ok'].sum())}/{int(part['runs'].sum())}", f"{target.target * 100:g}%",
            target.source, resolution,
        ])  # fmt: skip
    note = (
        "A workload's own target applies when it ran at its defaults (its epochs, batch size "
        "and all of its data); a shortened or subset run gets the data-driven target instead "
        "(the highest multiple of 0.5 pp that 80% of its ok runs reach). Test accuracy is "
        "evaluated at each epoch's end (and every eval_every steps where a run sets it), so "
        "steps to target are resolved to the evaluation interval of the last column."
    )
    return {"id": "workloads", "title": "Workloads", "headers": headers, "rows": rows, "note": note}


def differences_table(analysis: AcrossAnalysis) -> dict[str, Any]:
    """Each schedule against the baseline on each workload (stats.compare's columns), with
    its decided outcome at the workload's margin."""
    headers = ["Workload", "Schedule", "Seeds (vs baseline)", "Difference pp",
               "95% CI pp (Welch)", "90% CI pp", "p (Welch)", "p (Holm, workload)",
               "p (Holm, all)", "p equivalent (TOST, Holm)", "Outcome"]  # fmt: skip
    rows = [
        [r.workload, str(r.schedule), f"{r.n} vs {r.n_baseline}", pp(r.difference),
         f"{pp(r.ci_low)} to {pp(r.ci_high)}" if np.isfinite(r.ci_low) else "–",
         f"{pp(r.ci90_low)} to {pp(r.ci90_high)}" if np.isfinite(r.ci90_low) else "–",
         format_p(r.p_value), format_p(r.p_holm), format_p(r.p_holm_all),
         format_p(r.p_equivalence_holm), r.verdict]
        for r in analysis.differences.itertuples()
    ]  # fmt: skip
    note = (
        f"Final test accuracy minus {analysis.baseline}'s (ok runs), the single-workload "
        "report's comparison on each workload: Welch's t-test and its 95% CI. Outcome at "
        f"α = {stats.ALPHA} with Holm within the workload (as that report does), at the "
        "workload's own margin: better or worse when p (Holm, workload) is below α (beyond "
        "the margin when the 95% CI lies outside it), equivalent when the two one-sided tests "
        "put the 90% CI inside the margin, else undecided with the seeds per schedule that "
        "would likely decide it (docs/concepts/protocol.md). p (Holm, all) adjusts over every "
        f"comparison of every workload. Fewer than {stats.MIN_SEEDS} ok seeds on either side: "
        "not tested."
    )
    title = f"Against the baseline ({analysis.baseline}), per workload"
    return {"id": "differences", "title": title, "headers": headers, "rows": rows, "note": note}


def ranks_table(analysis: AcrossAnalysis) -> dict[str, Any]:
    """Mean final test accuracy and rank of each ranked schedule on each workload."""
    agreement = analysis.agreement
    ranks = agreement.ranks
    headers = ["Schedule", *[f"{w}: acc. % (rank)" for w in agreement.workloads], "Mean rank"]
    rows = []
    for schedule in agreement.schedules:
        part = ranks[ranks["schedule"] == schedule].set_index("workload")
        cells = [f"{pct(part.loc[w, 'mean'])} ({number(part.loc[w, 'rank'], 'g')})"
                 for w in agreement.workloads]  # fmt: skip
        rows.append([schedule, *cells, number(part["rank"].mean(), ".2f")])
    left = ", ".join(agreement.left_out)
    note = (
        "Schedules ranked within each workload by mean final test accuracy over ok seeds "
        "(1 = best; ties share the mean of their ranks). Only schedules with ok runs on every "
        "workload are ranked" + (f"; left out: {left}." if left else ".")
    )
    return {"id": "ranks", "title": "Ranks per workload", "headers": headers, "rows": rows,
            "note": note}  # fmt: skip


def agreement_rows(analysis: AcrossAnalysis) -> list[tuple[str, str]]:
    """Kendall's W and its test as (what, value) pairs."""
    agreement = analysis.agreement
    rows = [("schedules ranked", ", ".join(agreement.schedules) or "none")]
    rows.append(("workloads", ", ".join(agreement.workloads)))
    if agreement.w is None:
        return [*rows, ("Kendall's W", agreement.status)]
    return [
        *rows,
        ("Kendall's W", number(agreement.w, ".3f")),
        ("chi-square (Friedman)", f"{number(agreement.chi2 or 0, '.3f')} with {agreement.df} df"),
        ("p", format_p(agreement.p_value if agreement.p_value is not None else np.nan)),
    ]


def taus_table(analysis: AcrossAnalysis) -> dict[str, Any]:
    """Kendall's tau-b between each pair of workloads."""
    headers = ["Workloads", "Kendall's tau-b", "p", "Status"]
    rows = [
        [f"{r.workload_a} vs {r.workload_b}", num(r.tau, ".3f"), format_p(r.p_value), r.status]
        for r in analysis.agreement.taus.itertuples()
    ]
    note = (
        "Kendall's W (coefficient of concordance, tie-corrected) is 1 when every workload "
        "ranks the schedules alike and 0 when the rankings cancel out; its p-value is "
        "Friedman's chi-square test of no agreement. Tau-b (scipy) compares two workloads' "
        "mean accuracies: 1 same order, −1 reversed. With few schedules these tests have "
        "little power: a large p is not evidence of disagreement."
    )
    title = "Rank agreement between workloads"
    return {"id": "agreement", "title": title, "headers": headers, "rows": rows, "note": note}


def times_table(analysis: AcrossAnalysis) -> dict[str, Any]:
    """Steps (and seconds) to each workload's target, and the ratio to the fastest."""
    headers = ["Workload", "Schedule", "Reached (ok runs)", "Median steps to target",
               "Ratio to fastest", "Median seconds to target"]  # fmt: skip
    ratios = analysis.profile.ratios.set_index(["workload", "schedule"])["ratio"]
    rows = []
    for r in analysis.summary.itertuples():
        ratio = ratios.get((r.workload, r.schedule), np.nan)
        rows.append([
            r.workload, r.schedule, f"{r.reached}/{r.runs}", iterations(r.steps),
            ratio_text(ratio) if np.isfinite(ratio) or ratio == np.inf else "–",
            seconds_text(r.seconds),
        ])  # fmt: skip
    note = (
        "Median over every seed of a schedule; a seed that never reaches the target (or is "
        "not ok) counts as never, so the median is never when half or more of them missed "
        "it. Steps are optimizer steps (hardware-independent), which the profile uses; "
        "seconds (of training, evaluation left out) depend on the machine and are shown for "
        "reference only. Ratio: steps over the fastest schedule's on that workload "
        "(– : not in every workload, so not profiled)."
    )
    title = "Time to target"
    return {"id": "times", "title": title, "headers": headers, "rows": rows, "note": note}


def profile_table(analysis: AcrossAnalysis) -> dict[str, Any]:
    """Each profiled schedule's score and how often it is within 1×, 2× and 4× the fastest."""
    headers = ["Schedule", "Score", "Fastest (ratio 1)", "Within 2×", f"Within {TAU_MAX:g}×"]
    ratios = analysis.profile.ratios
    n = len(analysis.workloads)
    rows = []
    for r in analysis.profile.scores.itertuples():
        mine = ratios.loc[ratios["schedule"] == r.schedule, "ratio"].to_numpy()
        within = [f"{int((mine <= tau).sum())} of {n}" for tau in (1.0, 2.0, TAU_MAX)]
        rows.append([str(r.schedule), number(r.score, ".3f"), *within])
    note = (
        "Score: the area under ρ(τ) over τ in [1, 4] divided by 3 (computed exactly: ρ is a "
        "step function), AlgoPerf's summary of a performance profile. 1 = fastest on every "
        "workload; 0 = never within 4× of the fastest."
    )
    title = "Performance profile scores"
    return {"id": "profile", "title": title, "headers": headers, "rows": rows, "note": note}


# --- the conclusion ---


def conclusion(analysis: AcrossAnalysis, seeds: dict[str, int]) -> list[str]:
    """The lead: what was compared, then each finding with how many workloads it holds on."""
    return [
        p
        for p in (
            _scope(analysis, seeds),
            _differences_sentence(analysis),
            _agreement_sentence(analysis),
            _profile_sentence(analysis),
        )
        if p
    ]


def _scope(analysis: AcrossAnalysis, seeds: dict[str, int]) -> str:
    counts = sorted(set(seeds.values()))
    seed_text = (
        plural(counts[0], "seed")
        if len(counts) == 1
        else "; ".join(f"{w}: {plural(c, 'seed')}" for w, c in seeds.items())
    )
    return (
        f"{plural(len(analysis.workloads), 'workload')} ({', '.join(analysis.workloads)}), "
        f"{seed_text} per schedule, each schedule at one tuning of its preset rates per "
        "workload. Everything below holds for these workloads, seeds and rates only: other "
        "rates, models or data may order the schedules differently."
    )


def _differences_sentence(analysis: AcrossAnalysis) -> str:
    """Per schedule, on how many workloads each outcome came out (Holm within each)."""
    table = analysis.differences
    if table.empty:
        return ""
    parts = []
    for schedule in dict.fromkeys(table["schedule"].astype(str)):
        rows = table[table["schedule"] == schedule]
        counts = []
        for outcome in ("better", "worse", "equivalent", "undecided"):
            where = rows.loc[rows["outcome"] == outcome, "workload"].tolist()
            if where:
                word = "equivalent within the margin" if outcome == "equivalent" else outcome
                counts.append(f"{word} on {len(where)} ({', '.join(where)})")
        parts.append(
            f"{schedule}: " + ", ".join(counts)
            + f" of the {plural(len(rows), 'workload')} it ran on"
        )  # fmt: skip
    return (
        f"Final test accuracy against {analysis.baseline} (Holm within each workload, each at "
        "its own margin) — " + "; ".join(parts) + "."
    )


def _agreement_sentence(analysis: AcrossAnalysis) -> str:
    agreement = analysis.agreement
    left = ""
    if agreement.left_out:
        left = f" Left out (not on every workload): {', '.join(agreement.left_out)}."
    if agreement.w is None:
        return f"Rank agreement of final test accuracy: {agreement.status}.{left}"
    p = format_p(agreement.p_value if agreement.p_value is not None else np.nan)
    verdict = (
        "more agreement than chance would give"
        if agreement.p_value is not None and agreement.p_value < stats.ALPHA
        else f"not shown to exceed chance at {stats.ALPHA}"
    )
    ranked = plural(len(agreement.schedules), "schedule")
    return (
        f"Rank agreement of final test accuracy over the {ranked} "
        f"on every workload: Kendall's W = {number(agreement.w, '.2f')} (1 = identical "
        f"rankings), Friedman p {p if p.startswith('<') else '= ' + p}: {verdict}.{left}"
    )


def _profile_sentence(analysis: AcrossAnalysis) -> str:
    scores = analysis.profile.scores.sort_values("score", ascending=False, kind="stable")
    if scores.empty:
        return ""
    ratios = analysis.profile.ratios
    best = scores.iloc[0]
    mine = ratios.loc[ratios["schedule"] == best["schedule"], "ratio"].to_numpy()
    n = len(analysis.workloads)
    missed = sorted(set(ratios.loc[~np.isfinite(ratios["best"]), "workload"]))
    none = f" No schedule reached the target on {', '.join(missed)}." if missed else ""
    tied = scores[scores["score"] == best["score"]]["schedule"].astype(str).tolist()
    who = " and ".join(tied) if len(tied) > 1 else str(best["schedule"])
    return (
        f"Time to target, counted in optimizer steps: the best performance-profile score is "
        f"{who}'s, {number(best['score'], '.2f')} (fastest on {int((mine <= 1).sum())} of {n} "
        f"workloads, within 2× on {int((mine <= 2).sum())} of {n}; 1 = fastest everywhere)."
        f"{none}"
    )
