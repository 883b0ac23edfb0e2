"""``clrbench study``: a fair comparison of schedule families (argparse and one call of
``clrbench.study.run``; the protocol is ``clrbench.study.protocol``)."""

from __future__ import annotations

import argparse

from clrbench.study import FAMILIES, OPTIONAL_FAMILIES, OPTIONS, PRESET_HELP, PRESETS


def register(subparsers: argparse._SubParsersAction) -> None:
    from clrbench.cli.report import add_margin

    """Add the ``study`` subcommand."""
    presets = "; ".join(f"{name}: {text}" for name, text in PRESET_HELP.items())
    p = subparsers.add_parser(
        "study",
        help="equal tuning budget per schedule family, selection on validation, test once",
        description="Tune every schedule family with the same number of quasi-random trials on "
        "a validation split, re-run each family's best with fresh seeds on the test set, sweep "
        "the winners' rates for sensitivity, and run Smith's zero-budget lr-find arm. "
        f"Resumable; renders STUDY/report. Presets: {presets}.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=sorted(PRESETS), help="default: reference")
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
        help=f"families to compare (default {','.join(FAMILIES)}; "
        f"also {','.join(OPTIONAL_FAMILIES)})",
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
    p.add_argument(
        "--fresh-seeds",
        action="store_true",
        default=None,
        help="each study re-runs its winners on its own final seeds (first seed + 10,000 per "
        "study), so the spread over studies includes a fresh draw of seeds",
    )
    p.add_argument(
        "--until-decided",
        action="store_true",
        default=None,
        help="add studies until every family is decided (better, worse or equivalent within "
        "the margin; a sequential rule spends alpha over the looks), at most --max-studies",
    )
    p.add_argument(
        "--max-studies", type=int, metavar="N", help="the most studies --until-decided runs"
    )
    add_margin(p)
    p.set_defaults(func=study_command)


def study_command(args: argparse.Namespace) -> int:
    """Validate every workload's study, then plan, train every phase (resumable) and report
    each (``clrbench.study.run``); 1 if any run failed."""
    import clrbench

    values = {name: getattr(args, name, None) for name in OPTIONS}
    options = {name: value for name, value in values.items() if value is not None}
    if args.emit_config:
        clrbench.study.run(args.config, out=args.out, emit_config=args.emit_config, **options)
        print(args.emit_config)
        return 0
    failed = clrbench.study.run(args.config, out=args.out, **options)
    return 1 if failed else 0
