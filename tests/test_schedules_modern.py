"""The schedules of now (issue 33) against their anchors' own numbers: transformers' test suite
and code, optax's schedule tests, AlgoPerf v0.5's cyclic entry; and their bad input.

The scalar references below are transcriptions of the anchors' code (file and commit named at
each), written as loops over floats, independent of clrbench's integer-boundary formulas; they
are also the references ``test_schedules`` and ``test_schedules_graph`` compare against.
"""

import math
import shlex
import tomllib
from pathlib import Path

import numpy as np
import pytest

from clrbench.cli.main import build_parser
from clrbench.config.experiment import Experiment
from clrbench.errors import ClrbenchError, ScheduleError
from clrbench.schedules import make, roles

# --- references transcribed from the anchors ---


def transformers_cosine(k, peak_lr, warmup_steps, total_steps, end_lr=0.0):
    """transformers ``_get_cosine_schedule_with_warmup_lr_lambda`` (src/transformers/
    optimization.py, commit 005edacb6b5dabbf0843e92c6623de9e07ca6241), num_cycles 0.5, scaled
    from [0, peak] to [end_lr, peak] after the warm-up and held at end_lr from total_steps on
    (transformers' cosine would rise again past it)."""
    if k < warmup_steps:
        return peak_lr * float(k) / float(max(1, warmup_steps))
    if k >= total_steps:
        return end_lr
    progress = float(k - warmup_steps) / float(max(1, total_steps - warmup_steps))
    factor = max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
    return end_lr + (peak_lr - end_lr) * factor


def transformers_linear(k, peak_lr, warmup_steps, total_steps, end_lr=0.0):
    """transformers ``_get_linear_schedule_with_warmup_lr_lambda`` (same file), scaled to
    [end_lr, peak] after the warm-up."""
    if k < warmup_steps:
        return peak_lr * float(k) / float(max(1, warmup_steps))
    factor = max(0.0, float(total_steps - k) / float(max(1, total_steps - warmup_steps)))
    return end_lr + (peak_lr - end_lr) * factor


def transformers_wsd(k, peak_lr, warmup_steps, decay_steps, total_steps, end_lr=0.0,
                     cooldown="linear"):  # fmt: skip
    """transformers ``_get_wsd_scheduler_lambda`` (same file) with warmup_type "linear",
    num_cycles 0.5, ``num_stable_steps = num_training_steps - W - D`` (as ``get_wsd_schedule``
    sets it) and ``min_lr_ratio = end_lr / peak_lr``, times peak_lr."""
    ratio = end_lr / peak_lr
    stable = total_steps - warmup_steps - decay_steps
    if k < warmup_steps:
        factor = float(k) / float(max(1, warmup_steps))
        return peak_lr * max(0.0, factor * (1.0 - ratio) + ratio)
    if k < warmup_steps + stable:
        return peak_lr
    if k < warmup_steps + stable + decay_steps:
        progress = float(k - warmup_steps - stable) / float(max(1, decay_steps))
        factor = {
            "linear": 1.0 - progress,
            "cosine": 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)),
            "1-sqrt": 1.0 - math.sqrt(progress),
        }[cooldown]
        return peak_lr * max(0.0, factor * (1.0 - ratio) + ratio)
    return peak_lr * ratio


def algoperf_cycles(t, peak_lr, warmup_steps, total_steps, cycles=2, end_lr=0.0):
    """AlgoPerf v0.5 ``WarmCosineCycles.schedule`` (mlcommons/submissions_algorithms,
    previous_leaderboards/algoperf_v05/submissions/external_tuning/cyclic_lr/submission.py,
    commit 12c8e4ea93dc41a1ff6abc3debba9accd8ac1e3a): lr_min = end_lr, lr_max = peak_lr,
    T = total_steps; its float boundaries ``phi * alpha * T`` as written."""
    alpha = 1 / cycles
    lr_min, lr_max, w, big_t = end_lr, peak_lr, warmup_steps, total_steps
    for phi in range(0, cycles):
        if t <= phi * alpha * big_t + w:
            return lr_min + (lr_max - lr_min) / w * (t - phi * alpha * big_t)
        elif t <= (phi + 1) * alpha * big_t:
            return lr_min + 0.5 * (lr_max - lr_min) * (
                1 + math.cos((t - w - phi * alpha * big_t) * math.pi / (alpha * big_t - w))
            )
    return lr_min


