"""One workload's run as a person watches it: the header, the progress display, the summary
table, the report, the failures and the one line of ``--quiet`` (``clrbench.run`` drives it).

Messages go to stderr, the summary and the results folder to stdout, as the command line
always printed them; ``quiet`` leaves errors and the results folder's path.
"""

from __future__ import annotations

import shlex
import signal
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from clrbench.config.experiment import Experiment, Plan
from clrbench.config.workloads import name_of
from clrbench.errors import ConfigError, Interrupted
from clrbench.store.results import Results, load_results
from clrbench.suite.lock import folder_lock
from clrbench.text import plural


@dataclass(frozen=True)
class Execution:
    """How a suite runs: workers, backend, data, retraining, what is printed."""

    jobs: int | None = None
    backend: str = "loky"
    scheduler: str | None = None
    data_dir: str | None = None
    force: bool = False
    quiet: bool = False
    report: bool = True
    margin: float | None = None  # --margin (pp) for the report, else the workload's own


def run_one(plan: Plan, out: Path, how: Execution) -> tuple[Results, int]:
    """Train one workload's plan into ``out``, summarise and report it; its results and the
    number of its failed runs."""
    from clrbench.suite.pool import default_jobs

    experiment = plan.experiment
    # soft_wrap: long lines are left to the terminal, never broken mid-phrase at 80 columns
    console = Console(stderr=True, soft_wrap=True, quiet=how.quiet)
    jobs = default_jobs(how.jobs)
    with folder_lock(out, "run"):  # one writer per folder, through the report
        for note in experiment.notes:
            console.print(f"note: {note}", markup=False)
        console.print(f"{header(plan, jobs)} -> {out}", markup=False)
        line = stacking_line(plan, jobs)
        if line is not None:
            console.print(line, markup=False)
        outcome = train(plan, out, console, jobs, how)
        results = load_results(out)
        stdout = Console(soft_wrap=True, quiet=how.quiet)
        print_summary(results, stdout)
        if how.report:
            from clrbench.reporting.render import render

            for path in render(results, out / "report", margin_pp=how.margin).values():
                console.print(f"report: {path}", markup=False)
    errors = Console(stderr=True, soft_wrap=True)  # failures are errors: shown even when quiet
    for record in outcome.failed:
        errors.print(f"[red]failed[/red] {record.run_id}: {record.error}", highlight=False)
    if how.quiet:
        print(out)  # the one line of --quiet: where the results are
    else:
        stdout.print(f"results: {out}", markup=False)
    return results, len(outcome.failed)


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


def train(plan: Plan, out: Path, console: Console, jobs: int, how: Execution):
    """The suite (``out`` locked by the caller) with its progress display; an interruption
    becomes the resume line."""
    from clrbench.suite.progress import SuiteProgress
    from clrbench.suite.runner import train_locked

    progress = SuiteProgress(console, plan.experiment.workload.epochs, quiet=how.quiet)
    try:
        return train_locked(
            plan,
            out,
            jobs=jobs,
            backend=how.backend,
            scheduler=how.scheduler,
            data_dir=how.data_dir,
            force=how.force,
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
