"""The CI regression gate: versioned baseline documents, and the check of a results folder
against one (margins from seed noise, power, one message per regression).

Public: :func:`check` (``python -m clrbench check``) returns the verdict record whose
``exit_code`` the command exits with; :func:`save_baseline` (``python -m clrbench baseline``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clrbench.gate.checker import CheckReport
    from clrbench.store.results import Results

from clrbench.gate.tolerance import TOLERANCE_EXAMPLE

__all__ = ["TOLERANCE_EXAMPLE", "check", "save_baseline"]
PathLike = str | os.PathLike[str]


def check(
    results: Results | PathLike,
    baseline: PathLike | Mapping[str, Any],
    *,
    tolerance: Sequence[str] | Mapping[str, float] | None = None,
    allow_config_change: bool = False,
    allow_few_seeds: bool = False,
    junit: PathLike | None = None,
    margin: float | None = None,
) -> CheckReport:
    """Compare a results folder with a baseline (``save_baseline``'s file or document): the
    verdict record, ``passed`` and ``exit_code`` (0 passed, 1 a regression), every comparison
    with its power, the failure lines and notes; ``.console()``, ``.markdown()`` and
    ``.to_json()`` word it. ``tolerance``: ``["final_test_accuracy:0.5pp"]`` (the command
    line's syntax) or ``{"final_test_accuracy": 0.005}``; ``junit``: also write JUnit XML;
    ``margin``: the accuracies' equivalence margin in pp (default: the workload's own), which
    words each comparison as worse (a failure), better, equivalent within it, or undecided.

    >>> baseline = clrbench.gate.save_baseline(results_dir, tmp / "baseline.json")
    >>> verdict = clrbench.gate.check(results_dir, baseline)
    >>> verdict.passed, verdict.exit_code
    (True, 0)
    >>> verdict.console().splitlines()[-1].startswith("check passed: 2 schedules within seed")
    True
    """
    from clrbench.analysis.margin import checked_margin_pp, results_margin
    from clrbench.gate.baseline import metrics_document, read_baseline
    from clrbench.gate.checker import check as compare_documents
    from clrbench.gate.tolerance import parse_tolerances

    # bad options first, before any reading
    checked_margin_pp(margin)
    if tolerance is None or isinstance(tolerance, Mapping):
        tolerances = dict(tolerance or {})
    else:
        tolerances = parse_tolerances(list(tolerance))
    if junit is not None:
        from clrbench.gate.junit import check_junit_path

        check_junit_path(Path(junit))
    if isinstance(baseline, Mapping):
        document, baseline_name = dict(baseline), "baseline"
    else:
        document, baseline_name = read_baseline(baseline), str(baseline)
    loaded, results_name = _load(results)
    current = metrics_document(loaded)
    refuse_few_seeds(document, f"{baseline_name}: the baseline", allow_few_seeds)
    refuse_few_seeds(current, f"{results_name}: the check", allow_few_seeds)
    within = results_margin(loaded, margin).value
    report = compare_documents(current, document, tolerances, allow_config_change, within)
    report.results, report.baseline = results_name, baseline_name
    if junit is not None:
        from clrbench.gate.junit import write_junit

        write_junit(report, junit, results_name, baseline_name)
    return report


def save_baseline(
    results: Results | PathLike,
    output: PathLike | None = None,
    *,
    force: bool = False,
    allow_few_seeds: bool = False,
) -> Path:
    """Write a results folder's baseline document (its experiment, config hash and, per
    schedule, mean/sd/n over seeds of the gated metrics); returns its path. ``output``
    defaults to ``<results>/baseline-<experiment name>.json``; an existing file is kept
    unless ``force``.

    >>> path = clrbench.gate.save_baseline(results_dir, tmp / "ci.json")
    >>> path.name, sorted(json.loads(path.read_text())["metrics"])
    ('ci.json', ['clr-iter', 'constant'])
    """
    from clrbench.gate.baseline import make_baseline, write_baseline
    from clrbench.gate.comparison import gate_settings

    loaded, name = _load(results)
    document = make_baseline(loaded, gate_settings())
    refuse_few_seeds(document, f"{name}: a baseline", allow_few_seeds)
    experiment = document["experiment"].get("experiment", {}).get("name", "experiment")
    # by default beside the runs it describes, never inside a folder the user did not name
    default = loaded.path / f"baseline-{experiment}.json"
    return write_baseline(document, output if output is not None else default, force)


def refuse_few_seeds(document: dict[str, Any], what: str, allowed: bool) -> None:
    """ConfigError unless every schedule has at least MIN_SEEDS seeds (or ``allowed``)."""
    from clrbench.errors import ConfigError
    from clrbench.gate.baseline import MIN_SEEDS, few_seeds

    few = few_seeds(document)
    if few and not allowed:
        raise ConfigError(
            f"{what} needs at least {MIN_SEEDS} seeds per schedule to estimate the noise "
            f"({', '.join(few)}); run more seeds, or pass --allow-few-seeds to go on "
            "without statistical power"
        )


def _load(results: Results | PathLike) -> tuple[Results, str]:
    from clrbench.errors import no_results_folder
    from clrbench.store.results import Results, load_results

    if isinstance(results, Results):
        return results, str(results.path)
    path = Path(results)
    if not path.is_dir():
        raise no_results_folder(path)
    return load_results(path), str(results)  # every run record is type-checked as it is read
