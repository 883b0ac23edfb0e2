"""The regression check: is a results folder worse than its baseline, and how much could it see?

Per schedule and metric (``worse`` is the baseline mean minus the current mean for a
higher-is-better metric, the reverse for a lower-is-better one)::

    fail  if  worse > t_{1 - alpha, df} * SE,   SE = sqrt(s1²/n1 + s2²/n2)

a one-sided Welch test (df by Welch–Satterthwaite) at a per-comparison level ``alpha`` that
splits the whole check's false-alarm budget (1%) over the comparisons (Bonferroni): a metric
gets its share of the budget (final test accuracy 80%, best test accuracy and final train
loss 10% each), divided equally among the schedules compared. So an unchanged configuration
fails a whole check at most 1% of the time, whatever the number of schedules.

Every comparison also states its power: the *minimum detectable drop*, the true worsening it
would catch with 80% probability at its level, ``nc * SE`` with ``nc`` the non-centrality at
which a t(df) test at ``alpha`` rejects with probability 0.8.

When both sides ran the same 3+ seeds the test is paired: ``SE = sd(d) / sqrt(n)``, ``df = n - 1``
over the per-seed differences ``d``. A same-seed run is bitwise identical on one machine, and
another summation order (oneDNN vs Eigen kernels, i.e. another machine's float noise) moved
final test accuracy by 0.004-0.011 pp (sd of d) against a 0.16-0.29 pp seed spread (measured
with benchmarks/gate_noise.py), so pairing removes nearly all the seed noise. The paired test
is calibrated however large d's spread is (it is estimated from d itself); because that spread
can be ~0, a paired comparison also allows a small floor (0.1 pp, 10 test images; 0.001 of
loss), so that a change of a few images never fails.

It is a non-inferiority check, and each comparison ends in one of the decided outcomes
(docs/concepts/protocol.md): **worse** (it fails: the drop exceeds the allowed one), **better**
(the gain exceeds what the same one-sided test at the same level allows), **equivalent within
±margin** (accuracies, with the workload's margin or ``--margin``: the two one-sided tests at
the comparison's level put the change inside it, ``|d| + t_{1 - alpha, df} * SE < margin``), or
**undecided** (it passes: no drop beyond seed noise was seen, but no gain or equivalence was
shown either). ``non_inferior`` in the JSON: the one-sided bound excludes a drop of the margin.

A per-metric tolerance replaces the test by a fixed allowed worsening. Only the ok runs enter
the statistics; a schedule that gains diverged or failed runs fails on that alone, and so
does one with no ok run at all. No TensorFlow here: ``check`` starts in about a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from clrbench.gate.comparison import (
    FALSE_ALARM,
    POWER,
    Comparison,
    compare_metric,
    comparison_level,
)
from clrbench.gate.messages import (
    completeness_message,
    config_message,
    metric_message,
    power_notes,
    schedule_set_messages,
    seed_notes,
    status_message,
)

NOTHING_COMPARED = "nothing was compared: no schedule has ok runs both here and in the baseline"


@dataclass(frozen=True)
class GateCheck:
    """One check of the gate besides the metric comparisons, passed or not (the JUnit output
    lists each as a test case). ``subject`` is a schedule, or "" for the whole check;
    ``verdict`` is ``ok``, ``fail``, ``note`` (reported, not failing: --allow-config-change)
    or ``untested`` (a schedule on one side only); ``line`` says why when it is not ``ok``."""

    subject: str
    name: str
    verdict: str
    line: str | None = None


@dataclass
class CheckReport:
    """Everything a check found: all comparisons, failing lines and informative notes, and
    every other check made (``checks``, passed ones included)."""

    comparisons: list[Comparison] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: list[GateCheck] = field(default_factory=list)
    results: str = ""  # the results folder checked, as the user named it
    baseline: str = ""  # the baseline file it was checked against
    margin: float | None = None  # the accuracy metrics' equivalence margin (fraction)

    def record(self, subject: str, name: str, line: str | None, verdict: str = "fail") -> None:
        """Add a check: passed when ``line`` is None, else ``line`` is a failure (``verdict``
        ``fail``) or a note (``note``, ``untested``)."""
        if line is None:
            self.checks.append(GateCheck(subject, name, "ok"))
            return
        (self.failures if verdict == "fail" else self.notes).append(line)
        self.checks.append(GateCheck(subject, name, verdict, line))

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        """What ``clrbench check`` exits with: 0 passed, 1 a regression (or nothing compared)."""
        return 0 if self.passed else 1

    def console(self) -> str:
        """The aligned plain-text table, FAIL lines, notes and the verdict line."""
        from clrbench.gate.output import console

        return console(self, self.baseline)

    def markdown(self) -> str:
        """The Markdown section (a CI step summary)."""
        from clrbench.gate.output import markdown

        return markdown(self, self.results, self.baseline)

    def to_json(self) -> dict[str, Any]:
        """Machine-readable: the verdict, the rule, one entry per comparison, the lines."""
        return {
            "verdict": "passed" if self.passed else "failed",
            "test": "non-inferiority",
            "margin_pp": None if self.margin is None else round(self.margin * 100, 10),
            "false_alarm": FALSE_ALARM,
            "power": POWER,
            "comparisons": [comparison_json(c) for c in self.comparisons],
            "failures": self.failures,
            "notes": self.notes,
        }


def outcome_words(c: Comparison) -> str:
    """The comparison's outcome in words: "worse", "better", "equivalent within ±0.1 pp",
    "undecided"."""
    if c.outcome == "equivalent" and c.margin is not None:
        return f"equivalent within ±{c.margin * 100:.3g} pp"
    return c.outcome


def comparison_json(c: Comparison) -> dict[str, Any]:
    """One comparison as plain numbers (metric units: fractions for accuracies; NaN -> None)."""

    def number(value: float) -> float | None:
        return None if value is None or math.isnan(value) else float(value)

    def side(stat: dict[str, Any]) -> dict[str, Any]:
        return {"mean": stat["mean"], "sd": stat.get("std"), "n": stat["n"]}

    return {
        "schedule": c.schedule,
        "metric": c.metric,
        "direction": c.direction,
        "baseline": side(c.baseline),
        "current": side(c.current),
        "difference": c.difference,
        "allowed_drop": number(c.allowed),
        "minimum_detectable_drop": number(c.detectable),
        "alpha": None if c.tolerance is not None else c.alpha,
        "test": "tolerance" if c.tolerance is not None else "paired" if c.paired else "welch",
        "tolerance": c.tolerance,
        "verdict": c.verdict,
        "outcome": c.outcome,
        "margin": c.margin,
        "non_inferior": c.non_inferior,
    }


def check(
    current: dict[str, Any],
    baseline: dict[str, Any],
    tolerances: dict[str, float] | None = None,
    allow_config_change: bool = False,
    margin: float | None = None,
) -> CheckReport:
    """Compare a :func:`metrics_document` with a baseline; empty ``failures`` means pass.
    ``margin`` (a fraction): the accuracy metrics' equivalence margin (None: none)."""
    report = CheckReport(margin=margin)
    note, one_sided = ("note", "untested") if allow_config_change else ("fail", "fail")
    message = config_message(baseline, current, allowed=allow_config_change)
    report.record("", "configuration", message, note)
    for label, message in schedule_set_messages(baseline, current):
        report.record(label, "schedule set", message, one_sided)  # on one side only: untested
    common = [label for label in baseline["metrics"] if label in current["metrics"]]
    for label in common:
        runs = current["runs"][label]
        report.record(label, "runs complete", completeness_message(label, runs))
        report.record(label, "run status", status_message(label, baseline["runs"][label], runs))
        for name, stat in baseline["metrics"][label].items():
            now = current["metrics"][label].get(name)
            if now is None or now["mean"] is None or stat["mean"] is None:
                continue  # no ok runs on one side: the status check speaks for it
            alpha = comparison_level(name, len(common))
            tolerance = (tolerances or {}).get(name)
            comparison = compare_metric(label, name, stat, now, alpha, tolerance, margin)
            report.comparisons.append(comparison)
            if line := metric_message(comparison):
                report.failures.append(line)
    report.record("", "something compared", None if report.comparisons else NOTHING_COMPARED)
    report.notes += power_notes(report.comparisons) + seed_notes(report.comparisons)
    return report
