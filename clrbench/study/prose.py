"""The study's generated conclusion: the three questions answered from its tables, no more.

1. Given the same tuning effort, does any schedule beat a tuned constant rate (on test)?
2. Which schedule is least sensitive to its rate (validation, around each winner)?
3. Smith's zero-budget recipe: does a cycle between lr-find's bounds need no tuning?

Every sentence says how sure it can be: intervals, Holm-adjusted p-values, and when the budget or
the number of seeds is too small to tell. Python decides what may be said, as small records;
``templates/words/study.j2`` puts them into words (:func:`words.say`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clrbench.analysis.decide import OUTCOMES
from clrbench.analysis.stats import ALPHA, MIN_SEEDS
from clrbench.reporting.words import say
from clrbench.study.select import NOISE_SE

if TYPE_CHECKING:
    from clrbench.analysis.record import RunAnalysis
    from clrbench.study.records import DrawAnalysis
    from clrbench.study.select import Choice

SMALL_BUDGET = 8  # fewer trials per family: the best-vs-budget curve cannot show saturation
GRID_OCTAVES = 1.0  # widths closer than this are within the sensitivity grid's resolution


@dataclass(frozen=True)
class Difference:
    """One schedule's difference to the baseline on test (a row of a comparison)."""

    schedule: str
    baseline: str
    difference: float
    ci_low: float
    ci_high: float
    p_holm: float  # NaN: not tested (``verdict`` says why)
    verdict: str


@dataclass(frozen=True)
class Tuned:
    """Q1: the winners against the tuned baseline on test, seed noise only."""

    baseline: str
    budget: int
    seeds: int
    tested: list[Difference]  # the comparisons with a Holm p
    better: list[Difference]  # significantly above the baseline
    worse: list[Difference]  # significantly below
    top: Difference | None  # the largest tested difference
    low: float  # the range of the tested differences
    high: float
    decided: bool  # the comparisons carry decided outcomes (each verdict is said)


@dataclass(frozen=True)
class BudgetEnd:
    """A family's expected best validation accuracy after the whole budget (95% range)."""

    family: str
    expected: float
    low: float
    high: float


@dataclass(frozen=True)
class Rising:
    """A family whose expected best still rose over the second half of the budget."""

    family: str
    gain: float
    since: int  # the k it rose from


@dataclass(frozen=True)
class Width:
    """A family's flat range in octaves; ``censored``: it reached the end of the grid."""

    family: str
    width: float
    censored: bool


@dataclass(frozen=True)
class Sensitivity:
    """Q2: the flat ranges, widest first, and how far they can be told apart."""

    band: float
    seeds: int
    widths: list[Width]
    noise_pp: float  # the median seed sd of a point in pp; NaN: unknown
    least: str | None  # the clearly least sensitive family; None: see ``close``
    close: list[str]  # the families within one grid step of the widest
    rough: bool  # the seed noise is large against the band
    not_ok: list[tuple[str, list[float]]]  # each family's multipliers that diverged or failed


@dataclass(frozen=True)
class ZeroBudget:
    """Q3: the triangular cycle between lr-find's bounds and its two comparisons."""

    base_lr: float
    max_lr: float
    accuracy: float
    suggestion: Difference | None  # against a constant rate at lr-find's suggestion
    tuned: Difference | None  # against the tuned baseline


@dataclass(frozen=True)
class Family:
    """One family's difference to the tuned baseline over the studies (a row of ``across``)."""

    family: str
    median: float
    low: float
    high: float
    wins: int
    studies: int


@dataclass(frozen=True)
class Decided:
    """One family's outcome in the pre-registered test over studies × seeds."""

    family: str
    estimate: float
    verdict: str


@dataclass(frozen=True)
class Repeats:
    """The headline over the studies: each family against the tuned baseline."""

    baseline: str
    studies: int  # the studies with final runs on test
    families: list[Family]  # highest median first
    won: int  # the studies the baseline won
    drawn_seeds: bool  # final seeds drawn per study (else the same in every study)
    tested: int  # the families the test over studies can decide
    design: str
    margin: float | None
    decided: list[Decided]  # in the order better, worse, equivalent, undecided


