"""One comparison of the regression gate: a metric of a schedule, baseline against current, as a
one-sided Welch (or paired) t-test with its minimum detectable drop (see ``clrbench.gate.checker``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from clrbench.gate.baseline import METRICS, MIN_SEEDS

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
    df: float | None = None
    if not has1:
        s1, df = s2, n2 - 1
    elif not has2:
        s2, df = s1, n1 - 1
    assert s1 is not None and s2 is not None  # one side at least has a std: copied over above
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
    margin: float | None = None  # accuracies: the workload's margin (fraction), else None

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

    @property
    def outcome(self) -> str:
        """The decided answer, non-inferiority first: ``worse`` when the check fails (the drop
        exceeds the allowed one); ``better`` when the gain exceeds what the same one-sided
        test at the same level allows (and the paired floor); ``equivalent`` when the two
        one-sided tests at that level put the change inside ±margin (accuracies with a
        margin); else ``undecided`` (an untested comparison too)."""
        if self.failed:
            return "worse"
        if not self.tested or self.tolerance is not None and math.isnan(self.se):
            return "undecided"
        gain = -self.worse_by
        if gain > max(critical_drop(self.se, self.df, self.alpha), self.floor) + 1e-12:
            return "better"
        if self.margin is not None:
            critical = float(special.stdtrit(self.df, 1 - self.alpha)) * self.se
            if abs(self.difference) + critical < self.margin:
                return "equivalent"
        return "undecided"

    @property
    def non_inferior(self) -> bool | None:
        """Whether the change is shown no worse than −margin (its one-sided 1 − alpha bound);
        None without a margin or a test."""
        if self.margin is None or math.isnan(self.se):
            return None
        bound = float(special.stdtrit(self.df, 1 - self.alpha)) * self.se
        return -self.worse_by - bound > -self.margin


def compare_metric(
    schedule: str,
    metric: str,
    baseline: dict[str, Any],
    current: dict[str, Any],
    alpha: float,
    tolerance: float | None = None,
    margin: float | None = None,
) -> Comparison:
    """The comparison of one metric's statistics (``mean, std, n``, optionally per-seed
    ``seeds`` and ``values``) under the rule above: paired when the seeds are the same.
    ``margin`` (a fraction) applies to accuracy metrics only."""
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
    accuracy = metric in METRICS and METRICS[metric].accuracy
    args = (schedule, metric, direction, baseline, current, alpha, se, df, tolerance, paired)
    return Comparison(*args, margin=margin if accuracy else None)


def paired_differences(baseline: dict[str, Any], current: dict[str, Any]) -> np.ndarray | None:
    """Current minus baseline value per seed when both sides have the same seeds, at least
    MIN_SEEDS of them (a paired test over 2 seeds has 1 degree of freedom: no power)."""
    seeds = baseline.get("seeds")
    before, after = baseline.get("values"), current.get("values")
    if not seeds or seeds != current.get("seeds") or len(seeds) < MIN_SEEDS:
        return None
    if before is None or after is None or not len(before) == len(after) == len(seeds):
        return None
    return np.asarray(after, dtype=float) - np.asarray(before, dtype=float)


# --- formatting shared by the messages and the CLI ---
