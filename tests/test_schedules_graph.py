"""Every registered schedule evaluated the way training evaluates it: inside a ``tf.function``,
from a scalar int64 step, at every step of the 25-epoch full-MNIST run (11,725 steps), for
several epoch lengths, both granularities — against numpy and against closed forms.

A per-epoch step decay once dropped one epoch late in training while the eager adapter and numpy
were right: in a graph, ``floor(step / n)`` became ``floor(step * (1 / n))``, which lands below an
exact multiple. Parameters here are chosen so that cycle, decay and restart boundaries fall on exact
multiples of the epoch length (and, for 469, also where they do not).
"""

import numpy as np
import pytest
from test_schedules import reference  # the independent scalar references

from clrbench.schedules import make, names

RUN_STEPS = 25 * 469  # the default experiment: 25 epochs of full MNIST at batch 128
EPOCH_LENGTHS = (469, 400, 47)


def _cases(spe: int) -> list[tuple[str, dict]]:
    """Parameter sets whose boundaries are exact multiples of the epoch length ``spe``."""
    return [
        ("constant", dict(lr=0.1)),
        ("step_decay", dict(initial_lr=0.2, drop=0.5, every_steps=5 * spe)),
        ("exp_decay", dict(initial_lr=0.2, decay_rate=0.5, decay_steps=5 * spe)),
        ("triangular", dict(base_lr=0.02, max_lr=0.2, step_size=2 * spe)),
        ("triangular", dict(base_lr=0.02, max_lr=0.2, step_size=round(2.5 * spe))),  # preset's
        ("triangular2", dict(base_lr=0.02, max_lr=0.2, step_size=spe)),
        ("exp_range", dict(base_lr=0.02, max_lr=0.2, step_size=3 * spe, gamma=0.9999)),
        ("sine_exp", dict(base_lr=0.02, max_lr=0.2, period=4 * spe, decay=0.99998)),
        ("one_cycle", dict(max_lr=0.2, total_steps=25 * spe)),
        ("one_cycle", dict(max_lr=0.2, total_steps=10 * spe, pct_start=0.2, anneal="linear")),
        ("sgdr", dict(max_lr=0.2, min_lr=0.002, first_period=5 * spe)),
        ("sgdr", dict(max_lr=0.2, min_lr=0.002, first_period=spe, t_mult=2)),
        ("range_test", dict(min_lr=1e-4, max_lr=10.0, num_steps=20 * spe)),
        ("range_test", dict(min_lr=1e-3, max_lr=1.0, num_steps=2 * spe, mode="linear")),
    ]


CASES = [
    (spe, granularity, name, params)
    for spe in EPOCH_LENGTHS
    for granularity in ("iteration", "epoch")
    for name, params in _cases(spe)
]


def test_every_registered_schedule_is_covered():
    assert {name for _, _, name, _ in CASES} == set(names())


def in_graph_rates(adapter, n: int) -> np.ndarray:
    """The adapter at steps 0..n-1, each evaluated from a scalar int64 step in one tf.function
    (a ``tf.while_loop``, optimised by grappler like the training graph)."""
    import tensorflow as tf

    @tf.function
    def rates():
        def body(step, out):
            return step + 1, out.write(tf.cast(step, tf.int32), adapter(step))

        start = (tf.constant(0, tf.int64), tf.TensorArray(tf.float32, size=n))
        _, out = tf.while_loop(lambda step, _: step < n, body, start)
        return out.stack()

    return rates().numpy()


@pytest.mark.parametrize(
    ("spe", "granularity", "name", "params"),
    CASES,
    ids=[f"{spe}-{g}-{name}-{i % 14}" for i, (spe, g, name, _) in enumerate(CASES)],
)
def test_in_graph_equals_numpy_and_closed_form_at_every_step(spe, granularity, name, params):
    schedule = make(name, granularity=granularity, steps_per_epoch=spe, **params)
    steps = np.arange(RUN_STEPS)
    graph = in_graph_rates(schedule.keras(), RUN_STEPS)
    np.testing.assert_allclose(graph, schedule(steps), rtol=1e-6, atol=0)
    # Closed forms (independent scalar references), held at the epoch's first step per epoch.
    closed = reference(name, params, RUN_STEPS)
    if granularity == "epoch":
        closed = closed[spe * (steps // spe)]
    np.testing.assert_allclose(graph, closed, rtol=1e-6, atol=0)


@pytest.mark.parametrize("spe", EPOCH_LENGTHS)
def test_per_epoch_step_decay_drops_exactly_at_its_epochs(spe):
    """The defect as found: drops at epochs 5, 10, 15, 20 (integer boundaries), in the graph."""
    every = 5 * spe
    schedule = make(
        "step_decay",
        initial_lr=0.2,
        drop=0.5,
        every_steps=every,
        granularity="epoch",
        steps_per_epoch=spe,
    )
    graph = in_graph_rates(schedule.keras(), RUN_STEPS)
    drops = np.flatnonzero(np.diff(graph) != 0) + 1
    np.testing.assert_array_equal(drops, np.arange(every, RUN_STEPS, every))
    assert graph[every - 1] == np.float32(0.2) and graph[every] == np.float32(0.1)
