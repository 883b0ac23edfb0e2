"""What every report opens with: one figure and one sentence, the differences to the baseline
with their intervals; the tables and the other figures follow.

``differences_figure`` draws one row per label (schedule or family): the difference as a point
in the label's colour, its 95% interval as a bar, optional individual values (one per study) as
small marks, and zero as a line. ``answer_sentence`` says the same numbers in one sentence,
largest difference first (``templates/words/lead.j2`` words it). Both take fractions
(accuracies) and show percentage points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from clrbench.reporting.figures import figure_grid
from clrbench.reporting.words import say

LEAD = "differences"  # the lead figure's name: figures/differences.png beside report.md


def ordered(rows: pd.DataFrame, value: str = "difference") -> pd.DataFrame:
    """The rows, largest difference first (undefined last)."""
    return rows.sort_values(value, ascending=False, na_position="last", kind="stable")


@dataclass(frozen=True)
class Entry:
    """One label's difference to the baseline and its 95% interval (NaN: none)."""

    label: str
    difference: float
    ci_low: float
    ci_high: float


def entries(rows: pd.DataFrame, label: str = "schedule", value: str = "difference") -> list[Entry]:
    """Each row's difference and interval, largest difference first (undefined last)."""
    return [
        Entry(str(getattr(row, label)), getattr(row, value), row.ci_low, row.ci_high)
        for row in ordered(rows, value).itertuples(index=False)
    ]


def answer_sentence(
    rows: pd.DataFrame, opening: str, missing: str | None = None, **how: str
) -> str:
    """``opening``, then each row's difference and interval, largest first: one sentence
    (``missing``: what a row without an interval says)."""
    return say("lead", "answer", opening, entries(rows, **how), missing)


def differences_figure(
    rows: pd.DataFrame,
    colors: dict[str, Any],
    xlabel: str,
    label: str = "schedule",
    value: str = "difference",
    points: pd.DataFrame | None = None,
    points_value: str = "difference",
    margin: float | None = None,
) -> Figure:
    """One row per label, largest difference on top: the difference (a dot in the label's
    colour) and its 95% interval (a bar); ``points`` (``label`` and ``value`` columns) adds the
    individual values as small open marks; a line at zero and, with ``margin`` (a fraction),
    the grey band of differences within it (the decided answers' equivalence margin)."""
    rows = ordered(rows, value)
    figure, axes = figure_grid(height=max(1.6, 0.45 * len(rows) + 1.0))
    ax = axes[0, 0]
    names = list(rows[label])
    for y, row in enumerate(rows.itertuples(index=False)):
        color = colors.get(getattr(row, label), "grey")
        center = getattr(row, value) * 100
        low, high = row.ci_low * 100, row.ci_high * 100
        if math.isfinite(low) and math.isfinite(high):
            ax.plot([low, high], [y, y], color=color, linewidth=3, solid_capstyle="butt")
        ax.plot([center], [y], marker="o", markersize=9, color=color, linestyle="none")
        if points is not None:
            own = points.loc[points[label] == getattr(row, label), points_value] * 100
            ax.plot(own, [y] * len(own), marker="|", markersize=14, color=color, linestyle="none")
    if margin is not None and math.isfinite(margin) and margin > 0:
        ax.axvspan(-margin * 100, margin * 100, color="0.85", zorder=0)  # within: equivalent
    ax.axvline(0, color="0.3", linewidth=1)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)  # largest on top
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    return figure


def margin_of(rows: pd.DataFrame) -> float | None:
    """The comparison's margin (a fraction) when it has one, else None."""
    if "margin" not in rows or rows.empty:
        return None
    value = rows["margin"].iloc[0]  # None where the workload states no margin (a plug-in)
    return float(value) if value is not None and math.isfinite(float(value)) else None


def lead_spec(figure: Figure, title: str, caption: str) -> dict[str, Any]:
    """The lead figure as a figure spec (``page.encode_figures`` renders it; the templates show
    it first, unnumbered, and leave it out of the numbered figures)."""
    return {"name": LEAD, "title": title, "figure": figure, "caption": caption, "lead": True}
