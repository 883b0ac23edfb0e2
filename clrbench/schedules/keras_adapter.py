"""The TensorFlow side of schedules: the Keras adapter, Keras's own schedules by name
(``keras:CosineDecay``), and the exactness check (numpy vs in-graph at every step).

Imported only on first use (``Schedule.keras()``, a ``keras:`` name, ``check_exact``), so that
``import clrbench.schedules`` stays free of TensorFlow.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tensorflow.experimental.numpy as tnp

from clrbench.errors import ScheduleError
from clrbench.schedules.core import UNSET, Schedule, evaluate
from clrbench.schedules.formulas import _Param, _Spec


@functools.cache
def keras_schedule_class() -> type:
    """``KerasSchedule``, registered for Keras serialisation as ``clrbench>KerasSchedule``."""

    @keras.saving.register_keras_serializable(package="clrbench")
    class KerasSchedule(keras.optimizers.schedules.LearningRateSchedule):
        """A ``Schedule`` evaluated in-graph from the optimizer's iteration counter.

        The step is cast to int64, the shared formula runs with ``tensorflow.experimental.numpy``
        (boundaries in integer arithmetic) and the rate is returned as float32; ``get_config`` is
        the schedule's ``to_config``.
        """

        def __init__(self, schedule: Schedule) -> None:
            self.schedule = schedule

        def __call__(self, step: Any) -> Any:
            lr = evaluate(self.schedule, tf.cast(step, tf.int64), tnp)
            return tf.cast(lr, tf.float32)

        def get_config(self) -> dict[str, Any]:
            return self.schedule.to_config()

        @classmethod
        def from_config(cls, config: dict[str, Any]) -> KerasSchedule:
            return cls(Schedule.from_config(config))

    KerasSchedule.__module__, KerasSchedule.__qualname__ = "clrbench.schedules", "KerasSchedule"
    return KerasSchedule


# --- Keras's own schedules by name ---


def keras_classes() -> dict[str, type]:
    """Keras's ``LearningRateSchedule`` subclasses by name."""
    module, base = keras.optimizers.schedules, keras.optimizers.schedules.LearningRateSchedule
    return {
        name: cls
        for name, cls in sorted(vars(module).items())
        if isinstance(cls, type) and issubclass(cls, base) and cls is not base
    }


def _plain_value(where: str, value: Any) -> Any:
    """A constructor argument as a plain, hashable value (lists become tuples)."""
    if isinstance(value, list | tuple):
        return tuple(_plain_value(where, v) for v in value)
    if isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Real) and math.isfinite(value):
        return int(value) if isinstance(value, numbers.Integral) else float(value)
    raise ScheduleError(f"{where} must be a number, string, boolean or list, got {value!r}")


def _keras_args(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def keras_spec(name: str) -> _Spec:
    """The spec of ``keras:<Class>``: its constructor arguments are the parameters (``name``
    excluded), checked by constructing it."""
    classes = keras_classes()
    class_name = name.removeprefix("keras:")
    if class_name not in classes:
        valid = ", ".join(f"keras:{c}" for c in classes)
        raise ScheduleError(f"unknown Keras schedule {name!r}; valid: {valid}")
    cls = classes[class_name]
    params = []
    constructor = cls.__init__  # type: ignore[misc]  # a class's own __init__, read not called
    for argument in list(inspect.signature(constructor).parameters.values())[1:]:
        if argument.name == "name" or argument.kind in (argument.VAR_POSITIONAL,
                                                        argument.VAR_KEYWORD):  # fmt: skip
            continue
        if argument.default is argument.empty:
            default = None
        else:
            default = UNSET if argument.default is None else argument.default
        params.append(_Param(argument.name, _plain_value, f"{class_name} argument", default))

    def constructs(schedule_name: str, values: dict) -> None:
        try:
            cls(**_keras_args(values))
        except Exception as exc:  # Keras raises ValueError/TypeError with its own text
            first = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise ScheduleError(f"{schedule_name}: {first}") from None

    formula = functools.partial(_keras_formula, class_name)
    summary = (cls.__doc__ or "").strip().splitlines()[0]
    origin = f"Keras {keras.__version__}"
    return _Spec(formula, tuple(params), (constructs,), origin, summary=summary)


def _keras_formula(class_name: str, step: Any, xp: Any, **params: Any) -> Any:
    """Keras's own schedule: eagerly on an array of steps (numpy), or traced into the graph."""
    schedule = keras_classes()[class_name](**_keras_args(params))
    if xp is not np:
        return tf.cast(schedule(step), tf.float64)
    steps = np.asarray(step, dtype=np.int64)
    try:
        return np.asarray(schedule(tf.constant(steps)), dtype=np.float64)
    except (ValueError, TypeError, tf.errors.InvalidArgumentError):
        # Some take a scalar step only (CosineDecay's warm-up branches with ``ops.cond``):
        # vectorise that scalar call over the steps (one eager call per step is 300x slower).
        flat = tf.constant(steps.reshape(-1))
        rates = tf.vectorized_map(schedule, flat).numpy().astype(np.float64)
        return rates.reshape(steps.shape)


# --- exactness: the formula in numpy and in the graph, at every step ---


def in_graph_rates(schedule: Any, steps: int) -> np.ndarray:
    """The rates at steps ``0..steps-1`` (float32), each evaluated from a scalar int64 step inside
    one ``tf.function`` (a ``tf.while_loop`` the graph optimiser rewrites, as the optimizer's
    train step is). ``schedule``: a ``Schedule`` or any Keras ``LearningRateSchedule``."""
    adapter = schedule.keras() if isinstance(schedule, Schedule) else schedule

    @tf.function
    def rates():
        def body(step, out):
            return step + 1, out.write(tf.cast(step, tf.int32), adapter(step))

        start = (tf.constant(0, tf.int64), tf.TensorArray(tf.float32, size=steps))
        _, out = tf.while_loop(lambda step, _: step < steps, body, start)
        return out.stack()

    return rates().numpy()


def check_exact(schedule: Schedule, steps: int, rtol: float = 1e-6, atol: float = 1e-6) -> None:
    """Assert that the schedule gives the same rate in the graph as in numpy at every step of a
    run of ``steps`` steps (use the run's length: ``epochs * ceil(train_size / batch_size)``).

    Equal means within float32 precision: ``|graph - numpy| <= rtol * |numpy| + atol * max``,
    ``max`` the run's largest rate (Keras's own schedules compute in float32, whose rounding is
    large relative to rates near zero). A boundary computed as ``floor(step / n)`` in floating
    point fails here, at the multiples of ``n`` where the graph optimiser rounds it down.
    Raises ``AssertionError`` naming the first step that differs.
    """
    graph = in_graph_rates(schedule, steps)
    expected = schedule(np.arange(steps))
    scale = float(np.max(np.abs(expected))) if steps else 0.0
    close = np.abs(graph - expected) <= rtol * np.abs(expected) + atol * scale
    if not close.all():
        step = int(np.argmin(close))
        raise AssertionError(
            f"{schedule.name}: in the graph the rate at step {step} is {graph[step]!r}, "
            f"numpy gives {expected[step]!r} ({np.count_nonzero(~close)} of {steps:,} steps "
            f"differ beyond rtol={rtol}, atol={atol} x the largest rate)"
        )
