"""``clrbench run``: train an experiment (preset or TOML, CLI overrides) into a results folder."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from clrbench.runner import SuiteOutcome

from clrbench.data import load_dataset
from clrbench.errors import ConfigError, Interrupted
from clrbench.experiment import Experiment, load_toml
from clrbench.lock import folder_lock
from clrbench.presets import PRESETS
from clrbench.results import Results, load_results


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` subcommand."""
    p = subparsers.add_parser(
        "run",
        help="train schedules x seeds and report",
        description="Train every schedule of an experiment with every seed, in parallel, into "
        "a resumable results folder; then print the summary and render the report.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=sorted(PRESETS), help="named experiment (default)")
    source.add_argument("--config", metavar="FILE", help="experiment TOML file")
    p.add_argument("--seeds", type=int, metavar="N", help="train seeds FIRST..FIRST+N-1")
    p.add_argument("--first-seed", type=int, default=None, metavar="FIRST", help="default 0")
    p.add_argument("--schedules", metavar="A,B", help="labels or schedule names to keep")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--train-size", type=int, metavar="N", help="stratified training subset")
    p.add_argument("--optimizer", help="sgd-momentum (default), sgd, rmsprop, adam")
    p.add_argument("--threads", type=int, help="TensorFlow threads per run (default 1)")
    p.add_argument("--jobs", type=int, help="concurrent runs (default: number of cores)")
    p.add_argument("--out", metavar="DIR", help="results folder (default results/<name>)")
    p.add_argument("--data-dir", metavar="DIR", help="folder with the IDX files")
    p.add_argument(
        "--backend",
        choices=("loky", "dask"),
        default="loky",
        help="loky: worker processes on this machine (default); dask: a Dask cluster",
    )
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (tcp://host:port)")
    p.add_argument("--force", action="store_true", help="retrain runs already complete")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--no-report", action="store_true", help="skip rendering the report")
    p.set_defaults(func=run_command)


def resolve_experiment(args: argparse.Namespace) -> Experiment:
    """Preset or TOML, then the command-line overrides, validated."""
    raw = load_toml(args.config) if args.config else PRESETS[args.preset or "default"]
    experiment = Experiment.from_dict(raw)
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "train_size": args.train_size,
        "optimizer": args.optimizer,
        "threads": args.threads,
    }
    changes = {k: v for k, v in overrides.items() if v is not None}
    if args.seeds is not None or args.first_seed is not None:
        count = args.seeds if args.seeds is not None else len(experiment.seeds)
        first = args.first_seed or 0
        if count < 1 or first < 0:
            raise ConfigError(f"--seeds must be >= 1 and --first-seed >= 0, got {count}, {first}")
        changes["seeds"] = tuple(range(first, first + count))
    experiment = replace(experiment, **changes).validated()
    if args.schedules:
        experiment = experiment.select([s.strip() for s in args.schedules.split(",") if s.strip()])
    return experiment


def run_command(args: argparse.Namespace) -> int:
    """Validate everything, train, summarise, report; 1 if any run failed."""
    experiment = resolve_experiment(args)
    out = Path(args.out or Path("results") / experiment.name)
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise ConfigError(f"--data-dir {args.data_dir}: no such directory")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    # Find and verify the data now: a missing or corrupt file is one error line, not N failed runs.
    load_dataset(experiment.dataset, data_dir=args.data_dir)
    console = Console(stderr=True)
    jobs = args.jobs or os.cpu_count() or 1
    runs = experiment.runs()  # builds and checks every schedule's rates: before any writing
    with folder_lock(out, "run"):  # one writer per folder, through the report
        for note in experiment.notes:
            console.print(f"note: {note}")
        console.print(
            f"{experiment.name}: {len(experiment.schedules)} schedules x "
            f"{len(experiment.seeds)} seeds = {len(runs)} runs of {experiment.epochs} epochs "
            f"({experiment.total_steps:,} steps each), {jobs} at a time -> {out}"
        )
        outcome = train(args, experiment, out, console, jobs)
        if outcome.skipped:
            console.print(f"{outcome.skipped} runs were already complete (use --force to retrain)")
        results = load_results(out)
        print_summary(results, Console())
        if not args.no_report:
            from clrbench.report import render

            for path in render(results, out / "report").values():
                console.print(f"report: {path}")
    for record in outcome.failed:
        console.print(f"[red]failed[/red] {record['run_id']}: {record['error']}")
    return 1 if outcome.failed else 0


def train(
    args: argparse.Namespace, experiment: Experiment, out: Path, console: Console, jobs: int
) -> SuiteOutcome:
    """The suite with its progress display; an interruption becomes the resume line."""
    from clrbench.progress import SuiteProgress
    from clrbench.runner import run_suite

    progress = SuiteProgress(console, experiment.epochs, quiet=args.quiet)
    try:
        return run_suite(
            experiment,
            out,
            jobs=jobs,
            backend=args.backend,
            scheduler=args.scheduler,
            data_dir=args.data_dir,
            force=args.force,
            progress=progress,
        )
    except KeyboardInterrupt as exc:
        raise interrupted(exc, experiment, out) from None
    finally:
        progress.stop()


def interrupted(exc: KeyboardInterrupt, experiment: Experiment, out: Path) -> Interrupted:
    """The one line saying what is kept and how to resume."""
    from clrbench.results import is_complete

    signum = getattr(exc, "signum", signal.SIGINT)
    runs = experiment.runs()
    done = sum(is_complete(out, spec.run_id) for spec in runs)
    command = shlex.join(["python", "-m", "clrbench", *sys.argv[1:]])
    if sys.argv[0] and not sys.argv[0].endswith(("__main__.py", "clrbench")):
        command = "the same command"  # called as a library: we do not know the command line
    return Interrupted(
        signum,
        f"interrupted by {signal.Signals(signum).name}: {done} of {len(runs)} runs are finished "
        f"in {out}, runs in flight were discarded; resume with: {command}",
    )


def print_summary(results: Results, console: Console) -> None:
    """One screen: final test accuracy mean ± std per schedule, and where the results are."""
    from clrbench.stats import summarize

    summary = summarize(results)
    table = Table(title=f"Final test accuracy ({results.path})")
    for column in ("schedule", "ok runs", "final test accuracy", "training s / run"):
        table.add_column(column, justify="left" if column == "schedule" else "right")
    for row in summary.itertuples():
        mean, std = 100 * row.final_test_accuracy_mean, 100 * row.final_test_accuracy_std
        accuracy = f"{mean:.2f}% ± {std:.2f}"
        table.add_row(
            str(row.schedule), f"{row.ok}/{row.runs}", accuracy, f"{row.train_s_mean:.0f}"
        )
    console.print(table)
    console.print(f"results: {results.path}")
