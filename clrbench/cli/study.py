"""``clrbench study``: a fair comparison of schedule families (see ``clrbench.study.protocol``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from clrbench.config.parse import load_toml
from clrbench.config.workloads import DEFAULT_WORKLOAD, expand_workload_key, name_of, named
from clrbench.data.load import dataset_counts
from clrbench.errors import ConfigError
from clrbench.study.config import StudyConfig
from clrbench.study.presets import OPTIONAL, STANDARD, STUDY_PRESET_HELP, STUDY_PRESETS


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
    p.add_argument(
        "--workload",
        metavar="A,B",
        help="workloads to study, one study each (OUT/NAME when several): a built-in name "
        "(default mnist-mlp) or a plug-in's package.module:attribute; a preset follows each "
        "workload's length, batch size and size",
    )
    p.add_argument("--budget", type=int, metavar="N", help="trials per family")
    p.add_argument("--seeds", type=int, metavar="N", help="fresh seeds for the final re-runs")
    p.add_argument(
        "--studies",
        type=int,
        metavar="N",
        help="independent tunings (own Sobol scrambles and selection seeds, the same split and "
        "final seeds); the headline is the median over them (default 1: one draw)",
    )
    p.add_argument(
        "--confirm-top",
        type=int,
        metavar="K",
        help="the best K trials of each family re-trained for the winner (0: the best trial "
        "wins on its one tuning seed; default 3)",
    )
    p.add_argument(
        "--confirm-seeds",
        type=int,
        metavar="S",
        help="fresh validation seeds per confirmation candidate (default 3): K x S runs per "
        "family and study",
    )
    p.add_argument(
        "--families",
        metavar="A,B",
        help=f"families to compare (default {','.join(STANDARD)}; also {','.join(OPTIONAL)})",
    )
    p.add_argument("--epochs", type=int, help="epochs per run (a preset's spaces follow)")
    p.add_argument(
        "--train-size", type=int, metavar="N", help="stratified subset of the train split"
    )
    p.add_argument(
        "--eval-every", type=int, metavar="STEPS", help="also evaluate every STEPS steps"
    )
    p.add_argument("--no-zero-budget", action="store_true", help="skip the lr-find arm")
    p.add_argument("--jobs", type=int, help="concurrent runs (default: number of cores)")
    stacking = p.add_mutually_exclusive_group()
    stacking.add_argument(
        "--stack",
        action="store_const",
        const=True,
        help="train each phase's runs in stacks (default: where measured faster)",
    )
    stacking.add_argument(
        "--no-stack", dest="stack", action="store_const", const=False, help="train separately"
    )
    p.add_argument("--stack-width", type=int, metavar="K", help="at most K runs per stack")
    p.add_argument("--out", metavar="DIR", help="study folder (default results/study-<name>)")
    p.add_argument("--data-dir", metavar="DIR", help="folder with the IDX files")
    p.add_argument("--backend", choices=("loky", "dask"), default="loky")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (tcp://host:port)")
    p.add_argument("--emit-config", metavar="FILE", help="write the resolved study TOML and stop")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--no-report", action="store_true", help="skip rendering the report")
    p.set_defaults(func=study_command)


def resolve_study(args: argparse.Namespace, workload: str | None = None) -> StudyConfig:
    """Preset or TOML (on ``workload`` when given), then the command-line overrides, validated."""
    from clrbench.cli.run import on_workload
    from clrbench.study.presets import all_families, preset

    wanted = [f.strip() for f in args.families.split(",") if f.strip()] if args.families else None
    if args.config:
        raw = load_toml(args.config)
        if workload is not None:
            raw = on_workload(raw, workload)
        epochs = expand_workload_key(raw.get("experiment", {})).get("epochs", 25)
    elif workload is not None:
        found = named(workload)
        raw = preset(
            args.preset or "reference", args.epochs, found, dataset_counts(found.dataset)[0]
        )
        epochs = raw["experiment"]["epochs"]
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
        "studies": args.studies,
        "confirm_top": args.confirm_top,
        "confirm_seeds": args.confirm_seeds,
        "epochs": args.epochs,
        "train_size": args.train_size,
        "eval_every": args.eval_every,
    }
    changes = {k: v for k, v in overrides.items() if v is not None}
    if args.no_zero_budget:
        changes["zero_budget"] = False
    config = config.with_changes(**changes)
    return config.select(wanted) if wanted else config


def study_command(args: argparse.Namespace) -> int:
    """Validate every workload's study, then plan, train every phase (resumable) and report
    each; 1 if any run failed."""
    from clrbench.cli.run import workload_names

    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise ConfigError(f"--data-dir {args.data_dir}: no such directory")
    names = workload_names(args)
    configs = [resolve_study(args, name) for name in names]
    if args.emit_config:
        if len(configs) > 1:
            raise ConfigError("--emit-config writes one study: give one --workload")
        import tomli_w

        Path(args.emit_config).write_text(tomli_w.dumps(configs[0].to_dict()))
        print(args.emit_config)
        return 0
    for config in configs:
        if config.workload.is_plugin:
            from clrbench.train.models import check_plugin_model

            check_plugin_model(config.workload)
    labels = [name_of(c.workload) for c in configs]
    if len(set(labels)) < len(labels):
        raise ConfigError(f"--workload names one workload twice: {', '.join(labels)}")
    if len(configs) == 1:
        default = f"study-{configs[0].name}"
        if names[0] is not None and labels[0] != DEFAULT_WORKLOAD:
            default += f"-{labels[0]}"
        outs = [Path(args.out or Path("results") / default)]
    else:
        base = Path(args.out or Path("results") / f"study-{configs[0].name}-workloads")
        outs = [base / label for label in labels]
    failed = 0
    for config, out in zip(configs, outs, strict=True):
        failed += study_one(args, config, out)
    return 1 if failed else 0


def study_one(args: argparse.Namespace, config: StudyConfig, out: Path) -> int:
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
        f"seeds, {config.seeds} final seeds; {config.studies} "
        f"stud{'y' if config.studies == 1 else 'ies'}; "
        f"{config.workload.epochs} epochs per run -> {out}"
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
        stack=args.stack,
        stack_width=args.stack_width,
    )
    with folder_lock(out, "study"):  # one writer of the study's state, through the report
        outcome = study_locked(config, out, runner)
        trained, kept = sum(outcome.trained.values()), sum(outcome.skipped.values())
        console.print(f"{trained} runs trained, {kept} already complete")
        if not args.no_report and any(s["winners"] for s in outcome.state["studies"]):
            from clrbench.study.report import render_study

            for path in render_study(out, out / "report").values():
                console.print(f"report: {path}")
    for record in outcome.failed:
        console.print(f"[red]failed[/red] {record.run_id}: {record.error}")
    return len(outcome.failed)
