"""The learning-rate range test (Smith 2015), read from honest per-batch losses, over seeds.

Each seed trains the standard model from fresh weights while the rate grows every step with the
``range_test`` schedule (exponential by default, or Smith's linear sweep). Each batch's own loss
and accuracy come from train.py's in-graph batch log (never Keras's running-mean batch logs), read
every ``CHECK_EVERY`` steps; that read is also where the sweep stops early once the loss diverged.

The reading, per seed, then combined (``RULE`` says it in one paragraph):

- ``smoothed_loss``: a centred running median of the raw batch losses over ``window`` steps,
  ``window`` = the odd number nearest 5 % of the sweep's steps (at least 5; 25 for 500 steps, a
  quarter of a decade of an exponential sweep from 1e-4 to 10). Centred, so it does not lag the
  rate the way fastai's running EMA does (at beta = 0.98 that lag is ~50 steps, half a decade
  here); a median, so a single ragged batch neither creates nor hides a minimum. The window is
  cut short at the ends of the sweep; non-finite losses are left out.
- divergence: the first step whose loss is not finite or whose smoothed loss exceeds
  ``DIVERGENCE_FACTOR`` (4) times the lowest smoothed loss so far (fastai's 4x, on the centred
  median instead of a lagging EMA). The sweep stops at the next check after it.
- ``lr_min_loss``: the rate at the lowest smoothed loss before divergence: the largest rate at
  which the loss still went down, i.e. where it stops improving and turns ragged.
- ``max_lr = median over seeds of lr_min_loss / MAX_DIVISOR`` (3). The minimum is the edge of
  stability for a few steps, not a rate to return to for thousands; Smith's rule of thumb puts the
  best rate within a factor of two of the largest that converges, and on MNIST the minimum sits
  on a flat, noisy plateau whose left part (where the loss has stopped falling steeply) is about
  half a decade lower. Dividing by 3 lands there, below the plateau's ragged end.
- ``base_lr = max_lr / BASE_DIVISOR`` (4): Smith's "set base_lr to 1/3 or 1/4 of max_lr". The
  alternative reading, where the loss first starts to fall, is mostly set by how many steps have
  accumulated in a short sweep (it moves with ``--steps`` and ``--min-lr``), not by the rate; the
  figure shows it, the rule does not use it.

Both bounds are rounded to two significant digits: seeds agree to within a factor of ~1.5.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from clrbench import workload
from clrbench.data import load_dataset
from clrbench.errors import ClrbenchError
from clrbench.schedules import Schedule, make

CHECK_EVERY = 25  # steps between reads of the batch log (and divergence checks)
DIVERGENCE_FACTOR = 4.0
SMOOTHING_FRACTION = 0.05
MIN_WINDOW = 5
MAX_DIVISOR = 3.0
BASE_DIVISOR = 4.0
SPREAD_WARNING = 2.0
RULE = (
    "Per seed: smooth the raw per-batch loss with a centred running median over {window} steps "
    "(5% of the sweep); divergence = first step whose loss is not finite or whose smoothed loss "
    "exceeds 4x the lowest smoothed loss so far; lr_min_loss = the rate at the lowest smoothed "
    "loss before divergence. Then max_lr = median over seeds of lr_min_loss / 3 and "
    "base_lr = max_lr / 4 (Smith 2015: base_lr = 1/3 to 1/4 of max_lr), both rounded to two "
    "significant digits."
)
DATA_COLUMNS = {
    "seed": "int32",
    "step": "int64",
    "lr": "float64",
    "loss": "float64",
    "accuracy": "float64",
    "smoothed_loss": "float64",
}


@dataclass(frozen=True)
class SweepSettings:
    """What one range test trains: the sweep, the data, the optimizer and the thread budget."""

    min_lr: float = 1e-4
    max_lr: float = 10.0
    steps: int = 500
    mode: str = "exp"
    dataset: str = "mnist"
    train_size: int | None = None
    batch_size: int = 128
    optimizer: str = "sgd-momentum"
    threads: int = 1
    schedule: Schedule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        schedule = make(
            "range_test",
            min_lr=self.min_lr,
            max_lr=self.max_lr,
            num_steps=self.steps,
            mode=self.mode,
        )
        workload.check_optimizer(self.optimizer)
        object.__setattr__(self, "schedule", schedule)

    @property
    def window(self) -> int:
        """Steps in the centred smoothing window: the odd number nearest 5 % of the sweep."""
        return max(MIN_WINDOW, 2 * round(SMOOTHING_FRACTION * self.steps / 2) + 1)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain values, with the reading's fixed constants."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        return values | {
            "check_every": CHECK_EVERY,
            "smoothing_window": self.window,
            "divergence_factor": DIVERGENCE_FACTOR,
        }


# --- reading a sweep (pure numpy / pandas) ---


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running median over ``window`` steps (shorter at the ends); NaN where not finite."""
    finite = np.isfinite(values)
    series = pd.Series(np.where(finite, values, np.nan), dtype="float64")
    median = series.rolling(window, center=True, min_periods=1).median().to_numpy()
    return np.where(finite, median, np.nan)


