"""``clrbench report``: render the comparison report of a results folder, or the
cross-workload report of several (no training)."""

from __future__ import annotations

import argparse
from pathlib import Path

from clrbench.errors import ConfigError, ResultsError


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
        help="schedule the others are compared with (default: constant, else the first)",
    )
    p.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    """Load the folder(s), render the report, print the paths written."""
    from clrbench.reporting.page import check_options
    from clrbench.reporting.render import render
    from clrbench.store.results import load_results

    formats = check_options(args.format.split(","), args.target)  # before any loading
    folders = [Path(name) for name in args.results_dir]
    for folder in folders:
        if not folder.is_dir():
            raise ResultsError(f"{folder}: no such results folder")
    workloads = across_folders(folders)
    if workloads is not None:
        return across_command(args, folders, workloads, formats)
    folder = folders[0]
    if (folder / "study.json").is_file():  # a study folder: the study's own report
        from clrbench.study.report import render_study

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


def across_folders(folders: list[Path]) -> list[Path] | None:
    """The results folders of a cross-workload report (several folders, or the one folder
    holding them), or None for the report of one results or study folder."""
    from clrbench.across.report import holds_workloads

    if len(folders) == 1:
        if (folders[0] / "study.json").is_file():
            return None
        return holds_workloads(folders[0]) or None
    for folder in folders:
        if not (folder / "runs").is_dir():
            raise ResultsError(
                f"{folder}: not a results folder (a cross-workload report takes one results "
                "folder per workload)"
            )
    return folders


def across_command(
    args: argparse.Namespace, given: list[Path], workloads: list[Path], formats: tuple[str, ...]
) -> int:
    """The cross-workload report: options checked, then everything loaded and computed
    before anything is written."""
    from clrbench.across.report import render_across

    if args.target is not None:
        raise ConfigError(
            "--target is for one workload's report; the cross-workload report measures each "
            "workload at its own target (drop --target)"
        )
    if args.out is None and len(given) > 1:
        raise ConfigError("--out is required for the report of several results folders")
    out = Path(args.out) if args.out else given[0] / "report"
    for path in render_across(workloads, out, formats, args.baseline_schedule).values():
        print(path)
    return 0
