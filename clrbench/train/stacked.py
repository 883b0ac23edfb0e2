"""Stacked training: K runs that share a seed's batch order, trained by one compiled graph.

The runs of one seed differ only in their schedule (the suite's K schedules, a study's K
trials of one family): same data, batch order, epochs, batch size, optimizer and initial
weights. Their weights are stacked along a leading member axis (kernels ``(K, in, out)``,
biases ``(K, out)``) and applied with one batched matmul per layer, so one step trains
all K; each member has its own optimizer slots and its own rate, its ``Schedule`` evaluated
in-graph from the shared int64 step exactly as the Keras adapter evaluates it for a separate
run (``Schedule.keras()``).

What a member computes is what its separate run (``clrbench.train.loop``) computes, written
out: the workload's layers (``x @ kernel + bias``, relu, softmax), the workload's loss (Keras'
sparse categorical cross-entropy, from the softmax's logits, summed then divided by the batch
size as ``keras.losses.Loss`` reduces it), Keras' accuracy, and the Keras update rule of its
optimizer (``keras/src/optimizers/*.py``'s ``update_step``, hyperparameters read from the Keras
optimizer the separate run builds). The stacked matmuls add the same products in another
order, so a member's numbers equal its separate run's to float32 rounding, not bitwise
(``tests/test_stacked.py`` measures the difference).

Divergence: each member has its own ``EpochLog`` and so its own divergence rule. A member
that diverges stops where its separate run would (at the end of that epoch, its log ended at
the diverged step); after that its updates are masked and the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from clrbench.config.runs import steps_per_epoch as count_steps
from clrbench.config.workload import DEFAULT_MODEL, STACKED
from clrbench.errors import ConfigError
from clrbench.train import models, workload
from clrbench.train.batch_log import LOG_COLUMNS, EpochLog
from clrbench.train.loop import EVAL_CHUNK

if TYPE_CHECKING:
    from clrbench.config.runs import RunSpec
    from clrbench.train.run import RunResult

TRAINER = STACKED
OnEpoch = Callable[[int, dict], None] | None


def stack_key(spec: RunSpec) -> tuple:
    """What a run shares with every other member of its stack: its seed and workload (the data,
    the batch order, the initial weights, the optimizer), whichever trainer it names. Members
    may differ in label and schedule only."""
    return spec.seed, replace(spec.workload, trainer=TRAINER)


def check_stack(specs: Sequence[RunSpec]) -> None:
    """ConfigError unless ``specs`` can train as one stack."""
    if not specs:
        raise ConfigError("a stack needs at least one run")
    first = stack_key(specs[0])
    for spec in specs:
        if not spec.stackable:
            raise ConfigError(
                f"run {spec.label!r}: stacked training evaluates rates in the graph and writes "
                f"out the {DEFAULT_MODEL} model; lr_mode {spec.lr_mode!r} / trainer "
                f"{spec.trainer!r} / model {spec.workload.model!r} cannot be stacked"
            )
        if stack_key(spec) != first:
            seed, shared = stack_key(spec)
            differ = ["seed"] if seed != first[0] else []
            differ += [
                f.name
                for f in fields(shared)
                if getattr(shared, f.name) != getattr(first[1], f.name)
            ]
            raise ConfigError(
                f"run {spec.label!r} cannot join the stack of {specs[0].label!r}: "
                f"they differ in {', '.join(differ)}"
            )
    labels = [spec.label for spec in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"a stack's runs need distinct labels, got {labels}")


# --- the optimizers: Keras' update rules on stacked variables ---


def _keras_hyperparameters(name: str) -> dict[str, Any]:
    """The Keras optimizer a separate run builds, as the numbers its update rule reads;
    ConfigError for a variant this module does not implement."""
    optimizer = workload.build_optimizer(name, 0.01)
    kind = type(optimizer).__name__
    unsupported = [
        flag
        for flag in ("nesterov", "amsgrad", "centered", "use_ema")
        if getattr(optimizer, flag, False)
    ]
    for flag in ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm"):
        if getattr(optimizer, flag, None):
            unsupported.append(flag)
    if kind == "RMSprop" and optimizer.momentum > 0:
        unsupported.append("momentum")
    if kind not in ("SGD", "Adam", "RMSprop") or unsupported:
        raise ConfigError(
            f"optimizer {name!r} ({kind}{' with ' + ', '.join(unsupported) if unsupported else ''})"
            " cannot be stacked; use --no-stack"
        )
    names = {
        "SGD": ("momentum",),
        "Adam": ("beta_1", "beta_2", "epsilon"),
        "RMSprop": ("rho", "epsilon"),
    }
    return {"kind": kind, **{key: float(getattr(optimizer, key)) for key in names[kind]}}


def _slot_count(hyper: dict[str, Any]) -> int:
    if hyper["kind"] == "SGD":
        return 1 if hyper["momentum"] != 0 else 0
    return 2 if hyper["kind"] == "Adam" else 1


def _update(hyper: dict[str, Any], tf: Any, variable, gradient, slots, lr, step) -> tuple:
    """One Keras update of ``variable`` (stacked) by ``gradient``: the new value and slots.
    ``lr`` broadcasts over the variable (one rate per member), ``step`` is the optimizer's
    iteration count before the update."""
    kind = hyper["kind"]
    if kind == "SGD":
        if not slots:
            return variable - gradient * lr, ()
        (m,) = slots  # keras SGD: m = m * momentum - g * lr; w += m
        m = m * tf.constant(hyper["momentum"], variable.dtype) - gradient * lr
        return variable + m, (m,)
    if kind == "Adam":
        beta_1, beta_2 = hyper["beta_1"], hyper["beta_2"]
        local_step = tf.cast(step + 1, variable.dtype)
        beta_1_power = tf.pow(tf.constant(beta_1, variable.dtype), local_step)
        beta_2_power = tf.pow(tf.constant(beta_2, variable.dtype), local_step)
        m, v = slots
        alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m = m + (gradient - m) * (1 - beta_1)
        v = v + (tf.square(gradient) - v) * (1 - beta_2)
        return variable - (m * alpha) / (tf.sqrt(v) + hyper["epsilon"]), (m, v)
    rho = hyper["rho"]  # RMSprop, plain (no momentum, not centered)
    (velocity,) = slots
    velocity = rho * velocity + (1 - rho) * tf.square(gradient)
    increment = (lr * gradient) / tf.sqrt(velocity + hyper["epsilon"])
    return variable - increment, (velocity,)


# --- the stacked model ---


class _Stack:
    """K copies of the workload's model as stacked variables, their optimizer slots, the shared
    step counter and which members still train."""

    def __init__(self, specs: Sequence[RunSpec], input_dim: int):
        import keras
        import tensorflow as tf

        self.size = len(specs)
        self.task = models.resolve(specs[0].workload)
        self.hyper = _keras_hyperparameters(specs[0].workload.optimizer)
        keras.backend.clear_session()
        # Every member has the run seed's initial weights: those of the separate run's model
        # (built as ``clrbench.train.run`` builds it).
        model = keras.Sequential(self.task.build_layers(input_dim, specs[0].seed))
        weights = model.get_weights()  # kernel 1, bias 1, kernel 2, bias 2
        self.variables = [
            tf.Variable(np.repeat(w[np.newaxis], self.size, axis=0), name=f"stacked_{i}")
            for i, w in enumerate(weights)
        ]
        self.slots = [
            [tf.Variable(tf.zeros_like(v)) for _ in range(_slot_count(self.hyper))]
            for v in self.variables
        ]
        self.step = tf.Variable(tf.constant(0, tf.int64), trainable=False)
        self.active = tf.Variable(tf.ones([self.size], tf.bool), trainable=False)
        self.all_active = tf.Variable(True, trainable=False)
        self.schedules = [spec.schedule.keras() for spec in specs]

    def probabilities(self, x):
        """Each member's softmax output for the batch ``x``: (K, batch, classes)."""
        import tensorflow as tf

        kernel_1, bias_1, kernel_2, bias_2 = self.variables
        # x broadcast over the members: one (batch, in) x (in, out) product per member, the
        # separate run's shapes (an einsum "bi,kio->kbo" transposes the stacked kernel each
        # step: measured 1.4x the CPU time of this)
        hidden = tf.nn.relu(tf.matmul(x[tf.newaxis], kernel_1) + bias_1[:, tf.newaxis, :])
        logits = tf.matmul(hidden, kernel_2) + bias_2[:, tf.newaxis, :]
        return tf.nn.softmax(logits)

    def rates(self):
        """Each member's rate at the current step, as its separate run's optimizer reads it."""
        import tensorflow as tf

        return tf.stack([schedule(self.step) for schedule in self.schedules])

    def train_step(self, x, y):
        """One step of every member; returns each member's log row (K, LOG_COLUMNS)."""
        import tensorflow as tf

        rates = self.rates()
        batch = tf.shape(y)[0]
        labels = tf.broadcast_to(y[tf.newaxis], [self.size, batch])
        with tf.GradientTape() as tape:
            probabilities = self.probabilities(x)
            per_example = self.task.per_example_loss(labels, probabilities)
            # keras.losses.Loss's "sum_over_batch_size": the sum, then divided by the count
            losses = tf.math.divide_no_nan(
                tf.reduce_sum(per_example, axis=1), tf.cast(batch, per_example.dtype)
            )
            total = tf.reduce_sum(losses)  # members are independent: d total / d w_k = d loss_k
        gradients = tape.gradient(total, self.variables)
        for variable, gradient, slots in zip(self.variables, gradients, self.slots, strict=True):
            self._apply(variable, gradient, slots, rates)
        self.step.assign_add(1)
        accuracy = tf.reduce_mean(self.task.batch_accuracy(labels, probabilities), axis=1)
        sizes = tf.fill([self.size], batch)
        columns = [rates, losses, accuracy, sizes]
        return tf.stack([tf.cast(c, tf.float64) for c in columns], axis=1)

    def _apply(self, variable, gradient, slots, rates) -> None:
        import tensorflow as tf

        member_axis = [self.size] + [1] * (len(variable.shape) - 1)
        lr = tf.reshape(tf.cast(rates, variable.dtype), member_axis)
        active = tf.reshape(self.active, member_axis)
        value, new_slots = _update(
            self.hyper,
            tf,
            variable,
            tf.cast(gradient, variable.dtype),
            [s for s in slots],
            lr,
            self.step,
        )

        # a stopped member keeps its weights (the others' numbers do not depend on it); while
        # all train, no select: it would cost a pass over every stacked weight per step
        # (measured: 15% of a K=5 step on a CPU core)
        def keep(new, old):
            return tf.cond(self.all_active, lambda: new, lambda: tf.where(active, new, old))

        variable.assign(keep(value, variable))
        for slot, new in zip(slots, new_slots, strict=True):
            slot.assign(keep(new, slot))

    def finite(self, member: int) -> bool:
        """Whether every weight of ``member`` is finite."""
        return all(np.isfinite(v[member].numpy()).all() for v in self.variables)


