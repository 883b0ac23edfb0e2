"""The ``--tolerance`` syntax of the check: ``METRIC:AMOUNT``, an allowed worsening that
replaces the statistical test for that metric."""

from __future__ import annotations

import re

from clrbench.errors import ConfigError
from clrbench.gate.baseline import METRICS

TOLERANCE_EXAMPLE = "e.g. final_test_accuracy:0.5pp or final_train_loss:0.02"

AMOUNT = re.compile(r"^([+-]?)\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(pp)?$", re.IGNORECASE)


def parse_tolerance(text: str) -> tuple[str, float]:
    """``final_test_accuracy:0.5pp`` -> ``("final_test_accuracy", 0.005)``: an allowed
    worsening, always in the metric's bad direction (a sign may be written either way).
    Accuracies need their unit, ``pp`` (percentage points), so that ``0.5`` can never be read
    as 50 points; losses are plain numbers. Amounts beyond the metric's plausible range (more
    than 10 pp, a loss of 1) would switch the gate off and are refused."""
    name, _, amount = (part.strip() for part in text.partition(":"))
    metric = METRICS.get(name)
    if metric is None or not amount:
        raise ConfigError(
            f"--tolerance {text!r}: expected METRIC:AMOUNT ({TOLERANCE_EXAMPLE}); "
            f"metrics: {', '.join(METRICS)}"
        )
    match = AMOUNT.match(amount)
    if match is None:
        raise ConfigError(
            f"--tolerance {text!r}: {amount!r} is not an amount ({TOLERANCE_EXAMPLE})"
        )
    number, points = float(match.group(2)), match.group(3) is not None
    if metric.accuracy and not points:
        raise ConfigError(
            f"--tolerance {text!r}: an accuracy tolerance needs its unit, e.g. "
            f"{name}:{number:g}pp (percentage points)"
        )
    if points and not metric.accuracy:
        raise ConfigError(f"--tolerance {text!r}: 'pp' is for accuracies; {name} is a loss")
    value = number / 100 if points else number
    if value > metric.max_tolerance:
        limit = f"{metric.max_tolerance * 100:g}pp" if points else f"{metric.max_tolerance:g}"
        raise ConfigError(
            f"--tolerance {text!r}: more than {limit} would switch the gate off for {name}"
        )
    return name, value


def parse_tolerances(items: list[str] | None) -> dict[str, float]:
    """Every ``--tolerance`` option, by metric (a later one for the same metric wins)."""
    return dict(parse_tolerance(item) for item in items or [])
