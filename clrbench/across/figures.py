"""The cross-workload report's figures: the performance profile and the differences against
the baseline per workload (seaborn on the report's Agg figures, one colour per schedule)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from clrbench.across import analysis as across
from clrbench.across.analysis import AcrossAnalysis, Profile
from clrbench.analysis.stats import MIN_SEEDS
from clrbench.reporting.figures import figure_grid, figure_spec
from clrbench.reporting.words import say


def score_label(schedule: str, score: float) -> str:
    """A schedule's legend entry in the profile: its name and its score."""
    return f"{schedule} (score {score:.2f})"


def profile_figure(profile: Profile, colors: dict[str, Any]) -> Figure:
    """rho_s(tau) of each schedule as an exact step curve over tau in [1, 4], scores in the
    legend. Curves that coincide stay visible: earlier schedules are drawn wider."""
    figure, axes = figure_grid(height=4.4)
    ax = axes[0, 0]
    scores = profile.scores.set_index("schedule")["score"]
    schedules = list(scores.index)
    handles, labels = [], []
    for order, schedule in enumerate(schedules):
        ratios = profile.ratios.loc[profile.ratios["schedule"] == schedule, "ratio"]
        curve = across.step_curve(ratios.to_numpy())
        width = 1.6 + 2.4 * (len(schedules) - 1 - order) / max(len(schedules) - 1, 1)
        line = dict(color=colors[schedule], linewidth=width, alpha=0.85)
        sns.lineplot(data=curve, x="tau", y="rho", drawstyle="steps-post", ax=ax, **line)
        handles.append(Line2D([], [], **line))
        labels.append(score_label(schedule, float(scores[schedule])))
    ax.set(xlim=(1, across.TAU_MAX), ylim=(-0.03, 1.03))
    ax.set(xlabel=say("figures", "across_profile_xlabel"), ylabel="ρ(τ): fraction of workloads")
    ax.set_title(say("figures", "across_profile_drawn_title"))
    figure.legend(
        handles, labels, loc="outside upper center", ncols=min(len(labels), 4), frameon=False
    )
    return figure


def _difference_panel(ax, table: pd.DataFrame, colors: dict[str, Any], workload: str) -> None:
    rows = table[table["workload"] == workload].reset_index(drop=True)
    ax.set_title(workload, fontsize=10)
    ax.set_xlabel("difference in final test accuracy (pp)")
    if rows.empty:
        ax.text(0.5, 0.5, "no comparison", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
        return
    for position, row in rows.iterrows():
        color = colors[row["schedule"]]
        x = row["difference"] * 100
        if np.isfinite(row["ci_low"]):
            error = [[x - row["ci_low"] * 100], [row["ci_high"] * 100 - x]]
            ax.errorbar([x], [position], xerr=error, fmt="o", color=color, capsize=5, ms=7)
        elif np.isfinite(x):  # not tested: the difference of the means alone, hollow
            ax.scatter([x], [position], s=60, facecolors="none", edgecolors=[color], lw=1.6)
    ax.axvline(0, color="0.5", linewidth=0.9, linestyle="--")
    ax.set_yticks(range(len(rows)), labels=rows["schedule"].astype(str).tolist())
    ax.set_ylim(len(rows) - 0.5, -0.5)


def differences_figure(analysis: AcrossAnalysis, colors: dict[str, Any]) -> Figure:
    """Per workload: each schedule's final test accuracy minus the baseline's, with its Welch
    95% CI (hollow: not tested, too few seeds or no variation)."""
    table = analysis.differences
    count = max(table.groupby("workload", sort=False).size().max() if len(table) else 1, 1)
    columns = max(len(analysis.workloads), 1)
    figure, axes = figure_grid(1, columns, height=0.6 * count + 2.0)
    for ax, workload in zip(axes[0], analysis.workloads, strict=False):
        _difference_panel(ax, table, colors, workload)
    figure.suptitle(say("figures", "across_differences_suptitle", analysis.baseline))
    return figure


def build_across_figures(analysis: AcrossAnalysis, colors: dict[str, Any]) -> list[dict]:
    """The report's figures as ``{"name", "title", "caption", "figure"}``, in report order."""
    drawn = differences_figure(analysis, colors)
    baseline = analysis.baseline
    differences = figure_spec("differences", drawn, baseline, MIN_SEEDS, prefix="across_")
    drawn = profile_figure(analysis.profile, colors)
    profile = figure_spec("profile", drawn, analysis.profiled, prefix="across_")
    return [differences | {"lead": True}, profile]  # the differences open the report
