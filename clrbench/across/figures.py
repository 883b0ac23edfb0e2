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
from clrbench.reporting.figures import figure_grid


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
    ax.set(xlabel="τ: steps to target at most τ × the fastest schedule's on the workload")
    ax.set(ylabel="ρ(τ): fraction of workloads")
    ax.set_title("Performance profile of steps to target (higher and further left is better)")
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
    figure.suptitle(f"Against the baseline ({analysis.baseline}), per workload: 95% CI (Welch)")
    return figure


def build_across_figures(analysis: AcrossAnalysis, colors: dict[str, Any]) -> list[dict]:
    """The report's figures as ``{"name", "title", "caption", "figure"}``, in report order."""
    profiled = ", ".join(analysis.profiled) or "none"
    specs = [
        ("differences", "Differences against the baseline",
         differences_figure(analysis, colors),
         f"Final test accuracy of each schedule minus {analysis.baseline}'s on each workload "
         "(ok runs), with the 95% Welch confidence interval of the difference. Hollow "
         "markers: not tested (fewer than 3 ok seeds on either side, or no variation). An "
         "interval that excludes 0 is not yet significant: the p-values are Holm-adjusted "
         "(see the table)."),
        ("profile", "Performance profile of steps to target",
         profile_figure(analysis.profile, colors),
         "For each schedule, ρ(τ) is the fraction of workloads on which its median steps to "
         "the workload's target is at most τ times the fastest schedule's there (a seed that "
         "never reaches the target counts as never; a workload no schedule reaches counts as "
         "never for all; the fastest is the fastest profiled schedule). Time is measured in "
         "optimizer steps, not seconds. The score in the "
         "legend is the area under ρ over τ in [1, 4] divided by 3: 1 = fastest on every "
         f"workload, 0 = never within 4× of the fastest. Schedules profiled: {profiled}."),
    ]  # fmt: skip
    figures = [dict(zip(("name", "title", "figure", "caption"), s, strict=True)) for s in specs]
    return [figures[0] | {"lead": True}, *figures[1:]]  # the differences open the report
