"""Parameter roles: every schedule declares them; scaling, run-tied lengths, the shape notes and
the study's search space come from them, for built-ins, compositions and plug-ins alike."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_synthetic
from test_schedules import EXAMPLES

from clrbench import load_results
from clrbench.cli.main import build_parser
from clrbench.cli.run import options_of
from clrbench.config.experiment import Experiment
from clrbench.config.resolve import EXPERIMENT_OPTIONS, resolve_experiments
from clrbench.errors import ConfigError, ScheduleError
from clrbench.reporting import render as report
from clrbench.schedules import (
    ROLES,
    Length,
    Rate,
    Warmup,
    declare,
    make,
    names,
    register,
    roles,
    shape_notes,
    tie_to_run,
    unregister,
)
from clrbench.schedules import scale_rates as scale_schedule_rates
from clrbench.study.space import parse_family, scale_rates
from clrbench.suite.runner import write_experiment

RUN_STEPS = 25 * 469


@pytest.mark.parametrize("name", names())
def test_every_registered_schedule_declares_a_role_for_each_parameter(name):
    declared = roles(name)
    assert list(declared) == [p for p, _, _ in _describe(name)]
    assert set(declared.values()) <= set(ROLES)


def _describe(name):
    from clrbench.schedules import describe

    return next(params for n, params, _ in describe() if n == name)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_scaling_the_rates_scales_every_rate_of_the_run(name):
    """Every built-in is linear in its rates: doubling all parameters of role ``rate`` (nested
    ones too) doubles the rate at every step; a rate left undeclared, or a length declared a
    rate, breaks this."""
    steps = np.arange(RUN_STEPS)
    for params in EXAMPLES[name]:
        base = make(name, **params)(steps)
        doubled = make(name, **scale_schedule_rates(name, params, 2.0))(steps)
        np.testing.assert_allclose(doubled, 2.0 * base, rtol=1e-12, atol=0)


def test_scale_rates_reaches_rates_nested_in_compositions_in_every_form():
    cosine = {"name": "sgdr", "max_lr": 0.2, "min_lr": 0.002, "first_period": 4000}
    entry = {"schedule": cosine, "steps": 500, "start_lr": 0.01}
    scaled = scale_rates("warmup", entry, 4.0)
    assert scaled == {
        "schedule": {"name": "sgdr", "max_lr": 0.8, "min_lr": 0.008, "first_period": 4000},
        "steps": 500,
        "start_lr": 0.04,
    }
    built = make("warmup", **entry)  # nested as a Schedule, and as its config
    again = scale_schedule_rates("warmup", built.params, 4.0)
    assert again["schedule"].params["max_lr"] == pytest.approx(0.8)
    config = built.to_config()["params"]
    assert scale_schedule_rates("warmup", config, 4.0)["schedule"]["params"]["min_lr"] == 0.008
    joined = {"schedules": [cosine, {"name": "constant", "lr": 0.1}], "boundaries": [3000]}
    assert [
        s.get("lr", s.get("max_lr")) for s in scale_rates("join", joined, 0.5)["schedules"]
    ] == [
        0.1,
        0.05,
    ]


@pytest.fixture
def plugin():
    """A user's schedule whose rate is named unusually: only its declared role says it is one."""

    @declare(roles={"floor": "rate"})
    def ramp_hold(step, xp, peak: Rate, ramp: Warmup, hold: Length, floor: float = 1e-3):
        real = xp.asarray(step, dtype=xp.float64)
        rising = floor + (peak - floor) * real / ramp
        return xp.where(step < ramp, rising, xp.where(step < hold, peak, floor))

    register("ramp_hold", ramp_hold)
    yield "ramp_hold"
    unregister("ramp_hold")


def test_a_plugin_declares_roles_by_annotation_and_by_name(plugin):
    assert roles(plugin) == {"peak": "rate", "ramp": "warmup", "hold": "length", "floor": "rate"}


def test_the_study_scales_and_tunes_a_plugins_rates(plugin):
    family = parse_family(
        {
            "label": "mine",
            "name": plugin,
            "space": {"peak": {"log": [0.5, 2.0]}, "ramp": 100, "hold": 3000, "floor": 1},
        },
        0,
    )
    params = family.resolve([0.5], steps_per_epoch=469, total_steps=RUN_STEPS)
    # a rate stays a float even where it is a whole number; a length is an integer
    assert params == {"peak": 1.0, "ramp": 100, "hold": 3000, "floor": 1.0}
    assert isinstance(params["floor"], float) and isinstance(params["hold"], int)
    octave = scale_rates(plugin, params, 2.0**-2)  # the sensitivity phase's 2^k multiplier
    assert octave == {"peak": 0.25, "ramp": 100, "hold": 3000, "floor": 0.25}


