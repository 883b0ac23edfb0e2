"""A synthetic results folder of realistic size and shape, written through the real store.

Learning rates are the real schedules evaluated at every step; losses and accuracies are
plausible curves with per-seed noise (no training). Used by the benchmarks and by tests that
need many runs or particular outcomes (diverged and failed runs).
"""

from __future__ import annotations

import platform
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clrbench.config.experiment import Experiment
from clrbench.config.runs import RunSpec
from clrbench.store.records import RunRecord
from clrbench.store.results import write_run
from clrbench.suite.runner import new_record, write_experiment

SECONDS_PER_STEP = 0.0058
# label -> (asymptotic test accuracy, rate of approach per epoch)
SHAPES = {
    "constant": (0.9800, 0.15),
    "step": (0.9815, 0.25),
    "clr-iter": (0.9830, 0.30),
    "clr-epoch": (0.9828, 0.30),
    "one-cycle": (0.9835, 0.35),
}


def _schedules(total_steps: int) -> list[dict[str, Any]]:
    """The [[schedule]] entries, sized to the run length like the real presets."""
    cycle = {"name": "triangular", "base_lr": 0.001, "max_lr": 0.06}
    cycle["step_size"] = max(1, total_steps // 6)
    return [
        {"label": "constant", "name": "constant", "lr": 0.01},
        {"label": "step", "name": "step_decay", "initial_lr": 0.05, "drop": 0.5}
        | {"every_steps": max(1, total_steps // 5)},
        {"label": "clr-iter"} | cycle,
        {"label": "clr-epoch", "granularity": "epoch"} | cycle,
        {"label": "one-cycle", "name": "one_cycle", "max_lr": 0.1, "total_steps": total_steps},
    ]


def make_experiment(
    labels: tuple[str, ...],
    seeds: int,
    epochs: int,
    train_size: int | None,
    dataset: str = "mnist",
) -> Experiment:
    """The experiment of a synthetic folder (60,000 / 128 = 469 steps per epoch by default;
    ``dataset`` names the workload it stands for: its curves are MNIST-like whatever it is)."""
    steps_per_epoch = -(-(train_size or 60_000) // 128)
    entries = [e for e in _schedules(steps_per_epoch * epochs) if e["label"] in labels]
    settings = {"name": "synthetic", "epochs": epochs, "seeds": seeds, "batch_size": 128}
    settings["dataset"] = dataset
    if train_size is not None:
        settings["train_size"] = train_size
    return Experiment.from_dict({"experiment": settings, "schedule": entries})


def _curves(spec: RunSpec, steps_per_epoch: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-batch and per-epoch frames of one run (without run_id/schedule/seed)."""
    ceiling, speed = SHAPES[spec.label]
    rng = np.random.default_rng([spec.seed, zlib.crc32(spec.label.encode())])
    n = spec.workload.epochs * steps_per_epoch
    step = np.arange(n, dtype=np.int64)
    progress = 1.0 - np.exp(-speed * (step + 1) / steps_per_epoch)
    loss = np.maximum(2.3 * (1 - progress) + 0.04 + rng.normal(0, 0.06, n), 0.002)
    batch = np.where(step % steps_per_epoch == steps_per_epoch - 1, 96, 128).astype(np.int32)
    correct = rng.binomial(batch, np.clip(0.1 + (ceiling + 0.012 - 0.1) * progress, 0, 1))
    batches = pd.DataFrame(
        {
            "epoch": (step // steps_per_epoch).astype(np.int32),
            "step": step,
            "lr": spec.schedule(step.astype(np.float64)),
            "loss": loss,
            "accuracy": correct / batch,
            "batch_size": batch,
            "time_s": (step + 1) * SECONDS_PER_STEP * rng.normal(1, 0.02),
        }
    )
    return batches, _epoch_frame(batches, ceiling, speed, rng)


def _epoch_frame(
    batches: pd.DataFrame, ceiling: float, speed: float, rng: np.random.Generator
) -> pd.DataFrame:
    by_epoch = batches.groupby("epoch")
    epochs = by_epoch.agg(
        step=("step", "last"),
        lr=("lr", "last"),
        train_loss=("loss", "mean"),
        train_accuracy=("accuracy", "mean"),
        time_s=("time_s", "last"),
    ).reset_index()
    position = epochs["epoch"].to_numpy() + 1
    accuracy = ceiling - (ceiling - 0.9) * np.exp(-speed * position) + rng.normal(0, 0.0006)
    epochs["test_accuracy"] = np.clip(accuracy + rng.normal(0, 0.0008, len(epochs)), 0, 1)
    epochs["test_loss"] = 0.06 + 0.3 * np.exp(-speed * position) + rng.normal(0, 0.003)
    epochs["time_s"] += 1.2 * position  # evaluation time
    return epochs[
        ["epoch", "step", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy"]
        + ["time_s"]
    ]


def _record(spec: RunSpec, status: str, wall_s: float, **extra: Any) -> RunRecord:
    """A run record shaped like clrbench.suite.runner.execute's."""
    versions = {f"{name}_version": "0.0-synthetic" for name in ("clrbench", "tensorflow", "keras")}
    return new_record(
        spec,
        status,
        error=extra.get("error"),
        diverged_step=extra.get("diverged_step"),
        wall_s=wall_s,
        setup_s=3.0,
        train_s=wall_s - 3.0,
        started_at=f"2025-01-01T00:{spec.seed:02d}:00+00:00",
        provenance=versions
        | {
            "numpy_version": np.__version__,
            "python_version": platform.python_version(),
            "cpu": "synthetic CPU",
            "cpu_count": 2,
            "intra_op_threads": 1,
            "inter_op_threads": 1,
            "dataset_md5": "train-images-idx3-ubyte.gz:0000synthetic",
            "git_commit": None,
        },
    )


def _write_one(out: Path, spec: RunSpec, steps_per_epoch: int, outcome: str) -> None:
    batches, epochs = _curves(spec, steps_per_epoch)
    wall_s = float(epochs["time_s"].iloc[-1]) + 3.0
    if outcome == "diverged":
        stop = len(batches) // 3
        batches = batches.iloc[: stop + 1].copy()
        batches.loc[batches.index[-1], "loss"] = np.nan
        epochs = epochs[epochs["step"] < stop].copy()
        record = _record(spec, "diverged", wall_s / 3, diverged_step=stop)
    elif outcome == "failed":
        error = "ResourceExhaustedError: OOM when allocating tensor | shape [128,784]"
        record = _record(spec, "failed", 4.2, error=error)
        batches = epochs = None
    else:
        record = _record(spec, "ok", wall_s)
    write_run(out, record, batches, epochs)


def write_synthetic_results(
    out: str | Path,
    labels: tuple[str, ...] = tuple(SHAPES),
    seeds: int = 5,
    epochs: int = 25,
    train_size: int | None = None,
    outcomes: dict[tuple[str, int], str] | None = None,
    dataset: str = "mnist",
) -> Path:
    """Write an experiment.toml and ``len(labels) × seeds`` runs to ``out``; return ``out``.

    The default is the full suite's shape: 5 schedules × 5 seeds × 25 epochs × 469 steps.
    ``outcomes`` maps ``(label, seed)`` to ``"diverged"`` or ``"failed"`` (others are ok).
    ``dataset``: the data set the folder's records name (the curves are the same).
    """
    out = Path(out)
    experiment = make_experiment(labels, seeds, epochs, train_size, dataset)
    write_experiment(experiment.plan(), out)
    outcomes = outcomes or {}
    for spec in experiment.runs():
        outcome = outcomes.get((spec.label, spec.seed), "ok")
        _write_one(out, spec, experiment.steps_per_epoch, outcome)
    return out
