"""The report's generated conclusion: what the summary and comparison tables support, in words.

Sentences only; every number comes from ``clrbench.analysis.stats``'s tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clrbench.analysis.stats import ALPHA, MIN_SEEDS
from clrbench.text import format_p, plural, points


def _top_sentence(top: pd.Series, comparison: pd.DataFrame, baseline: str) -> str:
    std = top["final_test_accuracy_std"]
    spread = f" ± {std * 100:.2f}" if np.isfinite(std) else ""
    name = f"{top['schedule']} (the baseline)" if top["schedule"] == baseline else top["schedule"]
    text = (
        f"{name} reached the highest final test accuracy "
        f"({top['final_test_accuracy_mean'] * 100:.2f}%{spread}, "
        f"{plural(top['ok'], 'seed')})"
    )
    row = comparison[comparison["schedule"] == top["schedule"]]
    if row.empty:
        return text + "."
    row = row.iloc[0]
    text += f", {points(row['difference'])} over {baseline}"
    if not np.isfinite(row["p_holm"]):
        return text + f": {row['verdict']}."
    interval = f"95% CI {points(row['ci_low'])} to {points(row['ci_high'])}"
    p_text = format_p(row["p_holm"])
    text += f" ({interval}, Holm-adjusted p {p_text if p_text[0] == '<' else '= ' + p_text})"
    return text + f": {row['verdict']} at {row['n']} vs {row['n_baseline']} seeds."


def margin_text(comparison: pd.DataFrame) -> str:
    """ "±0.1 pp" from a comparison table's ``margin`` column, or "no margin"."""
    margin = comparison["margin"].iloc[0] if "margin" in comparison and len(comparison) else None
    return "no margin" if margin is None or not np.isfinite(margin) else f"±{margin * 100:.3g} pp"


def _comparisons_sentence(comparison: pd.DataFrame, baseline: str) -> str:
    """Each tested schedule's outcome against the baseline, grouped by outcome."""
    if comparison.empty:
        return ""
    tested = comparison[comparison["p_holm"].notna()]
    untested = comparison.loc[comparison["p_holm"].isna(), "schedule"].astype(str).tolist()
    if tested.empty:
        return (
            f"Too few seeds to test any difference against {baseline} "
            f"(at least {MIN_SEEDS} ok seeds per schedule are needed, each with some variation)."
        )
    which = "the one comparison tested" if len(tested) == 1 else f"the {len(tested)} tested"
    parts = []
    for outcome in ("better", "worse", "equivalent", "undecided"):
        rows = tested[tested["outcome"] == outcome]
        if rows.empty:
            continue
        names = ", ".join(f"{r.schedule} ({points(r.difference)})" for r in rows.itertuples())
        if outcome == "equivalent":
            parts.append(f"equivalent within {margin_text(comparison)}: {names}")
        elif outcome == "undecided":
            more = [m for m in rows["more_seeds"] if m is not None and np.isfinite(m)]
            hint = f"; ~{int(max(more))} more seeds per schedule would likely decide all"
            hint = hint if more else ""
            parts.append(f"undecided: {names}{hint}")
        else:
            parts.append(f"{outcome}: {names}")
    text = (
        f"Against {baseline} (Holm over {which}, α = {ALPHA}, margin "
        f"{margin_text(comparison)}): " + "; ".join(parts) + "."
    )
    if untested:
        text += f" Not tested (too few seeds or no variation): {', '.join(untested)}."
    return text


def _iterations(value: float) -> str:
    return f"{value:,.0f}" if np.isfinite(value) else "never (most runs did not reach it)"


def _speed_sentence(summary: pd.DataFrame, speed: pd.DataFrame, resolution: int | None) -> str:
    """Which schedule reached the target in the fewest iterations (median over its ok runs, a
    run that never reached it counting as never), and whether that is beyond seed noise."""
    if "n_reached" not in summary or summary["target"].isna().all():
        return ""
    target = f"{summary['target'].iloc[0] * 100:.4g}%"
    ranked = summary[np.isfinite(summary["iterations_to_target_median"])]
    if ranked.empty:
        return f"No schedule reached the {target} test-accuracy target in most of its ok runs."
    best = ranked["iterations_to_target_median"].min()
    fastest = ranked[ranked["iterations_to_target_median"] == best]
    names = " and ".join(str(s) for s in fastest["schedule"])
    runs = ", ".join(f"{r.n_reached} of {r.ok}" for r in fastest.itertuples())
    verb = "tie as fastest" if len(fastest) > 1 else "is fastest"
    step = f"; evaluated every {resolution:,} iterations" if resolution else ""
    text = (
        f"To {target} test accuracy, {names} {verb} (median {best:,.0f} iterations, "
        f"{runs} ok runs reached it{step})"
    )
    if speed.empty:
        return text + "."
    baseline = str(speed["baseline"].iloc[0])
    others = speed[speed["schedule"].isin(fastest["schedule"])]
    if baseline in set(fastest["schedule"].astype(str)) or others.empty:
        return text + "."
    row = others.sort_values("p_holm", na_position="last").iloc[0]
    text += f", against {_iterations(row['median_baseline'])} for {baseline}"
    if not np.isfinite(row["p_holm"]):
        return text + f": {row['verdict']}, so not tested against seed noise."
    p_text = format_p(row["p_holm"])
    p_text = p_text if p_text[0] == "<" else "= " + p_text
    noise = "beyond seed noise" if row["significant"] else "within seed noise"
    return text + f" (Mann-Whitney, Holm-adjusted p {p_text}): {noise}."


def conclusion(
    summary: pd.DataFrame,
    comparison: pd.DataFrame,
    speed: pd.DataFrame | None = None,
    resolution: int | None = None,
) -> str:
    """A few sentences stating what the summary and comparison tables support, and no more.

    Every comparison is worded by its decided outcome (better / worse / equivalent within the
    margin / undecided, ``clrbench.analysis.decide``); untested ones are called out as such.
    """
    with_data = summary[summary["final_test_accuracy_mean"].notna()]
    if with_data.empty:
        return "No run finished ok, so there is nothing to compare; see the runs table."
    baseline = str(comparison["baseline"].iloc[0]) if len(comparison) else ""
    sentences = [
        _top_sentence(with_data.iloc[0], comparison, baseline),
        _comparisons_sentence(comparison, baseline),
        _speed_sentence(summary, pd.DataFrame() if speed is None else speed, resolution),
    ]
    runs, ok = int(summary["runs"].sum()), int(summary["ok"].sum())
    if ok < runs:
        sentences.append(
            f"{runs - ok} of {runs} runs did not finish ok (listed under Runs); "
            "the statistics use the ok runs only."
        )
    return " ".join(s for s in sentences if s)