REFERENCES = {
    "warmup_cosine": transformers_cosine,
    "warmup_linear": transformers_linear,
    "wsd": transformers_wsd,
    "warmup_cosine_cycles": algoperf_cycles,
}


def modern_reference(name, params, n):
    """Reference values at steps 0..n-1 (None for a schedule not of this module)."""
    function = REFERENCES.get(name)
    return None if function is None else np.array([function(k, **params) for k in range(n)])


# --- the anchors' own expected values ---

TEN = dict(peak_lr=10.0, warmup_steps=2, total_steps=10)


def test_transformers_test_suite_values():
    """tests/optimization/test_optimization.py (huggingface/transformers, ScheduleInitTest.
    test_schedulers: lr 10, num_warmup_steps 2, num_training_steps 10, tolerance 1e-2)."""
    linear = [0.0, 5.0, 10.0, 8.75, 7.5, 6.25, 5.0, 3.75, 2.5, 1.25]
    cosine = [0.0, 5.0, 10.0, 9.61, 8.53, 6.91, 5.0, 3.08, 1.46, 0.38]
    steps = np.arange(10)
    np.testing.assert_allclose(make("warmup_linear", **TEN)(steps), linear, atol=1e-2)
    np.testing.assert_allclose(make("warmup_cosine", **TEN)(steps), cosine, atol=1e-2)


