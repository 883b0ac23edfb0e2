"""``clrbench run``: train an experiment (preset or TOML, CLI overrides) into a results folder."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from clrbench.suite.runner import SuiteOutcome

from clrbench.config.experiment import Experiment, Plan
from clrbench.config.parse import load_toml
from clrbench.config.presets import PRESET_HELP, PRESETS, preset
from clrbench.config.workloads import BUILT_IN, DEFAULT_WORKLOAD, name_of, named
from clrbench.data.load import dataset_counts, load_dataset
from clrbench.data.registry import DATASETS
from clrbench.errors import ConfigError, Interrupted
from clrbench.store.results import Results, load_results
from clrbench.suite.lock import folder_lock
from clrbench.text import plural


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` subcommand."""
    from clrbench.cli.main import add_verbose

    p = subparsers.add_parser(
        "run",
        help="train schedules x seeds and report",
        description="Train every schedule of an experiment with every seed, in parallel, into "
        "a resumable results folder; then print the summary and render the report.",
    )
    source = p.add_mutually_exclusive_group()
    presets = "; ".join(f"{name} = {PRESET_HELP[name]}" for name in PRESETS)
    source.add_argument(
        "--preset",
        choices=list(PRESETS),
        metavar="NAME",
        help=f"a named experiment: {presets}. Without --preset or --config: default",
    )
    source.add_argument("--config", metavar="FILE", help="experiment TOML file (see README)")
    p.add_argument("--seeds", type=int, metavar="N", help="train seeds FIRST..FIRST+N-1")
    p.add_argument("--first-seed", type=int, default=None, metavar="FIRST", help="default 0")
    p.add_argument("--schedules", metavar="A,B", help="labels or schedule names to keep")
    p.add_argument(
        "--workload",
        metavar="A,B",
        help=f"workloads to train the experiment on, one results folder each (OUT/NAME when "
        f"several): {', '.join(BUILT_IN)} (default mnist-mlp), or a plug-in's "
        "package.module:attribute (README, 'Your own workload')",
    )
    p.add_argument("--dataset", choices=list(DATASETS), help="(default: the experiment's, mnist)")
    p.add_argument(
        "--epochs", type=int, metavar="N", help="epochs per run (default: the experiment's)"
    )
    p.add_argument("--batch-size", type=int, metavar="N", help="default: the experiment's, 128")
    p.add_argument("--train-size", type=int, metavar="N", help="stratified training subset")
    p.add_argument("--optimizer", metavar="NAME", help="sgd-momentum (default), sgd, rmsprop, adam")
    p.add_argument(
        "--threads", type=int, metavar="N", help="TensorFlow threads per run (default 1)"
    )
    p.add_argument(
        "--eval-every",
        type=int,
        metavar="STEPS",
        help="also evaluate every STEPS optimizer steps, for a finer time to target "
        "(default: once per epoch; evaluation stays out of time_s)",
    )
    p.add_argument(
        "--jobs", type=int, metavar="N", help="concurrent runs (default: number of cores)"
    )
    p.add_argument("--out", metavar="DIR", help="results folder (default results/<name>)")
    p.add_argument("--data-dir", metavar="DIR", help="folder with the IDX files")
    p.add_argument(
        "--backend",
        choices=("loky", "dask"),
        default="loky",
        help="loky: worker processes on this machine (default); dask: a Dask cluster "
        "(--scheduler, or a local one of --jobs workers)",
    )
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (tcp://host:port)")
    stacking = p.add_mutually_exclusive_group()
    stacking.add_argument(
        "--stack",
        action="store_const",
        const=True,
        help="train runs of the workload together in stacks, one graph each (their own run "
        "ids); default: stacked where measured faster (a GPU; mnist1d-mlp on a CPU)",
    )
    stacking.add_argument(
        "--no-stack",
        dest="stack",
        action="store_const",
        const=False,
        help="train every run separately",
    )
    p.add_argument(
        "--stack-width",
        type=int,
        metavar="K",
        help="at most K runs per stack (default: the width measured for the device and workload)",
    )
    p.add_argument("--force", action="store_true", help="retrain runs already complete")
    p.add_argument(
        "--quiet", action="store_true", help="print only errors and the results folder's path"
    )
    p.add_argument("--no-report", action="store_true", help="skip rendering the report")
    add_verbose(p)
    p.set_defaults(func=run_command)


def workload_names(args: argparse.Namespace) -> list[str | None]:
    """The workloads ``--workload`` names, in order (``[None]``: the experiment's own)."""
    if not getattr(args, "workload", None):
        return [None]
    names = list(dict.fromkeys(n.strip() for n in args.workload.split(",") if n.strip()))
    if not names:
        raise ConfigError("--workload needs at least one workload name")
    return list(names)


def resolve_experiment(args: argparse.Namespace, workload: str | None = None) -> Experiment:
    """Preset or TOML (on ``workload`` when given: its data, model, length and, for a preset,
    its rates), then the command-line overrides, validated."""
    if args.config:
        raw = load_toml(args.config)
        if workload is not None:
            raw = on_workload(raw, workload)
    elif workload is not None:
        named_workload = named(workload)
        train_count = dataset_counts(named_workload.dataset)[0]
        raw = preset(args.preset or "default", named_workload, train_count)
    else:
        raw = PRESETS[args.preset or "default"]
    experiment = Experiment.from_dict(raw)
    overrides = {
        "dataset": args.dataset,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "train_size": args.train_size,
        "optimizer": args.optimizer,
        "threads": args.threads,
        "eval_every": args.eval_every,
    }
    experiment = experiment.with_workload(**{k: v for k, v in overrides.items() if v is not None})
    if args.seeds is not None or args.first_seed is not None:
        count = args.seeds if args.seeds is not None else len(experiment.seeds)
        first = args.first_seed or 0
        if count < 1 or first < 0:
            raise ConfigError(f"--seeds must be >= 1 and --first-seed >= 0, got {count}, {first}")
        experiment = replace(experiment, seeds=tuple(range(first, first + count)))
    if args.schedules:
        experiment = experiment.select([s.strip() for s in args.schedules.split(",") if s.strip()])
    return experiment


def on_workload(raw: dict, workload: str) -> dict:
    """An experiment TOML moved to ``workload``: its data set and model, and its epochs and
    batch size (the command line may still override them)."""
    raw = dict(raw)
    settings = dict(raw.get("experiment", {}))
    for key in ("workload", "dataset", "model", "epochs", "batch_size"):
        settings.pop(key, None)
    raw["experiment"] = settings | {"workload": workload}
    return raw


def folders(args: argparse.Namespace, experiments: list[Experiment]) -> tuple[list[Path], Path]:
    """Each experiment's results folder, and the folder holding them (the one folder when
    there is one workload): OUT, or results/NAME (NAME-WORKLOAD off mnist-mlp); with several
    workloads OUT/WORKLOAD, OUT by default results/NAME-workloads."""
    names = [name_of(e.workload) for e in experiments]
    if len(experiments) == 1:
        default = experiments[0].name
        if names[0] != DEFAULT_WORKLOAD:
            default = f"{default}-{names[0]}"
        out = Path(args.out or Path("results") / default)
        return [out], out
    if len(set(names)) < len(names):
        raise ConfigError(f"--workload names one workload twice: {', '.join(names)}")
    base = Path(args.out or Path("results") / f"{experiments[0].name}-workloads")
    return [base / name for name in names], base


def run_command(args: argparse.Namespace) -> int:
    """Validate everything (every workload's data, model and schedules), then train,
    summarise and report each workload; 1 if any run failed."""
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise ConfigError(f"--data-dir {args.data_dir}: no such directory")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    experiments = [resolve_experiment(args, name) for name in workload_names(args)]
    outs, base = folders(args, experiments)
    for experiment in experiments:
        # Find and verify the data now: a missing or corrupt file is one error line, not N
        # failed runs; a plug-in's model is built and checked too.
        load_dataset(experiment.workload.dataset, data_dir=args.data_dir)
        if experiment.workload.is_plugin:
            from clrbench.train.models import check_plugin_model

            check_plugin_model(experiment.workload)
    # builds and checks every schedule's rates, before any writing; stacked or not, settled here
    plans = [stacking_plan(e, args.stack, args.stack_width) for e in experiments]
    failed = 0
    for plan, out in zip(plans, outs, strict=True):
        failed += run_one(args, plan, out)
    if len(plans) > 1 and not args.no_report:
        from clrbench.across.report import render_across

        console = Console(stderr=True, soft_wrap=True, quiet=args.quiet)
        for path in render_across(outs, base / "report").values():
            console.print(f"cross-workload report: {path}", markup=False)
    if args.quiet and len(plans) > 1:
        print(base)
    return 1 if failed else 0


def run_one(args: argparse.Namespace, plan: Plan, out: Path) -> int:
    """Train one workload's plan into ``out``, summarise and report it; its failed runs."""
    experiment = plan.experiment
    # soft_wrap: long lines are left to the terminal, never broken mid-phrase at 80 columns
    console = Console(stderr=True, soft_wrap=True, quiet=args.quiet)
    from clrbench.suite.pool import default_jobs

    jobs = default_jobs(args.jobs)
    with folder_lock(out, "run"):  # one writer per folder, through the report
        for note in experiment.notes:
            console.print(f"note: {note}", markup=False)
        console.print(f"{header(plan, jobs)} -> {out}", markup=False)
        line = stacking_line(plan, jobs)
        if line is not None:
            console.print(line, markup=False)
        outcome = train(args, plan, out, console, jobs)
        results = load_results(out)
        stdout = Console(soft_wrap=True, quiet=args.quiet)
        print_summary(results, stdout)
        if not args.no_report:
            from clrbench.reporting.render import render

            for path in render(results, out / "report").values():
                console.print(f"report: {path}", markup=False)
    errors = Console(stderr=True, soft_wrap=True)  # failures are errors: shown even when quiet
    for record in outcome.failed:
        errors.print(f"[red]failed[/red] {record.run_id}: {record.error}", highlight=False)
    if args.quiet:
        print(out)  # the one line of --quiet: where the results are
    else:
        stdout.print(f"results: {out}", markup=False)
    return len(outcome.failed)


def stacking_plan(experiment: Experiment, stack: bool | None, width: int | None) -> Plan:
    """The experiment's plan, stacked as asked or as measured (``choose_stack``); a plug-in's
    model that cannot be stacked is one ConfigError line when asked for, separate when auto."""
    from clrbench.suite.devices import choose_stack

    choice = choose_stack(stack, name_of(experiment.workload), width)
    if choice.on and experiment.workload.is_plugin:
        from clrbench.train.stacked import check_model_stackable

        try:
            check_model_stackable(experiment.workload)
        except ConfigError as exc:
            if stack:
                raise
            choice = replace(choice, on=False, reason=f"auto: {exc}")
    return experiment.plan(stack=choice)


def stacking_line(plan: Plan, jobs: int) -> str | None:
    """``stacking: on, 25 runs in 2 stacks (auto: ...)``, or None for a plan without a choice."""
    choice = plan.stacking
    if choice is None:
        return None
    if not choice.on:
        return f"stacking: off ({choice.reason})"
    from clrbench.suite.runner import stacks

    count = sum(isinstance(task, tuple) for task in stacks(list(plan.runs), choice.width, jobs))
    members = sum(spec.trainer == "stacked" for spec in plan.runs)
    return f"stacking: on, {plural(members, 'run')} in {plural(count, 'stack')} ({choice.reason})"


def header(plan: Plan, jobs: int) -> str:
    """``quick: 5 schedules x 3 seeds = 15 runs of 4 epochs (188 steps each), 2 at a time``."""
    experiment, runs = plan.experiment, len(plan.runs)
    return (
        f"{experiment.name} on {name_of(experiment.workload)}: "
        f"{plural(len(experiment.schedules), 'schedule')} x "
        f"{plural(len(experiment.seeds), 'seed')} = {plural(runs, 'run')} of "
        f"{plural(experiment.workload.epochs, 'epoch')} "
        f"({plural(experiment.total_steps, 'step')} each), "
        f"{min(jobs, runs)} at a time"
    )


def train(
    args: argparse.Namespace, plan: Plan, out: Path, console: Console, jobs: int
) -> SuiteOutcome:
    """The suite (``out`` locked by the caller) with its progress display; an interruption
    becomes the resume line."""
    from clrbench.suite.progress import SuiteProgress
    from clrbench.suite.runner import train_locked

    progress = SuiteProgress(console, plan.experiment.workload.epochs, quiet=args.quiet)
    try:
        return train_locked(
            plan,
            out,
            jobs=jobs,
            backend=args.backend,
            scheduler=args.scheduler,
            data_dir=args.data_dir,
            force=args.force,
            progress=progress,
        )
    except KeyboardInterrupt as exc:
        raise interrupted(exc, plan, out) from None
    finally:
        progress.stop()


def interrupted(exc: KeyboardInterrupt, plan: Plan, out: Path) -> Interrupted:
    """The one line saying what is kept and how to resume."""
    from clrbench.store.results import is_complete

    signum = getattr(exc, "signum", signal.SIGINT)
    runs = plan.runs
    done = sum(is_complete(out, spec.run_id) for spec in runs)
    command = shlex.join(["python", "-m", "clrbench", *sys.argv[1:]])
    if sys.argv[0] and not sys.argv[0].endswith(("__main__.py", "clrbench")):
        command = "the same command"  # called as a library: we do not know the command line
    return Interrupted(
        signum,
        f"interrupted by {signal.Signals(signum).name}: {done} of {len(runs)} runs are finished "
        f"in {out}, runs in flight were discarded; resume with: {command}",
    )


def accuracy_cell(mean: float, std: float, ok: int) -> str:
    """Mean ± sd over the ok seeds in percent; one seed has no spread, so it says so."""
    if ok == 0 or mean != mean:  # NaN: no ok run
        return "n/a"
    if ok == 1:
        return f"{100 * mean:.2f}% (1 seed)"
    return f"{100 * mean:.2f}% ± {100 * std:.2f}"


def print_summary(results: Results, console: Console) -> None:
    """One screen: final test accuracy mean ± std per schedule, and where the results are."""
    from clrbench.analysis.stats import summarize

    summary = summarize(results)
    table = Table(title=f"Final test accuracy ({results.path})")
    columns = ("schedule", "ok runs", "final test accuracy (mean ± sd)", "training s / run")
    for column in columns:
        table.add_column(column, justify="left" if column == "schedule" else "right")
    for row in summary.itertuples():
        accuracy = accuracy_cell(row.final_test_accuracy_mean, row.final_test_accuracy_std, row.ok)
        seconds = f"{row.train_s_mean:.0f}" if row.train_s_mean == row.train_s_mean else "n/a"
        table.add_row(str(row.schedule), f"{row.ok}/{row.runs}", accuracy, seconds)
    console.print(table)
