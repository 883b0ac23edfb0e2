"""Keras ``fit`` as a trainer: kept to measure what the lean loop is compared against.

Two things are measured with it (``benchmarks/README.md``): Keras' own overhead around each step
(``trainer = "fit"``: ``fit`` on a model whose ``train_step`` writes the same in-graph batch log
as the lean loop, ~25% slower per step on this model), and the original blog's approach, a
Python callback setting the rate before every batch (``lr_mode = "callback"``, which only
``fit`` calls). Both stay documented user options (docs/); the product's default, the study
and lr-find train on the lean loop (``clrbench.train.loop``).

The logging model's ``train_step`` uses Keras 3 internals (``_loss_tracker``, so that ``fit``
logs Keras' own epoch mean loss): the reason for the ``keras<4`` pin in pyproject.toml.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from clrbench.train import models, workload
from clrbench.train.batch_log import LOG_COLUMNS, EpochLog, weights_finite

if TYPE_CHECKING:
    from clrbench.config.runs import RunSpec

EVAL_BATCH_SIZE = 1000
# Batches per compiled call of fit in the in-graph mode: ~20% faster on a 2-core CPU, and the
# per-batch logs are bitwise identical to 1 (tested). The callback mode needs 1: Keras only
# calls batch hooks once per execution.
STEPS_PER_EXECUTION = 32


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
            window = [(self.epoch_began, self.train_ended)]
            finite = lambda: weights_finite(self.model)  # noqa: E731
            if self.log.add(epoch, self.model.batch_log.numpy(), window, metrics, finite):
                self.model.stop_training = True

    return EpochRecorder


def rate_callback(schedule):
    """The blog's approach (bckenstler's CLR callback), kept to measure its cost: set the rate
    from Python before every batch."""
    import keras

    class PerBatchRate(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            step = int(self.model.optimizer.iterations.numpy())
            self.model.optimizer.learning_rate.assign(schedule(step))

    return PerBatchRate()


def fit_run(
    spec: RunSpec,
    train: tuple,
    evaluation: tuple,
    epoch_log: EpochLog,
    steps_per_execution: int,
) -> None:
    """Train ``spec`` through Keras ``fit`` with the logging model's in-graph batch log, or
    with the blog's per-batch rate callback (``lr_mode = "callback"``)."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(spec.seed)  # fit's shuffle draws from TensorFlow's global seed
    layers = models.resolve(spec.workload).build_layers(train[0].shape[1], spec.seed)
    model = logging_model_class()(layers)
    model.attach_log(epoch_log.steps_per_epoch)
    callbacks = []
    if spec.lr_mode == "callback":
        learning_rate = float(spec.schedule(0))
        callbacks.append(rate_callback(spec.schedule))
        steps_per_execution = 1  # Keras calls batch hooks once per execution
    else:
        learning_rate = spec.schedule.keras()
    workload.compile_model(
        model,
        spec.workload.optimizer,
        learning_rate,
        steps_per_execution,
        weight_decay=spec.workload.weight_decay,
    )
    epoch_log.t0 = time.perf_counter()
    model.fit(
        *train,
        batch_size=spec.workload.batch_size,
        epochs=spec.workload.epochs,
        shuffle=True,
        validation_data=evaluation,
        validation_batch_size=EVAL_BATCH_SIZE,
        callbacks=[*callbacks, epoch_recorder_class()(epoch_log)],
        verbose=0,
    )
