"""The range test over seeds: every seed swept in parallel (joblib loky), then read."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

from clrbench.analysis.lrfind import (
    LrFindResult,
    diverged,
    read_seed,
    round_significant,
    suggest,
    tidy,
)
from clrbench.config.experiment import Experiment
from clrbench.config.runs import steps_per_epoch as count_steps
from clrbench.config.sweep import EMIT_EPOCHS, SweepSettings
from clrbench.errors import ConfigError
from clrbench.reporting.lrfind import plot
from clrbench.schedules import make
from clrbench.store import atomic
from clrbench.text import plural
from clrbench.train import quiet
from clrbench.train.lr_sweep import sweep_seed

# The emitted experiment trains what the sweep was run on (dataset, training subset, optimizer,
# batch size, number of seeds) for --epochs epochs.
EXPERIMENT_NAME = "clr-from-lr-find"
HALF_CYCLE_EPOCHS = 4  # bckenstler: step_size of 2-8 epochs; 4 is the middle


def run_lr_find(
    settings: SweepSettings,
    seeds: list[int],
    data_dir: str | None = None,
    jobs: int = 1,
) -> LrFindResult:
    """Sweep every seed (``jobs`` at a time, joblib loky workers) and read the bounds. The
    caller has found and verified the data (``lr-find``, ``study``: once per command)."""
    from joblib import Parallel, delayed

    started = time.perf_counter()
    stop = functools.partial(diverged, window=settings.window)  # the reading's own rule
    sweeps = Parallel(n_jobs=jobs, backend="loky")(
        delayed(sweep_seed)(settings, seed, stop, data_dir, quiet.verbose()) for seed in seeds
    )
    per_seed = [
        {**read_seed(s.frame, settings.window), "wall_s": s.wall_s, "threads": s.threads}
        for s in sweeps
    ]
    return LrFindResult(
        settings=settings,
        data=tidy([s.frame for s in sweeps], settings.window),
        per_seed=per_seed,
        suggestion=suggest(per_seed, settings),
        wall_s=time.perf_counter() - started,
        jobs=jobs,
    )


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


def experiment_config(
    result: LrFindResult, epochs: int = EMIT_EPOCHS, seeds: int = 3
) -> dict[str, Any]:
    """A TOML-able experiment: constant, per-iteration and per-epoch CLR, 1cycle, within the
    suggested bounds, on the sweep's data, subset, optimizer and batch size, ``epochs`` long;
    cycles sized so that the run ends at (or near) a cycle boundary."""
    settings, base, peak = (
        result.settings,
        result.suggestion["base_lr"],
        result.suggestion["max_lr"],
    )
    train_count = settings.workload.train_count
    steps_per_epoch = count_steps(train_count, settings.workload.batch_size)
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
        "dataset": settings.workload.dataset,
        "epochs": epochs,
        "batch_size": settings.workload.batch_size,
        "seeds": seeds,
        "optimizer": settings.workload.optimizer,
    }
    if settings.workload.train_size is not None:
        experiment["train_size"] = settings.workload.train_size
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


def write_emitted(result: LrFindResult, epochs: int, seeds: int, path: Path) -> Path:
    """The experiment between the suggested bounds (``experiment_config``), written to
    ``path`` and kept on the result (``result.emitted``)."""
    result.emitted = experiment_config(result, epochs, seeds)
    return write_config(result, result.emitted, path)


def describe_config(config: dict[str, Any]) -> str:
    """What an emitted experiment trains, in words: runs, epochs, images and steps."""
    experiment = Experiment.from_dict(config)
    runs = len(experiment.schedules) * len(experiment.seeds)
    workload = experiment.workload
    subset = "all" if workload.train_size is None else f"{workload.train_size:,}"
    return (
        f"{plural(len(experiment.schedules), 'schedule')} x "
        f"{plural(len(experiment.seeds), 'seed')} = {plural(runs, 'run')} of "
        f"{plural(workload.epochs, 'epoch')} on {subset} {workload.dataset} training images "
        f"({plural(experiment.total_steps, 'step')} per run, {runs * experiment.total_steps:,} "
        f"in all)"
    )


def print_summary(result: LrFindResult) -> None:
    """Bounds, per-seed readings, spread, warnings, where everything was written and, with an
    emitted experiment, how to run it."""
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
    print("wrote: " + ", ".join(str(p) for p in result.files.values()))
    if result.emitted is not None:
        config = result.files["config"]
        print(f"{config} trains {describe_config(result.emitted)}")
        print(
            f"next: python -m clrbench run --config {config}"
            "   (--epochs N, --seeds N or --train-size N change its size)"
        )


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
