"""Workloads by name: each built-in's data, model and defaults, its presets sized to its own
run (lengths checked in integer arithmetic), the ``workload`` TOML key, and where results go."""

from __future__ import annotations

import re

import numpy as np
import pytest

from clrbench.config.experiment import Experiment
from clrbench.config.presets import PRESETS, preset
from clrbench.config.resolve import output_folders, workload_names
from clrbench.config.workloads import BUILT_IN, at_defaults, name_of, named, named_of
from clrbench.errors import ConfigError
from clrbench.study.config import StudyConfig
from clrbench.study.presets import preset as study_preset


def test_mnist_mlp_is_the_default_workload_unchanged():
    assert named_of(Experiment.from_dict(PRESETS["default"]).workload) == BUILT_IN["mnist-mlp"]
    for name in PRESETS:  # the mnist-mlp presets are today's, so every run id is today's
        assert preset(name, BUILT_IN["mnist-mlp"], 60_000) is PRESETS[name]
    workload = named("mnist-mlp").workload()
    assert workload == Experiment.from_dict(PRESETS["default"]).workload
    assert "model" not in workload.config()  # the default model adds no key to the run id


def schedules(experiment: Experiment) -> dict[str, dict]:
    """Each schedule's parameters as its runs train them (lengths tied to the run resolved)."""
    first = experiment.seeds[0]
    return {s.label: s.schedule.params for s in experiment.runs() if s.seed == first}


def test_the_fashion_preset_is_mnists_shape_at_its_own_rates():
    fashion = named("fashion-mnist-mlp")
    experiment = Experiment.from_dict(preset("default", fashion, 60_000))
    assert (experiment.workload.dataset, experiment.workload.model) == (
        "fashion_mnist",
        "dense-512",
    )
    assert experiment.total_steps == 25 * 469
    params = schedules(experiment)
    assert params["constant"] == {"lr": fashion.constant_lr}
    assert params["clr-iter"]["step_size"] == 1172  # 5 epochs of 469 steps, halved (rounded)
    assert (params["clr-iter"]["base_lr"], params["clr-iter"]["max_lr"]) == (
        fashion.base_lr,
        fashion.max_lr,
    )
    assert params["step-decay"] == {"initial_lr": fashion.max_lr, "drop": 0.5, "every_steps": 2345}


def test_the_mnist1d_preset_has_mnists_five_cycles_in_its_own_run():
    mnist1d = named("mnist1d-mlp")
    experiment = Experiment.from_dict(preset("default", mnist1d, 4000))
    steps = -(-4000 // 128)  # 32 steps per epoch, the last batch of 32
    assert experiment.steps_per_epoch == steps and experiment.total_steps == 100 * steps
    params = schedules(experiment)
    cycle = 100 // 5  # epochs per cycle: a fifth of the run, as MNIST's 5 of 25
    assert params["clr-iter"]["step_size"] == cycle * steps // 2 == 320
    assert params["step-decay"]["every_steps"] == cycle * steps == 640
    assert experiment.total_steps // (2 * params["clr-iter"]["step_size"]) == 5  # whole cycles
    assert not experiment.notes  # every shape fits the run
    quick = Experiment.from_dict(preset("quick", mnist1d, 4000))
    assert quick.workload.epochs == 16 and quick.workload.train_size is None  # all 4,000
    assert len(quick.seeds) == 3


def test_a_study_on_a_small_workload_holds_out_a_sixth():
    config = StudyConfig.from_dict(study_preset("quick", None, named("mnist1d-mlp"), 4000))
    assert config.workload.validation_size == round(4000 / 6) == 667
    assert (config.workload.dataset, config.workload.model) == ("mnist1d", "mlp-100-100")
    assert config.workload.epochs == 12  # 3/25 of its 100, as quick's 3 of MNIST's 25
    reference = StudyConfig.from_dict(study_preset("reference", None, named("fashion-mnist-mlp")))
    assert reference.workload.validation_size == 10_000 and reference.workload.epochs == 25


def test_the_workload_key_gives_the_data_model_and_length():
    raw = {
        "experiment": {"workload": "mnist1d-mlp", "seeds": 1},
        "schedule": [{"name": "constant", "lr": 0.1}],
    }
    experiment = Experiment.from_dict(raw)
    assert experiment.workload == named("mnist1d-mlp").workload()
    raw["experiment"]["epochs"] = 7  # the file's own settings win over the workload's
    assert Experiment.from_dict(raw).workload.epochs == 7
    # the stored experiment.toml keeps the plain keys and reads back to the same workload
    assert Experiment.from_dict(Experiment.from_dict(raw).to_dict()) == Experiment.from_dict(raw)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"workload": "mnist1d-mpl"},
            "unknown workload 'mnist1d-mpl' (did you mean 'mnist1d-mlp'?)",
        ),
        ({"workload": "mnist1d-mlp", "dataset": "mnist"}, "trains dataset 'mnist1d'; drop dataset"),
        ({"workload": 3}, "workload must be a non-empty string"),
    ],
)
def test_a_wrong_workload_key_is_one_line(settings, message):
    raw = {"experiment": settings, "schedule": [{"name": "constant", "lr": 0.1}]}
    with pytest.raises(ConfigError, match=re.escape(message)):
        Experiment.from_dict(raw)


