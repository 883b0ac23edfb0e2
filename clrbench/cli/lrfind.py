"""``python -m clrbench lr-find``: the learning-rate range test over seeds.

Writes ``lr_find.json`` (bounds, rule, per-seed readings, sweep settings, divergence),
``lr_find.parquet`` (seed, step, lr, loss, accuracy, smoothed_loss) and ``lr_find.png`` to
``--out``; ``--emit-config FILE`` also writes a TOML experiment of cyclical schedules between the
suggested bounds, so ``lr-find`` then ``run --config FILE`` is the whole workflow. The sweep
is ``clrbench.train.range_test``, its reading ``clrbench.analysis.lrfind``; this module writes,
draws and prints them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clrbench.cli import add_verbose
from clrbench.errors import ConfigError
from clrbench.store import atomic
from clrbench.suite.lock import folder_lock
from clrbench.text import plural

if TYPE_CHECKING:
    from clrbench.analysis.lrfind import LrFindResult
    from clrbench.config.sweep import SweepSettings

DEFAULT_OUT = "results/lr-find"
# The emitted experiment trains what the sweep was run on (dataset, training subset, optimizer,
# batch size, number of seeds) for --epochs epochs.
EXPERIMENT_NAME = "clr-from-lr-find"
EXPERIMENT_EPOCHS = 25
HALF_CYCLE_EPOCHS = 4  # bckenstler: step_size of 2-8 epochs; 4 is the middle


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
    add("--optimizer", default="sgd-momentum", help="sgd-momentum (default), sgd, rmsprop, adam")
    add("--dataset", default="mnist", help="mnist (default) or fashion_mnist")
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
    from clrbench.suite.lrfind import run_lr_find

    settings, seeds, jobs = _validated(args)
    # Missing data or a bad --train-size: one line, before the output folder is touched.
    load_dataset(settings.dataset, args.data_dir, settings.train_size, seed=0)
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
        dataset=args.dataset,
        train_size=args.train_size,
        optimizer=args.optimizer,
    )
    jobs = default_jobs(args.jobs, tasks=args.seeds)
    return settings, list(range(args.seeds)), jobs


def _flag(setting: str) -> str:
    """A sweep setting as its command-line flag: ``min_lr`` -> ``--min-lr``."""
    return "--" + setting.replace("_", "-")


def write_outputs(result: LrFindResult, out: Path) -> dict[str, Path]:
    """lr_find.json, lr_find.parquet and lr_find.png in ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"lr_find.{name}" for name in ("json", "parquet", "png")}
    with atomic.atomic_file(paths["parquet"]) as tmp:
        result.data.to_parquet(tmp, index=False)
    with atomic.atomic_file(paths["png"]) as tmp:
        plot(result, tmp)
    summary = result.summary() | {"files": {k: p.name for k, p in paths.items()}}
    atomic.write_text(paths["json"], json.dumps(summary, indent=2) + "\n")
    return paths


# --- the figure ---