@dataclass(frozen=True)
class Recheck:
    """A flagged multiplier's re-check on the confirmation seeds (``mean`` NaN: not run yet)."""

    mean: float
    winner: float  # the winner's confirmation mean
    replaced: bool


@dataclass(frozen=True)
class SweepWarning:
    """A sensitivity sweep that found a multiplier better than the winner beyond noise."""

    study: int | None  # None: the only study
    family: str
    best: float  # the sweep's best multiplier; NaN: unknown
    difference: float
    threshold: float  # the noise threshold; NaN: ``reason`` says why
    reason: str
    recheck: Recheck | None  # None: confirmation is off


def _difference(row: Any) -> Difference:
    """A comparison's row (a Series) as a record."""
    return Difference(
        str(row["schedule"]), str(row["baseline"]), row["difference"], row["ci_low"],
        row["ci_high"], row.get("p_holm", math.nan), str(row["verdict"]),
    )  # fmt: skip


def _differences(rows: pd.DataFrame) -> list[Difference]:
    return [_difference(row) for _, row in rows.iterrows()]


def answer_tuned(comparison: pd.DataFrame, budget: int, seeds: int) -> str:
    """Q1 from the final comparison of the winners against the tuned constant rate."""
    if comparison.empty:
        return say("study", "nothing_to_compare")
    tested = comparison[comparison["p_holm"].notna()]
    top = tested.sort_values("difference", ascending=False).iloc[0] if len(tested) else None
    found = Tuned(
        baseline=str(comparison["baseline"].iloc[0]),
        budget=budget,
        seeds=seeds,
        tested=_differences(tested),
        better=_differences(tested[tested["significant"] & (tested["difference"] > 0)]),
        worse=_differences(tested[tested["significant"] & (tested["difference"] < 0)]),
        top=None if top is None else _difference(top),
        low=tested["difference"].min(),
        high=tested["difference"].max(),
        decided="outcome" in tested,
    )
    return say("study", "tuned", found, alpha=ALPHA, min_seeds=MIN_SEEDS)


def budget_note(curve: pd.DataFrame, budget: int, band: float) -> str:
    """Where the tuning-effort curves end, and whether the budget was enough to see it flatten."""
    if curve.empty:
        return ""
    last = curve[curve["k"] == curve.groupby("family")["k"].transform("max")]
    ends = [BudgetEnd(str(r.family), r.expected, r.low, r.high) for r in last.itertuples()]
    rising = []
    for family, group in curve.groupby("family", sort=False):
        since = max(1, math.ceil(group["k"].max() / 2))
        gain = group["exact"].iloc[-1] - group.loc[group["k"] == since, "exact"].iloc[0]
        if gain > band / 200:
            rising.append(Rising(str(family), gain, since))
    return say("study", "budget_note", budget, ends, rising, small=budget < SMALL_BUDGET)


def answer_sensitivity(flat: pd.DataFrame, curve: pd.DataFrame, band: float, seeds: int) -> str:
    """Q2 from the flatness widths."""
    rated = flat[flat["width"].notna()]
    if rated.empty:
        return say("study", "nothing_sensitive")
    ranked = rated.sort_values("width", ascending=False)
    widest = ranked["width"].iloc[0]
    runner_up = ranked["width"].iloc[1] if len(ranked) > 1 else -math.inf
    close = ranked[ranked["width"] > widest - GRID_OCTAVES]["family"]
    noise = curve.loc[curve["status"] == "ok", "sd"].median() * 100
    diverged = curve[curve["status"] != "ok"]
    found = Sensitivity(
        band=band,
        seeds=seeds,
        widths=[_width(r) for r in ranked.itertuples()],
        noise_pp=noise,
        least=str(ranked["family"].iloc[0]) if widest - runner_up >= GRID_OCTAVES else None,
        close=[str(f) for f in close],
        rough=bool(np.isfinite(noise) and noise >= band / 2),
        not_ok=[
            (str(family), list(group["multiplier"]))
            for family, group in diverged.groupby("family", sort=False)
        ],
    )
    return say("study", "sensitivity", found)


def _width(row: Any) -> Width:
    return Width(str(row.family), row.width, bool(row.censored_low or row.censored_high))


