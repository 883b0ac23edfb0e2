"""Experiments: presets, TOML, overrides, validation before training, run ids."""

from __future__ import annotations

import tomllib

import pytest
import tomli_w

from clrbench.cli.main import main
from clrbench.config.experiment import Experiment
from clrbench.config.presets import PRESETS
from clrbench.errors import ConfigError


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_valid_and_round_trips(name):
    experiment = Experiment.from_dict(PRESETS[name])
    again = Experiment.from_dict(tomllib.loads(tomli_w.dumps(experiment.to_dict())))
    assert again == experiment
    assert [s.run_id for s in again.runs()] == [s.run_id for s in experiment.runs()]


def test_default_preset_is_the_documented_comparison():
    experiment = Experiment.from_dict(PRESETS["default"])
    assert [e.label for e in experiment.schedules] == [
        "constant", "step-decay", "clr-epoch", "clr-iter", "sine-exp",
    ]  # fmt: skip
    assert (experiment.workload.epochs, experiment.workload.batch_size, experiment.seeds) == (
        25,
        128,
        (0, 1, 2, 3, 4),
    )
    assert (experiment.steps_per_epoch, experiment.total_steps) == (469, 11_725)
    by_label = {spec.label: spec.schedule for spec in experiment.runs()}
    assert by_label["clr-epoch"].params == by_label["clr-iter"].params  # the same cycle
    assert by_label["clr-epoch"].granularity == "epoch"
    assert by_label["clr-iter"].granularity == "iteration"
    # 11,725 is odd: no integer step size ends exactly on a cycle; the output says so
    assert any(
        "clr-iter" in note and "not at a cycle boundary" in note for note in experiment.notes
    )


def test_extended_adds_the_other_schedules():
    labels = [e.label for e in Experiment.from_dict(PRESETS["extended"]).schedules]
    assert labels[5:] == [
        "triangular2", "exp-range", "one-cycle", "sgdr", "exp-decay", "warmup-cosine", "warmup-clr",
    ]  # fmt: skip


def test_run_ids_are_readable_and_change_with_the_configuration():
    experiment = Experiment.from_dict(PRESETS["quick"])
    ids = [s.run_id for s in experiment.runs()]
    assert len(set(ids)) == len(ids) == 15
    assert ids[0].startswith("constant-s0-")
    changed = PRESETS["quick"] | {"schedule": [{**PRESETS["quick"]["schedule"][0], "lr": 0.05}]}
    assert Experiment.from_dict(changed).runs()[0].run_id != ids[0]


def test_the_trainer_is_the_lean_loop_unless_fit_is_asked_or_needed():
    raw = {
        "experiment": {"name": "x", "seeds": 1},
        "schedule": [
            {"label": "graph", "name": "constant", "lr": 0.1},
            {"label": "callback", "name": "constant", "lr": 0.1, "lr_mode": "callback"},
        ],
    }
    loop = Experiment.from_dict(raw)
    assert [s.trainer for s in loop.runs()] == ["loop", "fit"]  # the callback needs Keras fit
    assert "trainer" not in loop.to_dict()["experiment"]
    assert "trainer" not in loop.runs()[0].config()  # the default keeps run ids as they were
    fit = Experiment.from_dict({**raw, "experiment": raw["experiment"] | {"trainer": "fit"}})
    assert [s.trainer for s in fit.runs()] == ["fit", "fit"]
    assert fit.to_dict()["experiment"]["trainer"] == "fit"
    assert Experiment.from_dict(fit.to_dict()) == fit  # round trip
    assert fit.runs()[0].run_id != loop.runs()[0].run_id  # another trainer, another run
    assert fit.runs()[1].run_id == loop.runs()[1].run_id  # the callback run was fit already


def test_seed_list_and_count():
    base = {"experiment": {"seeds": [5, 6]}, "schedule": [{"name": "constant", "lr": 0.1}]}
    assert Experiment.from_dict(base).seeds == (5, 6)
    with pytest.raises(ConfigError, match="seeds"):
        Experiment.from_dict({**base, "experiment": {"seeds": [1, 1]}})