def _evaluator(stack: _Stack, evaluation: tuple) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    """Each member's mean loss and accuracy on the evaluation set (as ``train_loop``'s)."""
    import tensorflow as tf

    x_eval, y_eval = evaluation

    @tf.function
    def evaluate():
        total_loss = tf.zeros([stack.size], tf.float64)
        correct = tf.zeros([stack.size], tf.float64)
        n = tf.shape(y_eval)[0]
        for start in tf.range(0, n, EVAL_CHUNK):
            x, y = x_eval[start : start + EVAL_CHUNK], y_eval[start : start + EVAL_CHUNK]
            labels = tf.broadcast_to(y[tf.newaxis], [stack.size, tf.shape(y)[0]])
            probabilities = stack.probabilities(x)
            per_example = stack.task.per_example_loss(labels, probabilities)
            total_loss += tf.reduce_sum(tf.cast(per_example, tf.float64), axis=1)
            matches = stack.task.batch_accuracy(labels, probabilities)
            correct += tf.reduce_sum(tf.cast(matches, tf.float64), axis=1)
        count = tf.cast(n, tf.float64)
        return total_loss / count, correct / count

    return lambda: tuple(v.numpy() for v in evaluate())


def stack_loop(
    specs: Sequence[RunSpec],
    train: tuple[Any, Any],
    evaluation: tuple[Any, Any],
    epoch_logs: Sequence[EpochLog],
) -> None:
    """Train the stack of ``specs`` on ``train`` (tensors), feeding member k's ``epoch_logs[k]``
    after each epoch as ``train_loop`` feeds a separate run's; stops when every member is done."""
    import tensorflow as tf

    spec = specs[0]
    x_train, y_train = train
    examples = int(y_train.shape[0])
    steps = count_steps(examples, spec.workload.batch_size)
    stack = _Stack(specs, int(x_train.shape[1]))
    batch_size = spec.workload.batch_size

    @tf.function
    def train_epoch(order):
        log = tf.TensorArray(tf.float64, size=steps, element_shape=[stack.size, len(LOG_COLUMNS)])
        for i in tf.range(steps):
            batch = order[i * batch_size : (i + 1) * batch_size]
            log = log.write(
                i, stack.train_step(tf.gather(x_train, batch), tf.gather(y_train, batch))
            )
        return log.stack()

    evaluate = _evaluator(stack, evaluation)
    rng = np.random.default_rng(spec.seed)  # the separate runs' batch order (train_loop's)
    training = list(range(stack.size))
    start = time.perf_counter()
    for log in epoch_logs:
        log.t0 = start
    for epoch in range(spec.workload.epochs):
        order = tf.constant(rng.permutation(examples).astype(np.int32))
        began = time.perf_counter()
        logs = train_epoch(order).numpy()
        ended = time.perf_counter()
        test_loss, test_accuracy = evaluate()
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
            if epoch_logs[member].add(epoch, log, [(began, ended)], metrics, finite):
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
    if given, is member k's per-epoch callback. Each result's ``wall_s`` is the stack's (the
    members trained together); ``info["stack"]`` says with whom."""
    from clrbench.train.run import RunResult, configure_tensorflow, load_inputs, run_info

    check_stack(specs)
    started_at, start = time.time(), time.perf_counter()
    spec = specs[0]
    threads = configure_tensorflow(spec.workload.threads)
    dataset, train, evaluation = load_inputs(spec, data_dir, as_tensors=True)
    callbacks = list(on_epoch) if on_epoch is not None else [None] * len(specs)
    steps = count_steps(len(train[1]), spec.workload.batch_size)
    epoch_logs = [EpochLog(steps, time.perf_counter(), callback) for callback in callbacks]
    stack_loop(specs, train, evaluation, epoch_logs)
    end = time.perf_counter()
    info = run_info(spec, threads, dataset, evaluation)
    labels = [s.label for s in specs]
    return [
        RunResult.of(
            member,
            log,
            (started_at, start, end),
            info | {"stack": {"size": len(specs), "labels": labels, "member": index}},
        )
        for index, (member, log) in enumerate(zip(specs, epoch_logs, strict=True))
    ]
