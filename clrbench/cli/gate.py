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
import sys

from clrbench.gate import TOLERANCE_EXAMPLE

FEW_SEEDS_HELP = "accept fewer than 3 seeds per schedule (the check then has no statistical power)"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``baseline`` and ``check`` subcommands."""
    from clrbench.cli.report import add_margin

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
    add_margin(p)
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


def baseline_command(args: argparse.Namespace) -> int:
    """Make and write the baseline (``clrbench.gate.save_baseline``); print where and a
    one-line summary per schedule."""
    import clrbench

    path = clrbench.gate.save_baseline(
        args.results_dir, args.output, force=args.force, allow_few_seeds=args.allow_few_seeds
    )
    document = json.loads(path.read_text())
    for label, per_metric in document["metrics"].items():
        stat, runs = per_metric["final_test_accuracy"], document["runs"][label]
        shown = "n/a" if stat["mean"] is None else f"{stat['mean'] * 100:.2f}%"
        spread = "" if stat["std"] is None else f" ± {stat['std'] * 100:.2f} pp"
        print(f"{label}: final test accuracy {shown}{spread} ({runs['ok']}/{runs['runs']} ok)")
    print(f"baseline: {path} ({document['config_hash'][:19]})")
    return 0


def check_command(args: argparse.Namespace) -> int:
    """Compare (``clrbench.gate.check``), print, append the step summary; 1 when anything
    failed."""
    import clrbench

    verdict = clrbench.gate.check(
        args.results_dir,
        args.baseline,
        tolerance=args.tolerance,
        allow_config_change=args.allow_config_change,
        allow_few_seeds=args.allow_few_seeds,
        junit=args.junit,
        margin=args.margin,
    )
    table = verdict.markdown()
    if args.markdown:
        print(table, end="")
    elif args.json:
        document = {"results": args.results_dir, "baseline": args.baseline}
        print(json.dumps(document | verdict.to_json(), indent=2, allow_nan=False))
    else:
        print(verdict.console(), end="")
    _append_step_summary(table)
    return verdict.exit_code


def _append_step_summary(text: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(text + "\n")
    except OSError as exc:  # the gate's verdict must not depend on the summary file
        print(f"clrbench: warning: cannot append to $GITHUB_STEP_SUMMARY ({exc})", file=sys.stderr)
