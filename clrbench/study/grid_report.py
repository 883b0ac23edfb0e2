"""The grid section of a study report (``clrbench.study.grid``'s records worded and drawn):
the schedule × optimizer table, cost and tuning per family, the best family, the cycles' line,
and the forest plot of the differences with the margin band."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clrbench.reporting.figures import figure_grid
from clrbench.study.choice_tables import pp
from clrbench.study.grid import GridAnalysis

OUTCOME_MARK = {"better": "better", "worse": "worse", "equivalent": "equivalent"}


def _cell(row: pd.Series, studies: int) -> str:
    """``+0.12 pp, equivalent within ±0.1 pp; won 1 of 3`` (the baseline: ``tuned constant``)."""
    won = f"won {int(row['studies_won'])} of {studies}"
    if row["family"] == row["baseline"]:
        return f"tuned constant (baseline); {won}"
    if "median" not in row or not np.isfinite(row.get("median", np.nan)):
        return "–" if row["baseline"] is not None else "no tuned constant to compare"
    return f"{pp(row['median'])} pp, {row['verdict']}; {won}"


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
    margin = "no margin" if grid.margin is None else f"margin ±{grid.margin * 100:.3g} pp"
    note = (
        "Each cell: the median over studies of the family's difference to the tuned constant of "
        "its optimizer (schedule-free: of the optimizer it makes schedule-free) on the same "
        "final seeds, in pp; the decided verdict of the primary test across studies (Holm over "
        f"each optimizer's families, {margin}); the studies the family won among all families."
    )
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
    note = (
        "Train s: the mean training time of the family's final runs (ok runs, every study). "
        "E[best val]: the expected best validation accuracy after k trials (exact per study, "
        "averaged over the studies; every k is in summary.json's expected_best_vs_budget)."
    )
    return {"id": "grid-cost", "title": "The grid: cost and tuning effort per family",
            "headers": headers, "rows": rows, "note": note}  # fmt: skip


def _against(versus: pd.DataFrame, outcome: str) -> list[str]:
    return [str(f) for f in versus.loc[versus["outcome"] == outcome, "family"]]


def best_line(grid: GridAnalysis) -> str:
    """The best family on validation and, on test, what it beats."""
    if grid.best is None:
        return "The grid: no family has a validation score yet, so no best family."
    versus = grid.versus_best
    line = f"The grid's best family, chosen on validation, is {grid.best}."
    if versus.empty or "outcome" not in versus:
        return line + " Its final runs on test are not complete yet."
    beats = _against(versus, "worse")
    parts = [f"on test it beats {', '.join(beats) if beats else 'no family'}"]
    for outcome, words in (("equivalent", "is equivalent to"), ("better", "is beaten by")):
        found = _against(versus, outcome)
        if found:
            parts.append(f"{words} {', '.join(found)}")
    undecided = _against(versus, "undecided")
    if undecided:
        parts.append(f"is undecided against {', '.join(undecided)}")
    return f"{line} Against it (the primary test, Holm over the others): {'; '.join(parts)}."


def cycles_lines(grid: GridAnalysis) -> list[str]:
    """Per optimizer: does its best cycle beat its best non-cyclic family?"""
    lines = []
    for r in grid.cycles.to_dict("records"):
        if not isinstance(r.get("cyclic"), str) or not isinstance(r.get("non_cyclic"), str):
            lines.append(f"The cycles under {r['optimizer']}: no cyclic family to compare.")
            continue
        head = (
            f"The cycles under {r['optimizer']}: does the best cycle ({r['cyclic']}) beat the "
            f"best non-cyclic family ({r['non_cyclic']}, both chosen on validation)? "
        )
        median = r.get("median", np.nan)
        if not isinstance(median, float) or not np.isfinite(median):
            lines.append(head + "Not known yet: their final runs are not complete.")
            continue
        answer = {"better": "Yes", "worse": "No, it is worse", "equivalent": "No difference"}
        lines.append(
            head + f"{answer.get(r['outcome'], 'Undecided')}: {pp(median)} pp on test "
            f"(median over studies), {r['verdict']}."
        )
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
    ax.set_title("The grid: difference (dot) and its 95% interval; grey: ±margin")
    return figure
