"""``python -m clrbench lr-find``: the learning-rate range test over seeds.

Writes ``lr_find.json`` (bounds, rule, per-seed readings, sweep settings, divergence),
``lr_find.parquet`` (seed, step, lr, loss, accuracy, smoothed_loss) and ``lr_find.png`` to
``--out``; ``--emit-config FILE`` also writes a TOML experiment of cyclical schedules between the
suggested bounds, so ``lr-find`` then ``run --config FILE`` is the whole workflow. This module
parses the flags and calls ``clrbench.lr_find``, which checks, sweeps (``clrbench.train.lr_sweep``
on the lean loop), reads (``clrbench.analysis.lrfind``), writes, draws and prints.
"""

from __future__ import annotations

import argparse
from typing import Any

from clrbench.api import EMIT_EPOCHS
from clrbench.api import LR_FIND_OUT as DEFAULT_OUT
from clrbench.cli.main import add_verbose

# the flags, as clrbench.lr_find's keyword arguments
LR_FIND_OPTIONS = (
    *("seeds", "mode", "min_lr", "max_lr", "steps", "workload", "dataset", "train_size"),
    *("optimizer", "data_dir", "jobs", "emit_config", "epochs", "out"),
)


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
        default=EMIT_EPOCHS,
        metavar="N",
        help=f"epochs per run of the --emit-config experiment (default {EMIT_EPOCHS})",
    )
    add_verbose(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Sweep every seed, write the outputs and print a summary (``clrbench.lr_find``)."""
    import clrbench

    options = {name: getattr(args, name) for name in LR_FIND_OPTIONS}
    clrbench.lr_find(**options)
    return 0
