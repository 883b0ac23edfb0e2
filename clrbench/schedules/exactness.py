"""The exactness check: a schedule's rates in numpy and inside a ``tf.function``, at every step.

Imports TensorFlow; reached from ``clrbench.schedules.check_exact`` / ``in_graph_rates`` on first
use only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from clrbench.schedules.core import Schedule

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