def test_a_space_that_gives_a_rate_in_epochs_is_one_error(plugin):
    """``unit = "epochs"`` multiplies by the steps per epoch: right for the plug-in's warm-up
    (role ``warmup``), a silent x469 for its rate."""
    space = {"peak": {"log": [0.1, 1.0]}, "hold": 3000, "floor": 0.01}
    family = parse_family({"label": "ok", "name": plugin, "space": space | {"ramp": {
        "int": [1, 3], "unit": "epochs"}}}, 0)  # fmt: skip
    assert family.resolve([0.0, 0.0], 469, RUN_STEPS)["ramp"] == 469
    with pytest.raises(ConfigError, match="floor is a rate parameter of ramp_hold"):
        parse_family(
            {"label": "bad", "name": plugin, "space": space | {"ramp": 10} | {
                "floor": {"log": [0.1, 1.0], "unit": "epochs"}}}, 0,
        )  # fmt: skip


def test_an_old_plugin_without_roles_still_builds_and_is_never_scaled():
    def flat(step, xp, level: float, every: int):
        return level + 0.0 * xp.asarray(step, dtype=xp.float64)

    register("flat_old", flat)
    try:
        assert roles("flat_old") == {"level": "shape", "every": "shape"}
        assert scale_schedule_rates("flat_old", {"level": 0.1, "every": 3}, 2.0) == {
            "level": 0.1,
            "every": 3,
        }
    finally:
        unregister("flat_old")


@pytest.mark.parametrize(
    ("roles_given", "named"),
    [({"nope": "rate"}, "roles names 'nope', not a parameter"), ({"level": "speed"}, "role")],
)
def test_a_bad_role_declaration_is_one_line(roles_given, named):
    def flat(step, xp, level: float):
        return level + 0.0 * xp.asarray(step, dtype=xp.float64)

    with pytest.raises(ScheduleError) as caught:
        register("flat_bad", flat, roles=roles_given)
    assert named in str(caught.value) and "\n" not in str(caught.value)


# --- lengths tied to the run ---


def _resolved(argv):
    args = build_parser().parse_args(["run", *argv])
    options = {k: v for k, v in options_of(args).items() if k in EXPERIMENT_OPTIONS}
    (experiment,) = resolve_experiments(args.config, **options)
    return experiment, {r.label: r.schedule.params for r in experiment.runs()}


def test_shrinking_a_preset_resizes_the_lengths_tied_to_the_run():
    """The issue's case: one-cycle trained 48 of its 11,725 steps."""
    experiment, params = _resolved(
        ["--preset", "extended", "--epochs", "2", "--train-size", "3000"]
    )
    assert experiment.total_steps == 2 * 24 == 48
    assert params["one-cycle"]["total_steps"] == 48
    cosine = params["warmup-cosine"]
    assert cosine["steps"] + cosine["schedule"].params["first_period"] == 48
    assert cosine["steps"] == round(48 * 2 / 25)  # two epochs' share of the 25-epoch preset
    assert not any("one-cycle" in n for n in experiment.notes)


def test_the_full_preset_resolves_to_the_integers_it_always_had():
    _, params = _resolved(["--preset", "extended"])
    assert params["one-cycle"]["total_steps"] == RUN_STEPS
    cosine = params["warmup-cosine"]
    assert (cosine["steps"], cosine["schedule"].params["first_period"]) == (938, RUN_STEPS - 938)
    assert params["warmup-clr"]["steps"] == 469


def test_a_length_written_as_a_number_stays_as_written():
    raw = {
        "experiment": {"epochs": 3, "train_size": 5120},  # 40 steps per epoch
        "schedule": [
            {"label": "fixed", "name": "one_cycle", "max_lr": 0.2, "total_steps": 200},
            {"label": "half", "name": "one_cycle", "max_lr": 0.2, "total_steps": "run * 0.5"},
        ],
    }
    experiment = Experiment.from_dict(raw)
    params = {r.label: r.schedule.params for r in experiment.runs()}
    assert (params["fixed"]["total_steps"], params["half"]["total_steps"]) == (200, 60)
    assert experiment.to_dict()["schedule"][1]["total_steps"] == "run * 0.5"  # kept tied


