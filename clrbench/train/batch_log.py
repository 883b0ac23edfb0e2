"""The in-graph batch log: each batch's own rate, loss, accuracy and size, written by the
model's ``train_step`` into a buffer and read once per epoch (see ``clrbench.train.run``), and
the divergence rule applied to it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from clrbench.train import workload

# The in-graph batch log: one row per step of the epoch, these values in this order. (The
# stored per-batch table, clrbench.store.results.BATCH_COLUMNS, is built from it.)
LOG_COLUMNS = ("lr", "loss", "accuracy", "batch_size")
DIVERGENCE_FACTOR = 10.0  # see clrbench.train.run
# The per-epoch row's metrics, as each trainer measures them (test_* may be validation: see
# RunSpec.evaluate_on).
EPOCH_METRICS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")


def logging_model_class():
    """The Sequential subclass whose train_step records every batch (defined here, on call, so
    that importing this module does not import Keras)."""
    import keras
    import tensorflow as tf

    class BatchLoggingModel(keras.Sequential):
        """Sequential model writing each batch's own values to ``self.batch_log``."""

        def attach_log(self, steps_per_epoch: int) -> None:
            # A plain tf.Variable, not a Keras weight: it is not saved with the model.
            self.batch_log = tf.Variable(
                tf.zeros([steps_per_epoch, len(LOG_COLUMNS)], tf.float64), trainable=False
            )
            self.log_steps = steps_per_epoch

        def train_step(self, data):
            # Keras's own TF train_step, plus the write to the batch log.
            x, y = data
            step = tf.identity(self.optimizer.iterations.value)  # read now, before the update
            lr = self.optimizer.learning_rate  # evaluated at `step`: the rate applied below
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
            batch_size = tf.shape(x)[0]
            self._loss_tracker.update_state(loss, sample_weight=batch_size)
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
            accuracy = tf.reduce_mean(workload.batch_accuracy(y, y_pred))
            row = tf.stack(
                [
                    tf.cast(lr, tf.float64),
                    tf.cast(loss, tf.float64),
                    tf.cast(accuracy, tf.float64),
                    tf.cast(batch_size, tf.float64),
                ]
            )
            index = tf.math.floormod(step, self.log_steps)
            self.batch_log.scatter_nd_update(tf.reshape(index, [1, 1]), row[tf.newaxis])
            return self.compute_metrics(x, y, y_pred)

    return BatchLoggingModel


def first_divergent(
    losses: np.ndarray, first_loss: float, factor: float = DIVERGENCE_FACTOR
) -> int | None:
    """Index of the first loss that is non-finite or above ``factor * first_loss``."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(losses) | (losses > factor * first_loss)
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


class EpochLog:
    """Reads each epoch's batch log into tidy frames and epoch rows, and applies the divergence
    rule; both trainers (``clrbench.train.loop`` and Keras ``fit``) feed it once per epoch.

    Times are ``time.perf_counter()`` seconds since ``t0``, the start of training.
    """

    def __init__(
        self,
        steps_per_epoch: int,
        t0: float,
        on_epoch: Callable | None,
        divergence_factor: float = DIVERGENCE_FACTOR,
    ):
        self.steps_per_epoch = steps_per_epoch
        self.divergence_factor = divergence_factor
        self.t0 = t0
        self.on_epoch = on_epoch
        self.batch_frames: list[pd.DataFrame] = []
        self.epoch_rows: list[dict[str, Any]] = []
        self.diverged_step: int | None = None
        self.first_loss = math.nan

    def add(
        self,
        epoch: int,
        log: np.ndarray,
        window: tuple[float, float],
        metrics: dict[str, float],
        finite: Callable[[], bool],
    ) -> bool:
        """Record epoch ``epoch``: its batch log (rows of LOG_COLUMNS), the ``(start, end)`` of
        its training steps, its train/test ``metrics``, and ``finite()``: whether the weights are
        all finite (asked only when no loss crossed the bound). True when the run diverged."""
        if epoch == 0:
            self.first_loss = float(log[0, 1])
        bad = first_divergent(log[:, 1], self.first_loss, self.divergence_factor)
        if bad is None and not finite():
            bad = len(log) - 1  # the epoch's last update broke the weights
        if bad is not None:
            log = log[: bad + 1]
            self.diverged_step = epoch * self.steps_per_epoch + bad
        frame = self._batch_frame(epoch, log, window)
        self.batch_frames.append(frame)
        self.epoch_rows.append(
            {
                "epoch": epoch,
                "step": frame["step"].iloc[-1],
                "lr": frame["lr"].iloc[-1],
                **{key: metrics.get(key, np.nan) for key in EPOCH_METRICS},
                "time_s": time.perf_counter() - self.t0,
            }
        )
        if self.on_epoch is not None:
            self.on_epoch(epoch + 1, self.epoch_rows[-1])
        return bad is not None

    def _batch_frame(
        self, epoch: int, log: np.ndarray, window: tuple[float, float]
    ) -> pd.DataFrame:
        began, ended = window
        done = np.arange(1, len(log) + 1) / self.steps_per_epoch
        return pd.DataFrame(
            {
                "epoch": np.full(len(log), epoch, dtype=np.int32),
                "step": epoch * self.steps_per_epoch + np.arange(len(log), dtype=np.int64),
                "lr": log[:, 0],
                "loss": log[:, 1],
                "accuracy": log[:, 2],
                "batch_size": log[:, 3].astype(np.int32),
                "time_s": began - self.t0 + done * (ended - began),
            }
        )


def epoch_recorder_class():
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        """Keras ``fit``'s side of :class:`EpochLog`: reads the model's batch log once per
        epoch and stops the run at the first diverged step."""

        def __init__(self, log: EpochLog):
            super().__init__()
            self.log = log
            self.epoch_began = self.train_ended = log.t0

        batch_frames = property(lambda self: self.log.batch_frames)
        epoch_rows = property(lambda self: self.log.epoch_rows)
        diverged_step = property(lambda self: self.log.diverged_step)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_began = time.perf_counter()

        def on_test_begin(self, logs=None):  # validation starts: the epoch's steps are done
            self.train_ended = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            if self.train_ended < self.epoch_began:  # no validation pass this epoch
                self.train_ended = time.perf_counter()
            metrics = {
                "train_loss": logs.get("loss", np.nan),
                "train_accuracy": logs.get("accuracy", np.nan),
                "test_loss": logs.get("val_loss", np.nan),
                "test_accuracy": logs.get("val_accuracy", np.nan),
            }
            window = (self.epoch_began, self.train_ended)
            finite = lambda: weights_finite(self.model)  # noqa: E731
            if self.log.add(epoch, self.model.batch_log.numpy(), window, metrics, finite):
                self.model.stop_training = True

    return EpochRecorder


def weights_finite(model) -> bool:
    """Whether every weight of ``model`` is finite (a diverged update can break them)."""
    return all(np.isfinite(w).all() for w in model.get_weights())
