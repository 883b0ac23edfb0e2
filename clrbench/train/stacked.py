"""Stacked training: K runs of one workload trained by one compiled graph, set up once.

The members of a stack share the workload (its data, shapes, model, optimizer kind, batch size
and length) and may differ in everything else: seed, schedule, label, family, study phase.
Each member keeps, as its separate run (``clrbench.train.loop``) has them:

- its initial weights (the workload's model built with its seed), stacked along a leading
  member axis and trained by the model written out for K members
  (``clrbench.train.stack_model``: one batched matmul per Dense layer);
- its batch order (its seed's numpy permutation per epoch), gathered per member in the graph:
  the step's input is ``(K, batch, ...)``;
- its rate: the rates its ``Schedule``'s Keras adapter gives at steps ``0..T-1``, evaluated from
  a scalar int64 step in a ``tf.while_loop`` (as ``clrbench.schedules.in_graph_rates`` does, the
  separate run's computation), into a (K, T) table read at the step: bitwise the separate rate,
  at the cost of one gather per step whatever the schedules are;
- its optimizer slots and update (``clrbench.train.stack_optim``: Keras' rules written out);
- its divergence rule and its ``EpochLog``; a diverged member stops where its separate run
  would and is masked after that, the others go on;
- its evaluation: every member on the evaluation set in one batched pass per chunk.

Set up once per worker process: the data tensors are kept (``clrbench.train.run.load_inputs``),
the compiled epoch and evaluation are traced once per stack shape (the workload and K) and kept
(``_COMPILED``), and the next stack of that shape re-initialises the variables (weights, slots,
step, rate table) instead of rebuilding and retracing; a seed's initial weights are built once.

The batched products add the same terms as a member's separate GEMM, in another order, so a
member equals its separate run to float32 rounding, not bitwise (``tests/test_stacked.py``
measures how far, and that a member's numbers do not depend on who else is in its stack).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from clrbench.config.runs import steps_per_epoch as count_steps
from clrbench.config.workload import STACKED
from clrbench.errors import ConfigError
from clrbench.train import models, stack_optim
from clrbench.train.batch_log import LOG_COLUMNS, EpochLog
from clrbench.train.loop import EVAL_CHUNK
from clrbench.train.stack_model import StackedLayers, check_model

if TYPE_CHECKING:
    from clrbench.config.runs import RunSpec
    from clrbench.train.run import RunResult

TRAINER = STACKED
OnEpoch = Callable[[int, dict], None] | None
# Compiled stacks kept per worker (a plan's stacks come in two sizes at most: ``stacks``)
KEEP_COMPILED = 2


def stack_key(spec: RunSpec) -> tuple:
    """What a run shares with every other member of its stack: its workload (the data and its
    shapes, the model, the optimizer, the batch size and length), whichever trainer it names.
    Members may differ in seed, label and schedule."""
    return (replace(spec.workload, trainer=TRAINER),)


def check_stack(specs: Sequence[RunSpec]) -> None:
    """ConfigError unless ``specs`` can train as one stack."""
    if not specs:
        raise ConfigError("a stack needs at least one run")
    first = stack_key(specs[0])[0]
    for spec in specs:
        refusal = spec.stack_refusal
        if refusal is not None:
            raise ConfigError(f"run {spec.label!r} cannot be stacked: {refusal}")
        shared = stack_key(spec)[0]
        if shared != first:
            differ = [
                f.name for f in fields(shared) if getattr(shared, f.name) != getattr(first, f.name)
            ]
            raise ConfigError(
                f"run {spec.label!r} cannot join the stack of {specs[0].label!r}: "
                f"they differ in {', '.join(differ)}"
            )
    ids = [spec.run_id for spec in specs]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"a stack's runs must be distinct, got {ids}")


def check_model_stackable(workload: Any) -> None:
    """ConfigError (one line) unless a plug-in workload's model can be written out for a stack
    (``clrbench.train.stack_model.check_model``; the built-in models are Dense layers, written
    out and tested): builds the model (imports TensorFlow)."""
    if not workload.is_plugin:
        return
    from clrbench.data.plugin import plugin_arrays

    arrays, _ = plugin_arrays(workload.model)
    _template(workload, tuple(arrays["x_train"].shape[1:]), 0)


# --- what a worker keeps between stacks ---

_COMPILED: OrderedDict[tuple, _Compiled] = OrderedDict()
_INITIAL: dict[tuple, list[np.ndarray]] = {}
_RATES: dict[tuple, np.ndarray] = {}


def _template(workload: Any, input_shape: tuple[int, ...], seed: int) -> Any:
    """The workload's Keras model for ``seed`` (checked: it can be stacked); its weights are
    the separate run's (every initializer is seeded: ``check_plugin_model``)."""
    task = models.resolve(workload)
    model = task.build_model(input_shape, seed)
    check_model(model, f"workload {workload.dataset}/{workload.model}")
    return model