@pytest.mark.parametrize(
    ("value", "named"),
    [("runs", "'run' or 'run * F'"), ("run * 0", "must be > 0"), ("run * x", "'run * F'")],
)
def test_a_bad_run_tied_length_is_one_config_error(value, named):
    raw = {"schedule": [{"label": "oc", "name": "one_cycle", "max_lr": 0.2, "total_steps": value}]}
    with pytest.raises(ConfigError) as caught:
        Experiment.from_dict(raw)
    assert named in str(caught.value) and str(caught.value).startswith("schedule 'oc'")


def test_make_says_a_run_tied_length_needs_a_run():
    with pytest.raises(ScheduleError, match="tied to the run"):
        make("one_cycle", max_lr=0.1, total_steps="run")
    assert tie_to_run("one_cycle", {"max_lr": 0.1, "total_steps": "run"}, 188) == {
        "max_lr": 0.1,
        "total_steps": 188,
    }


def test_a_warmup_leaves_its_schedule_the_rest_of_the_run():
    params = {"steps": "run * 0.25", "schedule": {"name": "one_cycle", "max_lr": 0.1,
                                                  "total_steps": "run"}}  # fmt: skip
    tied = tie_to_run("warmup", params, 400)
    assert (tied["steps"], tied["schedule"]["total_steps"]) == (100, 300)


# --- how a shape fits the run ---


@pytest.mark.parametrize(
    ("schedule", "kinds"),
    [
        (make("one_cycle", max_lr=0.1, total_steps=500), ["incomplete"]),
        (make("one_cycle", max_lr=0.1, total_steps=100), ["held"]),
        (make("one_cycle", max_lr=0.1, total_steps=188), []),
        (make("triangular", base_lr=0.01, max_lr=0.1, step_size=47), []),  # 2 whole cycles
        (make("triangular", base_lr=0.01, max_lr=0.1, step_size=50), ["mid_cycle"]),
        (make("triangular", base_lr=0.01, max_lr=0.1, step_size=100), ["incomplete"]),
        (make("sgdr", max_lr=0.1, min_lr=0.0, first_period=50, t_mult=2), []),  # growing
        # a warm-up or cooldown the run cannot hold: an experiment refuses it (issue 33)
        (make("warmup", steps=188, schedule={"name": "constant", "lr": 0.1}), ["overlong"]),
        (
            make("wsd", peak_lr=0.1, warmup_steps=10, decay_steps=189, total_steps=200),
            ["overlong", "incomplete"],
        ),
        (make("wsd", peak_lr=0.1, warmup_steps=10, decay_steps=178, total_steps=188), []),
        # a step decay that never drops in the run (issue 33's shrunk Fashion-MNIST run)
        (make("step_decay", initial_lr=0.1, drop=0.5, every_steps=188), ["incomplete"]),
        (make("step_decay", initial_lr=0.1, drop=0.5, every_steps=187), []),
        # the nested cycle runs 188 - 88 = 100 steps: exactly one cycle of 2 x 50
        (
            make(
                "warmup",
                steps=88,
                schedule=dict(name="triangular", base_lr=0.01, max_lr=0.1, step_size=50),
            ),
            [],
        ),  # fmt: skip
    ],
)
def test_shape_notes_say_when_the_run_ends_before_the_shape(schedule, kinds):
    assert [n.kind for n in shape_notes(schedule, 188)] == kinds


def test_the_report_marks_a_schedule_the_run_ends_before_completing(tmp_path):
    """One-cycle set for 500 steps in a 20-step run: a dagger in the tables and a footnote
    saying why, not only a note on stderr (issue: it was ranked last with no word)."""
    synthetic = load_synthetic()
    raw = {
        "experiment": {"name": "short", "epochs": 2, "seeds": 2, "train_size": 1280},
        "schedule": [
            {"label": "constant", "name": "constant", "lr": 0.01},
            {"label": "one-cycle", "name": "one_cycle", "max_lr": 0.1, "total_steps": 500},
        ],
    }
    experiment = Experiment.from_dict(raw)
    write_experiment(experiment.plan(), tmp_path)
    for spec in experiment.runs():
        synthetic._write_one(tmp_path, spec, experiment.steps_per_epoch, "ok")
    markdown = report.render(load_results(tmp_path), tmp_path / "report")["md"].read_text()
    lines = markdown.splitlines()
    # summary, comparison, time to target, settings: marked in each; the runs table lists ids
    assert sum(line.startswith("| one-cycle † |") for line in lines) == 4
    assert not any(line.startswith(("| one-cycle |", "| constant †")) for line in lines)
    assert (
        "† The run ends before this schedule's shape does: one-cycle: total_steps = 500 but the "
        "run has 20 steps; training stops 480 steps before the schedule ends."
    ) in markdown
