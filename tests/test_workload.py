"""The workload: validated once where it is made, held (not copied) by every command's config."""

from __future__ import annotations

import dataclasses

import pytest

from clrbench.config.experiment import Experiment
from clrbench.config.presets import PRESETS
from clrbench.config.sweep import SweepSettings
from clrbench.config.workload import DEFAULT_MODEL, MODELS, Workload
from clrbench.errors import ConfigError
from clrbench.study.config import StudyConfig
from clrbench.study.presets import preset
from clrbench.study.protocol import final_experiment, plan_trials, trials_experiment

BAD = [
    ({"epochs": 0}, "epochs must be a positive integer, got 0"),
    ({"dataset": "cifar"}, "unknown dataset 'cifar'"),
    ({"model": "resnet"}, "unknown model 'resnet'; choose dense-512"),
    ({"train_size": 70_000}, "train_size must be in 10..60000, got 70000"),
    ({"optimizer": "lion"}, "lion"),
    ({"trainer": "jax"}, "trainer must be one of"),
    ({"evaluate_on": "validation"}, "evaluate_on = 'validation' needs a validation_size"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_each_holder_refuses_a_bad_workload_with_the_workloads_own_line(change, message):
    raw = PRESETS["quick"]
    with pytest.raises(ConfigError, match=message):
        Experiment.from_dict(raw | {"experiment": raw["experiment"] | change})
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(Experiment.from_dict(raw)).with_workload(**change)
    with pytest.raises(ConfigError, match=message):
        SweepSettings(workload=Workload(**change))


def test_a_study_validates_its_workload_from_the_toml_and_keeps_its_split():
    raw = preset("quick")
    with pytest.raises(ConfigError, match="epochs must be a positive integer"):
        StudyConfig.from_dict(raw | {"experiment": raw["experiment"] | {"epochs": 0}})
    config = StudyConfig.from_dict(raw)
    assert config.workload.validation_size == 10_000  # the study's default split
    again = StudyConfig.from_dict(config.to_dict())
    assert again == config and again.workload == config.workload


def test_every_phase_of_a_study_and_its_sweep_train_the_studys_workload():
    config = StudyConfig.from_dict(preset("quick"))
    trials = trials_experiment(config, plan_trials(config))
    final = final_experiment(config, {}, {"base_lr": 0.04, "max_lr": 0.17})
    assert trials.workload == dataclasses.replace(config.workload, evaluate_on="validation")
    assert final.workload == config.workload  # evaluated on test
    assert all(spec.workload is final.workload for spec in final.runs())  # held, not copied
    sweep = SweepSettings(steps=config.lr_find_steps, workload=config.workload)
    assert sweep.to_dict()["validation_size"] == 10_000 and "model" not in sweep.to_dict()


def test_the_model_is_a_named_module_and_only_a_new_model_changes_run_ids(monkeypatch):
    from clrbench.train import models

    task = models.resolve(Workload())
    for name in ("preprocess", "build_layers", "loss_object", "per_example_loss"):
        assert callable(getattr(task, name))
    experiment = Experiment.from_dict(PRESETS["quick"])
    assert "model" not in experiment.runs()[0].config()  # default model: ids as before
    monkeypatch.setitem(MODELS, "dense-512-copy", MODELS[DEFAULT_MODEL])
    other = experiment.with_workload(model="dense-512-copy")
    assert other.runs()[0].config()["model"] == "dense-512-copy"
    assert {s.run_id for s in other.runs()}.isdisjoint(s.run_id for s in experiment.runs())
    assert other.to_dict()["experiment"]["model"] == "dense-512-copy"
    assert Experiment.from_dict(other.to_dict()) == other  # the TOML round trip keeps it
