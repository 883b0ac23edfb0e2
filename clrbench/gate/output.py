"""The check as text: a console table and a Markdown section, both stating each comparison's
power (the minimum drop it would detect with 80% probability)."""

from __future__ import annotations

from typing import Any

from clrbench.gate.checker import outcome_words
from clrbench.gate.comparison import FALSE_ALARM, POWER, Comparison
from clrbench.gate.messages import format_amount, format_value
from clrbench.text import plural

COLUMNS = ("schedule", "metric", "baseline", "current", "change", "allowed", "detectable", "",
           "outcome")  # fmt: skip


def _rule() -> str:
    return (
        "a non-inferiority check: a one-sided Welch test per schedule and metric (paired t-test "
        f"when the seeds are the same), sharing a {FALSE_ALARM:.0%} false-alarm budget over the "
        f"whole check; 'detectable' is the drop it catches with {POWER:.0%} probability; "
        "outcome: worse (fails), better, equivalent within the margin, or undecided"
    )


def _cells(c: Comparison) -> list[str]:
    arrow = "↑" if c.direction == "higher" else "↓"
    worst_allowed = -c.allowed if c.direction == "higher" else c.allowed
    verdict = {"fail": "FAIL", "ok": "ok", "untested": "untested"}[c.verdict]
    return [
        c.schedule,
        f"{c.metric} {arrow}",
        _side(c, c.baseline),
        _side(c, c.current),
        format_amount(c, c.difference, signed=True),
        format_amount(c, worst_allowed, signed=True),
        format_amount(c, c.detectable),
        verdict,
        outcome_words(c),
    ]


def _side(c: Comparison, stat: dict[str, Any]) -> str:
    spread = "" if stat.get("std") is None else " ± " + format_amount(c, stat["std"])
    return f"{format_value(c, stat['mean'])}{spread.removesuffix(' pp')} (n={stat['n']})"


def console(report: Any, baseline_label: str) -> str:
    """Aligned plain-text table, then FAIL lines, notes and the verdict."""
    rows = [list(COLUMNS)] + [_cells(c) for c in report.comparisons]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines += [f"({_rule()})", ""] if report.comparisons else []
    lines += [f"FAIL {line}" for line in report.failures]
    lines += [f"note: {line}" for line in report.notes]
    compared = len({c.schedule for c in report.comparisons})
    if report.passed:
        lines.append(f"check passed: {compared} schedules within seed noise of {baseline_label}")
    else:
        lines.append(
            f"check FAILED: {plural(len(report.failures), 'problem')} against {baseline_label}"
        )
    return "\n".join(lines) + "\n"


def markdown(report: Any, results_label: str, baseline_label: str) -> str:
    """The check as a Markdown section: verdict, one row per comparison, failures, notes."""
    verdict = "passed" if report.passed else f"FAILED ({plural(len(report.failures), 'problem')})"
    lines = [
        f"### clrbench check: {verdict}",
        "",
        f"`{results_label}` against `{baseline_label}`: {_rule()}. "
        "↑ higher is better, ↓ lower is better.",
        "",
        "| schedule | metric | baseline | current | change | allowed | detectable | result "
        "| outcome |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for c in report.comparisons:
        cells = _cells(c)
        cells[-2] = "**FAIL**" if c.failed else cells[-2]
        lines.append("| " + " | ".join(cells) + " |")
    for title, items in (("Failures", report.failures), ("Notes", report.notes)):
        if items:
            lines += ["", f"**{title}**", "", *(f"- {item}" for item in items)]
    return "\n".join(lines) + "\n"
