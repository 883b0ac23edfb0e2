"""The grid section of a study report (``clrbench.study.grid``'s records worded and drawn):
the schedule × optimizer table, cost and tuning per family, the best family, the cycles' line,
and the forest plot of the differences with the margin band."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clrbench.reporting.figures import figure_grid
from clrbench.reporting.words import say
from clrbench.study.grid import GridAnalysis

OUTCOME_MARK = {"better": "better", "worse": "worse", "equivalent": "equivalent"}


@dataclass(frozen=True)
class Cell:
    """A family's cell of the grid: its median difference to its optimizer's tuned constant."""

    baseline: bool  # the family is the tuned constant itself
    constant: bool  # there is a tuned constant to compare with
    median: float  # NaN: no final runs on test yet
    verdict: str
    won: int
    studies: int


@dataclass(frozen=True)
class Against:
    """The other families' outcomes against the best family on test."""

    worse: list[str]  # those it beats
    equivalent: list[str]
    better: list[str]  # those that beat it
    undecided: list[str]


@dataclass(frozen=True)
class Best:
    """The best family on validation; ``against`` None: its final runs are not complete."""

    family: str
    against: Against | None


@dataclass(frozen=True)
class Cycles:
    """One optimizer's best cycle against its best non-cyclic family."""

    optimizer: str
    cyclic: str | None  # None: no cyclic (or no non-cyclic) family to compare
    non_cyclic: str | None
    median: float  # NaN: their final runs are not complete
    outcome: str
    verdict: str


def _cell(row: pd.Series, studies: int) -> str:
    """``+0.12 pp, equivalent within ±0.1 pp; won 1 of 3`` (the baseline: ``tuned constant``)."""
    found = Cell(
        baseline=row["family"] == row["baseline"],
        constant=row["baseline"] is not None,
        median=row.get("median", np.nan),
        verdict=str(row.get("verdict")),
        won=int(row["studies_won"]),
        studies=studies,
    )
    return say("grid", "cell", found)


def grid_table(grid: GridAnalysis, studies: int) -> dict[str, Any]:
    """Rows: schedule; columns: optimizer; cell: the median difference over studies to the
    column's tuned constant, the decided verdict and the studies won."""
    cells = grid.cells
    columns = list(dict.fromkeys(cells["optimizer"]))
    rows = []
    for schedule in dict.fromkeys(cells["schedule"]):
        line = [schedule]
        for column in columns:
            found = cells[(cells["schedule"] == schedule) & (cells["optimizer"] == column)]
            line.append(_cell(found.iloc[0], studies) if len(found) else "")
        rows.append(line)
    note = say("grid", "grid_note", grid.margin)
    return {"id": "grid", "title": "The grid: difference to each optimizer's tuned constant",
            "headers": ["Schedule", *columns], "rows": rows, "note": note}  # fmt: skip


def cost_table(grid: GridAnalysis, budget: pd.DataFrame) -> dict[str, Any]:
    """Per family: its training cost per final run and its expected best validation accuracy
    after 1 trial and after the whole budget (``budget``: the curve over studies,
    ``clrbench.study.analysis.budget_over_studies``)."""
    rows = []
    for r in grid.cells.itertuples():
        curve = budget[budget["family"] == r.family].sort_values("k")
        first = f"{curve['expected'].iloc[0] * 100:.2f}" if len(curve) else "–"
        last = f"{curve['expected'].iloc[-1] * 100:.2f}" if len(curve) else "–"
        cost = f"{r.cost_s:.1f}" if np.isfinite(r.cost_s) else "–"
        valid = f"{r.validation * 100:.2f}" if np.isfinite(r.validation) else "–"
        rows.append([r.family, r.optimizer, cost, first, last, valid])
    headers = ["Family", "Optimizer", "Train s per run", "E[best val %] k=1"]
    headers += ["E[best val %] all trials", "Winner's val % (mean over studies)"]
    note = say("grid", "cost_note")
    return {"id": "grid-cost", "title": "The grid: cost and tuning effort per family",
            "headers": headers, "rows": rows, "note": note}  # fmt: skip


def _against(versus: pd.DataFrame, outcome: str) -> list[str]:
    return [str(f) for f in versus.loc[versus["outcome"] == outcome, "family"]]


def best_line(grid: GridAnalysis) -> str:
    """The best family on validation and, on test, what it beats."""
    if grid.best is None:
        return say("grid", "no_best")
    versus = grid.versus_best
    against = None
    if not versus.empty and "outcome" in versus:
        against = Against(
            worse=_against(versus, "worse"),
            equivalent=_against(versus, "equivalent"),
            better=_against(versus, "better"),
            undecided=_against(versus, "undecided"),
        )
    return say("grid", "best_line", Best(str(grid.best), against))


def cycles_lines(grid: GridAnalysis) -> list[str]:
    """Per optimizer: does its best cycle beat its best non-cyclic family?"""
    lines = []
    for r in grid.cycles.to_dict("records"):
        both = isinstance(r.get("cyclic"), str) and isinstance(r.get("non_cyclic"), str)
        median = r.get("median", np.nan)
        found = Cycles(
            optimizer=str(r["optimizer"]),
            cyclic=r["cyclic"] if both else None,
            non_cyclic=r["non_cyclic"] if both else None,
            median=median if isinstance(median, float) else np.nan,
            outcome=str(r.get("outcome")),
            verdict=str(r.get("verdict")),
        )
        lines.append(say("grid", "cycles_line", found))
    return lines


def forest_figure(grid: GridAnalysis, colors: dict[str, Any]) -> Figure:
    """Every family's difference to its optimizer's tuned constant: the primary test's estimate
    (the mean over studies and seeds) with its 95%
    interval, the margin as a grey band around zero."""
    shown = grid.cells[grid.cells["family"] != grid.cells["baseline"]]
    if "estimate" in shown:  # a dot without a bar where there is no interval (one study)
        shown = shown[np.isfinite(shown["estimate"].astype(float))]
    else:
        shown = shown.iloc[:0]
    figure, axes = figure_grid(height=max(2.5, 0.32 * len(shown) + 1.2))
    ax = axes[0, 0]
    if grid.margin is not None:
        ax.axvspan(-grid.margin * 100, grid.margin * 100, color="0.88", zorder=0)
    ax.axvline(0, color="0.4", linewidth=0.8)
    for i, r in enumerate(shown.itertuples()):
        color = colors.get(r.family, "grey")
        if np.isfinite(r.ci_low) and np.isfinite(r.ci_high):
            ax.plot([r.ci_low * 100, r.ci_high * 100], [i, i], color=color, linewidth=2)
        ax.plot(r.estimate * 100, i, "o", color=color)
    ax.set_yticks(
        range(len(shown)),
        [f"{f} ({o})" for f, o in zip(shown["family"], shown["optimizer"], strict=True)],
    )
    ax.invert_yaxis()
    ax.set(xlabel="difference to the optimizer's tuned constant on test (pp)")
    ax.set_title(say("figures", "study_grid_drawn_title"))
    return figure
