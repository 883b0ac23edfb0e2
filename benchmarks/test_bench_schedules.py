"""What evaluating a schedule costs: numpy over a whole run, and in-graph as Keras does it.

A full run is 25 epochs of 469 steps = 11,725 steps. The numpy evaluation (plots, tests,
the callback path) takes every step at once; the optimizer evaluates the Keras adapter once
per step, inside the compiled train step, which the in-graph benchmarks reproduce with a
``tf.while_loop`` over the step counter.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from clrbench.schedules import GRANULARITIES, make, names

STEPS_PER_EPOCH, EPOCHS = 469, 25
TOTAL_STEPS = STEPS_PER_EPOCH * EPOCHS  # 11,725
CYCLE = {"base_lr": 0.02, "max_lr": 0.2, "step_size": 2345}
# Parameters of each registered schedule at the project's scale (as in clrbench.config.presets).
PARAMS = {
    "constant": {"lr": 0.1},
    "step_decay": {"initial_lr": 0.2, "drop": 0.5, "every_steps": 2345},
    "exp_decay": {"initial_lr": 0.2, "decay_rate": 0.5, "decay_steps": 4690},
    "triangular": CYCLE,
    "triangular2": CYCLE,
    "exp_range": CYCLE | {"gamma": 0.999804},
    "sine_exp": {"base_lr": 0.02, "max_lr": 0.2, "period": 4690, "decay": 0.999804},
    "one_cycle": {"max_lr": 0.2, "total_steps": TOTAL_STEPS},
    "sgdr": {"max_lr": 0.2, "min_lr": 0.002, "first_period": 4690},
    "range_test": {"min_lr": 1e-5, "max_lr": 1.0, "num_steps": TOTAL_STEPS},
    "warmup": {"steps": 938, "schedule": {"name": "sgdr", "max_lr": 0.2, "min_lr": 0.0,
                                          "first_period": TOTAL_STEPS - 938}},
    "join": {"boundaries": [4690], "schedules": [
        {"name": "step_decay", "initial_lr": 0.2, "drop": 0.5, "every_steps": 2345},
        {"name": "triangular", **CYCLE}]},
    "scale": {"factor": 0.5, "schedule": {"name": "triangular", **CYCLE}},
    # not registered: a plug-in by import path (the example package) and Keras's own schedule
    "warm_schedules:warm_cosine": {"peak_lr": 0.2, "warmup_steps": 938,
                                   "total_steps": TOTAL_STEPS},
    "keras:CosineDecay": {"initial_learning_rate": 0.2, "decay_steps": TOTAL_STEPS},
}  # fmt: skip
IN_GRAPH = ("constant", "step_decay", "triangular", "one_cycle", "sgdr")
# The cost of a plug-in against built-ins of the same shape (warm-up then cosine): the plug-in,
# the same curve composed from built-ins, the built-in one_cycle, and Keras's own CosineDecay.
PLUG_INS = ("warm_schedules:warm_cosine", "warmup", "one_cycle", "keras:CosineDecay", "constant")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "warm_schedules"))


def schedule(name: str, granularity: str = "iteration"):
    if name not in PARAMS:
        pytest.fail(f"schedule {name!r} is registered but has no benchmark parameters in PARAMS")
    return make(name, granularity=granularity, steps_per_epoch=STEPS_PER_EPOCH, **PARAMS[name])


def per_step(benchmark) -> None:
    """Record the median cost per step (absent when benchmarks are disabled)."""
    if benchmark.stats is not None:
        benchmark.extra_info["median_us_per_step"] = (
            benchmark.stats.stats.median / TOTAL_STEPS * 1e6
        )


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("name", names())
def test_numpy_whole_run(benchmark, name, granularity):
    """All 11,725 steps of one run in one vectorised numpy call."""
    benchmark.group = "schedule: numpy, 11,725 steps"
    sched = schedule(name, granularity)
    steps = np.arange(TOTAL_STEPS)
    benchmark(sched, steps)
    per_step(benchmark)


@pytest.fixture(scope="module")
def tf():
    tensorflow = pytest.importorskip("tensorflow")
    from clrbench.train.run import configure_tensorflow

    configure_tensorflow(1)  # one thread, like every training run
    return tensorflow


def in_graph_loop(tf, keras_schedule):
    """A compiled loop evaluating the schedule at steps 0..N-1 from an int64 counter, one
    scalar step per iteration (how the optimizer calls it); returns the sum of the rates."""

    @tf.function
    def loop(n):
        def body(step, total):
            return step + 1, total + keras_schedule(step)

        start = (tf.constant(0, tf.int64), tf.constant(0.0, tf.float32))
        return tf.while_loop(lambda step, _: step < n, body, start)[1]

    return loop


@pytest.mark.parametrize("name", IN_GRAPH)
def test_keras_in_graph_per_step(benchmark, tf, name):
    """The Keras adapter evaluated in-graph once per step, for 11,725 steps."""
    benchmark.group = "schedule: Keras in-graph, one step per iteration, 11,725 steps"
    sched = schedule(name)
    loop = in_graph_loop(tf, sched.keras())
    n = tf.constant(TOTAL_STEPS, tf.int64)
    expected = sched(np.arange(TOTAL_STEPS)).astype(np.float32)
    total = loop(n)  # trace outside the timing; the loop sums in float32, hence rtol
    np.testing.assert_allclose(float(total), expected.sum(dtype=np.float64), rtol=1e-3)
    benchmark.pedantic(lambda: loop(n).numpy(), rounds=10, warmup_rounds=1, iterations=1)
    per_step(benchmark)


@pytest.mark.parametrize("name", IN_GRAPH)
def test_keras_in_graph_vectorised(benchmark, tf, name):
    """The Keras adapter on all 11,725 steps as one tensor (a reference for the loop)."""
    benchmark.group = "schedule: Keras in-graph, vectorised, 11,725 steps"
    keras_schedule = schedule(name).keras()
    evaluate = tf.function(keras_schedule.__call__)
    steps = tf.range(TOTAL_STEPS, dtype=tf.int64)
    evaluate(steps)
    benchmark(lambda: evaluate(steps).numpy())
    per_step(benchmark)


@pytest.mark.parametrize("name", PLUG_INS)
def test_plug_in_in_graph_per_step(benchmark, tf, name):
    """A plug-in schedule against built-ins, in-graph once per step as the optimizer calls it."""
    benchmark.group = "schedule: plug-in vs built-in, in-graph per step, 11,725 steps"
    sched = schedule(name)
    loop = in_graph_loop(tf, sched.keras())
    n = tf.constant(TOTAL_STEPS, tf.int64)
    expected = sched(np.arange(TOTAL_STEPS)).astype(np.float32)
    np.testing.assert_allclose(float(loop(n)), expected.sum(dtype=np.float64), rtol=1e-3)
    benchmark.pedantic(lambda: loop(n).numpy(), rounds=10, warmup_rounds=1, iterations=1)
    per_step(benchmark)
