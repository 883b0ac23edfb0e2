"""``clrbench run``: train an experiment (preset or TOML, CLI overrides) into a results folder
(argparse and one call of ``clrbench.run``)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from clrbench.api import DATASETS, PRESET_HELP, PRESETS, RUN_OPTIONS, WORKLOADS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` subcommand."""
    from clrbench.cli.main import add_verbose
    from clrbench.cli.report import add_margin

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
    source.add_argument(
        "--config", metavar="FILE", help="experiment TOML file (docs/reference/configuration.md)"
    )
    p.add_argument("--seeds", type=int, metavar="N", help="train seeds FIRST..FIRST+N-1")
    p.add_argument("--first-seed", type=int, default=None, metavar="FIRST", help="default 0")
    p.add_argument("--schedules", metavar="A,B", help="labels or schedule names to keep")
    p.add_argument(
        "--workload",
        metavar="A,B",
        help=f"workloads to train the experiment on, one results folder each (OUT/NAME when "
        f"several): {', '.join(WORKLOADS)} (default mnist-mlp), or a plug-in's "
        "package.module:attribute (docs/guides/own-workload.md)",
    )
    p.add_argument("--dataset", choices=list(DATASETS), help="(default: the experiment's, mnist)")
    p.add_argument(
        "--epochs", type=int, metavar="N", help="epochs per run (default: the experiment's)"
    )
    p.add_argument("--batch-size", type=int, metavar="N", help="default: the experiment's, 128")
    p.add_argument("--train-size", type=int, metavar="N", help="stratified training subset")
    p.add_argument(
        "--optimizer",
        metavar="NAME",
        help="sgd-momentum (default), sgd, rmsprop, adam, adamw, nadamw, schedulefree-sgd, "
        "schedulefree-adamw (an entry's own optimizer key wins)",
    )
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
    add_margin(p)
    add_verbose(p)
    p.set_defaults(func=run_command)


def options_of(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given, as ``clrbench.run``'s keyword options (None: not given)."""
    values = {name: getattr(args, name, None) for name in RUN_OPTIONS}
    return {name: value for name, value in values.items() if value is not None}


def run_command(args: argparse.Namespace) -> int:
    """Train, summarise and report each workload (``clrbench.run``); 1 if any run failed."""
    import clrbench

    trained = clrbench.run(args.config, out=args.out, **options_of(args))
    every = trained.values() if isinstance(trained, Mapping) else [trained]  # several workloads
    return 1 if any((r.runs["status"] == "failed").any() for r in every) else 0
