"""Optimizers in experiments: names, an entry's own optimizer and weight decay, run ids, refusals
(fast tier: nothing trains; the CLI refuses before any run starts)."""

from __future__ import annotations

import pytest

from clrbench.cli.main import main
from clrbench.config import optimizers
from clrbench.config.experiment import Experiment
from clrbench.config.presets import PRESETS
from clrbench.config.runs import RunSpec
from clrbench.config.workload import Workload
from clrbench.errors import ConfigError
from clrbench.schedules import make

CONSTANT = {"label": "c", "name": "constant", "lr": 0.001}


def _experiment(*entries: dict, **settings) -> Experiment:
    experiment = {"workload": "mnist1d-mlp", "epochs": 3, "seeds": 1} | settings
    return Experiment.from_dict({"experiment": experiment, "schedule": list(entries)})


def test_run_ids_of_entries_without_an_optimizer_are_unchanged() -> None:
    """Ids computed on main (89ddee1) before entries could name an optimizer."""
    quick = Experiment.from_dict(PRESETS["quick"]).runs()
    assert [quick[0].run_id, quick[3].run_id] == ["constant-s0-edc95b4f", "step-decay-s0-5b6608cb"]
    (adam,) = _experiment(CONSTANT, optimizer="adam").runs()
    assert adam.run_id == "c-s0-14d03de5"
    # naming the experiment's own optimizer is the same run
    (same,) = _experiment(CONSTANT | {"optimizer": "adam"}, optimizer="adam").runs()
    assert same.run_id == adam.run_id


def test_entries_name_their_own_optimizer_and_weight_decay() -> None:
    experiment = _experiment(
        {"label": "sgdm", "name": "constant", "lr": 0.1},
        CONSTANT | {"label": "adamw", "optimizer": "adamw"},
        CONSTANT | {"label": "adamw-wd", "optimizer": "adamw", "weight_decay": 0.01},
        CONSTANT | {"label": "nadamw", "optimizer": "nadamw", "weight_decay": 0.3},
        CONSTANT
        | {"label": "sf", "optimizer": "schedulefree-adamw"}
        | {"optimizer_warmup_steps": "run * 0.1"},
    )
    runs = {spec.label: spec for spec in experiment.runs()}
    assert runs["sgdm"].workload.optimizer == "sgd-momentum"
    assert "weight_decay" not in runs["sgdm"].config()
    assert runs["adamw"].config()["weight_decay"] == 0.01  # the default, hashed
    # the default written out is the same run (the label aside)
    assert {k: v for k, v in runs["adamw"].config().items() if k != "label"} == {
        k: v for k, v in runs["adamw-wd"].config().items() if k != "label"
    }
    assert runs["nadamw"].workload.decay == 0.3
    assert runs["sf"].config()["optimizer_warmup_steps"] == 10  # 10% of 3 x 32 steps
    assert runs["sf"].config()["weight_decay"] == 0.0
    again = Experiment.from_dict(experiment.to_dict())
    assert [s.run_id for s in again.runs()] == [s.run_id for s in experiment.runs()]


def test_an_entry_switching_optimizer_drops_settings_the_new_one_does_not_take() -> None:
    experiment = _experiment(
        CONSTANT,
        {"label": "sgdm", "name": "constant", "lr": 0.1, "optimizer": "sgd-momentum"},
        optimizer="adamw",
        weight_decay=0.2,
    )
    runs = {spec.label: spec for spec in experiment.runs()}
    assert runs["c"].workload.decay == 0.2
    assert runs["sgdm"].workload.weight_decay is None


def test_weight_decay_is_a_declared_log_uniform_parameter() -> None:
    assert optimizers.DECAY_ROLE == "weight_decay"
    for name in ("adamw", "nadamw", "schedulefree-adamw"):
        assert optimizers.weight_decay_range(name) == (5e-3, 1.0)
    assert optimizers.weight_decay_range("schedulefree-sgd") == (1e-5, 1e-2)
    for name in optimizers.CLASSIC:
        assert optimizers.weight_decay_range(name) is None


@pytest.mark.parametrize(
    ("entry", "settings", "message"),
    [
        (CONSTANT | {"weight_decay": -0.1, "optimizer": "adamw"}, {}, "weight_decay must be"),
        (CONSTANT | {"weight_decay": 0.1}, {}, "takes no weight_decay"),
        (CONSTANT | {"optimizer": "adamww"}, {}, "did you mean 'adamw'"),
        (CONSTANT | {"optimizer": 3}, {}, "optimizer must be"),
        (CONSTANT | {"optimizer_warmup_steps": 5, "optimizer": "adamw"}, {}, "has none"),
        (
            CONSTANT | {"optimizer_warmup_steps": "run * 0"},
            {"optimizer": "schedulefree-sgd"},
            "fraction",
        ),
        (
            {"label": "t", "name": "triangular", "base_lr": 0.1, "max_lr": 1, "step_size": 9},
            {"optimizer": "schedulefree-sgd"},
            "schedule-free",
        ),
        (CONSTANT | {"lr_mode": "callback"}, {"optimizer": "schedulefree-adamw"}, "lr_mode"),
    ],
)
def test_bad_optimizer_settings_are_one_config_error(entry, settings, message) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        _experiment(entry, **settings)
    assert "\n" not in str(caught.value)


