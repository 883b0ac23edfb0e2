"""The lean trainer: one compiled TensorFlow function per epoch.

What Keras ``fit`` does around each step (a ``tf.data`` pipeline, a loss tracker, compiled
metrics, callbacks between executions) costs ~25% of a step of this small model on a CPU
core. This loop keeps what the suite compares and drops the rest:

- the same Keras model (``workload.build_layers``: layers and seeded initializers), the same
  Keras optimizer and its update rule (``optimizer.apply_gradients``), with the schedule
  evaluated in-graph from the optimizer's step counter: the rate logged is the rate applied;
- each batch's own rate, loss, accuracy and size written to a ``TensorArray`` inside a
  ``tf.while_loop`` over the epoch's batches, gathered from the training set held as one
  tensor; read once per epoch (:class:`clrbench.train.batch_log.EpochLog`);
- per-epoch evaluation of the whole evaluation set in one compiled function, and with
  ``eval_every`` also within the epoch: the epoch's steps are then split into several calls of
  the same compiled function (its first batch and count are arguments), so the batch log is
  the same whether or not a run is evaluated within its epochs. A schedule-free optimizer's
  runs are evaluated at its evaluation point x (:class:`EvaluationModel`), their batch log taken
  at y, where the gradient is.

The batch order is a seeded numpy permutation per epoch (``np.random.default_rng(seed)``):
the same seed gives the same batches whatever else runs in the process. That order is not
Keras ``fit``'s (``tf.random.shuffle`` under the global seed), so a run's numbers differ from
the ``fit`` path's by the draw of the batches; ``tests/test_loop.py`` and the fidelity study
in ``benchmarks/README.md`` show by how much.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from clrbench.train import workload
from clrbench.train.batch_log import LOG_COLUMNS, EpochLog, weights_finite

EVAL_CHUNK = 1000  # examples per evaluation matmul


def train_loop(
    model: Any,
    optimizer: Any,
    train: tuple[Any, Any],
    evaluation: tuple[Any, Any],
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    epoch_log: EpochLog,
    batch_order: Callable[[int], np.ndarray] | None = None,
    task: Any = workload,
    evaluations_within: Callable[[int], list[int]] = lambda epoch: [],
) -> None:
    """Train ``model`` for ``epochs`` epochs on ``train`` (images, labels: arrays or tensors),
    evaluating on ``evaluation`` after each epoch, and within epoch ``e`` after each count of
    its steps ``evaluations_within(e)`` lists (``Workload.evaluations_within``), feeding
    ``epoch_log`` after each epoch; stops after the epoch in which the run diverged.
    ``batch_order(epoch)``, if given, replaces the seeded permutation (to replay another
    trainer's batches: ``benchmarks/fidelity.py``). ``task`` gives the loss and the metric
    (the workload's model module: ``clrbench.train.models``)."""
    import tensorflow as tf

    x_train, y_train = (tf.convert_to_tensor(a) for a in train)
    x_eval, y_eval = (tf.convert_to_tensor(a) for a in evaluation)
    examples = int(y_train.shape[0])
    steps = -(-examples // batch_size)
    train_epoch = _compiled_steps(model, optimizer, (x_train, y_train), batch_size, task)

    predict = EvaluationModel(model, optimizer)

    @tf.function
    def evaluate():
        total_loss = tf.constant(0.0, tf.float64)
        correct = tf.constant(0.0, tf.float64)
        n = tf.shape(y_eval)[0]
        weights = predict.weights()  # once per evaluation
        for start in tf.range(0, n, EVAL_CHUNK):
            x, y = x_eval[start : start + EVAL_CHUNK], y_eval[start : start + EVAL_CHUNK]
            probabilities = predict(weights, x)
            per_example = task.per_example_loss(y, probabilities)
            total_loss += tf.reduce_sum(tf.cast(per_example, tf.float64))
            correct += tf.reduce_sum(tf.cast(task.batch_accuracy(y, probabilities), tf.float64))
        count = tf.cast(n, tf.float64)
        return total_loss / count, correct / count

    rng = np.random.default_rng(seed)
    epoch_log.t0 = time.perf_counter()  # training starts: the model and optimizer are built
    for epoch in range(epochs):
        indices = rng.permutation(examples) if batch_order is None else batch_order(epoch)
        order = tf.constant(np.asarray(indices, dtype=np.int32))
        # the epoch's steps in compiled calls split at its in-epoch evaluations (eval_every)
        ends = [*evaluations_within(epoch), steps]
        parts, windows, within = [], [], []
        for first, end in zip([0, *ends[:-1]], ends, strict=True):
            began = time.perf_counter()
            parts.append(train_epoch(order, tf.constant(first), tf.constant(end - first)).numpy())
            windows.append((began, time.perf_counter()))
            if end < steps:
                loss, accuracy = (float(v) for v in evaluate())
                within.append((end, loss, accuracy))
        log = np.concatenate(parts) if len(parts) > 1 else parts[0]
        test_loss, test_accuracy = (float(v) for v in evaluate())
        sizes = log[:, 3]
        metrics = {
            "train_loss": float(log[:, 1] @ sizes / sizes.sum()),
            "train_accuracy": float(log[:, 2] @ sizes / sizes.sum()),
            "test_loss": test_loss,
            "test_accuracy": test_accuracy,
        }
        finite = lambda: weights_finite(model)  # noqa: E731
        if epoch_log.add(epoch, log, windows, metrics, finite, within):
            return


class EvaluationModel:
    """The model as evaluations see it: at the optimizer's evaluation point where it has one
    (schedule-free: ``evaluation_weights()``, x), else at its weights. Evaluating at x is a
    stateless call (``Model.stateless_call`` with x in place of the trainable variables): the
    training weights y are only read, never assigned, so they stay bitwise what they were."""

    def __init__(self, model: Any, optimizer: Any):
        self.model = model
        self.at = getattr(optimizer, "evaluation_weights", None)
        if self.at is not None:
            optimizer.build(model.trainable_variables)
            trained = [id(v) for v in optimizer._trainable_variables]
            if trained != [id(v) for v in model.trainable_variables]:
                raise ValueError("the optimizer trains other variables than the model's")

    def weights(self) -> list:
        return [] if self.at is None else self.at()

    def __call__(self, weights: list, x: Any) -> Any:
        if self.at is None:
            return self.model(x, training=False)
        fixed = [v.value for v in self.model.non_trainable_variables]
        outputs, _ = self.model.stateless_call(weights, fixed, x, training=False)
        return outputs


def applied_rate(optimizer: Any) -> Any:
    """The rate the optimizer's next update applies: its schedule at the step counter, or a
    schedule-free optimizer's warmed-up rate (``applied_learning_rate``)."""
    applied = getattr(optimizer, "applied_learning_rate", None)
    return optimizer.learning_rate if applied is None else applied()


def _compiled_steps(
    model: Any, optimizer: Any, train: tuple[Any, Any], batch_size: int, task: Any
) -> Callable[[Any, Any, Any], Any]:
    """``train_batches(order, first, count)``: ``count`` updates of ``model`` on the batches
    ``first``, ``first + 1``, ... of those ``order`` lists (example indices, ``batch_size`` a
    batch; int32 tensors, so one trace serves every call) in one compiled call; returns each
    step's LOG_COLUMNS row. The rate is read from the optimizer before its update: the rate
    applied."""
    import tensorflow as tf

    x_train, y_train = train
    optimizer.build(model.trainable_variables)
    loss_fn = task.loss_object()
    variables = model.trainable_variables

    def step(x, y):
        rate = applied_rate(optimizer)  # evaluated at the step counter, before the update
        with tf.GradientTape() as tape:
            probabilities = model(x, training=True)
            loss = loss_fn(y, probabilities)
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        accuracy = tf.reduce_mean(task.batch_accuracy(y, probabilities))
        row = [rate, loss, accuracy, tf.shape(y)[0]]
        return tf.stack([tf.cast(v, tf.float64) for v in row])

    @tf.function
    def train_batches(order, first, count):
        log = tf.TensorArray(tf.float64, size=count, element_shape=[len(LOG_COLUMNS)])
        for i in tf.range(count):
            start = (first + i) * batch_size
            batch = order[start : start + batch_size]
            log = log.write(i, step(tf.gather(x_train, batch), tf.gather(y_train, batch)))
        return log.stack()

    return train_batches


def train_steps(
    model: Any,
    optimizer: Any,
    train: tuple[Any, Any],
    *,
    batch_size: int,
    chunk: int,
    chunks: int,
    order: Callable[[int], np.ndarray],
    stop: Callable[[np.ndarray], bool],
    task: Any = workload,
) -> np.ndarray:
    """The loop without epochs or evaluation (lr-find's sweep): up to ``chunks`` compiled calls
    of ``chunk`` steps each, on the batches ``order(i)`` gives for call ``i``; after each call
    ``stop(log so far)`` may end it. Returns the log, one LOG_COLUMNS row per step trained."""
    import tensorflow as tf

    tensors = tuple(tf.convert_to_tensor(a) for a in train)
    run = _compiled_steps(model, optimizer, tensors, batch_size, task)
    first, count = tf.constant(0), tf.constant(chunk)
    logs: list[np.ndarray] = []
    for i in range(chunks):
        logs.append(run(tf.constant(order(i)), first, count).numpy())
        log = np.concatenate(logs)
        if stop(log):
            break
    return np.concatenate(logs)
