"""What the regression gate says: one line per failure, and notes on its power and seeds."""

from __future__ import annotations

import math
from typing import Any

from clrbench.gate.baseline import MIN_SEEDS, NOT_OK, config_changes
from clrbench.gate.comparison import Comparison
from clrbench.text import number


def format_value(c: Comparison, value: float) -> str:
    return f"{number(value * 100, '.2f')}%" if c.accuracy else number(value, ".4f")


def format_amount(c: Comparison, amount: float, signed: bool = False) -> str:
    """An accuracy amount in pp, a loss amount as it is; ``signed``: "+0.12 pp", "−0.12 pp"."""
    if math.isnan(amount):
        return "n/a"
    sign = "+" if signed else ""
    if c.accuracy:
        return f"{number(amount * 100, sign + '.2f')} pp"
    return number(amount, sign + ".4f")


def metric_message(c: Comparison) -> str | None:
    """None, or: schedule, metric, both values, the change and the allowed worsening."""
    if not c.failed:
        return None
    verb = "fell" if c.direction == "higher" else "rose"
    if c.tolerance is not None:
        why = "the --tolerance"
    else:
        test = "paired t-test" if c.paired else "Welch test"
        why = f"one-sided {test} at {c.alpha:.2%} false alarm"
        why += f"; n = {c.baseline['n']} vs {c.current['n']}"
    return (
        f"{c.schedule}: {c.metric} {verb} from {format_value(c, c.baseline['mean'])} to "
        f"{format_value(c, c.current['mean'])} ({format_amount(c, c.difference, signed=True)}), "
        f"more than the allowed {format_amount(c, c.allowed)} ({why})"
    )


# --- whole-schedule and structural checks: each None or one line ---


def status_message(schedule: str, baseline: dict[str, Any], current: dict[str, Any]) -> str | None:
    """None, or a line when no run finished ok, or a larger share of the runs diverged or
    failed than in the baseline."""
    bad, bad_before = (sum(r[s] for s in NOT_OK) for r in (current, baseline))
    detail = f"diverged {current['diverged']}, failed {current['failed']}"
    if current["runs"] and current["ok"] == 0:
        return f"{schedule}: no run finished ok ({detail}); nothing to compare"
    if bad == 0 or bad / current["runs"] <= bad_before / max(baseline["runs"], 1):
        return None
    return (
        f"{schedule}: {bad} of {current['runs']} runs did not finish ok ({detail}); "
        f"the baseline had {bad_before} of {baseline['runs']}"
    )


def completeness_message(schedule: str, current: dict[str, Any]) -> str | None:
    """None, or a line when runs of the experiment are missing from the folder."""
    if current["runs"] >= current["expected"]:
        return None
    return (
        f"{schedule}: only {current['runs']} of the experiment's {current['expected']} runs "
        "are complete (interrupted suite?)"
    )


def config_message(
    baseline: dict[str, Any], current: dict[str, Any], allowed: bool = False
) -> str | None:
    """None, or a line naming what changed in the configuration since the baseline; with
    ``allowed`` (``--allow-config-change``) it says the check compared anyway."""
    if current["config_hash"] == baseline["config_hash"]:
        return None
    changes = config_changes(baseline["experiment"], current["experiment"])
    what = "; ".join(changes) if changes else "schedules differ"
    if allowed:
        return f"configuration changed since the baseline: {what} (compared anyway, as asked)"
    return (
        f"configuration changed since the baseline: {what} "
        "(make a new baseline, or pass --allow-config-change to compare anyway)"
    )


def schedule_set_messages(
    baseline: dict[str, Any], current: dict[str, Any]
) -> list[tuple[str, str]]:
    """``(schedule, line)`` for each schedule gone missing from the results and each new one."""
    missing = [
        (label, f"{label}: in the baseline but not in the results")
        for label in baseline["metrics"]
        if label not in current["metrics"]
    ]
    new = [
        (label, f"{label}: new schedule, not in the baseline (not checked)")
        for label in current["metrics"]
        if label not in baseline["metrics"]
    ]
    return missing + new


# --- the whole check ---


def power_notes(comparisons: list[Comparison]) -> list[str]:
    """Where a comparison has fewer than MIN_SEEDS seeds on a side, or none can be tested."""
    notes = []
    for c in comparisons:
        if c.metric != "final_test_accuracy":
            continue
        n = min(c.baseline["n"], c.current["n"])
        if not c.tested:
            notes.append(f"{c.schedule}: one ok seed on each side: no statistical power, untested")
        elif n < MIN_SEEDS and c.tolerance is None:
            notes.append(
                f"{c.schedule}: n = {c.baseline['n']} vs {c.current['n']} seeds: no useful "
                f"statistical power (it would miss a drop of {format_amount(c, c.detectable)} "
                "one time in five)"
            )
    return notes


def seed_notes(comparisons: list[Comparison]) -> list[str]:
    """Whether the seeds match; if so the largest per-seed change of final test accuracy
    (zero on the same kind of machine: runs are deterministic)."""
    same = [c for c in comparisons if c.metric == "final_test_accuracy"]
    if not same or any(not c.baseline.get("values") or not c.current.get("values") for c in same):
        return []
    if any(c.baseline.get("seeds") != c.current.get("seeds") for c in same):
        return ["seeds differ from the baseline's: compared as independent samples (Welch)"]
    how = "compared seed by seed (paired)"
    if not all(c.paired for c in same):
        how = f"fewer than {MIN_SEEDS} to pair, compared as independent samples (Welch)"
    pairs = [zip(c.baseline["values"], c.current["values"], strict=True) for c in same]
    largest = max(abs(a - b) for pair in pairs for a, b in pair)
    return [
        f"same seeds as the baseline: {how}; largest per-seed change of final_test_accuracy "
        f"{largest * 100:.2f} pp"
    ]
