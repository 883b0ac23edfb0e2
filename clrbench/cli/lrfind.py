"""``python -m clrbench lr-find``: the learning-rate range test over seeds.

Writes ``lr_find.json`` (bounds, rule, per-seed readings, sweep settings, divergence),
``lr_find.parquet`` (seed, step, lr, loss, accuracy, smoothed_loss) and ``lr_find.png`` to
``--out``; ``--emit-config FILE`` also writes a TOML experiment of cyclical schedules between the
suggested bounds, so ``lr-find`` then ``run --config FILE`` is the whole workflow. The sweep
is ``clrbench.train.lr_sweep`` (on the lean loop), its reading ``clrbench.analysis.lrfind``;
this module writes, draws and prints them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clrbench.cli.main import add_verbose
from clrbench.errors import ConfigError
from clrbench.suite.lock import folder_lock
from clrbench.suite.lrfind import EXPERIMENT_EPOCHS
from clrbench.text import plural

if TYPE_CHECKING:
    from clrbench.analysis.lrfind import LrFindResult
    from clrbench.config.sweep import SweepSettings
    from clrbench.config.workload import Workload

DEFAULT_OUT = "results/lr-find"


def register(subparsers: Any) -> None:
    """Add the ``lr-find`` subcommand."""
    parser = subparsers.add_parser(
        "lr-find",
        help="LR range test: suggest base_lr/max_lr for cyclical schedules",
        description="Train the standard model from fresh weights while the rate grows every "
        "step, read each batch's own loss over several seeds, and suggest the bounds of a "
        "cyclical schedule (the rule is written into lr_find.json).",
    )
    add = parser.add_argument
    add("--seeds", type=int, default=3, help="number of seeds, 0..N-1 (default 3)")
    add("--mode", default="exp", help="rate growth: exp (default) or linear (Smith 2015)")
    add("--min-lr", type=float, default=1e-4, help="rate at the first step (default 1e-4)")
    add("--max-lr", type=float, default=10.0, help="rate at the last step (default 10)")
    add("--steps", type=int, default=500, help="steps of the sweep (default 500)")
    add("--train-size", type=int, default=None, help="stratified training subset (default all)")
    add(
        "--optimizer",
        default="sgd-momentum",
        help="sgd-momentum (default), sgd, rmsprop, adam, adamw, nadamw",
    )
    add("--dataset", default=None, help="mnist (default), fashion_mnist or mnist1d")
    add(
        "--workload",
        default=None,
        help="a named workload (its data set, model and batch size: mnist-mlp, "
        "fashion-mnist-mlp, mnist1d-mlp) or a plug-in's package.module:attribute",
    )
    add("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    add("--data-dir", default=None, help="folder with the IDX files (default: searched)")
    add("--jobs", type=int, default=None, help="seeds trained at once (default: min(seeds, CPUs))")
    add(
        "--emit-config",
        default=None,
        metavar="FILE",
        help="also write a TOML experiment between the suggested bounds, on the same dataset, "
        "training subset, optimizer and number of seeds as the sweep",
    )
    add(
        "--epochs",
        type=int,
        default=EXPERIMENT_EPOCHS,
        metavar="N",
        help=f"epochs per run of the --emit-config experiment (default {EXPERIMENT_EPOCHS})",
    )
    add_verbose(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate, sweep every seed, write the outputs and print a summary."""
    from clrbench.data.load import load_dataset
    from clrbench.suite.lrfind import (
        describe_config,
        experiment_config,
        run_lr_find,
        write_config,
        write_outputs,
    )

    settings, seeds, jobs = _validated(args)
    # Missing data or a bad --train-size: one line, before the output folder is touched.
    load_dataset(settings.workload.dataset, args.data_dir, settings.workload.train_size, seed=0)
    with folder_lock(args.out, "lr-find"):  # one writer per output folder
        result = run_lr_find(settings, seeds, args.data_dir, jobs)
        paths = write_outputs(result, Path(args.out))
    if args.emit_config:
        config = experiment_config(result, args.epochs, len(seeds))
        paths["config"] = write_config(result, config, Path(args.emit_config))
    print_summary(result, paths)
    if args.emit_config:
        print(f"{paths['config']} trains {describe_config(config)}")
        print(
            f"next: python -m clrbench run --config {paths['config']}"
            "   (--epochs N, --seeds N or --train-size N change its size)"
        )
    return 0