@pytest.mark.parametrize("cooldown", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize("end_lr", [0.0, 0.5])
def test_wsd_is_transformers_get_wsd_schedule(cooldown, end_lr):
    """transformers' ``get_wsd_schedule`` lambda (transcribed above) at every step, past the
    end; and the hand-computed values of its linear cooldown."""
    params = dict(peak_lr=10.0, warmup_steps=3, decay_steps=7, total_steps=30, end_lr=end_lr,
                  cooldown=cooldown)  # fmt: skip
    expected = [transformers_wsd(k, **params) for k in range(40)]
    np.testing.assert_allclose(make("wsd", **params)(np.arange(40)), expected, rtol=1e-12)
    short = make("wsd", peak_lr=10.0, warmup_steps=2, decay_steps=4, total_steps=10)
    np.testing.assert_allclose(
        short(np.arange(11)), [0, 5, 10, 10, 10, 10, 10, 7.5, 5, 2.5, 0], rtol=0, atol=1e-12
    )


def test_optax_warmup_cosine_decay_limits():
    """optax/schedules/_schedule_test.py, WarmupCosineDecayTest.test_limits ('with end value',
    init_value 10 is optax's own start; clrbench warms up from 0): peak 0.5 at step 100 of
    warm-up, end_value 1e-4 at decay_steps 1000 (rtol 1e-3); optax counts the warm-up inside
    decay_steps, as total_steps does here."""
    schedule = make("warmup_cosine", peak_lr=0.5, warmup_steps=100, total_steps=1000, end_lr=1e-4)
    np.testing.assert_allclose(schedule(100), 0.5)
    np.testing.assert_allclose(schedule(1000), 1e-4, rtol=1e-3)


@pytest.mark.parametrize("cycles", [1, 2])
@pytest.mark.parametrize("warmup_factor", [0.02, 0.05, 0.1])
def test_algoperf_cyclic_entry_at_every_step(cycles, warmup_factor):
    """AlgoPerf's own tuning_search_space.json (cyclic_lr): warmup_factor 0.02 / 0.05 / 0.1 of
    the step hint, 1 or 2 cycles, lr_min 1e-10; its ``int(warmup_factor * step_hint)``. Over a
    full MNIST run of 11,725 steps (odd: its two cycles of 5,862.5 steps end mid-step) and past
    it."""
    total = 25 * 469
    warmup = int(warmup_factor * total)
    params = dict(peak_lr=0.0017486387539278373, warmup_steps=warmup, total_steps=total,
                  cycles=cycles, end_lr=1e-10)  # fmt: skip
    steps = np.arange(total + 50)
    expected = [algoperf_cycles(int(k), **params) for k in steps]
    np.testing.assert_allclose(make("warmup_cosine_cycles", **params)(steps), expected,
                               rtol=1e-12, atol=1e-18)  # fmt: skip


def test_cycles_boundaries_in_integers():
    """Two cycles of 5 steps: each starts at end_lr, peaks after its warm-up, ends at end_lr."""
    schedule = make("warmup_cosine_cycles", peak_lr=1.0, warmup_steps=2, total_steps=10)
    rates = schedule(np.arange(12))
    assert rates[0] == 0.0 and rates[2] == 1.0 and rates[5] == 0.0
    assert rates[7] == 1.0 and rates[10] == 0.0 and rates[11] == 0.0
    assert rates[6] == 0.5  # half-way up the second warm-up (t - L = 1 of W = 2)


def test_declared_roles():
    """Roles drive scale_rates, run-tied lengths, shape notes and study spaces."""
    assert roles("warmup_cosine") == roles("warmup_linear") == {
        "peak_lr": "rate", "warmup_steps": "warmup", "total_steps": "length", "end_lr": "rate",
    }  # fmt: skip
    assert roles("wsd")["decay_steps"] == "cooldown" and roles("wsd")["cooldown"] == "shape"
    assert roles("warmup_cosine_cycles")["cycles"] == "shape"


# --- bad input: one line naming the parameter ---

BAD = [
    ("wsd", dict(peak_lr=1.0, warmup_steps=2, decay_steps=4, total_steps=10, cooldown="sqrt"),
     "wsd: cooldown must be one of linear, cosine, 1-sqrt, got 'sqrt'"),
    ("wsd", dict(peak_lr=1.0, warmup_steps=7, decay_steps=4, total_steps=10),
     "wsd: warmup_steps + decay_steps must be <= total_steps=10, got 7 + 4"),
    ("warmup_cosine", dict(peak_lr=1.0, warmup_steps=10, total_steps=10),
     "warmup_cosine: warmup_steps must be < total_steps=10, got 10"),
    ("warmup_linear", dict(peak_lr=1.0, warmup_steps=2, total_steps=10, end_lr=2.0),
     "warmup_linear: end_lr must be <= peak_lr=1.0, got 2.0"),
    ("warmup_cosine_cycles", dict(peak_lr=1.0, warmup_steps=5, total_steps=10, cycles=2),
     "warmup_cosine_cycles: warmup_steps must be < total_steps / cycles = 5, got 5"),
    ("warmup_cosine", dict(peak_lr=1.0, warmup_steps=-1, total_steps=10),
     "warmup_cosine: warmup_steps must be an integer >= 0, got -1"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "params", "message"), BAD, ids=[b[2][:30] for b in BAD])
def test_bad_input_is_one_schedule_error(name, params, message):
    with pytest.raises(ScheduleError) as caught:
        make(name, **params)
    assert str(caught.value) == message and isinstance(caught.value, ClrbenchError)


def test_a_warmup_of_zero_steps_starts_at_the_peak():
    schedule = make("warmup_linear", peak_lr=1.0, warmup_steps=0, total_steps=4)
    np.testing.assert_allclose(schedule(np.arange(5)), [1.0, 0.75, 0.5, 0.25, 0.0])


# --- the user guide's examples are real ---

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guides" / "schedules-of-now.md"


def test_the_guides_command_lines_parse():
    commands = [line for line in GUIDE.read_text().splitlines() if line.startswith("python -m")]
    assert len(commands) >= 5
    for line in commands:
        argv = shlex.split(line)
        assert argv[:3] == ["python", "-m", "clrbench"]
        build_parser().parse_args(argv[3:])  # argparse exits on anything it does not know


def test_the_guides_toml_is_a_valid_experiment():
    text = GUIDE.read_text()
    toml = text.split("```toml\n", 1)[1].split("```", 1)[0]
    experiment = Experiment.from_dict(tomllib.loads(toml))
    params = {s.label: s.schedule.params for s in experiment.runs() if s.seed == 0}
    assert params["wsd-1-sqrt"]["decay_steps"] == 2 * experiment.steps_per_epoch
    assert params["wsd-linear"]["total_steps"] == experiment.total_steps