def test_names_and_the_defaults_a_target_belongs_to():
    assert name_of(named("fashion-mnist-mlp").workload()) == "fashion-mnist-mlp"
    other = named("mnist-mlp").workload(dataset="mnist1d")  # the dense-512 model on MNIST-1D
    assert named_of(other) is None and name_of(other) == "mnist1d/dense-512"
    assert at_defaults(named("mnist1d-mlp").workload())
    assert not at_defaults(named("mnist1d-mlp").workload(epochs=16))
    assert not at_defaults(named("mnist-mlp").workload(train_size=6000))


def folders(out, experiments):
    return output_folders(out, experiments[0].name, [name_of(e.workload) for e in experiments])


def test_one_folder_per_workload_and_one_holding_several(tmp_path):
    assert workload_names(None) == [None]
    assert workload_names("mnist1d-mlp, mnist-mlp,mnist1d-mlp") == [
        "mnist1d-mlp",
        "mnist-mlp",
    ]
    default = Experiment.from_dict(PRESETS["default"])
    mnist1d = Experiment.from_dict(preset("default", named("mnist1d-mlp"), 4000))
    outs, base = folders(None, [default])
    assert outs == [base] and str(base) == "results/default"  # as it always was
    outs, base = folders(None, [mnist1d])
    assert str(base) == "results/default-mnist1d-mlp" and outs == [base]
    outs, base = folders(str(tmp_path), [default, mnist1d])
    assert base == tmp_path and outs == [tmp_path / "mnist-mlp", tmp_path / "mnist1d-mlp"]
    outs, base = folders(None, [default, mnist1d])
    assert str(base) == "results/default-workloads"


def test_mnist1d_is_generated_offline_and_verified():
    from mnist1d.data import get_dataset_args, make_dataset

    from clrbench.data.load import load_dataset

    before = np.random.get_state()[1].copy()  # noqa: NPY002 (the generator's global state)
    data = load_dataset("mnist1d")
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002 (put back)
    assert data.x_train.shape == (4000, 40) and data.x_test.shape == (1000, 40)
    assert data.source == "generated by mnist1d"
    # the package's own generator, called directly, gives the same values
    direct = make_dataset(get_dataset_args())
    np.testing.assert_array_equal(data.x_train, direct["x"].astype(np.float32))
    np.testing.assert_array_equal(data.y_test, direct["y_test"])
    assert sorted(np.unique(data.y_train)) == list(range(10))


def test_a_generated_set_that_changed_is_an_error(monkeypatch):
    from dataclasses import replace

    from clrbench.data import load, registry
    from clrbench.errors import DataError

    spec = registry.DATASETS["mnist1d"]
    wrong = dict(spec.array_sha256) | {"y_test": "0" * 64}
    monkeypatch.setitem(registry.DATASETS, "mnist1d", replace(spec, array_sha256=wrong))
    load._generated.cache_clear()
    try:
        with pytest.raises(DataError, match="the generated y_test has SHA-256 9486539f"):
            load.load_dataset("mnist1d")
    finally:
        load._generated.cache_clear()