def _validated(args: argparse.Namespace) -> tuple[SweepSettings, list[int], int]:
    """The sweep settings, seeds and jobs, or a ConfigError naming the offending flag."""
    from clrbench.config.sweep import SweepSettings, check_sweep
    from clrbench.suite.pool import default_jobs

    if args.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    if args.epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, got {args.epochs}")
    check_sweep(args.min_lr, args.max_lr, args.steps, args.mode, _flag)
    for flag, path in (("--out", args.out), ("--emit-config", args.emit_config)):
        expected_dir = flag == "--out"
        if path and Path(path).exists() and Path(path).is_dir() != expected_dir:
            kind = "a file" if expected_dir else "a folder"
            raise ConfigError(f"{flag} {path} is {kind}")
    settings = SweepSettings(
        min_lr=args.min_lr,
        max_lr=args.max_lr,
        steps=args.steps,
        mode=args.mode,
        workload=sweep_workload(args),
    )
    jobs = default_jobs(args.jobs, tasks=args.seeds)
    return settings, list(range(args.seeds)), jobs


def sweep_workload(args: argparse.Namespace) -> Workload:
    """The sweep's workload: ``--workload``'s data, model and batch size (else ``--dataset``'s
    data and the dense-512 model), the subset and the optimizer."""
    from clrbench.config.workload import Workload
    from clrbench.config.workloads import named

    common = {"train_size": args.train_size, "optimizer": args.optimizer}
    if args.workload is None:
        return Workload(dataset=args.dataset or "mnist", **common)
    if args.dataset is not None:
        raise ConfigError("give --workload or --dataset, not both")
    workload = named(args.workload).workload(**common)
    if workload.is_plugin:
        from clrbench.train.models import check_plugin_model

        check_plugin_model(workload)
    return workload


def _flag(setting: str) -> str:
    """A sweep setting as its command-line flag: ``min_lr`` -> ``--min-lr``."""
    return "--" + setting.replace("_", "-")


# --- the summary ---


def print_summary(result: LrFindResult, paths: dict[str, Path]) -> None:
    """Bounds, per-seed readings, spread, warnings and where everything was written."""
    s, sg = result.settings, result.suggestion
    print(
        f"lr-find: {s.workload.dataset}, {s.workload.optimizer}, {s.mode} sweep "
        f"{s.min_lr:g} -> {s.max_lr:g} over "
        f"{s.steps} steps, {plural(len(result.per_seed), 'seed')}, {plural(result.jobs, 'job')}: "
        f"{result.wall_s:.1f} s"
    )
    columns = ("seed", "max_lr", "valley from", "to", "min loss at", "diverged at", "steps", "s")
    print("  " + "  ".join(f"{c:>11}" for c in columns))
    for r in result.per_seed:
        values = [r["max_lr"], r["valley_low_lr"], r["valley_high_lr"], r["lr_min_loss"]]
        values.append(r["divergence_lr"])
        cells = [f"{r['seed']:>11}"] + [f"{_g(v):>11}" for v in values]
        cells += [f"{r['steps_run']:>11}", f"{r['wall_s']:>11.1f}"]
        print("  " + "  ".join(cells))
    print(f"suggested: base_lr = {sg['base_lr']:g}, max_lr = {sg['max_lr']:g}")
    print(
        "  max_lr = median over seeds of the geometric centre of the rates where the smoothed "
        "loss is within 1.5x of its minimum; base_lr = max_lr / 4"
    )
    spread = ", ".join(f"{k} {v:.2f}x" for k, v in sg["spread"].items() if v is not None)
    if spread:
        print(f"  spread between seeds (largest / smallest): {spread}")
    for warning in sg["warnings"]:
        print(f"warning: {warning}")
    print("wrote: " + ", ".join(str(p) for p in paths.values()))


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
