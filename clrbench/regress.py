"""Baseline files and the regression check: is a results folder worse than its baseline?

A baseline holds an experiment's configuration (and a hash of it) and, per schedule, the mean,
sample std and count over the ok runs' seeds of each gated metric, with the metric's direction.

The rule, per schedule and metric (``worse`` is the baseline mean minus the current mean for a
higher-is-better metric, the reverse for a lower-is-better one)::

    fail  if  worse > t_{0.99, df} * sqrt(s1²/n1 + s2²/n2) + floor

i.e. a one-sided Welch test at 99% (df by Welch–Satterthwaite), plus a small absolute floor so
that a difference too small to matter never fails even when the seeds happen to agree closely.
A per-metric tolerance (``final_test_accuracy:-0.5pp``) replaces margin and floor by a fixed
allowed worsening. Only the ok runs enter the statistics; a schedule that gains diverged or
failed runs fails on that alone. Each check is a small function returning None or one line.
No TensorFlow here: ``baseline`` and ``check`` start in about a second.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scipy import stats as sps

from clrbench import atomic
from clrbench.errors import ResultsError

if TYPE_CHECKING:
    from clrbench.results import Results

FORMAT = "clrbench-baseline/1"
CONFIDENCE = 0.99
DIRECTIONS = ("higher", "lower")
NOT_OK = ("diverged", "failed")


@dataclass(frozen=True)
class Metric:
    """A gated metric: a column of ``stats.final_metrics``, its direction and floor."""

    name: str
    direction: str  # "higher" or "lower" is better
    floor: float  # absolute worsening always allowed (fraction for accuracies)
    accuracy: bool  # shown in % / pp


# Floors: 0.2 pp of accuracy is 20 of the 10,000 test images, less than this benchmark calls a
# change; 0.005 of train loss is ~4% of the ci preset's final loss (0.08-0.20). On the ci
# preset one seed std is 0.14-0.69 pp and 0.002-0.010, so the floors matter only when the
# seeds happen to agree closely, where the Welch margin alone would flag a trivial change.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("final_test_accuracy", "higher", 0.002, True),
        Metric("best_test_accuracy", "higher", 0.002, True),
        Metric("final_train_loss", "lower", 0.005, False),
    )
}


# --- the configuration and its hash ---


def config_of(experiment: dict[str, Any]) -> dict[str, Any]:
    """What determines each seed's numbers: the experiment minus ``name`` and ``seeds``,
    schedules keyed by label (their order does not matter)."""
    settings = dict(experiment.get("experiment", {}))
    for key in ("name", "seeds"):
        settings.pop(key, None)
    schedules = {
        str(s.get("label", s.get("name"))): {k: v for k, v in s.items() if k != "label"}
        for s in experiment.get("schedule", [])
    }
    return {"experiment": settings, "schedule": schedules}


def config_hash(experiment: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of :func:`config_of`."""
    text = json.dumps(config_of(experiment), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def config_changes(baseline: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human lines such as ``epochs 4 -> 5`` or ``constant.lr 0.1 -> 0.001`` (schedules present
    in only one of them are left to the coverage check)."""
    old, new = config_of(baseline), config_of(current)
    changes = _dict_changes("", old["experiment"], new["experiment"])
    for label in sorted(old["schedule"].keys() & new["schedule"].keys()):
        changes += _dict_changes(f"{label}.", old["schedule"][label], new["schedule"][label])
    return changes


def _dict_changes(prefix: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    missing = object()
    lines = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key, missing), new.get(key, missing)
        if a != b:
            shown = ["(none)" if v is missing else json.dumps(v) for v in (a, b)]
            lines.append(f"{prefix}{key} {shown[0]} -> {shown[1]}")
    return lines


# --- making a baseline (the same document describes the current results in a check) ---


def metrics_document(results: Results) -> dict[str, Any]:
    """Experiment, config hash, per-schedule run counts and per-metric statistics of ok runs."""
    from clrbench.stats import final_metrics

    final = final_metrics(results)
    expected = _expected_runs(results.experiment)
    metrics, runs = {}, {}
    for label in results.schedules:
        rows = final[final["schedule"] == label]
        ok = rows[rows["status"] == "ok"]
        counts = {s: int((rows["status"] == s).sum()) for s in ("ok", *NOT_OK)}
        runs[label] = {"expected": expected.get(label, len(rows)), "runs": len(rows), **counts}
        runs[label]["seeds"] = sorted(int(s) for s in rows["seed"])
        metrics[label] = {name: _stat(ok, m) for name, m in METRICS.items()}
    return {
        "config_hash": config_hash(results.experiment),
        "experiment": results.experiment,
        "runs": runs,
        "metrics": metrics,
    }


def _expected_runs(experiment: dict[str, Any]) -> dict[str, int]:
    seeds = experiment.get("experiment", {}).get("seeds", [])
    count = seeds if isinstance(seeds, int) else len(seeds)
    return {str(s.get("label", s.get("name"))): count for s in experiment.get("schedule", [])}


def _stat(ok: Any, metric: Metric) -> dict[str, Any]:
    rows = ok[ok[metric.name].notna()].sort_values("seed")
    values = rows[metric.name].to_numpy(dtype=float)
    n = int(values.size)
    return {
        "direction": metric.direction,
        "mean": float(values.mean()) if n else None,
        "std": float(values.std(ddof=1)) if n > 1 else None,
        "n": n,
        "seeds": [int(s) for s in rows["seed"]],
        "values": [float(v) for v in values],
    }


def make_baseline(results: Results) -> dict[str, Any]:
    """The baseline document of a results folder (refuses an incomplete suite)."""
    if not results.experiment:
        raise ResultsError(
            f"{results.path}: no experiment.toml; a baseline needs the configuration"
        )
    document = metrics_document(results)
    short = [
        f"{label} {v['runs']}/{v['expected']}"
        for label, v in document["runs"].items()
        if v["runs"] < v["expected"]
    ]
    if short:
        raise ResultsError(
            f"{results.path}: incomplete suite ({', '.join(short)} runs); "
            "finish it (`run` resumes) before making a baseline"
        )
    from clrbench import __version__

    created = datetime.now(UTC).isoformat(timespec="seconds")
    head = {"format": FORMAT, "created_at": created, "clrbench_version": __version__}
    head |= {"source": str(results.path), "confidence": CONFIDENCE}
    head["floors"] = {name: m.floor for name, m in METRICS.items()}
    return head | document


def write_baseline(document: dict[str, Any], path: str | os.PathLike[str], force: bool) -> Path:
    """Write the baseline (temporary file, then rename); never replaces one without ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise ResultsError(f"{path}: baseline exists; pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(document, indent=2, allow_nan=False) + "\n")
    return path


def read_baseline(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A baseline file, validated; ResultsError (one line) when missing or corrupt."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such baseline file") from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: cannot read baseline ({type(exc).__name__}: {exc})") from None
    problem = _shape_problem(document)
    if problem:
        raise ResultsError(f"{path}: not a clrbench baseline ({problem})")
    return document


def _shape_problem(document: Any) -> str | None:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return f"'format' is not {FORMAT!r}"
    if not isinstance(document.get("experiment"), dict) or not document["experiment"]:
        return "no 'experiment'"
    if document.get("config_hash") != config_hash(document["experiment"]):
        return "'config_hash' does not match its 'experiment'"
    metrics, runs = document.get("metrics"), document.get("runs")
    if not isinstance(metrics, dict) or not metrics or not isinstance(runs, dict):
        return "no 'metrics' or 'runs'"
    for label, per_metric in metrics.items():
        counts = runs.get(label)
        if not isinstance(counts, dict) or not all(k in counts for k in ("runs", "ok", *NOT_OK)):
            return f"schedule {label!r} lacks its run counts"
        for name, stat in (per_metric if isinstance(per_metric, dict) else {None: None}).items():
            numbers = isinstance(stat, dict) and all(
                isinstance(stat.get(k), int | float | None) for k in ("mean", "std")
            )
            if (
                not numbers
                or stat.get("direction") not in DIRECTIONS
                or not isinstance(stat.get("n"), int)
            ):
                return f"{label}.{name} needs a direction, mean, std and n"
    return None


# --- the check: small functions, each returning None or one exact line ---


def welch_margin(
    s1: float | None, n1: int, s2: float | None, n2: int, confidence: float = CONFIDENCE
) -> float:
    """One-sided Welch bound ``t_{confidence, df} * sqrt(s1²/n1 + s2²/n2)``.

    ``df = (a + b)² / (a²/(n1 - 1) + b²/(n2 - 1))`` with ``a = s1²/n1, b = s2²/n2``
    (Welch–Satterthwaite). A sample of one borrows the other's std (``df`` = its n - 1);
    NaN when neither sample has a std.
    """
    has1, has2 = s1 is not None and n1 > 1, s2 is not None and n2 > 1
    if not (has1 or has2):
        return math.nan
    df = None
    if not has1:
        s1, df = s2, n2 - 1
    elif not has2:
        s2, df = s1, n1 - 1
    a, b = s1**2 / n1, s2**2 / n2
    if a + b == 0:
        return 0.0
    if df is None:
        df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
    return float(sps.t.ppf(confidence, df) * math.sqrt(a + b))


@dataclass(frozen=True)
class Comparison:
    """One schedule's metric against its baseline, with the worsening it is allowed."""

    schedule: str
    metric: str
    direction: str
    baseline: dict[str, Any]
    current: dict[str, Any]
    margin: float  # the Welch part; NaN when the noise cannot be estimated
    floor: float
    tolerance: float | None = None  # replaces margin + floor when given

    @property
    def accuracy(self) -> bool:
        return self.metric in METRICS and METRICS[self.metric].accuracy

    @property
    def allowed(self) -> float:
        if self.tolerance is not None:
            return self.tolerance
        return (0.0 if math.isnan(self.margin) else self.margin) + self.floor

    @property
    def worse_by(self) -> float:
        difference = self.current["mean"] - self.baseline["mean"]
        return -difference if self.direction == "higher" else difference

    @property
    def failed(self) -> bool:
        return self.worse_by > self.allowed


def compare_metric(
    schedule: str,
    metric: str,
    baseline: dict[str, Any],
    current: dict[str, Any],
    tolerance: float | None = None,
) -> Comparison:
    """The comparison of one metric's statistics (``mean, std, n``) under the rule above."""
    margin = welch_margin(baseline.get("std"), baseline["n"], current.get("std"), current["n"])
    floor = METRICS[metric].floor if metric in METRICS else 0.0
    direction = baseline["direction"]
    return Comparison(schedule, metric, direction, baseline, current, margin, floor, tolerance)


def format_value(c: Comparison, value: float) -> str:
    return f"{value * 100:.2f}%" if c.accuracy else f"{value:.4f}"


def format_amount(c: Comparison, amount: float, signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{amount * 100:{sign}.2f} pp" if c.accuracy else f"{amount:{sign}.4f}"


def metric_message(c: Comparison) -> str | None:
    """None, or: schedule, metric, both values, the change and the allowed worsening."""
    if not c.failed:
        return None
    verb = "fell" if c.direction == "higher" else "rose"
    change = format_amount(c, c.current["mean"] - c.baseline["mean"], signed=True)
    if c.tolerance is not None:
        why = "the --tolerance"
    else:
        margin = "n/a" if math.isnan(c.margin) else format_amount(c, c.margin)
        why = f"Welch 99% margin {margin} + floor {format_amount(c, c.floor)}"
        why += f"; n = {c.baseline['n']} vs {c.current['n']}"
    return (
        f"{c.schedule}: {c.metric} {verb} from {format_value(c, c.baseline['mean'])} to "
        f"{format_value(c, c.current['mean'])} ({change}), more than the allowed "
        f"{format_amount(c, c.allowed)} ({why})"
    )


def status_message(schedule: str, baseline: dict[str, Any], current: dict[str, Any]) -> str | None:
    """None, or a line when a larger share of the runs diverged or failed than in the baseline."""
    bad, bad_before = (sum(r[s] for s in NOT_OK) for r in (current, baseline))
    if bad == 0 or bad / current["runs"] <= bad_before / max(baseline["runs"], 1):
        return None
    return (
        f"{schedule}: {bad} of {current['runs']} runs did not finish ok (diverged "
        f"{current['diverged']}, failed {current['failed']}); the baseline had {bad_before} "
        f"of {baseline['runs']}"
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


@dataclass
class CheckReport:
    """Everything a check found: all comparisons, failing lines and informative notes."""

    comparisons: list[Comparison] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


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
    for label, per_metric in baseline["metrics"].items():
        if label not in current["metrics"]:
            continue
        runs = current["runs"][label]
        lines = (
            completeness_message(label, runs),
            status_message(label, baseline["runs"][label], runs),
        )
        report.failures += [line for line in lines if line]
        for name, stat in per_metric.items():
            now = current["metrics"][label].get(name)
            if now is None or now["mean"] is None or stat["mean"] is None:
                continue  # no ok runs on one side: the status check speaks for it
            comparison = compare_metric(label, name, stat, now, (tolerances or {}).get(name))
            report.comparisons.append(comparison)
            if line := metric_message(comparison):
                report.failures.append(line)
    report.notes += seed_notes(report.comparisons)
    return report


def seed_notes(comparisons: list[Comparison]) -> list[str]:
    """Whether the seeds match; if so the largest per-seed change of final test accuracy
    (about zero on the same kind of machine: runs are deterministic); and where the noise
    could not be estimated (a single ok seed on both sides)."""
    notes = [
        f"{c.schedule}: {c.metric}: one ok seed on each side, only the floor applies"
        for c in comparisons
        if math.isnan(c.margin) and c.tolerance is None
    ]
    same = [c for c in comparisons if c.metric == "final_test_accuracy"]
    if not same or any(not c.baseline.get("values") or not c.current.get("values") for c in same):
        return notes
    if any(c.baseline.get("seeds") != c.current.get("seeds") for c in same):
        return [*notes, "seeds differ from the baseline's: compared as independent samples"]
    pairs = [zip(c.baseline["values"], c.current["values"], strict=True) for c in same]
    largest = max(abs(a - b) for pair in pairs for a, b in pair)
    return [
        *notes,
        "same seeds as the baseline; largest per-seed change of final_test_accuracy "
        f"{largest * 100:.2f} pp",
    ]


def check_results(
    results: Results,
    baseline: dict[str, Any],
    tolerances: dict[str, float] | None = None,
    allow_config_change: bool = False,
) -> CheckReport:
    """:func:`check` of a loaded results folder against a baseline document."""
    return check(metrics_document(results), baseline, tolerances, allow_config_change)
