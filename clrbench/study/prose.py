"""The study's generated conclusion: the three questions answered from its tables, no more.

1. Given the same tuning effort, does any schedule beat a tuned constant rate (on test)?
2. Which schedule is least sensitive to its rate (validation, around each winner)?
3. Smith's zero-budget recipe: does a cycle between lr-find's bounds need no tuning?

Every sentence says how sure it can be: intervals, Holm-adjusted p-values, and when the budget or
the number of seeds is too small to tell.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from clrbench.analysis.stats import ALPHA, MIN_SEEDS
from clrbench.study.select import NOISE_SE
from clrbench.text import format_p, plural, points

if TYPE_CHECKING:
    from clrbench.analysis.record import RunAnalysis
    from clrbench.study.records import DrawAnalysis
    from clrbench.study.select import Choice

SMALL_BUDGET = 8  # fewer trials per family: the best-vs-budget curve cannot show saturation
GRID_OCTAVES = 1.0  # widths closer than this are within the sensitivity grid's resolution


def _pct(value: float) -> str:
    return f"{value * 100:.2f}%"


def _p(value: float) -> str:
    text = format_p(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _difference(row: pd.Series) -> str:
    """'+0.08 pp (95% CI -0.01 to +0.17, Holm p = 0.29)' or why it was not tested."""
    text = points(row["difference"])
    if not np.isfinite(row.get("p_holm", math.nan)):
        return f"{text} ({row['verdict']})"
    interval = f"95% CI {points(row['ci_low'])} to {points(row['ci_high'])}"
    return f"{text} ({interval}, Holm {_p(row['p_holm'])})"


def answer_tuned(comparison: pd.DataFrame, budget: int, seeds: int) -> str:
    """Q1 from the final comparison of the winners against the tuned constant rate."""
    if comparison.empty:
        return "Only one family has a winner, so there is nothing to compare on test."
    baseline = str(comparison["baseline"].iloc[0])
    name = "a tuned constant rate" if baseline == "constant" else f"the tuned {baseline}"
    head = f"Given the same tuning effort ({budget} trials per family, chosen on validation)"
    tested = comparison[comparison["p_holm"].notna()]
    if tested.empty:
        return (
            f"{head}, the test comparison with {name} cannot tell: too few ok seeds "
            f"({seeds} per schedule; at least {MIN_SEEDS} are needed) or no variation."
        )
    better = tested[tested["significant"] & (tested["difference"] > 0)]
    worse = tested[tested["significant"] & (tested["difference"] < 0)]
    if len(better):
        parts = "; ".join(f"{r['schedule']} {_difference(r)}" for _, r in better.iterrows())
        text = f"{head}, yes: on test, {parts} beat{'s' if len(better) == 1 else ''} {name}."
    else:
        top = tested.sort_values("difference", ascending=False).iloc[0]
        text = (
            f"{head}, no schedule beats {name} beyond seed noise on test ({seeds} seeds, "
            f"Holm over {plural(len(tested), 'comparison')}, alpha {ALPHA})"
        )
        if len(tested) > 1:
            low, high = tested["difference"].min(), tested["difference"].max()
            text += f": the differences run from {points(low)} to {points(high)}; the largest,"
        else:
            text += ":"
        text += f" {top['schedule']} is {_difference(top)}."
    if len(worse):
        parts = "; ".join(f"{r['schedule']} {_difference(r)}" for _, r in worse.iterrows())
        text += f" Significantly below {baseline}: {parts}."
    if "outcome" in tested:
        outcomes = "; ".join(f"{r.schedule}: {r.verdict}" for r in tested.itertuples())
        text += f" Decided outcomes (seed noise only): {outcomes}."
    return text


def budget_note(curve: pd.DataFrame, budget: int, band: float) -> str:
    """Where the tuning-effort curves end, and whether the budget was enough to see it flatten."""
    if curve.empty:
        return ""
    last = curve[curve["k"] == curve.groupby("family")["k"].transform("max")]
    ends = ", ".join(
        f"{r.family} {_pct(r.expected)} ({_pct(r.low)}–{_pct(r.high)})" for r in last.itertuples()
    )
    text = f"After {budget} trials the expected best validation accuracy (95% range) is: {ends}."
    rising = []
    for family, group in curve.groupby("family", sort=False):
        half = group.loc[group["k"] == max(1, math.ceil(group["k"].max() / 2)), "exact"]
        gain = group["exact"].iloc[-1] - half.iloc[0]
        if gain > band / 200:
            rising.append(
                f"{family} ({points(gain)} from k = {max(1, math.ceil(group['k'].max() / 2))})"
            )
    if rising:
        text += (
            f" Still rising at the full budget: {', '.join(rising)}, so a larger budget "
            "could change the ranking."
        )
    if budget < SMALL_BUDGET:
        text += (
            f" A budget of {budget} trials per family is too small to show where tuning "
            "saturates; treat the winners as rough."
        )
    return text


def answer_sensitivity(flat: pd.DataFrame, curve: pd.DataFrame, band: float, seeds: int) -> str:
    """Q2 from the flatness widths."""
    rated = flat[flat["width"].notna()]
    if rated.empty:
        return "No sensitivity point finished ok, so sensitivity cannot be judged."
    ranked = rated.sort_values("width", ascending=False)
    top = ranked.iloc[0]
    widths = ", ".join(f"{r.family} {width_text(r)}" for r in ranked.itertuples())
    noise = curve.loc[curve["status"] == "ok", "sd"].median() * 100
    noise_text = f"; seed sd of a point ≈ {noise:.2f} pp" if np.isfinite(noise) else ""
    text = (
        f"Width of the rate range (octaves of the multiplier) whose validation accuracy stays "
        f"within {band:g} pp of the family's best, {seeds} seeds per point{noise_text}: {widths}."
    )
    runner_up = ranked.iloc[1]["width"] if len(ranked) > 1 else -math.inf
    if top["width"] - runner_up >= GRID_OCTAVES:
        text = f"{top['family']} is the least sensitive to its rate. " + text
    else:
        close = ranked[ranked["width"] > top["width"] - GRID_OCTAVES]["family"]
        text = (
            f"No family is clearly least sensitive: {', '.join(close)} are within one octave "
            f"(the grid's step) of each other. " + text
        )
    if np.isfinite(noise) and noise >= band / 2:
        text += f" The seed noise is large against the {band:g} pp band, so the widths are rough."
    diverged = curve[curve["status"] != "ok"]
    if len(diverged):
        parts = ", ".join(
            f"{family} at ×{', ×'.join(f'{m:g}' for m in group['multiplier'])}"
            for family, group in diverged.groupby("family", sort=False)
        )
        text += f" Not ok (diverged or failed): {parts}."
    return text


def width_text(row) -> str:
    """A flat range's width in octaves, ``≥`` when it reached the end of the grid."""
    censored = row.censored_low or row.censored_high
    return f"{'≥ ' if censored else ''}{row.width:.1f}"


