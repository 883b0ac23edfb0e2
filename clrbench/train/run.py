"""One training run with honest per-batch logging.

Keras's batch-end ``logs`` are running means over the epoch, and a Python callback per
batch costs a device-to-host sync. So each batch's own rate, loss, accuracy and size are
written inside the compiled training function and read once per epoch
(``clrbench.train.batch_log.EpochLog``), by the run's trainer:

- ``loop`` (the default, ``clrbench.train.loop``): one ``tf.function`` per epoch, a
  ``tf.while_loop`` over batches gathered from the training set held as a tensor, the Keras
  model and the Keras optimizer, the log in a ``TensorArray``;
- ``fit`` (``clrbench.train.keras_fit``): Keras ``fit``, kept to measure Keras' overhead and the
  blog's per-batch rate callback (``lr_mode = "callback"``) against the loop.

Either way the rate is read from the optimizer just before the update: the value applied.

``time_s`` is seconds of training (the compiled training calls; evaluation left out: see
``EpochLog``). Per batch it is interpolated linearly within each epoch's training window:
``tf.timestamp`` is refused under op determinism, and a host clock read per batch would cost
the sync we avoid.

A run is ``diverged`` by the rule of ``clrbench.train.batch_log`` (its ``DIVERGENCE_FACTOR``);
it stops at the end of the epoch in which it diverged, its batch log ending at that step.
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
from clrbench.errors import ConfigError
from clrbench.train import devices, models, quiet, workload
from clrbench.train.batch_log import EpochLog
from clrbench.train.keras_fit import STEPS_PER_EXECUTION, fit_run
from clrbench.train.loop import train_loop

if TYPE_CHECKING:
    from clrbench.config.runs import RunSpec


@dataclass
class RunResult:
    """What one run produced: tidy per-batch and per-epoch frames plus its outcome."""

    spec: RunSpec
    status: str  # "ok" | "diverged" | "failed"
    batches: pd.DataFrame
    epochs: pd.DataFrame
    evaluations: pd.DataFrame  # every evaluation: within epochs (eval_every) and at their ends
    wall_s: float
    started_at: float
    diverged_step: int | None = None
    setup_s: float = float("nan")  # start-up: TensorFlow import, data, model build, compile
    train_s: float = float("nan")  # fit: every epoch's steps and test evaluation
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls, spec: RunSpec, log: EpochLog, times: tuple[float, float, float], info: dict
    ) -> RunResult:
        """The result of a run whose log is ``log``; ``times``: the wall-clock start, and the
        perf-counter start and end of the whole run (``log.t0`` is when training began)."""
        started_at, start, end = times
        return cls(
            spec,
            "diverged" if log.diverged_step is not None else "ok",
            pd.concat(log.batch_frames, ignore_index=True),
            pd.DataFrame(log.epoch_rows),
            pd.DataFrame(log.evaluation_rows),
            wall_s=end - start,
            started_at=started_at,
            diverged_step=log.diverged_step,
            setup_s=log.t0 - start,  # TensorFlow import, data, model build, compile
            train_s=end - log.t0,  # every epoch's steps (tracing included) and evaluation
            info=info,
        )


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


def load_inputs(
    spec: RunSpec, data_dir: str | None, as_tensors: bool
) -> tuple[Dataset, tuple, tuple]:
    """The dataset, and its preprocessed (images, labels) to train on and to evaluate on: numpy
    arrays, or with ``as_tensors`` TensorFlow tensors (kept for the next run: see _TENSORS)."""
    dataset = load_dataset(
        spec.workload.dataset,
        data_dir=data_dir,
        train_size=spec.workload.train_size,
        seed=0,
        validation_size=spec.workload.validation_size,
        split_seed=spec.workload.split_seed,
    )
    if not as_tensors:
        return dataset, *_preprocessed(spec, dataset)
    import tensorflow as tf

    key = (
        spec.workload.dataset,
        tuple(sorted(dataset.checksums.items())),
        spec.workload.train_size,
        spec.workload.validation_size,
        spec.workload.split_seed,
        spec.workload.evaluate_on,
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
    task = models.resolve(spec.workload)
    train = task.preprocess(dataset.x_train), dataset.y_train.astype(np.int32)
    # The per-epoch evaluation set: the test set, or the validation split (study trials never
    # see the test set). Its metrics keep the schema's test_* names; run.json says which.
    x_eval, y_eval = dataset.evaluation_set(spec.workload.evaluate_on)
    return train, (task.preprocess(x_eval), y_eval.astype(np.int32))


def _loop(
    spec: RunSpec, train: tuple, evaluation: tuple, epoch_log: EpochLog, batch_order: Any
) -> None:
    """The lean loop (``clrbench.train.loop``) on the same model and optimizer."""
    import keras

    keras.backend.clear_session()
    task = models.resolve(spec.workload)
    model = task.build_model(tuple(train[0].shape[1:]), spec.seed)
    optimizer = workload.build_optimizer(
        spec.workload.optimizer,
        spec.schedule.keras(),
        spec.workload.weight_decay,
        spec.workload.optimizer_warmup_steps,
    )
    if hasattr(optimizer, "evaluation_weights"):
        check_no_batch_norm(model, spec.workload.optimizer)
    train_loop(
        model,
        optimizer,
        train,
        evaluation,
        epochs=spec.workload.epochs,
        batch_size=spec.workload.batch_size,
        seed=spec.seed,
        epoch_log=epoch_log,
        batch_order=batch_order,
        task=task,
        evaluations_within=spec.workload.evaluations_within,
    )


def check_no_batch_norm(model: Any, optimizer: str) -> None:
    """ConfigError for a model with batch normalization under a schedule-free optimizer: its
    statistics would be y's, and it is evaluated at x (the reference's caveat)."""
    import keras

    found = [
        layer.name
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    if found:
        raise ConfigError(
            f"optimizer {optimizer!r} is schedule-free and the model has batch normalization "
            f"({', '.join(found)}): its statistics would be y's while the model is evaluated at "
            "x; use another optimizer"
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
    threads = configure_tensorflow(spec.workload.threads)
    dataset, train, evaluation = load_inputs(spec, data_dir, as_tensors=spec.trainer == "loop")
    # t0, the start of training, is reset by the trainer once the model is built and compiled
    steps = count_steps(len(train[1]), spec.workload.batch_size)
    epoch_log = EpochLog(steps, time.perf_counter(), on_epoch)
    if spec.trainer == "fit":
        fit_run(spec, train, evaluation, epoch_log, steps_per_execution)
    else:
        _loop(spec, train, evaluation, epoch_log, batch_order)
    end = time.perf_counter()
    info = run_info(spec, threads, dataset, evaluation)
    return RunResult.of(spec, epoch_log, (started_at, start, end), info)


def run_info(spec: RunSpec, threads: dict[str, int], dataset: Dataset, evaluation: tuple) -> dict:
    """What a run's record says about how it trained (threads, data, evaluation, device)."""
    return {
        "threads": threads,
        "dataset_checksums": dataset.checksums,
        "data_source": dataset.source,
        "test_examples": len(evaluation[1]),
        "evaluated_on": spec.workload.evaluate_on,
        "split": dataset.split,
        "device": devices.training_device(quiet.import_tensorflow()),
    }
