"""Keras's own schedules by name (``keras:CosineDecay``): evaluated by Keras itself, in numpy on
a range of steps and in the graph, so a comparison uses exactly what a Keras user ships."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clrbench.errors import ScheduleError
from clrbench.schedules import Schedule, check_exact, make, warmup

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

RUN_STEPS = 25 * 469
CASES = [
    ("CosineDecay", dict(initial_learning_rate=0.2, decay_steps=RUN_STEPS, alpha=0.01)),
    ("CosineDecay", dict(initial_learning_rate=0.0, decay_steps=10_000, warmup_target=0.2,
                         warmup_steps=938)),  # scalar steps only: ``ops.cond`` on the step
    ("ExponentialDecay", dict(initial_learning_rate=0.2, decay_steps=469, decay_rate=0.5,
                              staircase=True)),
    ("PiecewiseConstantDecay", dict(boundaries=[2345, 4690], values=[0.2, 0.1, 0.05])),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.2, first_decay_steps=2345)),
]  # fmt: skip


def _optimizer_rates(learning_rate, steps) -> np.ndarray:
    """What a Keras optimizer applies at each iteration count."""
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    rates = []
    for step in steps:
        optimizer.iterations.assign(int(step))
        rates.append(float(optimizer.learning_rate))
    return np.array(rates)


@pytest.mark.parametrize(("cls", "args"), CASES, ids=[c[0] for c in CASES])
def test_same_rates_as_the_keras_object_in_an_optimizer(cls, args):
    schedule = make(f"keras:{cls}", **args)
    steps = np.array([0, 1, 468, 469, 937, 938, 2344, 2345, 2346, 4690, 9000, RUN_STEPS - 1])
    shipped = _optimizer_rates(getattr(keras.optimizers.schedules, cls)(**args), steps)
    np.testing.assert_array_equal(_optimizer_rates(schedule.keras(), steps), shipped)
    np.testing.assert_allclose(schedule(steps), shipped, rtol=1e-6, atol=1e-9)


def test_check_exact_on_keras_cosine_decay_with_its_own_warmup():
    check_exact(make(f"keras:{CASES[1][0]}", **CASES[1][1]), RUN_STEPS)


def test_composes_and_round_trips_through_its_config():
    cosine = make("keras:CosineDecay", initial_learning_rate=0.2, decay_steps=10_000)
    warmed = warmup(cosine, steps=469)
    assert warmed(469) == pytest.approx(0.2, rel=1e-6)
    assert warmed(234) == pytest.approx(0.2 * 234 / 469, rel=1e-6)
    config = json.loads(json.dumps(warmed.to_config()))
    assert config["params"]["schedule"]["name"] == "keras:CosineDecay"
    assert Schedule.from_config(config) == warmed
    piecewise = make("keras:PiecewiseConstantDecay", boundaries=[10], values=[0.2, 0.1])
    assert piecewise.to_config()["params"] == {"boundaries": [10], "values": [0.2, 0.1]}


@pytest.mark.parametrize(
    ("name", "args", "named"),
    [
        ("keras:CosineDecai", {}, "unknown Keras schedule 'keras:CosineDecai'; valid: keras:Cos"),
        ("keras:LearningRateSchedule", {}, "unknown Keras schedule"),
        ("keras:CosineDecay", {"initial_learning_rate": 0.1}, "missing required parameter "
                                                              "'decay_steps'"),
        ("keras:CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 10, "decay": 1},
         "unknown parameter 'decay'"),
        ("keras:PiecewiseConstantDecay", {"boundaries": [10], "values": [0.1]},
         "ValueError: The length of boundaries should be 1 less"),
        ("keras:CosineDecay", {"initial_learning_rate": {"a": 1}, "decay_steps": 10},
         "initial_learning_rate must be a number, string, boolean or list"),
    ],
)  # fmt: skip
def test_bad_keras_input_is_one_line(name, args, named):
    with pytest.raises(ScheduleError) as caught:
        make(name, **args)
    message = str(caught.value)
    assert named in message and "\n" not in message
