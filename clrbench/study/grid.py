"""The grid of a study whose families span more than one optimizer: (schedule × optimizer).

Every family is a cell: its row the schedule (its label without the optimizer's prefix;
schedule-free families the row ``schedule-free``), its column the optimizer (a schedule-free
optimizer's column is the optimizer it makes schedule-free, ``grid_presets.BASE_OPTIMIZER``).

Comparisons, all with the study's pre-registered primary test across studies
(``clrbench.study.repeats.across_studies``: the (study × seed) paired differences on the final
seeds, decided by ``clrbench.analysis.decide`` at the workload's margin, Holm over the families of
one question):

- each family against the **tuned constant of its column** (one question per column);
- every family against the **best family overall**, chosen on validation (the highest mean over
  studies of the winners' validation accuracy on their confirmation seeds, :func:`winner_score`;
  ties: the earlier family), never on test;
- the cycles' question, per column: the best cyclic family (:data:`CYCLIC` rows) against the
  best non-cyclic family of the same optimizer (schedule-free left out: another update rule),
  both chosen on validation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clrbench.study.grid_presets import BASE_OPTIMIZER, PREFIX
from clrbench.study.repeats import across_studies, per_study

SCHEDULE_FREE_ROW = "schedule-free"
# schedules that repeat a rise and fall (one-cycle rises and falls once: not a cycle)
CYCLIC = ("clr-iter", "clr-epoch", "cyclic-cosine", "sine-exp", "sgdr")
VERSUS_COLUMNS = ["family", "studies", "median", "estimate", "ci_low", "ci_high", "outcome"]
VERSUS_COLUMNS += ["verdict"]
CHANCE = 0.1  # the built-in workloads' 10 classes (a study passes its workload's chance)


@dataclass(frozen=True)
class Cell:
    """One family's place in the grid and the tuned constant it is compared with."""

    family: str
    schedule: str  # the row
    optimizer: str  # the column
    baseline: str | None  # the column's tuned constant (None: the column has none)


@dataclass(frozen=True)
class GridAnalysis:
    """The grid's statistics (frames of plain columns, no prose)."""

    cells: pd.DataFrame  # family, schedule, optimizer, baseline + VERSUS_COLUMNS' and more
    best: str | None  # the best family overall, on validation
    versus_best: pd.DataFrame  # VERSUS_COLUMNS: every other family against the best
    cycles: pd.DataFrame  # optimizer, cyclic, non_cyclic + VERSUS_COLUMNS' decided columns
    margin: float | None


def place(families: Sequence[tuple[str, str]]) -> list[Cell] | None:
    """The cells of ``families`` (label, optimizer), or None when they span one optimizer."""
    if len({optimizer for _, optimizer in families}) < 2:
        return None
    rows = []
    for label, optimizer in families:
        if optimizer in BASE_OPTIMIZER:
            rows.append((label, SCHEDULE_FREE_ROW, BASE_OPTIMIZER[optimizer]))
            continue
        prefix = PREFIX.get(optimizer, "")
        rows.append((label, label.removeprefix(prefix) if prefix else label, optimizer))
    constants = {column: label for label, row, column in rows if row == "constant"}
    return [Cell(label, row, column, constants.get(column)) for label, row, column in rows]


def winner_score(winner: dict[str, Any]) -> float:
    """A winner's validation accuracy: the mean over the confirmation seeds where it was
    confirmed (what chose it, and the only score of a winner the sensitivity re-check put in
    place, which has no trial of its own), else its trial's."""
    for key in ("confirmation_mean", "validation_accuracy"):
        value = winner.get(key)
        if value is not None and np.isfinite(float(value)):
            return float(value)
    return math.nan


def validation_means(winners: Sequence[dict[str, dict[str, Any]]]) -> dict[str, float]:
    """Per family, the mean over studies of its winner's validation score (``winner_score``;
    the studies' ``choice["winners"]``); NaN where no study has a finite one."""
    values: dict[str, list[float]] = {}
    for study in winners:
        for family, winner in study.items():
            values.setdefault(family, []).append(winner_score(winner))
    return {
        f: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan for f, v in values.items()
    }


def best_on_validation(means: dict[str, float], among: Sequence[str]) -> str | None:
    """The family of ``among`` with the highest validation mean (ties: the earlier one)."""
    best, top = None, -math.inf
    for family in among:
        value = means.get(family, math.nan)
        if np.isfinite(value) and value > top:
            best, top = family, value
    return best