def divergence_index(loss: np.ndarray, window: int) -> int | None:
    """First index whose loss is not finite or whose smoothed loss > 4x the lowest so far."""
    bad = np.flatnonzero(~np.isfinite(loss))
    end = int(bad[0]) if bad.size else len(loss)
    smoothed = smooth(loss[:end], window)
    over = np.flatnonzero(smoothed > DIVERGENCE_FACTOR * np.minimum.accumulate(smoothed))
    if over.size:
        return int(over[0])
    return end if bad.size else None


def read_seed(frame: pd.DataFrame, window: int) -> dict[str, Any]:
    """One seed's reading: the rate at its minimum smoothed loss and where it diverged."""
    loss, lr = frame["loss"].to_numpy(), frame["lr"].to_numpy()
    diverged = divergence_index(loss, window)
    end = len(loss) if diverged is None else diverged
    seed = int(frame["seed"].iloc[0])
    if end < 2:
        raise ClrbenchError(f"seed {seed}: the loss was not finite from the first steps")
    smoothed = smooth(loss[:end], window)
    best = int(np.nanargmin(smoothed))
    return {
        "seed": seed,
        "lr_min_loss": float(lr[best]),
        "min_loss": float(smoothed[best]),
        "step_min_loss": int(frame["step"].iloc[best]),
        "divergence_step": None if diverged is None else int(frame["step"].iloc[diverged]),
        "divergence_lr": None if diverged is None else float(lr[diverged]),
        "max_lr": float(lr[best]) / MAX_DIVISOR,
        "base_lr": float(lr[best]) / MAX_DIVISOR / BASE_DIVISOR,
        "initial_loss": float(smoothed[0]),
        "steps_run": len(frame),
    }


def round_significant(value: float, digits: int = 2) -> float:
    return float(f"{value:.{digits}g}")


def _spread(values: list[float]) -> float | None:
    """Largest over smallest: the factor separating the seeds (None for fewer than two)."""
    return max(values) / min(values) if len(values) > 1 else None


def suggest(per_seed: list[dict[str, Any]], settings: SweepSettings) -> dict[str, Any]:
    """The bounds from all seeds' readings, their spread and any warnings (see ``RULE``)."""
    lr_min_loss = statistics.median(r["lr_min_loss"] for r in per_seed)
    max_lr = round_significant(lr_min_loss / MAX_DIVISOR)
    diverged = [r["divergence_lr"] for r in per_seed if r["divergence_lr"] is not None]
    spread = {
        "lr_min_loss": _spread([r["lr_min_loss"] for r in per_seed]),
        "divergence_lr": _spread(diverged),
    }
    return {
        "base_lr": round_significant(max_lr / BASE_DIVISOR),
        "max_lr": max_lr,
        "lr_min_loss": lr_min_loss,
        "divergence_lr": statistics.median(diverged) if diverged else None,
        "spread": spread,
        "warnings": _warnings(per_seed, spread, settings),
    }


