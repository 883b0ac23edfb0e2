"""``clrbench baseline`` and ``clrbench check``: the CI regression gate (see clrbench.regress).

``check`` exits 0 when nothing regressed, 1 when something did (or the configuration or the
schedules changed, unless ``--allow-config-change``), 2 on bad input. It writes nothing but
the Markdown summary appended to ``$GITHUB_STEP_SUMMARY`` when that variable is set.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

from clrbench.errors import ConfigError, ResultsError

TOLERANCE_EXAMPLE = "e.g. final_test_accuracy:-0.5pp or final_train_loss:+0.02"


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
        "-o", "--output", metavar="FILE", help="default reports/baseline-<experiment name>.json"
    )
    p.add_argument("--force", action="store_true", help="replace an existing baseline file")
    p.set_defaults(func=baseline_command)

    p = subparsers.add_parser(
        "check",
        help="compare a results folder with a baseline; exit 1 on a regression",
        description="Fail when a schedule's mean is worse than the baseline's by more than "
        "seed noise allows (one-sided Welch 99%% margin + a small floor per metric), when "
        "runs diverged or failed, or when the configuration or schedules changed.",
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="a folder written by `run`")
    p.add_argument("--baseline", required=True, metavar="FILE", help="from `clrbench baseline`")
    p.add_argument(
        "--tolerance",
        action="append",
        metavar="METRIC:AMOUNT",
        help=f"allowed worsening replacing margin and floor, {TOLERANCE_EXAMPLE} (repeatable)",
    )
    p.add_argument(
        "--allow-config-change",
        action="store_true",
        help="report a changed configuration or schedule set, but compare what matches",
    )
    p.add_argument("--markdown", action="store_true", help="print a Markdown table to stdout")
    p.set_defaults(func=check_command)


def _load(folder: str):
    from clrbench.results import load_results

    path = Path(folder)
    if not path.is_dir():
        raise ResultsError(f"{path}: no such results folder")
    return load_results(path)  # every run record is type-checked as it is read


def baseline_command(args: argparse.Namespace) -> int:
    """Make and write the baseline; print where and a one-line summary per schedule."""
    from clrbench.regress import make_baseline, write_baseline

    document = make_baseline(_load(args.results_dir))
    name = document["experiment"].get("experiment", {}).get("name", "experiment")
    path = write_baseline(document, args.output or f"reports/baseline-{name}.json", args.force)
    for label, per_metric in document["metrics"].items():
        stat, runs = per_metric["final_test_accuracy"], document["runs"][label]
        shown = "n/a" if stat["mean"] is None else f"{stat['mean'] * 100:.2f}%"
        spread = "" if stat["std"] is None else f" ± {stat['std'] * 100:.2f} pp"
        print(f"{label}: final test accuracy {shown}{spread} ({runs['ok']}/{runs['runs']} ok)")
    print(f"baseline: {path} ({document['config_hash'][:19]})")
    return 0


def check_command(args: argparse.Namespace) -> int:
    """Compare, print, append the step summary; 1 when anything failed."""
    from clrbench.regress import check_results, read_baseline

    tolerances = parse_tolerances(args.tolerance)  # bad options first, before any reading
    baseline = read_baseline(args.baseline)
    report = check_results(_load(args.results_dir), baseline, tolerances, args.allow_config_change)
    table = markdown(report, args.results_dir, args.baseline)
    if args.markdown:
        print(table, end="")
    else:
        for line in report.failures:
            print(f"FAIL {line}")
        for line in report.notes:
            print(f"note: {line}")
        compared = len({c.schedule for c in report.comparisons})
        if report.passed:
            print(f"check passed: {compared} schedules within seed noise of {args.baseline}")
        else:
            print(f"check FAILED: {len(report.failures)} problem(s) against {args.baseline}")
    _append_step_summary(table)
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


def parse_tolerance(text: str) -> tuple[str, float]:
    """``final_test_accuracy:-0.5pp`` -> ``("final_test_accuracy", 0.005)``: an allowed
    worsening; ``pp`` (percentage points) for accuracies, else a plain number in the metric's
    units; a sign, when given, must point in the metric's bad direction."""
    from clrbench.regress import METRICS

    name, _, amount = (part.strip() for part in text.partition(":"))
    metric = METRICS.get(name)
    if metric is None or not amount:
        raise ConfigError(
            f"--tolerance {text!r}: expected METRIC:AMOUNT ({TOLERANCE_EXAMPLE}); "
            f"metrics: {', '.join(METRICS)}"
        )
    points = amount.endswith("pp")
    number = amount.removesuffix("pp").strip()
    try:
        value = float(number)
    except ValueError:
        raise ConfigError(f"--tolerance {text!r}: {number!r} is not a number") from None
    if not math.isfinite(value) or (points and not metric.accuracy):
        raise ConfigError(f"--tolerance {text!r}: a finite number, and 'pp' for accuracies only")
    bad_sign = "-" if metric.direction == "higher" else "+"
    if number[:1] in ("+", "-") and value != 0 and number[0] != bad_sign:
        raise ConfigError(
            f"--tolerance {text!r}: {name} is {metric.direction}-is-better, so its allowed "
            f"worsening is written {bad_sign}{abs(value):g}{'pp' if points else ''}"
        )
    return name, abs(value) / (100 if points else 1)


def parse_tolerances(items: list[str] | None) -> dict[str, float]:
    """Every ``--tolerance`` option, by metric (a later one for the same metric wins)."""
    return dict(parse_tolerance(item) for item in items or [])


# --- the Markdown summary ---


def markdown(report: Any, results_label: str, baseline_label: str) -> str:
    """The check as a Markdown section: verdict, one row per comparison, failures, notes."""
    from clrbench.regress import format_amount

    verdict = "passed" if report.passed else f"FAILED ({len(report.failures)} problem(s))"
    lines = [
        f"### clrbench check: {verdict}",
        "",
        f"`{results_label}` against `{baseline_label}`: a schedule's mean may be worse than "
        "the baseline's by the allowed amount (one-sided Welch 99% margin over seeds plus a "
        "floor, or a given tolerance). ↑ higher is better, ↓ lower is better.",
        "",
        "| schedule | metric | baseline | current | change | allowed | result |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for c in report.comparisons:
        arrow = "↑" if c.direction == "higher" else "↓"
        change = format_amount(c, c.current["mean"] - c.baseline["mean"], signed=True)
        allowed = ("−" if c.direction == "higher" else "+") + format_amount(c, c.allowed)
        cells = [c.schedule, f"{c.metric} {arrow}", _cell(c, c.baseline), _cell(c, c.current)]
        cells += [change, allowed, "**FAIL**" if c.failed else "ok"]
        lines.append("| " + " | ".join(cells) + " |")
    for title, items in (("Failures", report.failures), ("Notes", report.notes)):
        if items:
            lines += ["", f"**{title}**", "", *(f"- {item}" for item in items)]
    return "\n".join(lines) + "\n"


def _cell(c: Any, stat: dict[str, Any]) -> str:
    from clrbench.regress import format_amount, format_value

    spread = "" if stat.get("std") is None else " ± " + format_amount(c, stat["std"])
    return f"{format_value(c, stat['mean'])}{spread.removesuffix(' pp')} (n={stat['n']})"
