"""The gate's error rates, simulated with its real code: false alarms <= 1% of whole checks of
an unchanged configuration, and >= 80% power for a 0.5 pp drop of any one schedule's final
test accuracy, on the committed ci baseline's seed count.

Noise model: per schedule, the three gated metrics of one seed are drawn from a multivariate
normal with the mean vector and covariance of the committed baseline's real per-seed values
(reports/baseline-ci.json, trained with the ci preset). Baseline and current sides are drawn
independently: the worst case, another machine's float noise (same-seed runs on one machine
are bitwise equal and cannot fail). Each simulated check runs :func:`clrbench.gate.checker.check`
on two documents shaped as ``metrics_document`` writes them.

Draw counts (fixed RNG seeds, so the test is deterministic; the counts make the estimates
tight enough to mean something): 20,000 null checks, whose false-alarm estimate has a
standard error of 0.07 points near 1%; 2,000 checks per schedule with a 0.5 pp drop, a
standard error of at most 0.9 points near 80%.
"""

from __future__ import annotations

import copy
import zlib

import numpy as np
import pytest
from conftest import REPO

from clrbench.gate.baseline import METRICS, read_baseline
from clrbench.gate.checker import check
from clrbench.gate.comparison import FALSE_ALARM, POWER

NULL_CHECKS = 20_000
POWER_CHECKS = 2_000
DROP = 0.005  # 0.5 pp of accuracy
NAMES = list(METRICS)
BASELINE = REPO / "reports/baseline-ci.json"
LABELS = list(read_baseline(BASELINE)["metrics"])


@pytest.fixture(scope="module")
def baseline() -> dict:
    return read_baseline(BASELINE)


def noise_model(baseline: dict) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """Per schedule: mean vector and covariance of the real per-seed metric values, and n."""
    model = {}
    for label, per_metric in baseline["metrics"].items():
        values = np.array([per_metric[name]["values"] for name in NAMES])  # metrics x seeds
        model[label] = (values.mean(axis=1), np.cov(values), values.shape[1])
    return model


def document(template: dict, draws: dict[str, np.ndarray]) -> dict:
    """A copy of the baseline document whose per-seed values are ``draws`` (seeds x metrics)."""
    doc = copy.copy(template)
    doc["metrics"] = {}
    for label, values in draws.items():
        doc["metrics"][label] = {
            name: {
                "direction": METRICS[name].direction,
                "mean": float(values[:, i].mean()),
                "std": float(values[:, i].std(ddof=1)),
                "n": len(values),
            }
            for i, name in enumerate(NAMES)
        }
    return doc


def simulate(baseline: dict, checks: int, seed: int, shifted: str | None = None) -> np.ndarray:
    """``checks`` simulated checks; per check, the labels of the schedules that failed."""
    rng = np.random.default_rng(seed)
    model = noise_model(baseline)
    shift = np.zeros(len(NAMES))
    shift[NAMES.index("final_test_accuracy")] = -DROP
    failed = []
    for _ in range(checks):
        sides = []
        for side in ("baseline", "current"):
            draws = {
                label: rng.multivariate_normal(mean, cov, size=n)
                + (shift if side == "current" and label == shifted else 0)
                for label, (mean, cov, n) in model.items()
            }
            sides.append(document(baseline, draws))
        report = check(sides[1], sides[0])
        failed.append({c.schedule for c in report.comparisons if c.failed})
    return np.array(failed, dtype=object)


def test_noise_model_is_the_committed_baselines_real_spread(baseline):
    model = noise_model(baseline)
    for label, (mean, cov, n) in model.items():
        stat = baseline["metrics"][label]["final_test_accuracy"]
        assert n == stat["n"] >= 3
        assert np.sqrt(cov[0, 0]) == pytest.approx(stat["std"], rel=1e-9)
        assert mean[0] == pytest.approx(stat["mean"], rel=1e-12)


@pytest.mark.slow  # trains nothing, but 20,000 real checks take ~30 s of CPU
def test_unchanged_configuration_false_alarm_at_most_one_percent(baseline):
    failed = simulate(baseline, NULL_CHECKS, seed=12)
    rate = np.mean([bool(f) for f in failed])
    assert rate <= FALSE_ALARM, f"{rate:.4f} of {NULL_CHECKS} unchanged checks failed"
    assert rate > 0.001  # the budget is used, not wasted on a needlessly loose rule


@pytest.mark.slow  # trains nothing, but 2,000 real checks per schedule take ~4 s of CPU each
@pytest.mark.parametrize("label", LABELS)
def test_half_point_drop_of_one_schedule_is_caught(baseline, label):
    failed = simulate(baseline, POWER_CHECKS, seed=zlib.crc32(label.encode()), shifted=label)
    power = np.mean([label in f for f in failed])
    assert power >= POWER, f"{label}: a 0.5 pp drop was caught in {power:.1%} of checks"