def _initial_weights(spec: RunSpec, input_shape: tuple[int, ...]) -> list[np.ndarray]:
    """The separate run's initial weights for ``spec``'s seed (built once per worker)."""
    key = (stack_key(spec), input_shape, spec.seed)
    if key not in _INITIAL:
        if len(_INITIAL) > 256:
            _INITIAL.clear()
        model = _template(spec.workload, input_shape, spec.seed)
        _INITIAL[key] = [v.numpy() for v in model.trainable_variables]
    return _INITIAL[key]


def _rate_table(specs: Sequence[RunSpec], total_steps: int) -> np.ndarray:
    """(K, total_steps) float32: member k's rate at each step, its Keras adapter evaluated from
    a scalar int64 step in a while loop (``clrbench.schedules.exactness.in_graph_rates``' way);
    a schedule already evaluated in this worker is not evaluated again."""
    import tensorflow as tf

    missing = list(
        dict.fromkeys(s.schedule for s in specs if (s.schedule, total_steps) not in _RATES)
    )
    if missing:
        adapters = [schedule.keras() for schedule in missing]

        @tf.function
        def rates():
            def body(step, out):
                row = tf.stack([adapter(step) for adapter in adapters])
                return step + 1, out.write(tf.cast(step, tf.int32), row)

            start = (tf.constant(0, tf.int64), tf.TensorArray(tf.float32, size=total_steps))
            _, out = tf.while_loop(lambda step, _: step < total_steps, body, start)
            return tf.transpose(out.stack())

        if len(_RATES) > 1024:
            _RATES.clear()
        for schedule, row in zip(missing, rates().numpy(), strict=True):
            _RATES[(schedule, total_steps)] = row
    return np.stack([_RATES[(s.schedule, total_steps)] for s in specs])


