"""``clrbench report``: render the comparison report of a results folder (no training)."""

from __future__ import annotations

import argparse
from pathlib import Path

from clrbench.errors import ResultsError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser(
        "report",
        help="render the HTML + Markdown comparison report of a results folder",
        description="Read a results folder (no training, no TensorFlow) and write report.html "
        "(self-contained), report.md (+ figures/*.png) and summary.csv.",
    )
    p.add_argument(
        "results_dir", metavar="RESULTS_DIR", help="a folder written by `run` or `study`"
    )
    p.add_argument("--out", metavar="DIR", help="where to write (default RESULTS_DIR/report)")
    p.add_argument("--format", default="html,md", metavar="html,md", help="default: html,md")
    p.add_argument(
        "--target",
        type=float,
        metavar="ACC",
        help="test accuracy for time-to-target, e.g. 0.98 (default: the highest multiple "
        "of 0.5 pp that at least 80%% of ok runs reach)",
    )
    p.add_argument(
        "--baseline-schedule",
        metavar="LABEL",
        help="schedule the others are compared with (default: constant, else the first)",
    )
    p.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    """Load the folder, render the report, print the paths written."""
    from clrbench.report.page import check_options
    from clrbench.report.render import render
    from clrbench.store.results import load_results

    formats = check_options(args.format.split(","), args.target)  # before any loading
    folder = Path(args.results_dir)
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such results folder")
    if (folder / "study.json").is_file():  # a study folder: the study's own report
        from clrbench.report.study import render_study

        out = Path(args.out) if args.out else folder / "report"
        for path in render_study(folder, out, formats, args.target).values():
            print(path)
        return 0
    results = load_results(folder)  # every run record is type-checked as it is read
    out = Path(args.out) if args.out else folder / "report"
    written = render(results, out, formats, args.target, args.baseline_schedule)
    for path in written.values():
        print(path)
    return 0
