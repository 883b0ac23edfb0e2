"""The cross-workload report's tables (header, rows as strings) and its generated conclusion.

Every number comes from :class:`clrbench.across.analysis.AcrossAnalysis`; the sentences say
what holds on how many of the workloads, and on what it is conditional. The tables' notes are
``templates/words/notes.j2``'s; the conclusion is decided here as small records (:class:`Scope`,
:class:`Held`, :class:`Concordance`, :class:`Best`) and ``templates/words/across.j2`` says it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clrbench.across.analysis import TAU_MAX, AcrossAnalysis
from clrbench.analysis import stats
from clrbench.analysis.decide import OUTCOMES
from clrbench.reporting.tables import iterations, num
from clrbench.reporting.words import say
from clrbench.text import format_p, never_or, number, pct, pp


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
    note = say("notes", "workloads")
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
    note = say("notes", "differences", analysis.baseline, stats.ALPHA, stats.MIN_SEEDS)
    title = say("notes", "differences_title", analysis.baseline)
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
    note = say("notes", "ranks", agreement.left_out)
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
    note = say("notes", "taus")
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
    note = say("notes", "times")
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
    note = say("notes", "profile", TAU_MAX)
    title = "Performance profile scores"
    return {"id": "profile", "title": title, "headers": headers, "rows": rows, "note": note}


# --- the conclusion: what to say, as records; templates/words/across.j2 says it ---


@dataclass(frozen=True)
class Scope:
    """What was compared: the workloads and each one's seeds per schedule."""

    workloads: list[str]
    seeds: dict[str, int]
    same_seeds: int | None  # the seeds per schedule of every workload, when they agree


@dataclass(frozen=True)
class Held:
    """On which workloads each outcome against the baseline came out for one schedule."""

    schedule: str
    outcomes: dict[str, list[str]]  # outcome -> its workloads, in OUTCOMES order, none empty
    ran_on: int  # the workloads it was compared on


@dataclass(frozen=True)
class Concordance:
    """Kendall's W of the ranks, or why it was not computed (``status``)."""

    status: str
    w: float | None
    p_value: float  # NaN: not computed
    agrees: bool  # more agreement than chance: p below α
    ranked: int
    left_out: list[str]


@dataclass(frozen=True)
class Profiled:
    """How often a schedule was the fastest, and within 2× of it."""

    schedule: str
    fastest: int
    within_2: int


@dataclass(frozen=True)
class Best:
    """The best performance-profile score and the schedule(s) with it."""

    schedules: list[Profiled]  # several: tied
    score: float
    alike: bool  # the tied schedules have the same counts (said once)
    workloads: int
    missed: list[str]  # the workloads no schedule reached the target on


def conclusion(analysis: AcrossAnalysis, seeds: dict[str, int]) -> list[str]:
    """The lead: what was compared, then each finding with how many workloads it holds on."""
    held, best = _held(analysis), _best(analysis)
    paragraphs = [
        say("across", "scope", _scope(analysis, seeds)),
        say("across", "differences", analysis.baseline, held) if held else "",
        say("across", "agreement", _concordance(analysis), stats.ALPHA),
        say("across", "profile", best) if best else "",
    ]
    return [p for p in paragraphs if p]


def _scope(analysis: AcrossAnalysis, seeds: dict[str, int]) -> Scope:
    counts = set(seeds.values())
    same = counts.pop() if len(counts) == 1 else None
    return Scope(list(analysis.workloads), dict(seeds), same)


def _held(analysis: AcrossAnalysis) -> list[Held]:
    """Per schedule, on which workloads each outcome came out (Holm within each)."""
    table = analysis.differences
    found = []
    for schedule in dict.fromkeys(table["schedule"].astype(str)):
        rows = table[table["schedule"] == schedule]
        outcomes = {
            outcome: rows.loc[rows["outcome"] == outcome, "workload"].tolist()
            for outcome in OUTCOMES
        }
        found.append(Held(schedule, {o: w for o, w in outcomes.items() if w}, len(rows)))
    return found


def _concordance(analysis: AcrossAnalysis) -> Concordance:
    agreement = analysis.agreement
    p = np.nan if agreement.p_value is None else agreement.p_value
    return Concordance(
        agreement.status, agreement.w, p, bool(p < stats.ALPHA),
        len(agreement.schedules), list(agreement.left_out),
    )  # fmt: skip


def _best(analysis: AcrossAnalysis) -> Best | None:
    scores = analysis.profile.scores.sort_values("score", ascending=False, kind="stable")
    if scores.empty:
        return None
    ratios = analysis.profile.ratios
    top = scores["score"].iloc[0]
    best = []
    for schedule in scores.loc[scores["score"] == top, "schedule"].astype(str):
        mine = ratios.loc[ratios["schedule"] == schedule, "ratio"].to_numpy()
        best.append(Profiled(schedule, int((mine <= 1).sum()), int((mine <= 2).sum())))
    alike = len({(b.fastest, b.within_2) for b in best}) == 1
    missed = sorted(set(ratios.loc[~np.isfinite(ratios["best"]), "workload"]))
    return Best(best, top, alike, len(analysis.workloads), missed)