def width_text(row) -> str:
    """A flat range's width in octaves, ``≥`` when it reached the end of the grid."""
    return say("study", "width", _width(row))


def answer_zero_budget(
    zero: RunAnalysis | None, versus: RunAnalysis | None, bounds: dict | None
) -> str:
    """Q3: the triangular cycle between lr-find's bounds, against a constant rate at lr-find's
    suggestion and against the tuned constant rate."""
    if zero is None or bounds is None:
        return ""
    summary = zero.summary.set_index("schedule")
    if "lr-find-clr" not in summary.index or not np.isfinite(
        summary.loc["lr-find-clr", "final_test_accuracy_mean"]
    ):
        return say("study", "no_zero_budget_runs")
    against = None if versus is None else versus.comparison
    found = ZeroBudget(
        bounds["base_lr"],
        bounds["max_lr"],
        summary.loc["lr-find-clr", "final_test_accuracy_mean"],
        suggestion=_cycle(zero.comparison),
        tuned=_cycle(against),
    )
    return say("study", "zero_budget", found)


def _cycle(comparison: pd.DataFrame | None) -> Difference | None:
    """The zero-budget cycle's row of ``comparison``, if it has one."""
    if comparison is None or comparison.empty:
        return None
    rows = comparison[comparison["schedule"] == "lr-find-clr"]
    return _difference(rows.iloc[0]) if len(rows) else None


def answer_repeats(
    across: pd.DataFrame, per_study: pd.DataFrame, studies: int, baseline: str
) -> str:
    """The headline: each family's median difference to the tuned baseline over the studies,
    its spread, its wins, and whether the studies can test it (one study: one draw)."""
    if across.empty or not across["studies"].gt(0).any():
        return ""
    rated = across[across["studies"] > 0].sort_values("median", ascending=False)
    tested = rated[rated["cannot_test"].isna()] if "cannot_test" in rated else rated.iloc[:0]
    won = per_study[per_study["best"] & (per_study["family"] == baseline)]["study"].nunique()
    design = str(rated["seeds_design"].iloc[0]) if "seeds_design" in rated else ""
    decided = [
        Decided(str(r.family), r.estimate, str(r.verdict))
        for outcome in OUTCOMES
        for r in tested[tested["outcome"] == outcome].itertuples()
    ]
    found = Repeats(
        baseline=baseline,
        studies=int(per_study["study"].nunique()),
        families=[
            Family(str(r.family), r.median, r.low, r.high, r.wins, r.studies)
            for r in rated.itertuples()
        ],
        won=int(won),
        drawn_seeds=design.startswith("final seeds"),
        tested=len(tested),
        design=design,
        margin=rated["margin"].iloc[0] if len(tested) else None,
        decided=decided,
    )
    return say("study", "repeats", found, ALPHA)


def sensitivity_warnings(studies: list[DrawAnalysis]) -> list[str]:
    """One plain line per study and family whose sweep found a multiplier better than its
    winner beyond noise, with what the re-check made of it."""
    lines = []
    for study in studies:
        check = study.choice.check
        if check is None:
            continue
        for r in check[check["flagged"]].itertuples():
            found = SweepWarning(
                study=study.index if len(studies) > 1 else None,
                family=str(r.family),
                best=2.0**r.best_k if np.isfinite(r.best_k) else math.nan,
                difference=r.difference,
                threshold=r.threshold,
                reason=str(r.reason),
                recheck=_recheck(study.choice, r.family),
            )
            lines.append(say("study", "sweep_warning", found, noise_se=NOISE_SE))
    return lines


def _recheck(choice: Choice, family: str) -> Recheck | None:
    """What the confirmation seeds made of the family's flagged multiplier (None: not
    re-checked, confirmation is off)."""
    candidate = choice.rechecks.get(family)
    if candidate is None:
        return None
    means = choice.recheck_means
    row = None if means is None else means[means["label"] == candidate["label"]]
    if row is None or row.empty or not np.isfinite(row["mean"].iloc[0]):
        return Recheck(math.nan, math.nan, replaced=False)
    return Recheck(
        row["mean"].iloc[0],
        choice.confirmed[family]["confirmation_mean"],
        replaced=choice.winners[family]["label"] == candidate["label"],
    )
