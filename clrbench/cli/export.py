"""``clrbench export``: a results folder as TensorBoard event files, CSV files and/or MLflow
runs."""

from __future__ import annotations

import argparse
import importlib.util
import logging
from pathlib import Path

from clrbench.errors import ConfigError, no_results_folder


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    from clrbench.cli.main import add_verbose

    p = subparsers.add_parser(
        "export",
        help="write a results folder as TensorBoard scalars, CSV and/or MLflow runs",
        description="Per-step lr, loss and accuracy and per-epoch metrics of every run as "
        "TensorBoard scalars (one run per subfolder SCHEDULE/seedN; then `tensorboard --logdir "
        "DIR`), and/or the tidy frames as CSV: FILE (epochs), <stem>.batches.csv, <stem>.runs.csv.",
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="a folder written by `run`")
    p.add_argument("--tensorboard", metavar="DIR", help="folder for the event files")
    p.add_argument("--csv", metavar="FILE", help="CSV of the epochs frame (+ batches, runs)")
    add_mlflow_options(p)
    add_verbose(p)  # TensorBoard's writer starts TensorFlow when it is installed
    p.set_defaults(func=export_command)


def export_command(args: argparse.Namespace) -> int:
    """Check every input and destination, then write; print what was written."""
    from clrbench.store import export
    from clrbench.store.results import load_results

    if not args.tensorboard and not args.csv and not args.mlflow:
        raise ConfigError("export: give --tensorboard DIR, --csv FILE and/or --mlflow URI")
    if args.mlflow:
        from clrbench.store.mlflow_export import check_tracking_uri, require_mlflow

        check_tracking_uri(args.mlflow)
        require_mlflow()
    if args.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "export: --tensorboard needs the tensorboard package (pip install tensorboard)"
        )
    folder = Path(args.results_dir)
    if not folder.is_dir():
        raise no_results_folder(folder)
    if args.tensorboard:
        export.check_writable(Path(args.tensorboard), "folder")
    if args.csv:
        for path in export.csv_paths(Path(args.csv)).values():
            export.check_writable(path, "file")
    results = load_results(folder)
    if args.tensorboard:
        folders = export.write_tensorboard(results, Path(args.tensorboard))
        print(f"{args.tensorboard}: {len(folders)} runs (tensorboard --logdir {args.tensorboard})")
    if args.csv:
        for path in export.write_csv(results, Path(args.csv)):
            print(path)
    if args.mlflow:
        export_to_mlflow(results, args)
    return 0


def add_mlflow_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mlflow",
        metavar="URI",
        help="log every run to this MLflow tracking store (e.g. sqlite:///mlflow.db, "
        "http://host:5000), nested under one run for the folder; again adds only new runs",
    )
    p.add_argument(
        "--mlflow-experiment",
        metavar="NAME",
        help="the MLflow experiment (default clrbench-<experiment name>)",
    )


def export_to_mlflow(results, args: argparse.Namespace) -> None:
    """Log to MLflow; print the experiment, the parent run and how many runs were added."""
    from clrbench.store.mlflow_export import export_mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not its database set-up notices
    name = results.experiment.get("experiment", {}).get("name", results.path.name)
    experiment = args.mlflow_experiment or f"clrbench-{name}"
    done = export_mlflow(results, args.mlflow, experiment)
    print(
        f"{args.mlflow}: experiment {experiment!r}, folder run {done.parent_run_id}: "
        f"{done.added} runs added, {done.already_there} already there"
    )