def test_new_optimizers_never_join_a_stack() -> None:
    with pytest.raises(ConfigError, match="cannot be stacked"):
        Workload(optimizer="nadamw", trainer="stacked")
    with pytest.raises(ConfigError, match="lean loop"):
        Workload(optimizer="schedulefree-sgd", trainer="fit")
    schedule = make("constant", lr=0.01)
    assert not RunSpec("a", schedule, 0, Workload(optimizer="adamw")).stackable
    assert RunSpec("a", schedule, 0, Workload(optimizer="adam")).stackable
    experiment = _experiment(
        CONSTANT | {"optimizer": "adamw"}, {"label": "s", "name": "constant", "lr": 0.1}
    )
    stacked = {spec.label: spec for spec in experiment.plan(stack=True).runs}
    separate = {spec.label: spec for spec in experiment.plan(stack=False).runs}
    # the adamw run trains as a separate run under --stack, under its own id
    assert stacked["c"].run_id == separate["c"].run_id
    assert stacked["c"].trainer == "loop"


CONFIG = """
[experiment]
name = "bad"
workload = "mnist1d-mlp"
epochs = 2
seeds = 1

[[schedule]]
label = "x"
{body}
"""


@pytest.mark.parametrize(
    ("body", "flags", "message"),
    [
        (
            'name = "constant"\nlr = 0.01\noptimizer = "adamw"\nweight_decay = -1.0',
            [],
            "weight_decay",
        ),
        (
            'name = "triangular"\nbase_lr = 0.01\nmax_lr = 0.1\nstep_size = 10\n'
            'optimizer = "schedulefree-adamw"',
            [],
            "schedule-free",
        ),
        ('name = "constant"\nlr = 0.01\noptimizer = "nadamv"', [], "unknown optimizer 'nadamv'"),
        ('name = "constant"\nlr = 0.01', ["--optimizer", "sgd-momentun"], "sgd-momentum"),
        (
            'name = "step_decay"\ninitial_lr = 0.1\ndrop = 0.5\nevery_steps = 10',
            ["--optimizer", "schedulefree-sgd"],
            "schedule-free",
        ),
    ],
)
def test_the_cli_refuses_bad_optimizer_input_in_one_line_before_writing(
    body, flags, message, tmp_path, capsys
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(CONFIG.format(body=body))
    out = tmp_path / "out"
    assert main(["run", "--config", str(config), "--out", str(out), *flags]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists()


def test_a_schedule_free_model_with_batch_normalization_is_refused() -> None:
    import keras

    from clrbench.train.run import check_no_batch_norm

    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()]
    )
    with pytest.raises(ConfigError, match="batch normalization") as caught:
        check_no_batch_norm(model, "schedulefree-adamw")
    assert "\n" not in str(caught.value)
    check_no_batch_norm(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), "x")


STUDY = {
    "experiment": {"workload": "mnist1d-mlp", "epochs": 3},
    "study": {"budget": 4, "validation_size": 500},
    "family": [
        {"label": "constant", "name": "constant", "space": {"lr": {"log": [0.01, 0.3]}}},
        {
            "label": "adamw",
            "name": "constant",
            "optimizer": "adamw",
            "space": {"lr": {"log": [1e-4, 1e-2]}, "weight_decay": {"log": [5e-3, 1.0]}},
        },
    ],
}


def test_a_study_tunes_an_optimizer_family_s_weight_decay() -> None:
    from clrbench.study.config import StudyConfig
    from clrbench.study.protocol import plan_trials, trials_experiment
    from clrbench.study.space import decay_knob

    assert decay_knob("nadamw").to_toml() == {"log": [5e-3, 1.0]}
    assert decay_knob("sgd") is None
    config = StudyConfig.from_dict(STUDY)
    assert StudyConfig.from_dict(config.to_dict()).families == config.families
    runs = trials_experiment(config, plan_trials(config)).runs()
    adamw = [spec for spec in runs if spec.label.startswith("adamw")]
    decays = [spec.workload.decay for spec in adamw]
    assert len(set(decays)) == 4 and all(5e-3 <= d <= 1.0 for d in decays)
    assert {spec.workload.optimizer for spec in adamw} == {"adamw"}
    assert all("weight_decay" not in dict(spec.schedule.params) for spec in adamw)
    others = [spec for spec in runs if spec.label.startswith("constant")]
    assert {spec.workload.optimizer for spec in others} == {"sgd-momentum"}
    from clrbench.study.tables import _own_optimizers

    assert _own_optimizers(config) == " (adamw: adamw)"  # the protocol table says so


def test_a_study_refuses_weight_decay_for_an_optimizer_without_it() -> None:
    from clrbench.study.config import StudyConfig

    bad = dict(STUDY, family=[dict(STUDY["family"][1], optimizer="sgd-momentum")])
    with pytest.raises(ConfigError, match="takes no weight_decay"):
        StudyConfig.from_dict(bad)


def test_preset_entries_train_each_optimizer_at_its_checked_rate() -> None:
    entries = [
        optimizers.optimizer_entry("mnist1d-mlp", name)
        for name in ("adamw", "nadamw", "schedulefree-adamw", "schedulefree-sgd")
    ]
    runs = {spec.label: spec for spec in _experiment(*entries, epochs=100).runs()}
    assert runs["adamw"].schedule.params["lr"] == 0.01
    assert runs["schedulefree-sgd"].workload.optimizer_warmup_steps == 160  # 5% of 3,200
    assert "optimizer_warmup_steps" not in entries[0]
    assert optimizers.preset_rate("mnist1d-mlp", "adam") is None
    with pytest.raises(ConfigError, match="no preset rate"):
        optimizers.optimizer_entry("mnist1d-mlp", "rmsprop")


def test_preset_rates_exist_for_every_checked_workload_and_new_optimizer() -> None:
    from clrbench.config.workloads import BUILT_IN

    for workload, rates in optimizers.PRESET_RATES.items():
        assert workload in BUILT_IN
        assert set(rates) == {"adamw", "nadamw", "schedulefree-adamw", "schedulefree-sgd"}
        assert all(rate > 0 for rate in rates.values())