class _Compiled:
    """A stack of K members of one workload: its variables and its compiled epoch and
    evaluation, traced once and reused by every stack of this shape (``reset``)."""

    def __init__(self, spec: RunSpec, size: int, train: tuple, evaluation: tuple):
        import tensorflow as tf

        self.size = size
        self.task = models.resolve(spec.workload)
        self.hyper = stack_optim.keras_hyperparameters(spec.workload.optimizer)
        x_train, y_train = train
        self.examples = int(y_train.shape[0])
        self.batch_size = spec.workload.batch_size
        self.steps = count_steps(self.examples, self.batch_size)
        self.total_steps = self.steps * spec.workload.epochs
        model = _template(spec.workload, tuple(x_train.shape[1:]), 0)
        self.layers = StackedLayers(model, size)
        self.variables = [
            tf.Variable(tf.zeros([size, *v.shape], tf.float32), name=f"stacked_{i}")
            for i, v in enumerate(model.trainable_variables)
        ]
        self.slots = [
            [tf.Variable(tf.zeros_like(v)) for _ in range(stack_optim.slot_count(self.hyper))]
            for v in self.variables
        ]
        self.step = tf.Variable(tf.constant(0, tf.int64), trainable=False)
        self.active = tf.Variable(tf.ones([size], tf.bool), trainable=False)
        self.all_active = tf.Variable(True, trainable=False)
        self.rates = tf.Variable(tf.zeros([size, self.total_steps], tf.float32), trainable=False)
        self.train_epoch = self._compile_epoch(x_train, y_train)
        self.evaluate = self._compile_evaluation(*evaluation)

    def reset(self, weights: Sequence[Sequence[np.ndarray]], rates: np.ndarray) -> None:
        """A new stack: member k starts from ``weights[k]`` (its model's trainable weights)
        with empty slots, at step 0, training, with its ``rates`` row."""
        for i, variable in enumerate(self.variables):
            variable.assign(np.stack([member[i] for member in weights]))
        for slots in self.slots:
            for slot in slots:
                slot.assign(np.zeros(slot.shape, np.float32))
        self.step.assign(0)
        self.active.assign(np.ones(self.size, bool))
        self.all_active.assign(True)
        self.rates.assign(rates)

    def probabilities(self, x, training: bool):
        return self.layers.call(self.variables, x, training)

    def train_step(self, x, y):
        """One step of every member on its own batch ``x`` (K, batch, ...), labels ``y``
        (K, batch); returns each member's log row (K, LOG_COLUMNS)."""
        import tensorflow as tf

        rates = self.rates[:, self.step]
        batch = tf.shape(y)[1]
        with tf.GradientTape() as tape:
            probabilities = self.probabilities(x, training=True)
            per_example = self.task.per_example_loss(y, probabilities)
            # keras.losses.Loss's "sum_over_batch_size": the sum, then divided by the count;
            # each member's sum its own reduction of its own vector, as the separate run's
            losses = tf.math.divide_no_nan(
                _member_sums(per_example), tf.cast(batch, per_example.dtype)
            )
            total = tf.reduce_sum(losses)  # members are independent: d total / d w_k = d loss_k
        gradients = tape.gradient(total, self.variables)
        for variable, gradient, slots in zip(self.variables, gradients, self.slots, strict=True):
            self._apply(variable, gradient, slots, rates)
        self.step.assign_add(1)
        accuracy = tf.reduce_mean(self.task.batch_accuracy(y, probabilities), axis=1)
        sizes = tf.fill([self.size], batch)
        columns = [rates, losses, accuracy, sizes]
        return tf.stack([tf.cast(c, tf.float64) for c in columns], axis=1)

    def _apply(self, variable, gradient, slots, rates) -> None:
        import tensorflow as tf

        member_axis = [self.size] + [1] * (len(variable.shape) - 1)
        lr = tf.reshape(tf.cast(rates, variable.dtype), member_axis)
        active = tf.reshape(self.active, member_axis)
        gradient = tf.convert_to_tensor(gradient)  # a gather's gradient may be IndexedSlices
        value, new_slots = stack_optim.update(
            self.hyper, tf, variable, tf.cast(gradient, variable.dtype), list(slots), lr, self.step
        )

        # a stopped member keeps its weights (the others' numbers do not depend on it); while
        # all train, no select: it would cost a pass over every stacked weight per step
        def keep(new, old):
            return tf.cond(self.all_active, lambda: new, lambda: tf.where(active, new, old))

        variable.assign(keep(value, variable))
        for slot, new in zip(slots, new_slots, strict=True):
            slot.assign(keep(new, slot))

    def _compile_epoch(self, x_train, y_train) -> Callable[[Any], Any]:
        import tensorflow as tf

        steps, batch_size = self.steps, self.batch_size

        @tf.function
        def train_epoch(order):  # order: (K, examples) int32, each member's permutation
            log = tf.TensorArray(
                tf.float64, size=steps, element_shape=[self.size, len(LOG_COLUMNS)]
            )
            for i in tf.range(steps):
                batch = order[:, i * batch_size : (i + 1) * batch_size]
                log = log.write(
                    i, self.train_step(tf.gather(x_train, batch), tf.gather(y_train, batch))
                )
            return log.stack()

        return train_epoch

    def _compile_evaluation(self, x_eval, y_eval) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        """Each member's mean loss and accuracy on the evaluation set (as ``train_loop``'s)."""
        import tensorflow as tf

        size = self.size

        @tf.function
        def evaluate():
            total_loss = tf.zeros([size], tf.float64)
            correct = tf.zeros([size], tf.float64)
            n = tf.shape(y_eval)[0]
            for start in tf.range(0, n, EVAL_CHUNK):
                x, y = x_eval[start : start + EVAL_CHUNK], y_eval[start : start + EVAL_CHUNK]
                x = tf.broadcast_to(x[tf.newaxis], tf.concat([[size], tf.shape(x)], 0))
                labels = tf.broadcast_to(y[tf.newaxis], [size, tf.shape(y)[0]])
                probabilities = self.probabilities(x, training=False)
                per_example = self.task.per_example_loss(labels, probabilities)
                total_loss += _member_sums(tf.cast(per_example, tf.float64))
                matches = self.task.batch_accuracy(labels, probabilities)
                correct += tf.reduce_sum(tf.cast(matches, tf.float64), axis=1)
            count = tf.cast(n, tf.float64)
            return total_loss / count, correct / count

        return lambda: tuple(v.numpy() for v in evaluate())

    def finite(self, member: int) -> bool:
        """Whether every weight of ``member`` is finite."""
        return all(np.isfinite(v[member].numpy()).all() for v in self.variables)


def _member_sums(values: Any) -> Any:
    """(K,) the sum of each member's row of ``values`` (K, n), each by its own 1-D reduction:
    the separate run's op on the same numbers (one ``reduce_sum(axis=1)`` adds a row in an
    order that may depend on the row's place)."""
    import tensorflow as tf

    return tf.stack([tf.reduce_sum(values[k]) for k in range(values.shape[0])])