def _warnings(per_seed: list[dict], spread: dict, settings: SweepSettings) -> list[str]:
    warnings = []
    calm = [r["seed"] for r in per_seed if r["divergence_lr"] is None]
    if calm:
        warnings.append(
            f"seed(s) {', '.join(map(str, calm))} did not diverge by {settings.max_lr:g}: the "
            "minimum may lie beyond the sweep; rerun with a larger --max-lr"
        )
    if any(r["min_loss"] > 0.9 * r["initial_loss"] for r in per_seed):
        warnings.append("the loss barely fell: try more --steps or a wider rate range")
    if (spread["lr_min_loss"] or 1.0) > SPREAD_WARNING:
        warnings.append(
            f"seeds disagree by {spread['lr_min_loss']:.1f}x on the rate at minimum loss: "
            "try more --steps or --seeds"
        )
    return warnings


# --- the sweep (imports TensorFlow) ---


@dataclass
class SeedSweep:
    """One seed's per-step log and what the sweep cost."""

    frame: pd.DataFrame  # seed, step, lr, loss, accuracy
    wall_s: float
    threads: dict[str, int]


def _stop_callback(recorder: Any, settings: SweepSettings) -> Any:
    import keras

    class StopWhenDiverged(keras.callbacks.Callback):
        """Stop after the chunk in which the loss diverged, or once the sweep is complete.

        Runs after the recorder, which has just appended this chunk's rows (and stops the run
        itself at a non-finite loss).
        """

        def on_epoch_end(self, epoch, logs=None):
            loss = pd.concat(recorder.batch_frames)["loss"].to_numpy()[: settings.steps]
            if len(loss) >= settings.steps or divergence_index(loss, settings.window) is not None:
                self.model.stop_training = True

    return StopWhenDiverged()


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> Any:
    """An endless stream of full, seeded-shuffled batches (reshuffled at each pass)."""
    import tensorflow as tf

    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(batch_size, drop_remainder=True)
    )