def answer_zero_budget(
    zero: RunAnalysis | None, versus: RunAnalysis | None, bounds: dict | None
) -> str:
    """Q3: the triangular cycle between lr-find's bounds, against a constant rate at lr-find's
    suggestion and against the tuned constant rate."""
    if zero is None or bounds is None:
        return ""
    summary = zero.summary.set_index("schedule")
    if "lr-find-clr" not in summary.index or not np.isfinite(
        summary.loc["lr-find-clr", "final_test_accuracy_mean"]
    ):
        return "The zero-budget arm has no ok runs."
    text = (
        f"Smith's zero-budget recipe (bounds from one lr-find sweep on the train split: "
        f"base_lr {bounds['base_lr']:g}, max_lr {bounds['max_lr']:g}; no tuning): the triangular "
        f"cycle reached {_pct(summary.loc['lr-find-clr', 'final_test_accuracy_mean'])} on test"
    )
    row = zero.comparison.set_index("schedule")
    if "lr-find-clr" in row.index:
        difference = _difference(row.loc["lr-find-clr"])
        text += f", {difference} against a constant rate at lr-find's suggestion"
    if versus is not None and len(versus.comparison):
        other = versus.comparison.set_index("schedule")
        if "lr-find-clr" in other.index:
            baseline = other.loc["lr-find-clr", "baseline"]
            text += f", and {_difference(other.loc['lr-find-clr'])} against the tuned {baseline}"
    return text + "."


def _studies(n: int) -> str:
    return plural(n, "study", "studies")


