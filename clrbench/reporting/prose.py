"""The report's generated conclusion: what the summary and comparison tables support.

Python decides what may be said, as small records (:class:`Top`, :class:`Outcomes`,
:class:`Speed`); ``templates/words/run.j2`` puts them into words (:func:`words.say`). Every
number comes from ``clrbench.analysis.stats``'s tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from clrbench.analysis.decide import OUTCOMES
from clrbench.analysis.stats import ALPHA, MIN_SEEDS
from clrbench.reporting.words import say
from clrbench.text import format_p

__all__ = ["conclusion", "format_p", "margin_text"]


@dataclass(frozen=True)
class Versus:
    """One schedule's decided comparison with the baseline (a row of ``stats.compare``)."""

    schedule: str
    difference: float
    ci_low: float
    ci_high: float
    p_holm: float  # NaN: not tested (``verdict`` says why)
    verdict: str
    n: int
    n_baseline: int


@dataclass(frozen=True)
class Top:
    """The schedule with the highest final test accuracy, and its comparison if it has one."""

    schedule: str
    baseline: str
    mean: float
    std: float
    ok: int
    versus: Versus | None


@dataclass(frozen=True)
class Outcome:
    """The schedules of one outcome, and (undecided) how many more seeds would likely decide."""

    outcome: str
    versus: list[Versus]
    more_seeds: int | None


@dataclass(frozen=True)
class Outcomes:
    """Every tested comparison with the baseline, grouped by outcome."""

    baseline: str
    tested: int
    margin: str
    groups: list[Outcome]
    untested: list[str]


@dataclass(frozen=True)
class Speed:
    """The fastest schedule(s) to the target, and the test against the baseline's time."""

    target: float
    fastest: list[str]
    reached: list[tuple[int, int]]  # (runs that reached it, ok runs) of each fastest
    median: float
    resolution: int | None
    baseline: str | None  # None: no test against the baseline to report
    median_baseline: float = np.nan
    p_holm: float = np.nan
    verdict: str = ""
    significant: bool = False


def _versus(row) -> Versus:
    return Versus(
        str(row.schedule), row.difference, row.ci_low, row.ci_high, row.p_holm,
        str(row.verdict), int(row.n), int(row.n_baseline),
    )  # fmt: skip


def margin_text(comparison: pd.DataFrame) -> str:
    """ "±0.1 pp" from a comparison table's ``margin`` column, or "no margin"."""
    margin = comparison["margin"].iloc[0] if "margin" in comparison and len(comparison) else None
    return "no margin" if margin is None or not np.isfinite(margin) else f"±{margin * 100:.3g} pp"


def _top(top: pd.Series, comparison: pd.DataFrame, baseline: str) -> Top:
    rows = comparison[comparison["schedule"] == top["schedule"]]
    versus = None if rows.empty else _versus(next(rows.itertuples()))
    return Top(
        str(top["schedule"]), baseline, top["final_test_accuracy_mean"],
        top["final_test_accuracy_std"], int(top["ok"]), versus,
    )  # fmt: skip


def _outcomes(comparison: pd.DataFrame, baseline: str) -> Outcomes:
    tested = comparison[comparison["p_holm"].notna()]
    groups = []
    for outcome in OUTCOMES:
        rows = tested[tested["outcome"] == outcome]
        if rows.empty:
            continue
        more = [m for m in rows["more_seeds"] if m is not None and np.isfinite(m)]
        most = int(max(more)) if outcome == "undecided" and more else None
        groups.append(Outcome(outcome, [_versus(r) for r in rows.itertuples()], most))
    untested = comparison.loc[comparison["p_holm"].isna(), "schedule"].astype(str).tolist()
    return Outcomes(baseline, len(tested), margin_text(comparison), groups, untested)


def _speed(summary: pd.DataFrame, speed: pd.DataFrame, resolution: int | None) -> Speed | None:
    """Which schedule reached the target in the fewest iterations (median over its ok runs, a
    run that never reached it counting as never), and whether that is beyond seed noise."""
    if "n_reached" not in summary or summary["target"].isna().all():
        return None
    ranked = summary[np.isfinite(summary["iterations_to_target_median"])]
    best = ranked["iterations_to_target_median"].min() if len(ranked) else np.inf
    fastest = ranked[ranked["iterations_to_target_median"] == best]
    names = [str(s) for s in fastest["schedule"]]
    reached = [(int(r.n_reached), int(r.ok)) for r in fastest.itertuples()]
    found = Speed(summary["target"].iloc[0], names, reached, best, resolution, None)
    if speed.empty or not names:
        return found
    baseline = str(speed["baseline"].iloc[0])
    others = speed[speed["schedule"].isin(fastest["schedule"])]
    if baseline in names or others.empty:
        return found
    row = others.sort_values("p_holm", na_position="last").iloc[0]
    return Speed(
        found.target, names, reached, best, resolution, baseline, row["median_baseline"],
        row["p_holm"], str(row["verdict"]), bool(row["significant"]),
    )  # fmt: skip


def conclusion(
    summary: pd.DataFrame,
    comparison: pd.DataFrame,
    speed: pd.DataFrame | None = None,
    resolution: int | None = None,
) -> str:
    """A few sentences stating what the summary and comparison tables support, and no more.

    Every comparison is worded by its decided outcome (better / worse / equivalent within the
    margin / undecided, ``clrbench.analysis.decide``); untested ones are called out as such.
    """
    with_data = summary[summary["final_test_accuracy_mean"].notna()]
    if with_data.empty:
        return say("run", "nothing_ok")
    baseline = str(comparison["baseline"].iloc[0]) if len(comparison) else ""
    return say(
        "run",
        "conclusion",
        top=_top(with_data.iloc[0], comparison, baseline),
        outcomes=_outcomes(comparison, baseline) if len(comparison) else None,
        speed=_speed(summary, pd.DataFrame() if speed is None else speed, resolution),
        runs=int(summary["runs"].sum()),
        ok=int(summary["ok"].sum()),
        alpha=ALPHA,
        min_seeds=MIN_SEEDS,
    )