def test_select_by_label_or_registry_name():
    experiment = Experiment.from_dict(PRESETS["default"]).select(["clr-iter", "one_cycle"])
    assert [e.label for e in experiment.schedules] == ["clr-iter", "one-cycle"]
    with pytest.raises(ConfigError, match="unknown schedule 'nope'"):
        experiment.select(["nope"])


def test_a_registry_name_means_that_schedule_per_iteration():
    default = Experiment.from_dict(PRESETS["default"])
    chosen = default.select(["triangular"]).schedules
    assert [(e.label, e.granularity) for e in chosen] == [("clr-iter", "iteration")]
    two = {
        "experiment": {"epochs": 2, "train_size": 1000},
        "schedule": [
            {"label": "narrow", "name": "triangular", "base_lr": 0.05, "max_lr": 0.1,
             "step_size": 8},
            {"label": "wide", "name": "triangular", "base_lr": 0.01, "max_lr": 0.3,
             "step_size": 8},
            {"label": "held", "name": "sgdr", "granularity": "epoch", "max_lr": 0.1, "min_lr": 0.0,
             "first_period": 16},
        ],
    }  # fmt: skip
    experiment = Experiment.from_dict(two)
    with pytest.raises(ConfigError, match="'triangular' is ambiguous: .* narrow, wide$"):
        experiment.select(["triangular"])
    assert [e.label for e in experiment.select(["wide"]).schedules] == ["wide"]
    assert experiment.select(["sgdr"]).schedules[0].label == "sgdr"  # the extended preset's


def test_a_registry_name_with_only_per_epoch_entries_lists_their_labels():
    from clrbench.config.experiment import _by_name
    from clrbench.config.runs import ScheduleEntry

    entries = [ScheduleEntry("held", "sgdr", "epoch"), ScheduleEntry("c", "constant")]
    with pytest.raises(ConfigError, match="no per-iteration 'sgdr' .* choose a label: held$"):
        _by_name("sgdr", entries)


@pytest.mark.parametrize(
    ("total_steps", "expected"),
    [
        (72, "one-cycle: total_steps = 72 but the run has 120 steps; the last 48 steps hold the "
             "final rate 8e-07"),
        (200, "one-cycle: total_steps = 200 but the run has 120 steps; training stops 80 steps "
              "before the schedule ends"),
        (120, None),
    ],
)  # fmt: skip
def test_a_schedule_whose_length_differs_from_the_run_gets_a_note(total_steps, expected):
    raw = {
        "experiment": {"epochs": 3, "train_size": 5120},  # 40 steps per epoch
        "schedule": [
            {"label": "one-cycle", "name": "one_cycle", "max_lr": 0.2, "total_steps": total_steps}
        ],
    }
    notes = Experiment.from_dict(raw).notes
    assert list(notes) == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"experiment": {"epochs": 0}}, "epochs must be a positive integer"),
        ({"experiment": {"batch_size": "big"}}, "batch_size"),
        ({"experiment": {"optimizer": "lion"}}, "unknown optimizer 'lion'"),
        ({"experiment": {"dataset": "cifar"}}, "unknown dataset 'cifar'"),
        ({"experiment": {"train_size": 5}}, "train_size"),
        ({"experiment": {"colour": "red"}}, "unknown key"),
        ({"schedule": [{"name": "warp", "lr": 1}]}, "warp"),
        ({"schedule": [{"name": "constant", "lr": -1}]}, "lr"),
        ({"schedule": [{"name": "triangular", "base_lr": 0.1, "max_lr": 0.01, "step_size": 5}]},
         "max_lr"),
        ({"schedule": [{"name": "constant"}]}, "lr"),
        ({"schedule": [{"name": "constant", "lr": 1, "speed": 2}]}, "speed"),
        ({"schedule": [{"name": "constant", "lr": 1}, {"name": "constant", "lr": 2}]},
         "duplicate schedule label"),
        ({"schedule": []}, "no schedules"),
        # wrongly typed values: one line naming the key, never a TypeError
        ({"experiment": {"dataset": ["mnist"]}}, r"\[experiment\] dataset must be a"),
        ({"experiment": {"epochs": "5"}}, "epochs must be a positive integer, got '5'"),
        ({"experiment": {"name": 3}}, r"\[experiment\] name must be a non-empty string"),
        ({"experiment": {"optimizer": 1}}, r"\[experiment\] optimizer must be"),
        ({"experiment": {"seeds": "3"}}, "seeds must be"),
        ({"experiment": {"threads": True}}, "threads must be a positive integer"),
        ({"experiment": 3}, r"\[experiment\] must be a table"),
        ({"schedule": {"name": "constant"}}, "schedule must be a list"),
        ({"schedule": [{"name": "constant", "lr": "0.1"}]}, "lr must be a number, got '0.1'"),
        ({"schedule": [{"name": "constant", "lr": 0.1, "label": 3}]}, "#1 label must be"),
        ({"schedule": [{"name": ["constant"], "lr": 0.1}]}, "#1 name must be"),
        ({"schedule": [{"name": "constant", "lr": 0.1, "lr_mode": []}]}, "#1 lr_mode must be"),
        (
            {"experiment": {"trainer": "keras"}},
            r"trainer must be one of \('loop', 'fit', 'stacked'\)",
        ),
        ({"experiment": {"trainer": 1}}, r"\[experiment\] trainer must be a non-empty string"),
    ],
)  # fmt: skip
def test_invalid_experiments_fail_before_training(change, message):
    raw = {"experiment": {"name": "x"}, "schedule": [{"name": "constant", "lr": 0.1}]}
    raw = {key: change.get(key, value) for key, value in raw.items()}
    with pytest.raises(ConfigError, match=message):
        Experiment.from_dict(raw)


