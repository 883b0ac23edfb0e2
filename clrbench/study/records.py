"""The study report's analysis record: what ``clrbench.study.load`` returns and every table,
figure, sentence and ``summary.json`` of the study report reads (no dict keys spread over
files). Built by ``clrbench.study.report.study_analysis`` from the folder alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from clrbench.analysis.margin import Margin
from clrbench.analysis.record import RunAnalysis
from clrbench.study.select import Choice

if TYPE_CHECKING:
    from clrbench.store.results import Results
    from clrbench.study.config import StudyConfig
    from clrbench.study.grid import GridAnalysis
    from clrbench.study.state import StudyState


@dataclass(frozen=True)
class DrawAnalysis:
    """One study of ``--studies N``: its choices (winners as the protocol recorded them), its
    trial scores, and its winners' final runs (``stats.final_metrics``; None before they ran)."""

    index: int
    choice: Choice
    scores: pd.DataFrame
    metrics: pd.DataFrame | None


@dataclass(frozen=True)
class StudyAnalysis:
    """Every statistic of the study report. Study 0 is shown in detail (``scores``,
    ``budget``, the sweep's ``points``, ``curve`` and ``flat`` ranges, the final comparisons
    ``main``, ``zero`` and ``versus``); every study enters ``per_study`` and the headline
    ``across`` studies, against ``baseline``, decided at the workload's ``margin``."""

    state: StudyState
    config: StudyConfig
    studies: list[DrawAnalysis]
    scores: pd.DataFrame
    budget: pd.DataFrame
    budget_over_studies: pd.DataFrame
    baseline: str
    margin: Margin
    per_study: pd.DataFrame
    across: pd.DataFrame
    points: pd.DataFrame | None = None
    curve: pd.DataFrame | None = None
    flat: pd.DataFrame | None = None
    main: RunAnalysis | None = None
    zero: RunAnalysis | None = None
    versus: RunAnalysis | None = None
    final_all: Results | None = field(default=None, repr=False)
    grid: GridAnalysis | None = None  # families of more than one optimizer (clrbench.study.grid)

    @property
    def choice(self) -> Choice:
        """Study 0's choices."""
        return self.studies[0].choice

    @property
    def winners(self) -> dict[str, dict[str, Any]]:
        """Study 0's winners, as recorded in study.json."""
        return self.choice.winners
