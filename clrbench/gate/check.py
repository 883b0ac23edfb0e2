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

A per-metric tolerance replaces the test by a fixed allowed worsening. Only the ok runs enter
the statistics; a schedule that gains diverged or failed runs fails on that alone, and so
does one with no ok run at all. No TensorFlow here: ``check`` starts in about a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special

from clrbench.baseline_doc import (
    METRICS,
    MIN_SEEDS,
    NOT_OK,
    config_changes,
    metrics_document,
)

if TYPE_CHECKING:
    from clrbench.store.results import Results

FALSE_ALARM = 0.01  # of a whole check of an unchanged configuration
POWER = 0.80  # the probability at which the minimum detectable drop is stated


def gate_settings() -> dict[str, Any]:
    """The rule's settings, recorded in each baseline."""
    shares = {name: m.share for name, m in METRICS.items()}
    return {"test": "welch-bonferroni", "false_alarm": FALSE_ALARM, "power": POWER} | {
        "shares": shares
    }


def comparison_level(metric: str, schedules: int) -> float:
    """The per-comparison false-alarm level ``alpha`` of a metric among ``schedules``."""
    share = METRICS[metric].share if metric in METRICS else 0.0
    return FALSE_ALARM * share / max(schedules, 1)


def welch(s1: float | None, n1: int, s2: float | None, n2: int) -> tuple[float, float]:
    """``(SE, df)`` of the difference of two means: ``SE = sqrt(a + b)`` with
    ``a = s1²/n1, b = s2²/n2`` and ``df = (a + b)² / (a²/(n1 - 1) + b²/(n2 - 1))``
    (Welch–Satterthwaite). A sample of one borrows the other's std (``df`` = its n - 1);
    ``(nan, nan)`` when neither sample has a std."""
    has1, has2 = s1 is not None and n1 > 1, s2 is not None and n2 > 1
    if not (has1 or has2):
        return math.nan, math.nan
    df = None
    if not has1:
        s1, df = s2, n2 - 1
    elif not has2:
        s2, df = s1, n1 - 1
    a, b = s1**2 / n1, s2**2 / n2
    if df is None:
        df = (n1 + n2 - 2) if a + b == 0 else (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
    return math.sqrt(a + b), float(df)


def critical_drop(se: float, df: float, alpha: float) -> float:
    """``t_{1 - alpha, df} * SE``: the largest worsening a test at level alpha lets pass."""
    return float(special.stdtrit(df, 1 - alpha)) * se


def detectable_drop(se: float, df: float, alpha: float, power: float = POWER) -> float:
    """The true worsening detected with probability ``power``: ``nc * SE`` where a
    non-central t(df, nc) exceeds ``t_{1 - alpha, df}`` with that probability."""
    if math.isnan(se):
        return math.nan
    t_critical = float(special.stdtrit(df, 1 - alpha))
    return float(special.nctdtrinc(df, 1 - power, t_critical)) * se


@dataclass(frozen=True)
class Comparison:
    """One schedule's metric against its baseline: the test, its power and its verdict."""

    schedule: str
    metric: str
    direction: str
    baseline: dict[str, Any]
    current: dict[str, Any]
    alpha: float
    se: float  # NaN when the noise cannot be estimated (one ok seed on each side)
    df: float
    tolerance: float | None = None  # a fixed allowed worsening replacing the test
    paired: bool = False  # same seeds on both sides: a paired test over per-seed differences

    @property
    def floor(self) -> float:
        return METRICS[self.metric].paired_floor if self.paired and self.metric in METRICS else 0.0

    @property
    def accuracy(self) -> bool:
        return self.metric in METRICS and METRICS[self.metric].accuracy

    @property
    def tested(self) -> bool:
        return self.tolerance is not None or not math.isnan(self.se)

    @property
    def allowed(self) -> float:
        if self.tolerance is not None:
            return self.tolerance
        if math.isnan(self.se):
            return math.nan
        return max(critical_drop(self.se, self.df, self.alpha), self.floor)

    @property
    def detectable(self) -> float:
        """Minimum drop detected with 80% probability (NaN when untested)."""
        if math.isnan(self.se):
            return math.nan
        over_threshold = float(special.stdtrit(self.df, POWER)) * self.se
        if self.tolerance is not None:
            return self.tolerance + over_threshold
        return max(detectable_drop(self.se, self.df, self.alpha), self.floor + over_threshold)

    @property
    def difference(self) -> float:
        return self.current["mean"] - self.baseline["mean"]

    @property
    def worse_by(self) -> float:
        return -self.difference if self.direction == "higher" else self.difference

    @property
    def failed(self) -> bool:
        # 1e-12: equal means computed in another order must not fail a zero-spread comparison
        return self.tested and self.worse_by > self.allowed + 1e-12

    @property
    def verdict(self) -> str:
        return "fail" if self.failed else "ok" if self.tested else "untested"


def compare_metric(
    schedule: str,
    metric: str,
    baseline: dict[str, Any],
    current: dict[str, Any],
    alpha: float,
    tolerance: float | None = None,
) -> Comparison:
    """The comparison of one metric's statistics (``mean, std, n``, optionally per-seed
    ``seeds`` and ``values``) under the rule above: paired when the seeds are the same."""
    direction = baseline["direction"]
    differences = paired_differences(baseline, current)
    if differences is None:
        se, df = welch(baseline.get("std"), baseline["n"], current.get("std"), current["n"])
    else:
        se, df = (
            float(np.std(differences, ddof=1) / math.sqrt(differences.size)),
            differences.size - 1,
        )
    paired = differences is not None
    args = (schedule, metric, direction, baseline, current, alpha, se, df, tolerance, paired)
    return Comparison(*args)


def paired_differences(baseline: dict[str, Any], current: dict[str, Any]) -> np.ndarray | None:
    """Current minus baseline value per seed when both sides have the same seeds, at least
    MIN_SEEDS of them (a paired test over 2 seeds has 1 degree of freedom: no power)."""
    seeds = baseline.get("seeds")
    values = (baseline.get("values"), current.get("values"))
    if not seeds or seeds != current.get("seeds") or len(seeds) < MIN_SEEDS:
        return None
    if None in values or not len(values[0]) == len(values[1]) == len(seeds):
        return None
    return np.asarray(values[1], dtype=float) - np.asarray(values[0], dtype=float)


# --- formatting shared by the messages and the CLI ---


def format_value(c: Comparison, value: float) -> str:
    return f"{value * 100:.2f}%" if c.accuracy else f"{value:.4f}"


def format_amount(c: Comparison, amount: float, signed: bool = False) -> str:
    if math.isnan(amount):
        return "n/a"
    sign = "+" if signed else ""
    return f"{amount * 100:{sign}.2f} pp" if c.accuracy else f"{amount:{sign}.4f}"


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


def structure_messages(baseline: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Lines for a changed configuration, a schedule gone missing and a new schedule."""
    lines = []
    if current["config_hash"] != baseline["config_hash"]:
        changes = config_changes(baseline["experiment"], current["experiment"])
        what = "; ".join(changes) if changes else "schedules differ"
        lines.append(
            f"configuration changed since the baseline: {what} "
            "(make a new baseline, or pass --allow-config-change to compare anyway)"
        )
    for label in baseline["metrics"]:
        if label not in current["metrics"]:
            lines.append(f"{label}: in the baseline but not in the results")
    for label in current["metrics"]:
        if label not in baseline["metrics"]:
            lines.append(f"{label}: new schedule, not in the baseline (not checked)")
    return lines


# --- the whole check ---


@dataclass
class CheckReport:
    """Everything a check found: all comparisons, failing lines and informative notes."""

    comparisons: list[Comparison] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        """Machine-readable: the verdict, the rule, one entry per comparison, the lines."""
        return {
            "verdict": "passed" if self.passed else "failed",
            "false_alarm": FALSE_ALARM,
            "power": POWER,
            "comparisons": [comparison_json(c) for c in self.comparisons],
            "failures": self.failures,
            "notes": self.notes,
        }


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
    }


def check(
    current: dict[str, Any],
    baseline: dict[str, Any],
    tolerances: dict[str, float] | None = None,
    allow_config_change: bool = False,
) -> CheckReport:
    """Compare a :func:`metrics_document` with a baseline; empty ``failures`` means pass."""
    report = CheckReport()
    structure = structure_messages(baseline, current)
    (report.notes if allow_config_change else report.failures).extend(structure)
    common = [label for label in baseline["metrics"] if label in current["metrics"]]
    for label in common:
        runs = current["runs"][label]
        lines = (
            completeness_message(label, runs),
            status_message(label, baseline["runs"][label], runs),
        )
        report.failures += [line for line in lines if line]
        for name, stat in baseline["metrics"][label].items():
            now = current["metrics"][label].get(name)
            if now is None or now["mean"] is None or stat["mean"] is None:
                continue  # no ok runs on one side: the status check speaks for it
            alpha = comparison_level(name, len(common))
            tolerance = (tolerances or {}).get(name)
            comparison = compare_metric(label, name, stat, now, alpha, tolerance)
            report.comparisons.append(comparison)
            if line := metric_message(comparison):
                report.failures.append(line)
    if not report.comparisons:
        report.failures.append(
            "nothing was compared: no schedule has ok runs both here and in the baseline"
        )
    report.notes += power_notes(report.comparisons) + seed_notes(report.comparisons)
    return report


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


def check_results(
    results: Results,
    baseline: dict[str, Any],
    tolerances: dict[str, float] | None = None,
    allow_config_change: bool = False,
) -> CheckReport:
    """:func:`check` of a loaded results folder against a baseline document."""
    return check(metrics_document(results), baseline, tolerances, allow_config_change)