def _compiled(
    specs: Sequence[RunSpec], train: tuple, evaluation: tuple, data_key: Any
) -> _Compiled:
    """This worker's compiled stack of ``specs``' shape (built and traced at its first use),
    reset for ``specs``."""
    key = (stack_key(specs[0]), len(specs), data_key)
    if key in _COMPILED:
        _COMPILED.move_to_end(key)
    else:
        while len(_COMPILED) >= KEEP_COMPILED:
            _COMPILED.popitem(last=False)
        _COMPILED[key] = _Compiled(specs[0], len(specs), train, evaluation)
    stack = _COMPILED[key]
    shape = tuple(train[0].shape[1:])
    weights = [_initial_weights(spec, shape) for spec in specs]
    stack.reset(weights, _rate_table(specs, stack.total_steps))
    return stack


def stack_loop(
    specs: Sequence[RunSpec],
    train: tuple[Any, Any],
    evaluation: tuple[Any, Any],
    epoch_logs: Sequence[EpochLog],
    data_key: Any = None,
) -> None:
    """Train the stack of ``specs`` on ``train`` (tensors), feeding member k's ``epoch_logs[k]``
    after each epoch as ``train_loop`` feeds a separate run's (its training seconds the stack's
    divided by K: its share); stops when every member is done."""
    import tensorflow as tf

    stack = _compiled(specs, train, evaluation, data_key)
    rngs = [np.random.default_rng(spec.seed) for spec in specs]  # each separate run's order
    training = list(range(stack.size))
    start = time.perf_counter()
    for log in epoch_logs:
        log.t0 = start
    for epoch in range(specs[0].workload.epochs):
        orders = np.stack([rng.permutation(stack.examples) for rng in rngs]).astype(np.int32)
        began = time.perf_counter()
        logs = stack.train_epoch(tf.constant(orders)).numpy()
        share = (time.perf_counter() - began) / stack.size
        test_loss, test_accuracy = stack.evaluate()
        for member in list(training):
            log = logs[:, member, :]
            sizes = log[:, 3]
            metrics = {
                "train_loss": float(log[:, 1] @ sizes / sizes.sum()),
                "train_accuracy": float(log[:, 2] @ sizes / sizes.sum()),
                "test_loss": float(test_loss[member]),
                "test_accuracy": float(test_accuracy[member]),
            }
            finite = lambda m=member: stack.finite(m)  # noqa: E731
            if epoch_logs[member].add(epoch, log, [(began, began + share)], metrics, finite):
                training.remove(member)
        if not training:
            return
        stack.active.assign([member in training for member in range(stack.size)])
        stack.all_active.assign(len(training) == stack.size)


def train_stack(
    specs: Sequence[RunSpec],
    data_dir: str | None = None,
    on_epoch: Sequence[OnEpoch] | None = None,
) -> list[RunResult]:
    """Train ``specs`` (runs that may share a stack: ``check_stack``) as one stack and return
    each member's ``RunResult``, as ``train_run`` returns a separate run's. ``on_epoch[k]``,
    if given, is member k's per-epoch callback. A member's ``wall_s``, ``setup_s`` and
    ``train_s`` are its share of the stack's (the stack's divided by K); ``info["stack"]`` says
    with whom it trained."""
    from clrbench.train.run import RunResult, configure_tensorflow, load_inputs, run_info

    check_stack(specs)
    started_at, start = time.time(), time.perf_counter()
    spec = specs[0]
    threads = configure_tensorflow(spec.workload.threads)
    dataset, train, evaluation = load_inputs(spec, data_dir, as_tensors=True)
    callbacks = list(on_epoch) if on_epoch is not None else [None] * len(specs)
    steps = count_steps(len(train[1]), spec.workload.batch_size)
    epoch_logs = [EpochLog(steps, time.perf_counter(), callback) for callback in callbacks]
    data_key = tuple(sorted(dataset.checksums.items()))
    stack_loop(specs, train, evaluation, epoch_logs, data_key)
    end = time.perf_counter()
    info = run_info(spec, threads, dataset, evaluation)
    ids = [s.run_id for s in specs]
    size = len(specs)
    results = []
    for index, (member, log) in enumerate(zip(specs, epoch_logs, strict=True)):
        # the member's share of the stack's set-up and wall time (its training share is in log)
        share_start = end - (end - start) / size
        log.t0 = share_start + (log.t0 - start) / size
        stack = {"size": size, "members": ids, "member": index, "wall_s": end - start}
        results.append(
            RunResult.of(member, log, (started_at, share_start, end), info | {"stack": stack})
        )
    return results
