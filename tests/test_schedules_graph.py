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

from clrbench.schedules import check_exact, in_graph_rates, make, names

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
        ("warmup", dict(schedule=_tri(2 * spe), steps=spe)),
        ("warmup", dict(schedule=dict(name="sgdr", max_lr=0.2, min_lr=0.002,
                                      first_period=3 * spe, t_mult=2), steps=2 * spe)),
        ("join", dict(schedules=[dict(name="constant", lr=0.1), _tri(spe),
                                 dict(name="step_decay", initial_lr=0.2, drop=0.5,
                                      every_steps=2 * spe)],
                      boundaries=[3 * spe, 10 * spe])),
        ("scale", dict(schedule=_tri(round(2.5 * spe)), factor=0.5)),
        # the schedules of now (issue 33): phase boundaries on epochs, and (cycles) mid-step
        ("warmup_cosine", dict(peak_lr=0.2, warmup_steps=2 * spe, total_steps=25 * spe)),
        ("warmup_linear", dict(peak_lr=0.2, warmup_steps=spe, total_steps=20 * spe,
                               end_lr=0.002)),
        ("wsd", dict(peak_lr=0.2, warmup_steps=spe, decay_steps=5 * spe, total_steps=25 * spe)),
        ("wsd", dict(peak_lr=0.2, warmup_steps=spe, decay_steps=5 * spe, total_steps=25 * spe,
                     cooldown="cosine")),
        ("wsd", dict(peak_lr=0.2, warmup_steps=spe, decay_steps=5 * spe, total_steps=25 * spe,
                     end_lr=0.002, cooldown="1-sqrt")),
        ("warmup_cosine_cycles", dict(peak_lr=0.2, warmup_steps=int(0.1 * 25 * spe),
                                      total_steps=25 * spe, end_lr=1e-10)),
        ("warmup_cosine_cycles", dict(peak_lr=0.2, warmup_steps=int(0.05 * 25 * spe),
                                      total_steps=25 * spe, cycles=1)),
    ]  # fmt: skip


def _tri(step_size: int) -> dict:
    return dict(name="triangular", base_lr=0.02, max_lr=0.2, step_size=step_size)


N_CASES = len(_cases(1))
CASES = [
    (spe, granularity, name, params)
    for spe in EPOCH_LENGTHS
    for granularity in ("iteration", "epoch")
    for name, params in _cases(spe)
]


def test_every_registered_schedule_is_covered():
    assert {name for _, _, name, _ in CASES} == set(names())


@pytest.mark.parametrize(
    ("spe", "granularity", "name", "params"),
    [
        # The default run's epoch length in the fast tier; the other lengths (the same formulas
        # at other epoch boundaries, 2/3 of the 11,725-step graph evaluations) in the slow one.
        pytest.param(*case, marks=() if case[0] == 469 else pytest.mark.slow)
        for case in CASES
    ],
    ids=[f"{spe}-{g}-{name}-{i % N_CASES}" for i, (spe, g, name, _) in enumerate(CASES)],
)
def test_in_graph_equals_numpy_and_closed_form_at_every_step(spe, granularity, name, params):
    schedule = make(name, granularity=granularity, steps_per_epoch=spe, **params)
    steps = np.arange(RUN_STEPS)
    graph = in_graph_rates(schedule, RUN_STEPS)
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
    graph = in_graph_rates(schedule, RUN_STEPS)
    drops = np.flatnonzero(np.diff(graph) != 0) + 1
    np.testing.assert_array_equal(drops, np.arange(every, RUN_STEPS, every))
    assert graph[every - 1] == np.float32(0.2) and graph[every] == np.float32(0.1)


# --- the public exactness helper ---


def test_check_exact_passes_a_composed_schedule_at_the_full_mnist_run_length():
    """warmup-cosine as the extended preset builds it (warm-up, then Keras's CosineDecay), and a
    warmed-up per-epoch step decay joined to a cycle: 469 steps/epoch x 25 epochs."""
    cosine = dict(name="keras:CosineDecay", initial_learning_rate=0.2, decay_steps=RUN_STEPS)
    check_exact(make("warmup", schedule=cosine, steps=2 * 469), RUN_STEPS)
    decay = dict(name="step_decay", initial_lr=0.2, drop=0.5, every_steps=5 * 469)
    joined = make("join", schedules=[decay, _tri(2 * 469)], boundaries=[10 * 469],
                  granularity="epoch", steps_per_epoch=469)  # fmt: skip
    check_exact(joined, RUN_STEPS)


def _float_boundary_decay(step, xp, every: int, epoch_length: int):
    """The defect this project once shipped: per-epoch holding and a decay index in float."""
    real = xp.asarray(step, dtype=xp.float64)
    held = epoch_length * xp.floor(real / epoch_length)
    return 0.2 * xp.power(0.5, xp.floor(held / every))


def test_check_exact_names_the_first_step_a_float_boundary_gets_wrong():
    """Right in numpy; in the graph, grappler turns ``x / n`` into ``x * (1 / n)``, which lands
    just below 1 at step 2345, so the drop there comes one epoch late."""
    schedule = make(f"{__name__}:_float_boundary_decay", every=2345, epoch_length=469)
    assert schedule(2345) == 0.1  # numpy is right
    with pytest.raises(AssertionError, match=r"the rate at step 2345 is np.float32\(0.2\)"):
        check_exact(schedule, RUN_STEPS)