def sweep_seed(settings: SweepSettings, seed: int, data_dir: str | None = None) -> SeedSweep:
    """Train one seed under the range-test schedule; the per-step log up to where it stopped."""
    from clrbench.train import configure_tensorflow, epoch_recorder_class, logging_model_class

    started = time.time()
    threads = configure_tensorflow(settings.threads)
    import keras

    data = load_dataset(settings.dataset, data_dir, settings.train_size, seed=0)
    x, y = workload.preprocess(data.x_train), data.y_train.astype(np.int32)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = logging_model_class()(workload.build_layers(x.shape[1]))
    model.attach_log(CHECK_EVERY)  # each Keras "epoch" is one chunk of CHECK_EVERY steps
    model.compile(
        optimizer=workload.build_optimizer(settings.optimizer, settings.schedule.keras()),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    recorder = epoch_recorder_class()(CHECK_EVERY, started, None)
    model.fit(
        _batches(x, y, settings.batch_size, seed),
        epochs=math.ceil(settings.steps / CHECK_EVERY),
        steps_per_epoch=CHECK_EVERY,
        callbacks=[recorder, _stop_callback(recorder, settings)],
        verbose=0,
    )
    # The recorder's time_s assumes a validation pass marks the end of each epoch: not kept.
    frame = pd.concat(recorder.batch_frames, ignore_index=True).iloc[: settings.steps]
    frame = frame[["step", "lr", "loss", "accuracy"]].copy()
    frame.insert(0, "seed", np.int32(seed))
    return SeedSweep(frame.reset_index(drop=True), time.time() - started, threads)


# --- several seeds, combined ---


@dataclass
class LrFindResult:
    """The tidy per-step data of every seed, each seed's reading and the suggested bounds."""

    settings: SweepSettings
    data: pd.DataFrame  # DATA_COLUMNS, one row per step per seed
    per_seed: list[dict[str, Any]]
    suggestion: dict[str, Any]
    wall_s: float
    jobs: int

    def summary(self) -> dict[str, Any]:
        """Plain JSON-able values: bounds, rule, per-seed readings, settings, divergence."""
        return {
            "base_lr": self.suggestion["base_lr"],
            "max_lr": self.suggestion["max_lr"],
            "rule": RULE.format(window=self.settings.window),
            "lr_min_loss": self.suggestion["lr_min_loss"],
            "divergence_lr": self.suggestion["divergence_lr"],
            "spread": self.suggestion["spread"],
            "warnings": self.suggestion["warnings"],
            "per_seed": self.per_seed,
            "sweep": self.settings.to_dict(),
            "seeds": [r["seed"] for r in self.per_seed],
            "jobs": self.jobs,
            "wall_s": self.wall_s,
        }


def tidy(sweeps: list[SeedSweep], window: int) -> pd.DataFrame:
    """All seeds' per-step rows with their smoothed loss, in ``DATA_COLUMNS`` dtypes."""
    frames = [
        sweep.frame.assign(smoothed_loss=smooth(sweep.frame["loss"].to_numpy(), window))
        for sweep in sweeps
    ]
    return pd.concat(frames, ignore_index=True).astype(DATA_COLUMNS)[list(DATA_COLUMNS)]


def run_lr_find(
    settings: SweepSettings,
    seeds: list[int],
    data_dir: str | None = None,
    jobs: int = 1,
) -> LrFindResult:
    """Sweep every seed (``jobs`` at a time, joblib loky workers) and read the bounds."""
    from joblib import Parallel, delayed

    started = time.time()
    # Fail on missing data or a bad --train-size here, in one line, not in every worker.
    load_dataset(settings.dataset, data_dir, settings.train_size, seed=0)
    sweeps = Parallel(n_jobs=jobs, backend="loky")(
        delayed(sweep_seed)(settings, seed, data_dir) for seed in seeds
    )
    per_seed = [
        {**read_seed(s.frame, settings.window), "wall_s": s.wall_s, "threads": s.threads}
        for s in sweeps
    ]
    return LrFindResult(
        settings=settings,
        data=tidy(sweeps, settings.window),
        per_seed=per_seed,
        suggestion=suggest(per_seed, settings),
        wall_s=time.time() - started,
        jobs=jobs,
    )


# --- the figure ---


def plot(result: LrFindResult, path: str) -> None:
    """Loss (raw, smoothed, mean) and accuracy against the rate on a log axis, bounds marked."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    figure = Figure(figsize=(10, 7.5), layout="constrained")
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
    top = 1.25 * max(r["initial_loss"] for r in result.per_seed)
    loss_axes.set(ylim=(0, top), ylabel="training loss (per batch)", xscale="log")
    loss_axes.set_title(_title(result), fontsize=11)
    loss_axes.legend(loc="lower left", fontsize=9, ncols=2)
    accuracy_axes.set(ylim=(0, 1.02), ylabel="accuracy (per batch)", xlabel="learning rate")
    for axes in (loss_axes, accuracy_axes):
        axes.grid(True, which="major", alpha=0.3)
    figure.savefig(path, dpi=120)


def _mark_bounds(axes: Any, suggestion: dict[str, Any], label: bool) -> None:
    base, peak, divergence = (suggestion[k] for k in ("base_lr", "max_lr", "divergence_lr"))
    text = f"suggested base_lr {base:g} .. max_lr {peak:g}"
    axes.axvspan(base, peak, color="tab:green", alpha=0.15, label=text if label else None)
    lines = [(suggestion["lr_min_loss"], "0.3", ":", "median lr at min loss")]
    if divergence is not None:
        lines.append((divergence, "tab:red", "--", "median divergence"))
    for lr, color, style, text in lines:
        text = f"{text} {lr:.2g}" if label else None
        axes.axvline(lr, color=color, ls=style, lw=1.5, label=text)


def _title(result: LrFindResult) -> str:
    s = result.settings
    size = "all" if s.train_size is None else f"{s.train_size}"
    return (
        f"LR range test: {s.dataset} ({size} training images), {s.optimizer}, batch {s.batch_size}"
        f"\n{s.mode} sweep {s.min_lr:g} \u2192 {s.max_lr:g} over {s.steps} steps, "
        f"{len(result.per_seed)} seeds; faint: each batch's own loss, bold: centred median "
        f"of {s.window} steps"
    )
