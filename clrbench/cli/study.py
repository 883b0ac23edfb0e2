"""``clrbench study``: a fair comparison of schedule families (see ``clrbench.suite.study``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from clrbench.config.parse import load_toml
from clrbench.config.study import StudyConfig
from clrbench.config.study_presets import OPTIONAL, STANDARD, STUDY_PRESET_HELP, STUDY_PRESETS
from clrbench.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``study`` subcommand."""
    presets = "; ".join(f"{name}: {text}" for name, text in STUDY_PRESET_HELP.items())
    p = subparsers.add_parser(
        "study",
        help="equal tuning budget per schedule family, selection on validation, test once",
        description="Tune every schedule family with the same number of quasi-random trials on "
        "a validation split, re-run each family's best with fresh seeds on the test set, sweep "
        "the winners' rates for sensitivity, and run Smith's zero-budget lr-find arm. "
        f"Resumable; renders STUDY/report. Presets: {presets}.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=sorted(STUDY_PRESETS), help="default: reference")
    source.add_argument("--config", metavar="FILE", help="study TOML file")
    p.add_argument("--budget", type=int, metavar="N", help="trials per family")
    p.add_argument("--seeds", type=int, metavar="N", help="fresh seeds for the final re-runs")
    p.add_argument(
        "--families",
        metavar="A,B",
        help=f"families to compare (default {','.join(STANDARD)}; also {','.join(OPTIONAL)})",
    )
    p.add_argument("--epochs", type=int, help="epochs per run (a preset's spaces follow)")
    p.add_argument(
        "--train-size", type=int, metavar="N", help="stratified subset of the train split"
    )
    p.add_argument("--no-zero-budget", action="store_true", help="skip the lr-find arm")
    p.add_argument("--jobs", type=int, help="concurrent runs (default: number of cores)")
    p.add_argument("--out", metavar="DIR", help="study folder (default results/study-<name>)")
    p.add_argument("--data-dir", metavar="DIR", help="folder with the IDX files")
    p.add_argument("--backend", choices=("loky", "dask"), default="loky")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (tcp://host:port)")
    p.add_argument("--emit-config", metavar="FILE", help="write the resolved study TOML and stop")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--no-report", action="store_true", help="skip rendering the report")
    p.set_defaults(func=study_command)


def resolve_study(args: argparse.Namespace) -> StudyConfig:
    """Preset or TOML, then the command-line overrides, validated."""
    from clrbench.config.study_presets import all_families, preset

    wanted = [f.strip() for f in args.families.split(",") if f.strip()] if args.families else None
    if args.config:
        raw = load_toml(args.config)
        epochs = raw.get("experiment", {}).get("epochs", 25)
    else:
        raw = preset(args.preset or "reference", args.epochs)
        epochs = raw["experiment"]["epochs"]
    if wanted:  # a known family missing from the file or preset comes with its default space
        have = {f.get("label") for f in raw.get("family", [])}
        extra = [f for f in all_families(epochs) if f["label"] in wanted and f["label"] not in have]
        raw = raw | {"family": [*raw.get("family", []), *extra]}
    config = StudyConfig.from_dict(raw)
    overrides = {
        "budget": args.budget,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "train_size": args.train_size,
    }
    changes = {k: v for k, v in overrides.items() if v is not None}
    if args.no_zero_budget:
        changes["zero_budget"] = False
    config = config.with_changes(**changes)
    return config.select(wanted) if wanted else config


def study_command(args: argparse.Namespace) -> int:
    """Validate, plan, train every phase (resumable), report; 1 if any run failed."""
    from clrbench.suite.lock import folder_lock
    from clrbench.suite.pool import default_jobs
    from clrbench.suite.progress import SuiteProgress
    from clrbench.suite.study import Runner, study_locked

    config = resolve_study(args)
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise ConfigError(f"--data-dir {args.data_dir}: no such directory")
    if args.emit_config:
        import tomli_w

        Path(args.emit_config).write_text(tomli_w.dumps(config.to_dict()))
        print(args.emit_config)
        return 0
    out = Path(args.out or Path("results") / f"study-{config.name}")
    console = Console(stderr=True)
    families = len(config.families)
    console.print(
        f"{config.name}: {families} families x {config.budget} trials, "
        f"{len(config.octaves)} multipliers x {config.sensitivity_seeds} seeds, "
        f"{config.seeds} final seeds; {config.workload.epochs} epochs per run -> {out}"
    )
    runner = Runner(
        jobs=default_jobs(args.jobs),
        backend=args.backend,
        scheduler=args.scheduler,
        data_dir=args.data_dir,
        progress=lambda name, experiment: SuiteProgress(
            console, experiment.workload.epochs, args.quiet
        ),
        say=(lambda message: None) if args.quiet else console.print,
    )
    with folder_lock(out, "study"):  # one writer of the study's state, through the report
        outcome = study_locked(config, out, runner)
        trained, kept = sum(outcome.trained.values()), sum(outcome.skipped.values())
        console.print(f"{trained} runs trained, {kept} already complete")
        if not args.no_report and outcome.state.get("winners"):
            from clrbench.report.study import render_study

            for path in render_study(out, out / "report").values():
                console.print(f"report: {path}")
    for record in outcome.failed:
        console.print(f"[red]failed[/red] {record.run_id}: {record.error}")
    return 1 if outcome.failed else 0
