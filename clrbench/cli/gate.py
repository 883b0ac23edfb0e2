"""``clrbench baseline`` and ``clrbench check``: the CI regression gate (see clrbench.gate.checker).

``check`` exits 0 when nothing regressed, 1 when something did (or nothing could be compared,
or the configuration or the schedules changed, unless ``--allow-config-change``), 2 on bad
input. It writes nothing but the Markdown summary appended to ``$GITHUB_STEP_SUMMARY`` when
that variable is set, and the JUnit XML file of ``--junit FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from clrbench.errors import ConfigError, ResultsError

TOLERANCE_EXAMPLE = "e.g. final_test_accuracy:0.5pp or final_train_loss:0.02"
FEW_SEEDS_HELP = "accept fewer than 3 seeds per schedule (the check then has no statistical power)"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``baseline`` and ``check`` subcommands."""
    p = subparsers.add_parser(
        "baseline",
        help="store a results folder's configuration and per-schedule statistics as a baseline",
        description="Write a baseline JSON: the experiment, its config hash and, per schedule, "
        "mean/std/n over seeds of the gated metrics (no training).",
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="a folder written by `run`")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="default RESULTS_DIR/baseline-<experiment name>.json (give a path outside the "
        "results folder to commit it, e.g. reports/baseline-ci.json)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing baseline file")
    p.add_argument("--allow-few-seeds", action="store_true", help=FEW_SEEDS_HELP)
    p.set_defaults(func=baseline_command)

    p = subparsers.add_parser(
        "check",
        help="compare a results folder with a baseline; exit 1 on a regression",
        description="Fail when a schedule's mean is worse than the baseline's by more than "
        "seed noise allows (one-sided Welch tests sharing a 1% false-alarm budget), when "
        "runs diverged or failed, when nothing was compared, or when the configuration or "
        "schedules changed. Every comparison states the drop it would detect with 80% "
        "probability.",
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="a folder written by `run`")
    p.add_argument("--baseline", required=True, metavar="FILE", help="from `clrbench baseline`")
    p.add_argument(
        "--tolerance",
        action="append",
        metavar="METRIC:AMOUNT",
        help=f"a fixed allowed worsening replacing the test, {TOLERANCE_EXAMPLE} (repeatable)",
    )
    p.add_argument(
        "--allow-config-change",
        action="store_true",
        help="report a changed configuration or schedule set, but compare what matches",
    )
    p.add_argument("--allow-few-seeds", action="store_true", help=FEW_SEEDS_HELP)
    output = p.add_mutually_exclusive_group()
    output.add_argument("--markdown", action="store_true", help="print a Markdown table")
    output.add_argument("--json", action="store_true", help="print the check as JSON")
    p.add_argument(
        "--junit",
        metavar="FILE",
        help="also write the check as JUnit XML for CI test reports (one test case per "
        "comparison and per check; a regression is a failure, an untestable one skipped)",
    )
    p.set_defaults(func=check_command)


def _load(folder: str):
    from clrbench.store.results import load_results

    path = Path(folder)
    if not path.is_dir():
        raise ResultsError(f"{path}: no such results folder")
    return load_results(path)  # every run record is type-checked as it is read


def baseline_command(args: argparse.Namespace) -> int:
    """Make and write the baseline; print where and a one-line summary per schedule."""
    from clrbench.gate.baseline import make_baseline, write_baseline
    from clrbench.gate.comparison import gate_settings

    document = make_baseline(_load(args.results_dir), gate_settings())
    refuse_few_seeds(document, f"{args.results_dir}: a baseline", args.allow_few_seeds)
    name = document["experiment"].get("experiment", {}).get("name", "experiment")
    # by default beside the runs it describes, never inside a folder the user did not name
    default = Path(args.results_dir) / f"baseline-{name}.json"
    path = write_baseline(document, args.output or default, args.force)
    for label, per_metric in document["metrics"].items():
        stat, runs = per_metric["final_test_accuracy"], document["runs"][label]
        shown = "n/a" if stat["mean"] is None else f"{stat['mean'] * 100:.2f}%"
        spread = "" if stat["std"] is None else f" ± {stat['std'] * 100:.2f} pp"
        print(f"{label}: final test accuracy {shown}{spread} ({runs['ok']}/{runs['runs']} ok)")
    print(f"baseline: {path} ({document['config_hash'][:19]})")
    return 0


def refuse_few_seeds(document: dict[str, Any], what: str, allowed: bool) -> None:
    """ConfigError unless every schedule has at least MIN_SEEDS seeds (or ``allowed``)."""
    from clrbench.gate.baseline import MIN_SEEDS, few_seeds

    few = few_seeds(document)
    if few and not allowed:
        raise ConfigError(
            f"{what} needs at least {MIN_SEEDS} seeds per schedule to estimate the noise "
            f"({', '.join(few)}); run more seeds, or pass --allow-few-seeds to go on "
            "without statistical power"
        )


def check_command(args: argparse.Namespace) -> int:
    """Compare, print, append the step summary; 1 when anything failed."""
    from clrbench.gate.baseline import metrics_document, read_baseline
    from clrbench.gate.checker import check
    from clrbench.gate.output import console, markdown

    tolerances = parse_tolerances(args.tolerance)  # bad options first, before any reading
    if args.junit:
        from clrbench.gate.junit import check_junit_path

        check_junit_path(Path(args.junit))
    baseline = read_baseline(args.baseline)
    current = metrics_document(_load(args.results_dir))
    refuse_few_seeds(baseline, f"{args.baseline}: the baseline", args.allow_few_seeds)
    refuse_few_seeds(current, f"{args.results_dir}: the check", args.allow_few_seeds)
    report = check(current, baseline, tolerances, args.allow_config_change)
    table = markdown(report, args.results_dir, args.baseline)
    if args.markdown:
        print(table, end="")
    elif args.json:
        document = {"results": args.results_dir, "baseline": args.baseline}
        print(json.dumps(document | report.to_json(), indent=2, allow_nan=False))
    else:
        print(console(report, args.baseline), end="")
    _append_step_summary(table)
    if args.junit:
        from clrbench.gate.junit import write_junit

        write_junit(report, args.junit, args.results_dir, args.baseline)
    return 0 if report.passed else 1


def _append_step_summary(text: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(text + "\n")
    except OSError as exc:  # the gate's verdict must not depend on the summary file
        print(f"clrbench: warning: cannot append to $GITHUB_STEP_SUMMARY ({exc})", file=sys.stderr)


# --- the --tolerance syntax ---

AMOUNT = re.compile(r"^([+-]?)\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(pp)?$", re.IGNORECASE)


def parse_tolerance(text: str) -> tuple[str, float]:
    """``final_test_accuracy:0.5pp`` -> ``("final_test_accuracy", 0.005)``: an allowed
    worsening, always in the metric's bad direction (a sign may be written either way).
    Accuracies need their unit, ``pp`` (percentage points), so that ``0.5`` can never be read
    as 50 points; losses are plain numbers. Amounts beyond the metric's plausible range (more
    than 10 pp, a loss of 1) would switch the gate off and are refused."""
    from clrbench.gate.baseline import METRICS

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
