"""One training run with honest per-batch logging.

Keras's batch-end ``logs`` are running means over the epoch, and a Python callback per
batch costs a device-to-host sync. So the model's ``train_step`` writes each batch's own
rate, loss, accuracy and size into a preallocated in-graph buffer, and a callback reads
that buffer once per epoch. The rate comes from the optimizer itself, read just before
``apply_gradients`` (which is the value Keras applies to the weights).

Per-batch ``time_s`` is interpolated linearly within each epoch between the measured start
of the epoch and the end of its training steps: ``tf.timestamp`` is refused under op
determinism, and a host clock read per batch would cost the sync we avoid.

Divergence: a run is ``diverged`` at the first step whose batch loss is not finite or exceeds
``DIVERGENCE_FACTOR`` times the run's first batch loss (the loss of the untrained model, ~ln 10),
or whose update leaves a non-finite weight. The bound comes from measured runs (constant rate,
full MNIST, 2 epochs): at rates 0.05-1.0 no batch loss ever exceeded 1.95x the first (0.5: 1.26x;
1.0: 1.94x, ending at 50% test accuracy); at 2.0 the loss rose to 26x and the run ended at chance
(10%), at 5.0 to 504x, at 50 to 1.1e9x. The run stops at the end of the epoch in which it
diverged; its batch log ends at the diverged step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clrbench.config.runs import steps_per_epoch as count_steps
from clrbench.data.load import load_dataset
from clrbench.train import quiet, workload

if TYPE_CHECKING:
    from clrbench.config.runs import RunSpec

# The in-graph batch log: one row per step of the epoch, these values in this order. (The
# stored per-batch table, clrbench.store.results.BATCH_COLUMNS, is built from it.)
LOG_COLUMNS = ("lr", "loss", "accuracy", "batch_size")
DIVERGENCE_FACTOR = 10.0
EVAL_BATCH_SIZE = 1000
# Batches per compiled call in the in-graph mode: ~20% faster on a 2-core CPU, and the
# per-batch logs are bitwise identical to 1 (tested). The callback mode needs 1: Keras only
# calls batch hooks once per execution.
STEPS_PER_EXECUTION = 32


@dataclass
class RunResult:
    """What one run produced: tidy per-batch and per-epoch frames plus its outcome."""

    spec: RunSpec
    status: str  # "ok" | "diverged" | "failed"
    batches: pd.DataFrame
    epochs: pd.DataFrame
    wall_s: float
    started_at: float
    diverged_step: int | None = None
    setup_s: float = float("nan")  # start-up: TensorFlow import, data, model build, compile
    train_s: float = float("nan")  # fit: every epoch's steps and test evaluation
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


def configure_tensorflow(threads: int) -> dict[str, int]:
    """Fix TensorFlow's thread budget (before its runtime starts) and turn on determinism.

    A run's numbers must not depend on how many runs share the machine, so every run gets
    the same intra-/inter-op budget whatever ``--jobs`` is. Returns the budget in force.
    """
    tf = quiet.import_tensorflow()
    config = tf.config.threading
    if config.get_intra_op_parallelism_threads() != threads:
        try:
            config.set_intra_op_parallelism_threads(threads)
            config.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # runtime already started in this process: keep what it has
            pass
    tf.config.experimental.enable_op_determinism()
    return {
        "intra_op": config.get_intra_op_parallelism_threads(),
        "inter_op": config.get_inter_op_parallelism_threads(),
    }


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
            accuracy = tf.reduce_mean(keras.metrics.sparse_categorical_accuracy(y, y_pred))
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


def epoch_recorder_class():
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        """Reads the batch log once per epoch; stops the run at the first diverged step.

        Times are ``time.perf_counter()`` seconds since ``t0``, the start of ``fit``.
        """

        def __init__(
            self,
            steps_per_epoch: int,
            t0: float,
            on_epoch: Callable | None,
            divergence_factor: float = DIVERGENCE_FACTOR,
        ):
            super().__init__()
            self.steps_per_epoch = steps_per_epoch
            self.divergence_factor = divergence_factor
            self.t0 = t0
            self.on_epoch = on_epoch
            self.batch_frames: list[pd.DataFrame] = []
            self.epoch_rows: list[dict[str, Any]] = []
            self.diverged_step: int | None = None
            self.first_loss = math.nan
            self.epoch_began = self.train_ended = t0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_began = time.perf_counter()

        def on_test_begin(self, logs=None):  # validation starts: the epoch's steps are done
            self.train_ended = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            log = self.model.batch_log.numpy()
            if epoch == 0:
                self.first_loss = float(log[0, 1])
            bad = first_divergent(log[:, 1], self.first_loss, self.divergence_factor)
            if bad is None and not _weights_finite(self.model):
                bad = len(log) - 1  # the epoch's last update broke the weights
            if bad is not None:
                log = log[: bad + 1]
                self.diverged_step = epoch * self.steps_per_epoch + bad
                self.model.stop_training = True
            if self.train_ended < self.epoch_began:  # no validation pass this epoch
                self.train_ended = time.perf_counter()
            frame = self._batch_frame(epoch, log)
            self.batch_frames.append(frame)
            self.epoch_rows.append(
                {
                    "epoch": epoch,
                    "step": frame["step"].iloc[-1],
                    "lr": frame["lr"].iloc[-1],
                    "train_loss": logs.get("loss", np.nan),
                    "train_accuracy": logs.get("accuracy", np.nan),
                    "test_loss": logs.get("val_loss", np.nan),
                    "test_accuracy": logs.get("val_accuracy", np.nan),
                    "time_s": time.perf_counter() - self.t0,
                }
            )
            if self.on_epoch is not None:
                self.on_epoch(epoch + 1, self.epoch_rows[-1])

        def _batch_frame(self, epoch: int, log: np.ndarray) -> pd.DataFrame:
            done = np.arange(1, len(log) + 1) / self.steps_per_epoch
            seconds = self.train_ended - self.epoch_began
            return pd.DataFrame(
                {
                    "epoch": np.full(len(log), epoch, dtype=np.int32),
                    "step": epoch * self.steps_per_epoch + np.arange(len(log), dtype=np.int64),
                    "lr": log[:, 0],
                    "loss": log[:, 1],
                    "accuracy": log[:, 2],
                    "batch_size": log[:, 3].astype(np.int32),
                    "time_s": self.epoch_began - self.t0 + done * seconds,
                }
            )

    return EpochRecorder


def _weights_finite(model) -> bool:
    return all(np.isfinite(w).all() for w in model.get_weights())


def _rate_callback(schedule):
    """The seed's approach, kept to measure its cost: set the rate from Python every batch."""
    import keras

    class PerBatchRate(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            step = int(self.model.optimizer.iterations.numpy())
            self.model.optimizer.learning_rate.assign(schedule(step))

    return PerBatchRate()


def train_run(
    spec: RunSpec,
    data_dir: str | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
    steps_per_execution: int = STEPS_PER_EXECUTION,
) -> RunResult:
    """Train one run of ``spec`` and return its per-batch and per-epoch logs."""
    started_at, start = time.time(), time.perf_counter()
    threads = configure_tensorflow(spec.threads)
    import keras

    dataset = load_dataset(
        spec.dataset,
        data_dir=data_dir,
        train_size=spec.train_size,
        seed=0,
        validation_size=spec.validation_size,
        split_seed=spec.split_seed,
    )
    x_train, y_train = workload.preprocess(dataset.x_train), dataset.y_train.astype(np.int32)
    # The per-epoch evaluation set: the test set, or the validation split (study trials never
    # see the test set). Its metrics keep the schema's test_* names; run.json says which.
    x_eval, y_eval = dataset.evaluation_set(spec.evaluate_on)
    x_test, y_test = workload.preprocess(x_eval), y_eval.astype(np.int32)
    steps_per_epoch = count_steps(len(x_train), spec.batch_size)

    keras.backend.clear_session()
    keras.utils.set_random_seed(spec.seed)
    model = logging_model_class()(workload.build_layers(x_train.shape[1]))
    model.attach_log(steps_per_epoch)
    callbacks = []
    if spec.lr_mode == "callback":
        learning_rate = float(spec.schedule(0))
        callbacks.append(_rate_callback(spec.schedule))
        steps_per_execution = 1
    else:
        learning_rate = spec.schedule.keras()
    workload.compile_model(model, spec.optimizer, learning_rate, steps_per_execution)
    t0 = time.perf_counter()
    recorder = epoch_recorder_class()(steps_per_epoch, t0, on_epoch)
    model.fit(
        x_train,
        y_train,
        batch_size=spec.batch_size,
        epochs=spec.epochs,
        shuffle=True,
        validation_data=(x_test, y_test),
        validation_batch_size=EVAL_BATCH_SIZE,
        callbacks=[*callbacks, recorder],
        verbose=0,
    )
    end = time.perf_counter()
    batches = pd.concat(recorder.batch_frames, ignore_index=True)
    epochs = pd.DataFrame(recorder.epoch_rows)
    status = "diverged" if recorder.diverged_step is not None else "ok"
    info = {
        "threads": threads,
        "dataset_checksums": dataset.checksums,
        "data_source": dataset.source,
        "test_examples": len(y_test),
        "evaluated_on": spec.evaluate_on,
        "split": dataset.split,
    }
    return RunResult(
        spec,
        status,
        batches,
        epochs,
        wall_s=end - start,
        started_at=started_at,
        diverged_step=recorder.diverged_step,
        setup_s=t0 - start,
        train_s=end - t0,
        info=info,
    )