def plot(result: LrFindResult, path: Path) -> Any:
    """Loss (raw, smoothed, mean) and accuracy against the rate on a log axis, bounds marked;
    saved to ``path`` and returned (a matplotlib Figure)."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    from clrbench.train.range_test import smooth

    figure = Figure(figsize=(10, 8), layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    colors = [f"C{i % 10}" for i in range(len(result.per_seed))]
    for color, (seed, rows) in zip(colors, result.data.groupby("seed"), strict=True):
        lr = rows["lr"]
        loss_axes.plot(lr, rows["loss"], color=color, lw=0.6, alpha=0.3)
        loss_axes.plot(lr, rows["smoothed_loss"], color=color, lw=1.3, label=f"seed {seed}")
        accuracy_axes.plot(lr, rows["accuracy"], color=color, lw=0.6, alpha=0.3)
        smoothed = smooth(rows["accuracy"].to_numpy(), result.settings.window)
        accuracy_axes.plot(lr, smoothed, color=color, lw=1.3)
    mean = result.data.pivot(index="step", columns="seed", values=["lr", "smoothed_loss"])
    mean = mean.dropna()  # steps every seed reached
    mean_loss = mean["smoothed_loss"].mean(axis=1)
    loss_axes.plot(mean["lr"].iloc[:, 0], mean_loss, color="black", lw=2.2, label="mean of seeds")
    for axes in (loss_axes, accuracy_axes):
        _mark_bounds(axes, result.suggestion, label=axes is loss_axes)
    _mark_valley(loss_axes, result.suggestion)
    top = 1.25 * max(r["initial_loss"] for r in result.per_seed)
    loss_axes.set(ylim=(0, top), ylabel="training loss (per batch)", xscale="log")
    loss_axes.set_title(_title(result), fontsize=11)
    # below the panels: inside, any corner covers some seed's curve on some sweep
    handles, labels = loss_axes.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=9, frameon=False)
    accuracy_axes.set(ylim=(0, 1.02), ylabel="accuracy (per batch)", xlabel="learning rate")
    for axes in (loss_axes, accuracy_axes):
        axes.grid(True, which="major", alpha=0.3)
    figure.savefig(path, dpi=120, format="png")
    return figure


def _mark_bounds(axes: Any, suggestion: dict[str, Any], label: bool) -> None:
    base, peak, divergence = (suggestion[k] for k in ("base_lr", "max_lr", "divergence_lr"))
    text = f"suggested base_lr {base:g} .. max_lr {peak:g}" if label else None
    axes.axvspan(base, peak, color="tab:green", alpha=0.15, label=text)
    if divergence is not None:
        text = f"median divergence {divergence:.2g}" if label else None
        axes.axvline(divergence, color="tab:red", ls="--", lw=1.5, label=text)


def _mark_valley(axes: Any, suggestion: dict[str, Any]) -> None:
    from clrbench.config.sweep import VALLEY_FACTOR

    low, high, loss = (suggestion[k] for k in ("valley_low_lr", "valley_high_lr", "valley_loss"))
    text = f"valley (loss < {VALLEY_FACTOR:g}x min) {low:.2g} .. {high:.2g}: max_lr = its centre"
    axes.plot([low, high], [loss, loss], color="0.2", lw=2, marker="|", ms=16, label=text)


def _title(result: LrFindResult) -> str:
    s = result.settings
    size = "all" if s.train_size is None else f"{s.train_size}"
    return (
        f"LR range test: {s.dataset} ({size} training images), {s.optimizer}, batch {s.batch_size}"
        f"\n{s.mode} sweep {s.min_lr:g} \u2192 {s.max_lr:g} over {s.steps} steps, "
        f"{len(result.per_seed)} seeds; faint: each batch's own loss, bold: centred median "
        f"of {s.window} steps"
    )


# --- the emitted experiment ---


def experiment_config(
    result: LrFindResult, epochs: int = EXPERIMENT_EPOCHS, seeds: int = 3
) -> dict[str, Any]:
    """A TOML-able experiment: constant, per-iteration and per-epoch CLR, 1cycle, within the
    suggested bounds, on the sweep's data, subset, optimizer and batch size, ``epochs`` long;
    cycles sized so that the run ends at (or near) a cycle boundary."""
    from clrbench.analysis.lrfind import round_significant
    from clrbench.data.registry import DATASETS
    from clrbench.schedules import make

    settings, base, peak = (
        result.settings,
        result.suggestion["base_lr"],
        result.suggestion["max_lr"],
    )
    train_count = settings.train_size or DATASETS[settings.dataset].train_count
    steps_per_epoch = -(-train_count // settings.batch_size)
    total = epochs * steps_per_epoch
    cycles = max(1, round(epochs / (2 * HALF_CYCLE_EPOCHS)))
    bounds = {"base_lr": base, "max_lr": peak}
    schedules = [
        # the triangle's mean rate: the fair constant to compare a cycle with
        {"label": "constant", "name": "constant", "lr": round_significant((base + peak) / 2)},
        # the last step, total - 1, is the end of the last cycle
        {"label": "clr-iter", "name": "triangular", "granularity": "iteration", **bounds,
         "step_size": max(1, round((total - 1) / (2 * cycles)))},
        # whole epochs per half cycle; the rate is held within each epoch
        {"label": "clr-epoch", "name": "triangular", "granularity": "epoch", **bounds,
         "step_size": max(1, round(epochs / (2 * cycles))) * steps_per_epoch},
        # Smith 2018: one cycle between the same bounds, then far below
        {"label": "one-cycle", "name": "one_cycle", "max_lr": peak, "total_steps": total,
         "div_factor": round(peak / base, 3)},
    ]  # fmt: skip
    for entry in schedules:  # every emitted schedule must build
        params = {k: v for k, v in entry.items() if k not in ("label", "name", "granularity")}
        granularity = entry.get("granularity", "iteration")
        spe = steps_per_epoch if granularity == "epoch" else None
        make(entry["name"], granularity=granularity, steps_per_epoch=spe, **params)
    experiment = {
        "name": EXPERIMENT_NAME,
        "dataset": settings.dataset,
        "epochs": epochs,
        "batch_size": settings.batch_size,
        "seeds": seeds,
        "optimizer": settings.optimizer,
    }
    if settings.train_size is not None:
        experiment["train_size"] = settings.train_size
    return {"experiment": experiment, "schedule": schedules}


def write_config(result: LrFindResult, config: dict[str, Any], path: Path) -> Path:
    """Write ``config`` as TOML, with a comment saying where the bounds came from."""
    try:
        import tomli_w
    except ImportError:
        raise ConfigError("--emit-config needs the tomli-w package (pip install tomli-w)") from None
    s = result.suggestion
    header = (
        f"# Written by `python -m clrbench lr-find` on {time.strftime('%Y-%m-%d %H:%M')}: "
        f"base_lr={s['base_lr']:g}, max_lr={s['max_lr']:g}\n"
        f"# (max_lr = median centre of the loss valley, base_lr = max_lr / 4; "
        f"{len(result.per_seed)} seeds). Run it with: python -m clrbench run --config {path}\n"
        f"# It trains {describe_config(config)}\n\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, header + tomli_w.dumps(config))
    return path


def describe_config(config: dict[str, Any]) -> str:
    """What an emitted experiment trains, in words: runs, epochs, images and steps."""
    from clrbench.config.experiment import Experiment

    experiment = Experiment.from_dict(config)
    runs = len(experiment.schedules) * len(experiment.seeds)
    subset = "all" if experiment.train_size is None else f"{experiment.train_size:,}"
    return (
        f"{plural(len(experiment.schedules), 'schedule')} x "
        f"{plural(len(experiment.seeds), 'seed')} = {plural(runs, 'run')} of "
        f"{plural(experiment.epochs, 'epoch')} on {subset} {experiment.dataset} training images "
        f"({plural(experiment.total_steps, 'step')} per run, {runs * experiment.total_steps:,} "
        f"in all)"
    )


# --- the summary ---


def print_summary(result: LrFindResult, paths: dict[str, Path]) -> None:
    """Bounds, per-seed readings, spread, warnings and where everything was written."""
    s, sg = result.settings, result.suggestion
    print(
        f"lr-find: {s.dataset}, {s.optimizer}, {s.mode} sweep {s.min_lr:g} -> {s.max_lr:g} over "
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