def answer_repeats(
    across: pd.DataFrame, per_study: pd.DataFrame, studies: int, baseline: str
) -> str:
    """The headline: each family's median difference to the tuned baseline over the studies,
    its spread, its wins, and whether the studies can test it (one study: one draw)."""
    if across.empty or not across["studies"].gt(0).any():
        return ""
    done = int(per_study["study"].nunique())
    rated = across[across["studies"] > 0].sort_values("median", ascending=False)
    parts = "; ".join(f"{r.family} {points(r.median)}{_spread(r)}" for r in rated.itertuples())
    won = int(per_study[per_study["best"] & (per_study["family"] == baseline)]["study"].nunique())
    text = (
        f"Over {_studies(done)} (each an independent tuning, its winners re-run on "
        f"{_seeds_words(rated)}), the median difference to the tuned {baseline} on test "
        f"is: {parts}; {baseline} won {won} of {done}."
    )
    if done == 1:
        text = f"On test, each family against the tuned {baseline}: {parts}."
        return text + (
            " This is one study: one draw of tuning, so these differences carry the luck of "
            "that draw (which trials were sampled, which seed they trained with), not only seed "
            "noise; `--studies N` repeats the tuning."
        )
    tested = rated[rated["cannot_test"].isna()] if "cannot_test" in rated else rated.iloc[:0]
    if tested.empty:
        return text + f" With {_studies(done)} the difference cannot be tested (at least 2)."
    margin = rated["margin"].iloc[0]
    margin_text = (
        "no margin"
        if margin is None or not np.isfinite(margin)
        else (f"margin ±{margin * 100:.3g} pp")
    )
    design = str(rated["seeds_design"].iloc[0])
    decided: list[str] = []
    for outcome in ("better", "worse", "equivalent", "undecided"):
        rows = tested[tested["outcome"] == outcome]
        decided += [f"{r.family} ({points(r.estimate)}: {r.verdict})" for r in rows.itertuples()]
    return text + (
        f" The pre-registered test over studies × seeds ({design}; Holm over "
        f"{len(tested)} families, α = 0.05, {margin_text}): " + "; ".join(decided) + "."
    )


def _seeds_words(rated: pd.DataFrame) -> str:
    if "seeds_design" in rated and str(rated["seeds_design"].iloc[0]).startswith("final seeds"):
        return "final seeds drawn per study"
    return "the same final seeds"


def _spread(row) -> str:
    if row.studies < 2:
        return ""
    return f" (range {points(row.low)} to {points(row.high)}, won {row.wins} of {row.studies})"


def sensitivity_warnings(studies: list[DrawAnalysis]) -> list[str]:
    """One plain line per study and family whose sweep found a multiplier better than its
    winner beyond noise, with what the re-check made of it."""
    lines = []
    for study in studies:
        check, choice = study.choice.check, study.choice
        if check is None:
            continue
        for r in check[check["flagged"]].itertuples():
            where = f"study {study.index}: " if len(studies) > 1 else ""
            best = f"×{2.0**r.best_k:g}" if np.isfinite(r.best_k) else "another multiplier"
            noise = f"({r.reason})"
            if np.isfinite(r.threshold):
                noise = f"beyond its noise ({points(r.threshold).lstrip('+')}: {NOISE_SE:g} SE)"
            gain = f"by {points(r.difference)} " if np.isfinite(r.difference) else ""
            line = (
                f"Warning ({where}{r.family}): the sensitivity sweep found {best} better than "
                f"the winner's ×1 {gain}on validation, {noise}. "
            )
            lines.append(line + _recheck_words(choice, r.family))
    return lines


def _recheck_words(choice: Choice, family: str) -> str:
    candidate = choice.rechecks.get(family)
    if candidate is None:
        return "Confirmation is off, so it was not re-checked: the winner may not be the best."
    means = choice.recheck_means
    row = None if means is None else means[means["label"] == candidate["label"]]
    if row is None or row.empty or not np.isfinite(row["mean"].iloc[0]):
        return "Its re-check on the confirmation seeds has not run yet."
    mean, old = row["mean"].iloc[0], choice.confirmed[family]["confirmation_mean"]
    if choice.winners[family]["label"] == candidate["label"]:
        return (
            f"Re-checked on the confirmation seeds it scored {_pct(mean)} against the winner's "
            f"{_pct(old)}, so it replaced the winner."
        )
    return (
        f"Re-checked on the confirmation seeds it scored {_pct(mean)} against the winner's "
        f"{_pct(old)}, so the winner stays."
    )
