"""The range test's training: one seed under the growing rate, stopped once the loss diverges.

The stop rule (``divergence_index`` on the centred running median ``smooth``) is the one the
reading in ``clrbench.analysis.lrfind`` uses, so the sweep stops where the reading says it
diverged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clrbench.config.sweep import CHECK_EVERY, DIVERGENCE_FACTOR, SweepSettings
from clrbench.data.load import load_dataset
from clrbench.train import quiet, workload


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


def sweep_seed(
    settings: SweepSettings, seed: int, data_dir: str | None = None, verbose: bool = False
) -> SeedSweep:
    """Train one seed under the range-test schedule; the per-step log up to where it stopped."""
    from clrbench.train.batch_log import EpochLog, epoch_recorder_class, logging_model_class
    from clrbench.train.run import configure_tensorflow

    quiet.set_verbose(verbose)
    started = time.perf_counter()
    threads = configure_tensorflow(settings.workload.threads)
    import keras

    data = load_dataset(
        settings.workload.dataset,
        data_dir,
        settings.workload.train_size,
        seed=0,
        validation_size=settings.workload.validation_size,
        split_seed=settings.workload.split_seed,
    )
    x, y = workload.preprocess(data.x_train), data.y_train.astype(np.int32)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = logging_model_class()(workload.build_layers(x.shape[1], seed))
    model.attach_log(CHECK_EVERY)  # each Keras "epoch" is one chunk of CHECK_EVERY steps
    workload.compile_model(model, settings.workload.optimizer, settings.schedule.keras())
    # The sweep climbs into divergence on purpose and reads it with its own rule (below), so
    # the recorder stops it only at a non-finite loss.
    recorder = epoch_recorder_class()(EpochLog(CHECK_EVERY, time.perf_counter(), None, math.inf))
    model.fit(
        _batches(x, y, settings.workload.batch_size, seed),
        epochs=math.ceil(settings.steps / CHECK_EVERY),
        steps_per_epoch=CHECK_EVERY,
        shuffle=False,  # the dataset shuffles itself, seeded
        callbacks=[recorder, _stop_callback(recorder, settings)],
        verbose=0,
    )
    # The recorder's time_s assumes a validation pass marks the end of each epoch: not kept.
    frame = pd.concat(recorder.batch_frames, ignore_index=True).iloc[: settings.steps]
    frame = frame[["step", "lr", "loss", "accuracy"]].copy()
    frame.insert(0, "seed", np.int32(seed))
    return SeedSweep(frame.reset_index(drop=True), time.perf_counter() - started, threads)
