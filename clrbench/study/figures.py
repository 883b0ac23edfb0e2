"""Figures of a study: tuning effort, trials, sensitivity (one colour per family throughout).

The final runs reuse the run report's figures (``clrbench.reporting.figures``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from clrbench.reporting.figures import figure_grid
from clrbench.reporting.words import say
from clrbench.study.space import rate_params

# The sensitivity panels show this many pp below the family's best (a collapse would squash the
# flat range into a line); what falls below is drawn on the floor with its value.
ZOOM_PP = 1.5


def budget_figure(curve: pd.DataFrame, colors: dict[str, Any]) -> Figure:
    """Expected best validation accuracy after k trials, with the 95% range of the best of k."""
    figure, axes = figure_grid(height=4.2)
    ax = axes[0, 0]
    for family, group in curve.groupby("family", sort=False):
        color = colors.get(family, "grey")
        ax.plot(group["k"], group["expected"] * 100, marker="o", color=color, label=family)
        ax.fill_between(
            group["k"], group["low"] * 100, group["high"] * 100, color=color, alpha=0.12
        )
    if len(curve):
        ax.set_xticks(range(1, int(curve["k"].max()) + 1))
        # every expectation in view; the bands (tuning luck) may run off the bottom
        bottom = curve["expected"].min() * 100
        top = curve["high"].max() * 100
        ax.set_ylim(bottom - 0.1 * (top - bottom) - 0.05, top + 0.05 * (top - bottom) + 0.05)
    ax.set(xlabel="trials per family (k)", ylabel="best validation accuracy (%)")
    ax.set_title(say("figures", "study_budget_drawn_title"))
    _legend_above(figure, ax, colors)
    return figure


def _legend_above(figure: Figure, ax: Any, colors: dict[str, Any]) -> None:
    """The families' legend above the plot, outside it: never on a data point."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ncols = min(5, max(1, len(labels)))
        figure.legend(handles, labels, loc="outside upper center", ncols=ncols, frameon=False)


def trials_figure(scores: pd.DataFrame, colors: dict[str, Any]) -> Figure:
    """Every trial's final validation accuracy against its (peak) rate; diverged as X."""
    figure, axes = figure_grid(height=4.2)
    ax = axes[0, 0]
    scored = scores[scores["status"].isin(["ok", "diverged"])].copy()
    scored["rate"] = [_main_rate(p) for p in scored["params"]]
    ok = scored[scored["status"] == "ok"]
    floor = ok["validation_accuracy"].min() * 100 - 1 if len(ok) else 0
    for family, group in scored.groupby("family", sort=False):
        color = colors.get(family, "grey")
        good = group[group["status"] == "ok"]
        ax.scatter(good["rate"], good["validation_accuracy"] * 100, color=color, s=36, label=family)
        bad = group[group["status"] == "diverged"]
        ax.scatter(bad["rate"], np.full(len(bad), floor), color=color, marker="X", s=60)
    ax.set_xscale("log")
    ax.set(xlabel="rate (lr, initial_lr or max_lr)", ylabel="final validation accuracy (%)")
    ax.set_title(say("figures", "study_trials_drawn_title"))
    _legend_above(figure, ax, colors)
    return figure


def _main_rate(params: dict[str, Any]) -> float:
    for name in ("lr", "max_lr", "initial_lr"):
        if name in params:
            return float(params[name])
    rates = rate_params(params)
    return float(params[rates[0]]) if rates else np.nan


def sensitivity_figure(
    points: pd.DataFrame, curve: pd.DataFrame, flat: pd.DataFrame, colors: dict, pp: float
) -> Figure:
    """One panel per family: validation accuracy against the rate multiplier 2^k (log2 axis),
    seeds as dots, mean as a line, the flat range shaded (see _sensitivity_panel)."""
    families = list(dict.fromkeys(curve["family"]))
    cols = min(3, max(1, len(families)))
    rows = -(-max(1, len(families)) // cols)
    figure, axes = figure_grid(rows, cols, height=3.2, sharey=False)
    for index, ax in enumerate(axes.flat):
        if index >= len(families):
            ax.set_visible(False)
            continue
        family = families[index]
        _sensitivity_panel(
            ax,
            points[points["family"] == family],
            curve[curve["family"] == family],
            flat[flat["family"] == family],
            colors.get(family, "grey"),
            pp,
        )
        ax.set_title(family)
    handles = [
        Line2D([], [], color="black", marker="o", label="mean over ok seeds"),
        Line2D([], [], color="black", marker="v", linestyle="", label="mean below the axis"),
        Line2D([], [], color="black", marker="X", linestyle="", label="diverged seed"),
        Line2D([], [], color="grey", linewidth=8, alpha=0.25, label=f"within {pp:g} pp of best"),
    ]
    figure.legend(handles=handles, loc="outside upper center", ncols=4, frameon=False)
    return figure


def _sensitivity_panel(ax, points, curve, flat, color, pp: float) -> None:
    """The axis spans ZOOM_PP below the best mean, where the flat range is readable; a mean
    below that is drawn as a triangle on the floor, labelled with its value (seeds below it are
    not drawn), and a diverged seed as an X there."""
    ok = points[points["status"] == "ok"]
    good = curve[curve["status"] == "ok"]
    means = good["mean"] * 100
    seeds = ok["validation_accuracy"] * 100
    known = len(flat) and np.isfinite(flat["best"].iloc[0])
    best = flat["best"].iloc[0] * 100 if known else (means.max() if len(means) else 100.0)
    top = max([best, *means, *seeds]) + 0.15 * ZOOM_PP
    bottom = best - ZOOM_PP
    floor = bottom + 0.06 * (top - bottom)
    low_means = means < floor
    ax.plot(good["k"], means.where(~low_means, floor), color=color)
    ax.scatter(good["k"][~low_means], means[~low_means], color=color, marker="o", s=30)
    high = seeds >= floor
    ax.scatter(ok["k"][high], seeds[high], color=color, s=14, alpha=0.6)
    for k, mean in zip(good["k"][low_means], means[low_means], strict=True):
        ax.scatter([k], [floor], color=color, marker="v", s=60)
        ax.annotate(f"{mean:.1f}%", (k, floor), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=8, color=color)  # fmt: skip
    diverged = points[points["status"] == "diverged"]
    ax.scatter(diverged["k"], np.full(len(diverged), floor), color=color, marker="X", s=60)
    if known:
        row = flat.iloc[0]
        ax.axhspan(best - pp, best, color="grey", alpha=0.15)
        ax.axvspan(row["low"], row["high"], color=color, alpha=0.12)
    ax.set_ylim(bottom, top)
    ks = sorted(set(curve["k"]))
    ax.set_xticks(ks, labels=[multiplier_label(k) for k in ks])
    ax.set(xlabel="rate multiplier", ylabel="validation accuracy (%)")


def multiplier_label(k: int) -> str:
    """The rate multiplier 2^k as ×2, ×1/4 (figures and tables)."""
    return f"×{2.0**k:g}" if k >= 0 else f"×1/{2**-k}"
