"""``clrbench report``: render the comparison report of a results folder, or the
cross-workload report of several (no training; one call of ``clrbench.report``)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser(
        "report",
        help="render the HTML + Markdown comparison report of a results folder",
        description="Read a results folder (no training, no TensorFlow) and write report.html "
        "(self-contained), report.md (+ figures/*.png) and summary.csv. Several results "
        "folders (one per workload), or the folder `run --workload A,B` writes, give the "
        "cross-workload report: report.html, report.md, across.json and across.csv.",
    )
    p.add_argument(
        "results_dir",
        metavar="RESULTS_DIR",
        nargs="+",
        help="a folder written by `run` or `study`; or several results folders, one per "
        "workload; or the folder holding them that `run --workload A,B` writes",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="where to write (default RESULTS_DIR/report; required with several folders)",
    )
    p.add_argument("--format", default="html,md", metavar="html,md", help="default: html,md")
    p.add_argument(
        "--target",
        type=float,
        metavar="ACC",
        help="test accuracy for time-to-target, e.g. 0.98 (default: the workload's own "
        "target when it ran at its defaults, else the highest multiple of 0.5 pp that at "
        "least 80%% of ok runs reach); not for the cross-workload report",
    )
    p.add_argument(
        "--baseline-schedule",
        metavar="LABEL",
        help="schedule the others are compared with (default: constant, else the first); "
        "not for a study's report",
    )
    add_margin(p)
    p.set_defaults(func=report_command)


def add_margin(p: argparse.ArgumentParser) -> None:
    """The ``--margin PP`` option: the smallest difference that matters, replacing the
    workload's own (docs/concepts/protocol.md)."""
    p.add_argument(
        "--margin",
        type=float,
        metavar="PP",
        help="smallest difference of final test accuracy that matters, in percentage points: "
        "within it two schedules are 'equivalent' (default: the workload's own, e.g. 0.1 for "
        "mnist-mlp)",
    )


def report_command(args: argparse.Namespace) -> int:
    """Render the report (``clrbench.report``), print the paths written."""
    import clrbench

    written = clrbench.report(
        args.results_dir,
        args.out,
        formats=args.format.split(","),
        target=args.target,
        baseline_schedule=args.baseline_schedule,
        margin=args.margin,
    )
    for path in written.values():
        print(path)
    return 0
