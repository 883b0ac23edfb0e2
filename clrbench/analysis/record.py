"""The analysis record of one comparison of schedules: every statistic the run report shows
(and each of a study's final comparisons), computed once from a results folder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from clrbench.analysis import stats
from clrbench.analysis.margin import Margin

if TYPE_CHECKING:
    from clrbench.store.results import Results


@dataclass(frozen=True)
class RunAnalysis:
    """Final metrics per run, the summary per schedule, the comparison with the baseline
    (Welch, Holm, each decided at the ``margin``), time to ``target`` (the accuracy and where
    it comes from), the speed comparison and the evaluation interval (steps; None: once per
    epoch)."""

    target: float
    target_source: str
    baseline: str
    final: pd.DataFrame
    summary: pd.DataFrame
    comparison: pd.DataFrame
    reach: pd.DataFrame
    speed: pd.DataFrame
    resolution: int | None
    margin: Margin = Margin(None, "none stated (give --margin)")


def analyse_run(
    results: Results,
    target: float,
    target_source: str,
    baseline_schedule: str | None = None,
    margin: Margin | None = None,
) -> RunAnalysis:
    """Every statistic of a comparison of ``results``' schedules at accuracy ``target``
    (``baseline_schedule``: default ``constant``, else the first schedule), its outcomes
    decided at ``margin`` (default: none)."""
    margin = margin if margin is not None else Margin(None, "none stated (give --margin)")
    return RunAnalysis(
        target=float(target),
        target_source=target_source,
        baseline=stats.resolve_baseline(results.schedules, baseline_schedule),
        final=stats.final_metrics(results),
        summary=stats.summarize(results, target),
        comparison=stats.compare(results, baseline_schedule, margin.value),
        reach=stats.steps_to_target(results, target),
        speed=stats.compare_speed(results, target, baseline_schedule),
        resolution=stats.evaluation_interval(results),
        margin=margin,
    )
