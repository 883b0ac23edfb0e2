"""The baseline document: what a results folder measured, stored to compare later runs against.

A baseline holds an experiment's configuration (and a hash of it that ignores the name and
the seed list), per schedule the run counts and seeds, and per schedule and gated metric the
mean, sample std, count and per-seed values over the ok runs, with the metric's direction.
The same document, built from the current results folder, is the other side of a check
(:mod:`clrbench.gate.checker`). No statistics beyond mean and std here, and no TensorFlow.

Format versions: ``clrbench-baseline/2`` (this one) records the gate's settings (false-alarm
budget and power) instead of version 1's per-comparison confidence and floors; a version 1
document loads (its numbers are the same), anything else is refused with one line saying how
to make a new one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clrbench.errors import ClrbenchError, ResultsError
from clrbench.schedules import tie_to_run
from clrbench.store import atomic
from clrbench.text import plural

if TYPE_CHECKING:
    from clrbench.store.results import Results

FORMAT = "clrbench-baseline/2"
READABLE_FORMATS = ("clrbench-baseline/1", FORMAT)
DIRECTIONS = ("higher", "lower")
NOT_OK = ("diverged", "failed")
MIN_SEEDS = 3  # below this a std over seeds is too uncertain for any useful test
REGENERATE = (
    "make a new one: python -m clrbench run --preset ci --out results/ci && "
    "python -m clrbench baseline results/ci -o {path} --force"
)


@dataclass(frozen=True)
class Metric:
    """A gated metric: a column of ``stats.final_metrics`` and its direction.

    ``share``: the part of the check's false-alarm budget this metric gets (shares sum to 1);
    ``max_tolerance``: the largest ``--tolerance`` that is plausible (larger ones switch the
    gate off for this metric and are refused); ``paired_floor``: the worsening a paired
    comparison always allows (its noise can be ~0: a few test images must not fail it).
    """

    name: str
    direction: str  # "higher" or "lower" is better
    accuracy: bool  # a fraction, shown in % / pp
    share: float
    max_tolerance: float
    paired_floor: float


# The gate exists to catch a drop of final test accuracy, so it gets most of the budget; the
# other two would mostly repeat it (best and final accuracy agree on 4 of 5 ci schedules).
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("final_test_accuracy", "higher", True, 0.8, 0.10, 0.001),
        Metric("best_test_accuracy", "higher", True, 0.1, 0.10, 0.001),
        Metric("final_train_loss", "lower", False, 0.1, 1.0, 0.001),
    )
}


# --- the configuration and its hash ---


def config_of(experiment: dict[str, Any]) -> dict[str, Any]:
    """What determines each seed's numbers: the experiment minus ``name`` and ``seeds``,
    schedules keyed by label (their order does not matter), lengths tied to the run or the
    epoch (``"run * 0.25"``) resolved to the steps they are in this experiment, so a preset
    whose lengths were once written as numbers keeps its hash."""
    settings = dict(experiment.get("experiment", {}))
    for key in ("name", "seeds"):
        settings.pop(key, None)
    run = _run_length(experiment)
    schedules = {
        str(s.get("label", s.get("name"))): _resolved(
            {k: v for k, v in s.items() if k != "label"}, run
        )
        for s in experiment.get("schedule", [])
    }
    return {"experiment": settings, "schedule": schedules}


ENTRY_KEYS = ("name", "granularity", "lr_mode")


def _run_length(experiment: dict[str, Any]) -> tuple[int, int] | None:
    """``(total steps, steps per epoch)`` of the experiment, or None where it does not
    validate here (a plug-in not installed: its schedules are hashed as written)."""
    from clrbench.config.experiment import Experiment

    try:
        workload = Experiment.from_dict(experiment).workload
    except (ClrbenchError, KeyError, TypeError):
        return None
    return workload.total_steps, workload.steps_per_epoch


def _resolved(entry: dict[str, Any], run: tuple[int, int] | None) -> dict[str, Any]:
    if run is None or not isinstance(entry.get("name"), str):
        return entry
    fixed = {k: v for k, v in entry.items() if k in ENTRY_KEYS}
    params = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
    try:
        return fixed | tie_to_run(entry["name"], params, *run)
    except ClrbenchError:
        return entry


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


# --- the document of a results folder ---


def metrics_document(results: Results) -> dict[str, Any]:
    """Experiment, config hash, per-schedule run counts and per-metric statistics of ok runs."""
    from clrbench.analysis.stats import final_metrics

    final = final_metrics(results)
    expected = _expected_runs(results.experiment)
    metrics: dict[str, dict[str, Any]] = {}
    runs: dict[str, dict[str, Any]] = {}
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


def few_seeds(document: dict[str, Any]) -> list[str]:
    """``label (n seeds)`` for each schedule whose experiment has fewer than MIN_SEEDS seeds."""
    return [
        f"{label} ({plural(runs['expected'], 'seed')})"
        for label, runs in document["runs"].items()
        if runs["expected"] < MIN_SEEDS
    ]


def make_baseline(results: Results, gate: dict[str, Any]) -> dict[str, Any]:
    """The baseline document of a results folder (refuses an incomplete suite).

    ``gate``: the check's settings recorded with it (false-alarm budget, power, shares).
    """
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
    from clrbench.version import __version__

    created = datetime.now(UTC).isoformat(timespec="seconds")
    head: dict[str, Any] = {"format": FORMAT, "created_at": created}
    head["clrbench_version"] = __version__
    head |= {"source": str(results.path), "gate": gate}
    return head | document


# --- reading and writing ---


def write_baseline(document: dict[str, Any], path: str | os.PathLike[str], force: bool) -> Path:
    """Write the baseline (temporary file, then rename); never replaces one without ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise ResultsError(f"{path}: baseline exists; pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(document, indent=2, sort_keys=False, allow_nan=False) + "\n")
    return path


def read_baseline(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A baseline file, validated (version 1 read as it is: same numbers); ResultsError (one
    line) when missing, corrupt or of a format this version cannot read."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such baseline file") from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: cannot read baseline ({type(exc).__name__}: {exc})") from None
    if not isinstance(document, dict) or "format" not in document:
        raise ResultsError(f"{path}: not a clrbench baseline (no 'format')")
    if document["format"] not in READABLE_FORMATS:
        raise ResultsError(
            f"{path}: baseline format {document['format']!r} is not one this clrbench reads "
            f"({', '.join(READABLE_FORMATS)}); " + REGENERATE.format(path=path)
        )
    problem = _shape_problem(document)
    if problem:
        raise ResultsError(f"{path}: not a clrbench baseline ({problem})")
    return document


def _shape_problem(document: dict[str, Any]) -> str | None:
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
        counts.setdefault("expected", counts["runs"])
        stats: dict[Any, Any] = per_metric if isinstance(per_metric, dict) else {None: None}
        for name, stat in stats.items():
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
