"""The TensorFlow side of schedules, below ``Schedule``: the Keras adapter class and Keras's own
schedules by name (``keras:CosineDecay``) as specs.

Imported only on first use (``Schedule.keras()``, a ``keras:`` name), so that
``import clrbench.schedules`` stays free of TensorFlow. It knows ``Schedule`` only as the type it
is given (``keras_schedule_class(Schedule)``), so the import arrows point one way.
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
from clrbench.schedules.spec import UNSET, Param, Spec


@functools.cache
def keras_schedule_class(schedule_type: Any) -> type:
    """``KerasSchedule`` for ``schedule_type`` (``Schedule``: it has ``evaluate(steps, xp)``,
    ``to_config`` and ``from_config``), registered for Keras serialisation as
    ``clrbench>KerasSchedule``."""

    @keras.saving.register_keras_serializable(package="clrbench")
    class KerasSchedule(keras.optimizers.schedules.LearningRateSchedule):
        """A ``Schedule`` evaluated in-graph from the optimizer's iteration counter.

        The step is cast to int64, the shared formula runs with ``tensorflow.experimental.numpy``
        (boundaries in integer arithmetic) and the rate is returned as float32; ``get_config`` is
        the schedule's ``to_config``.
        """

        def __init__(self, schedule: Any) -> None:
            self.schedule = schedule

        def __call__(self, step: Any) -> Any:
            lr = self.schedule.evaluate(tf.cast(step, tf.int64), tnp)
            return tf.cast(lr, tf.float32)

        def get_config(self) -> dict[str, Any]:
            return self.schedule.to_config()

        @classmethod
        def from_config(cls, config: dict[str, Any]) -> KerasSchedule:
            return cls(schedule_type.from_config(config))

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


def keras_spec(name: str) -> Spec:
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
        role = _keras_role(argument.name)
        params.append(Param(argument.name, _plain_value, f"{class_name} argument", default, role))

    def constructs(schedule_name: str, values: dict) -> None:
        try:
            cls(**_keras_args(values))
        except Exception as exc:  # Keras raises ValueError/TypeError with its own text
            first = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise ScheduleError(f"{schedule_name}: {first}") from None

    formula = functools.partial(_keras_formula, class_name)
    summary = (cls.__doc__ or "").strip().splitlines()[0]
    origin = f"Keras {keras.__version__}"
    return Spec(formula, tuple(params), (constructs,), origin, summary=summary)


def _keras_role(argument: str) -> str:
    """Keras's constructor arguments follow one naming convention: ``*learning_rate`` and
    ``warmup_target`` are rates, ``*_steps`` counts of iterations, the rest shape."""
    if argument.endswith("learning_rate") or argument == "warmup_target":
        return "rate"
    return "steps" if argument.endswith("_steps") else "shape"


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