def run_cli(args, capsys):
    code = main(["run", *args])
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(
    "args",
    [
        ["--schedules", "constant,warp"],
        ["--epochs", "0"],
        ["--seeds", "0"],
        ["--jobs", "0"],
        ["--train-size", "3"],
        ["--optimizer", "lion"],
        ["--data-dir", "/nonexistent/mnist"],
    ],
)
def test_run_rejects_bad_input_with_one_line_and_exit_2(args, capsys, tmp_path):
    out = tmp_path / "out"
    code, err = run_cli([*args, "--out", str(out), "--preset", "quick"], capsys)
    assert code == 2
    assert err.startswith("clrbench: error: ") and "\n" not in err
    assert not out.exists()  # nothing written before validation passed


def test_run_rejects_a_corrupt_config_file(tmp_path, capsys):
    bad = tmp_path / "exp.toml"
    bad.write_text("[experiment\nname = 1")
    code, err = run_cli(["--config", str(bad), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and str(bad) in err and "\n" not in err
    code, err = run_cli(["--config", str(tmp_path / "missing.toml")], capsys)
    assert code == 2 and "no such experiment file" in err


def test_run_with_missing_data_is_one_error_line(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = run_cli(
        ["--preset", "quick", "--data-dir", str(empty), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "train-images-idx3-ubyte" in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_list_shows_schedules_and_presets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ["triangular2", "one_cycle", "sgdr", "sine_exp", "default", "extended", "quick"]:
        assert word in out


@pytest.mark.parametrize(
    ("line", "key"),
    [('dataset = ["mnist"]', "dataset"), ('epochs = "5"', "epochs"), ("name = 3", "name")],
)
def test_a_wrongly_typed_toml_value_is_one_line_naming_the_key(tmp_path, capsys, line, key):
    config = tmp_path / "exp.toml"
    config.write_text(f'[experiment]\n{line}\n[[schedule]]\nname = "constant"\nlr = 0.1\n')
    out = tmp_path / "out"
    code, err = run_cli(["--config", str(config), "--out", str(out)], capsys)
    assert code == 2
    assert err.startswith("clrbench: error: ") and "\n" not in err and key in err
    assert not out.exists()
