"""A study as a person watches it (``clrbench.study.run``): the plan in one line, the
progress of every phase, what was trained, the report, the failures."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from clrbench.config.resolve import output_folders
from clrbench.config.workloads import name_of
from clrbench.errors import ConfigError
from clrbench.study.config import StudyConfig
from clrbench.text import plural


@dataclass(frozen=True)
class StudyExecution:
    """How a study runs: workers, backend, data, what is printed."""

    jobs: int | None = None
    backend: str = "loky"
    scheduler: str | None = None
    data_dir: str | None = None
    quiet: bool = False
    report: bool = True
    stack: bool | None = None  # None: auto (clrbench.suite.devices.choose_stack)
    stack_width: int | None = None
    margin: float | None = None  # --margin (pp), else the workload's own


EXECUTION_OPTIONS: tuple[str, ...] = ("jobs", "backend", "scheduler", "data_dir", "quiet")
EXECUTION_OPTIONS += ("no_report", "stack", "stack_width")


def execution(options: dict[str, Any]) -> StudyExecution:
    """The options of how to run, checked before anything is read."""
    jobs, data_dir = options.get("jobs"), options.get("data_dir")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    if data_dir and not Path(data_dir).is_dir():
        raise ConfigError(f"--data-dir {data_dir}: no such directory")
    from clrbench.analysis.margin import checked_margin_pp

    return StudyExecution(
        margin=checked_margin_pp(options.get("margin")),
        jobs=jobs,
        backend=options.get("backend") or "loky",
        scheduler=options.get("scheduler"),
        data_dir=str(data_dir) if data_dir else None,
        quiet=bool(options.get("quiet")),
        report=not options.get("no_report"),
        stack=options.get("stack"),
        stack_width=options.get("stack_width"),
    )


def study_folders(
    out: str | os.PathLike[str] | None, configs: list[StudyConfig], named: bool
) -> list[Path]:
    """Each study's folder: ``out`` or ``results/study-NAME`` (``-WORKLOAD`` when a workload
    off mnist-mlp was named); with several workloads ``out/WORKLOAD``."""
    labels = [name_of(c.workload) for c in configs]
    return output_folders(out, f"study-{configs[0].name}", labels, suffix=named)[0]


def study_one(config: StudyConfig, out: Path, how: StudyExecution) -> int:
    """One workload's study into ``out``; its failed runs."""
    from clrbench.study.protocol import Runner, study_locked
    from clrbench.suite.lock import folder_lock
    from clrbench.suite.pool import default_jobs
    from clrbench.suite.progress import SuiteProgress

    console = Console(stderr=True)
    families = len(config.families)
    console.print(
        f"{config.name} on {name_of(config.workload)}: {families} families x "
        f"{config.budget} trials, the best {config.confirm_top} x {config.confirm_seeds} "
        f"confirmation seeds, {len(config.octaves)} multipliers x {config.sensitivity_seeds} "
        f"seeds, {config.seeds} final seeds; {plural(config.studies, 'study', 'studies')}; "
        f"{config.workload.epochs} epochs per run -> {out}"
    )
    runner = Runner(
        jobs=default_jobs(how.jobs),
        backend=how.backend,
        scheduler=how.scheduler,
        data_dir=how.data_dir,
        progress=lambda name, experiment: SuiteProgress(
            console, experiment.workload.epochs, how.quiet
        ),
        say=(lambda message: None) if how.quiet else console.print,
        stack=how.stack,
        stack_width=how.stack_width,
    )
    with folder_lock(out, "study"):  # one writer of the study's state, through the report
        outcome = study_locked(config, out, runner, how.margin)
        trained, kept = sum(outcome.trained.values()), sum(outcome.skipped.values())
        console.print(f"{trained} runs trained, {kept} already complete")
        if how.report and any(s.winners for s in outcome.state.studies):
            from clrbench.study.report import render_study

            for path in render_study(out, out / "report", margin_pp=how.margin).values():
                console.print(f"report: {path}")
    for record in outcome.failed:
        console.print(f"[red]failed[/red] {record.run_id}: {record.error}")
    return len(outcome.failed)
