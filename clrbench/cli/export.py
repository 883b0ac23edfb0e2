"""``clrbench export``: a results folder as TensorBoard event files, CSV files and/or MLflow
runs."""

from __future__ import annotations

import argparse


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
    """Export through the public API (``clrbench.export``); print what was written."""
    import clrbench

    written = clrbench.export(
        args.results_dir,
        tensorboard=args.tensorboard,
        csv=args.csv,
        mlflow=args.mlflow,
        mlflow_experiment=args.mlflow_experiment,
    )
    if "tensorboard" in written:
        folders = written["tensorboard"]
        print(f"{args.tensorboard}: {len(folders)} runs (tensorboard --logdir {args.tensorboard})")
    for path in written.get("csv", []):
        print(path)
    if "mlflow" in written:
        done = written["mlflow"]
        print(
            f"{args.mlflow}: experiment {written['mlflow_experiment']!r}, folder run "
            f"{done.parent_run_id}: {done.added} runs added, {done.already_there} already there"
        )
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