def _versus(
    finals: list[pd.DataFrame],
    families: list[str],
    baseline: str,
    margin: float | None,
    chance: float,
) -> pd.DataFrame:
    """``families`` against ``baseline`` with the primary test (Holm over ``families``)."""
    wanted = [baseline, *[f for f in families if f != baseline]]
    chosen = [f[f["schedule"].astype(str).isin(wanted)] for f in finals]
    table = per_study(chosen, baseline, chance=chance)
    across = across_studies(table, baseline, chosen, margin, chance=chance)
    if across.empty:
        return pd.DataFrame(columns=VERSUS_COLUMNS)
    return across[VERSUS_COLUMNS + ["wins"]].reset_index(drop=True)


def _costs(finals: list[pd.DataFrame]) -> dict[str, float]:
    """Mean training seconds per final run of each family (ok runs; every study)."""
    if not finals:
        return {}
    runs = pd.concat(finals, ignore_index=True)
    runs = runs[runs["status"].astype(str) == "ok"]
    return runs.groupby(runs["schedule"].astype(str))["train_s"].mean().to_dict()


def grid_analysis(
    families: Sequence[tuple[str, str]],
    finals: list[pd.DataFrame],
    winners: Sequence[dict[str, dict[str, Any]]],
    margin: float | None,
    chance: float = CHANCE,
) -> GridAnalysis | None:
    """The grid of ``families`` (label, optimizer) from each study's final runs (``finals``:
    ``stats.final_metrics`` frames of its winners; a diverged run scores ``chance``, the
    workload's) and its winners (``winners``, with their validation accuracy); None for a
    study of one optimizer."""
    cells = place(families)
    if cells is None:
        return None
    labels = [c.family for c in cells]
    rows = []
    for column in dict.fromkeys(c.optimizer for c in cells):
        members = [c for c in cells if c.optimizer == column]
        baseline = members[0].baseline
        found = None
        if baseline:
            found = _versus(finals, [c.family for c in members], baseline, margin, chance)
        for cell in members:
            row: dict[str, Any] = {"family": cell.family, "schedule": cell.schedule}
            row |= {"optimizer": cell.optimizer, "baseline": cell.baseline}
            if found is not None and cell.family in set(found["family"]):
                row |= found[found["family"] == cell.family].iloc[0].to_dict()
            rows.append(row)
    table = pd.DataFrame(rows)
    means = validation_means(winners)
    all_wins = per_study(finals, labels[0], chance=chance) if finals else pd.DataFrame()
    won = {} if all_wins.empty else all_wins[all_wins["best"]].groupby("family")["study"].nunique()
    costs = _costs(finals)
    table = table.assign(
        validation=[means.get(f, math.nan) for f in table["family"]],
        studies_won=[int(dict(won).get(f, 0)) for f in table["family"]],
        cost_s=[costs.get(f, math.nan) for f in table["family"]],
    )
    best = best_on_validation(means, labels)
    versus_best = _versus(finals, labels, best, margin, chance) if best else pd.DataFrame()
    cycles = _cycles(cells, finals, means, margin, chance)
    return GridAnalysis(table, best, versus_best, cycles, margin)


def _cycles(
    cells: list[Cell],
    finals: list[pd.DataFrame],
    means: dict[str, float],
    margin: float | None,
    chance: float,
) -> pd.DataFrame:
    """Per column: its best cyclic family against its best non-cyclic one (schedule-free out)."""
    rows = []
    for column in dict.fromkeys(c.optimizer for c in cells):
        own = [c for c in cells if c.optimizer == column and c.schedule != SCHEDULE_FREE_ROW]
        cyclic = best_on_validation(means, [c.family for c in own if c.schedule in CYCLIC])
        plain = best_on_validation(means, [c.family for c in own if c.schedule not in CYCLIC])
        row: dict[str, Any] = {"optimizer": column, "cyclic": cyclic, "non_cyclic": plain}
        if cyclic and plain:
            found = _versus(finals, [cyclic], plain, margin, chance)
            if len(found):
                row |= found.iloc[0].drop(["family"]).to_dict()
        rows.append(row)
    return pd.DataFrame(rows)
