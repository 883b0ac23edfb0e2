"""One training run with honest per-batch logging.

Keras's batch-end ``logs`` are running means over the epoch, and a Python callback per
batch costs a device-to-host sync. So each batch's own rate, loss, accuracy and size are
written inside the compiled training function and read once per epoch
(``clrbench.train.batch_log.EpochLog``). Two trainers do it:

- ``loop`` (the default, ``clrbench.train.loop``): one ``tf.function`` per epoch, a
  ``tf.while_loop`` over batches gathered from the training set held as a tensor, the Keras
  model and the Keras optimizer, the log in a ``TensorArray``;
- ``fit``: Keras ``fit`` on a model whose ``train_step`` writes the log into a preallocated
  in-graph buffer (``batch_log.logging_model_class``), ~25% slower per step; kept for the seed's
  per-batch rate callback (``lr_mode = "callback"``, which needs fit's batch hooks) and as the
  reference the loop is measured against.

Either way the rate is read from the optimizer just before the update: the value applied.

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

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clrbench.config.runs import steps_per_epoch as count_steps
from clrbench.data.load import Dataset, load_dataset
from clrbench.train import devices, quiet, workload
from clrbench.train.batch_log import EpochLog, epoch_recorder_class, logging_model_class
from clrbench.train.loop import train_loop

if TYPE_CHECKING:
    from clrbench.config.runs import RunSpec

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
    """Fix TensorFlow's thread budget (before its runtime starts), let several processes share
    a GPU (``clrbench.train.devices``) and turn on determinism.

    A run's numbers must not depend on how many runs share the machine, so every run gets
    the same intra-/inter-op budget whatever ``--jobs`` is. Returns the budget in force.
    """
    tf = quiet.import_tensorflow()
    devices.share_gpus(tf)
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


def _rate_callback(schedule):
    """The seed's approach, kept to measure its cost: set the rate from Python every batch."""
    import keras

    class PerBatchRate(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            step = int(self.model.optimizer.iterations.numpy())
            self.model.optimizer.learning_rate.assign(schedule(step))

    return PerBatchRate()


def _inputs(spec: RunSpec, data_dir: str | None, as_tensors: bool) -> tuple[Dataset, tuple, tuple]:
    """The dataset, and its preprocessed (images, labels) to train on and to evaluate on: numpy
    arrays, or with ``as_tensors`` TensorFlow tensors (kept for the next run: see _TENSORS)."""
    dataset = load_dataset(
        spec.dataset,
        data_dir=data_dir,
        train_size=spec.train_size,
        seed=0,
        validation_size=spec.validation_size,
        split_seed=spec.split_seed,
    )
    if not as_tensors:
        return dataset, *_preprocessed(spec, dataset)
    import tensorflow as tf

    key = (
        spec.dataset,
        tuple(sorted(dataset.checksums.items())),
        spec.train_size,
        spec.validation_size,
        spec.split_seed,
        spec.evaluate_on,
    )
    if key not in _TENSORS:
        _TENSORS.clear()
        parts = _preprocessed(spec, dataset)
        _TENSORS[key] = tuple(tuple(tf.constant(a) for a in part) for part in parts)
    return dataset, *_TENSORS[key]


# The last run's inputs as tensors, by data identity: a suite worker trains run after run on the
# same data, and preprocessing and converting 188 MB of images costs ~0.3 s a run. One entry, so
# a worker's memory stays flat.
_TENSORS: dict[tuple, tuple] = {}


def _preprocessed(spec: RunSpec, dataset: Dataset) -> tuple[tuple, tuple]:
    train = workload.preprocess(dataset.x_train), dataset.y_train.astype(np.int32)
    # The per-epoch evaluation set: the test set, or the validation split (study trials never
    # see the test set). Its metrics keep the schema's test_* names; run.json says which.
    x_eval, y_eval = dataset.evaluation_set(spec.evaluate_on)
    return train, (workload.preprocess(x_eval), y_eval.astype(np.int32))


def _fit(
    spec: RunSpec,
    train: tuple,
    evaluation: tuple,
    epoch_log: EpochLog,
    steps_per_execution: int,
) -> None:
    """Keras ``fit`` with the logging model's in-graph batch log (or the seed's per-batch
    callback): kept for that callback and to measure the lean loop against."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(spec.seed)  # fit's shuffle draws from TensorFlow's global seed
    model = logging_model_class()(workload.build_layers(train[0].shape[1], spec.seed))
    model.attach_log(epoch_log.steps_per_epoch)
    callbacks = []
    if spec.lr_mode == "callback":
        learning_rate = float(spec.schedule(0))
        callbacks.append(_rate_callback(spec.schedule))
        steps_per_execution = 1  # Keras calls batch hooks once per execution
    else:
        learning_rate = spec.schedule.keras()
    workload.compile_model(model, spec.optimizer, learning_rate, steps_per_execution)
    epoch_log.t0 = time.perf_counter()
    model.fit(
        *train,
        batch_size=spec.batch_size,
        epochs=spec.epochs,
        shuffle=True,
        validation_data=evaluation,
        validation_batch_size=EVAL_BATCH_SIZE,
        callbacks=[*callbacks, epoch_recorder_class()(epoch_log)],
        verbose=0,
    )


def _loop(
    spec: RunSpec, train: tuple, evaluation: tuple, epoch_log: EpochLog, batch_order: Any
) -> None:
    """The lean loop (``clrbench.train.loop``) on the same model and optimizer."""
    import keras

    keras.backend.clear_session()
    model = keras.Sequential(workload.build_layers(int(train[0].shape[1]), spec.seed))
    optimizer = workload.build_optimizer(spec.optimizer, spec.schedule.keras())
    train_loop(
        model,
        optimizer,
        train,
        evaluation,
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        seed=spec.seed,
        epoch_log=epoch_log,
        batch_order=batch_order,
    )


def train_run(
    spec: RunSpec,
    data_dir: str | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
    steps_per_execution: int = STEPS_PER_EXECUTION,
    batch_order: Callable[[int], np.ndarray] | None = None,
) -> RunResult:
    """Train one run of ``spec`` (its ``trainer``) and return its per-batch and per-epoch
    logs. ``steps_per_execution`` applies to Keras ``fit`` only; ``batch_order`` to the loop
    only (see ``clrbench.train.loop.train_loop``)."""
    started_at, start = time.time(), time.perf_counter()
    threads = configure_tensorflow(spec.threads)
    dataset, train, evaluation = _inputs(spec, data_dir, as_tensors=spec.trainer == "loop")
    # t0, the start of training, is reset by the trainer once the model is built and compiled
    epoch_log = EpochLog(count_steps(len(train[1]), spec.batch_size), time.perf_counter(), on_epoch)
    if spec.trainer == "fit":
        _fit(spec, train, evaluation, epoch_log, steps_per_execution)
    else:
        _loop(spec, train, evaluation, epoch_log, batch_order)
    end = time.perf_counter()
    info = {
        "threads": threads,
        "dataset_checksums": dataset.checksums,
        "data_source": dataset.source,
        "test_examples": len(evaluation[1]),
        "evaluated_on": spec.evaluate_on,
        "split": dataset.split,
        "device": devices.training_device(quiet.import_tensorflow()),
    }
    return RunResult(
        spec,
        "diverged" if epoch_log.diverged_step is not None else "ok",
        pd.concat(epoch_log.batch_frames, ignore_index=True),
        pd.DataFrame(epoch_log.epoch_rows),
        wall_s=end - start,
        started_at=started_at,
        diverged_step=epoch_log.diverged_step,
        setup_s=epoch_log.t0 - start,  # TensorFlow import, data, model build, compile
        train_s=end - epoch_log.t0,  # every epoch's steps (tracing included) and evaluation
        info=info,
    )
