"""Schedules from outside clrbench: the example package (import path and entry point),
register(), declared parameters and their one-line errors, identity in run ids, bad rates."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from clrbench.cli.main import main
from clrbench.config.experiment import Experiment
from clrbench.errors import ConfigError, ScheduleError
from clrbench.schedules import catalog, check_exact, make, names, register, unregister

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "warm_schedules"
RUN_STEPS = 25 * 469
WARM = dict(peak_lr=0.2, warmup_steps=938, total_steps=RUN_STEPS)


def _warm_cosine_reference(k: int, peak_lr, warmup_steps, total_steps, final_lr=0.0) -> float:
    """The docstring's formula, by scalar Python math."""
    if k < warmup_steps:
        return peak_lr * k / warmup_steps
    t = min(k - warmup_steps, total_steps - warmup_steps) / (total_steps - warmup_steps)
    return final_lr + (peak_lr - final_lr) * (1 + math.cos(math.pi * t)) / 2


@pytest.fixture
def example_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory) -> Path:
    """The example package really installed (pip, into a target folder, with its entry points)."""
    target = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    command += ["--no-build-isolation", "--target", str(target), str(EXAMPLE)]
    subprocess.run(command, check=True, capture_output=True)
    assert list(target.glob("warm_schedules-0.1.0.dist-info/entry_points.txt"))
    return target


def _env(*paths: Path) -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), str(REPO)])
    return env


# --- an importable dotted path ---


def test_dotted_path_schedule_follows_its_formula_and_is_exact(example_on_path):
    schedule = make("warm_schedules:warm_cosine", **WARM)
    steps = [0, 1, 469, 937, 938, 939, 5000, RUN_STEPS - 1, RUN_STEPS + 10]
    expected = [_warm_cosine_reference(k, **WARM) for k in steps]
    np.testing.assert_allclose(schedule(np.array(steps)), expected, rtol=1e-12, atol=1e-15)
    assert schedule.spec.origin == "import path warm_schedules"
    check_exact(schedule, RUN_STEPS)


def test_integer_boundaries_of_the_stepped_cycle_in_the_graph(example_on_path):
    schedule = make(
        "warm_schedules:stepped_cycle", base_lr=0.02, max_lr=0.2, stair_steps=469, stairs=3,
        drop=0.5, granularity="epoch", steps_per_epoch=469,
    )  # fmt: skip
    stairs = schedule(np.arange(0, 469 * 7, 469))
    np.testing.assert_allclose(stairs, [0.02, 0.08, 0.14, 0.2, 0.14, 0.08, 0.02])
    assert schedule(469 * 9) == pytest.approx(0.02 + 0.18 * 0.5)  # top of cycle 2, halved
    check_exact(schedule, RUN_STEPS)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({**WARM, "peak_lr": -0.1}, "peak_lr must be > 0"),
        ({**WARM, "warmup_steps": 2.5}, "warmup_steps must be a positive integer"),
        ({"peak_lr": 0.2, "warmup_steps": 10}, "missing required parameter 'total_steps'"),
        ({**WARM, "peek_lr": 0.2}, "unknown parameter 'peek_lr'"),
        ({**WARM, "warmup_steps": RUN_STEPS}, "warmup_steps must be < total_steps=11725"),
        ({**WARM, "final_lr": 0.3}, "final_lr must be < peak_lr=0.2"),
    ],
)
def test_declared_parameters_are_checked(example_on_path, params, named):
    with pytest.raises(ScheduleError) as caught:
        make("warm_schedules:warm_cosine", **params)
    message = str(caught.value)
    assert message.startswith("warm_schedules:warm_cosine: ") and named in message
    assert "\n" not in message


BAD_MODULE = """
from typing import Literal
from clrbench.schedules import Rate

def wrong_first(x, y, lr: float): return lr
def unannotated(step, xp, lr): return lr
def variadic(step, xp, **params): return 0.1
def unsupported(step, xp, lr: list): return 0.1
def none_default(step, xp, lr: float = None): return 0.1
def bad_default(step, xp, lr: Rate = 0.0): return lr
def reserved(step, xp, granularity: str = "x"): return 0.1
def negative(step, xp, lr: float): return xp.where(step < 1001, lr, -lr)
def explodes(step, xp, at: int): return xp.where(step < at, 0.1, xp.nan)
def mode(step, xp, kind: Literal["a", "b"] = "a"): return 0.1 + 0.0 * step
raise_on_import = None
"""


@pytest.fixture
def bad_module(tmp_path, monkeypatch) -> str:
    (tmp_path / "badplugins.py").write_text(textwrap.dedent(BAD_MODULE))
    (tmp_path / "brokenplugin.py").write_text("import no_such_module_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "badplugins"


@pytest.mark.parametrize(
    ("name", "params", "named"),
    [
        ("badplugins:wrong_first", {"lr": 0.1}, "takes (step, xp, ...) first, got (x, y)"),
        ("badplugins:unannotated", {"lr": 0.1}, "parameter 'lr' has no annotation"),
        ("badplugins:variadic", {}, "parameter 'params': *args/**kwargs"),
        ("badplugins:unsupported", {"lr": 0.1}, "parameter 'lr' has <class 'list'>"),
        ("badplugins:none_default", {}, "parameter 'lr': a default of None"),
        ("badplugins:bad_default", {}, "default of lr must be > 0"),
        ("badplugins:reserved", {}, "parameter 'granularity': the name is reserved"),
        ("badplugins:mode", {"kind": "c"}, "kind must be one of 'a', 'b'"),
        ("badplugins:missing", {}, "'badplugins' has no attribute 'missing'"),
        ("brokenplugin:f", {}, "cannot import 'brokenplugin' (ModuleNotFoundError"),
        ("no_such_package.sub:f", {}, "cannot import 'no_such_package.sub'"),
    ],
)
def test_signature_and_import_problems_are_one_line_naming_them(bad_module, name, params, named):
    with pytest.raises(ScheduleError) as caught:
        make(name, **params)
    message = str(caught.value)
    assert message.startswith(f"{name}: ") and named in message and "\n" not in message


@pytest.mark.parametrize(
    ("name", "params", "named"),
    [
        ("badplugins:negative", {"lr": 1.0}, "returns a negative rate (-1.0) at step 1001"),
        ("badplugins:explodes", {"at": 50}, "returns a non-finite rate (nan) at step 50"),
    ],
)
def test_bad_rates_on_the_runs_steps_stop_the_experiment(bad_module, name, params, named):
    raw = {
        "experiment": {"name": "x", "epochs": 3, "train_size": 60000, "seeds": 1},
        "schedule": [{"label": "mine", "name": name, **params}],
    }
    experiment = Experiment.from_dict(raw)
    with pytest.raises(ConfigError) as caught:
        experiment.runs()
    assert str(caught.value) == f"schedule 'mine': {name}: {named} of the run's 1,407 steps"
    make(name, **params).check_rates(50)  # fine over a shorter run


@pytest.mark.parametrize(
    ("schedule", "named"),
    [
        ({"name": "no_such_package:f"}, "cannot import 'no_such_package'"),
        ({"name": "badplugins:unannotated", "lr": 0.1}, "parameter 'lr' has no annotation"),
        ({"name": "badplugins:negative", "lr": 1.0}, "returns a negative rate"),
        ({"name": "keras:CosineDecai", "decay_steps": 10}, "unknown Keras schedule"),
    ],
)
def test_run_with_a_bad_plug_in_exits_2_with_one_line_and_writes_nothing(
    bad_module, tmp_path, mnist_dir, capsys, schedule, named
):
    config = tmp_path / "exp.toml"
    config.write_text(
        "[experiment]\nname = 'x'\nepochs = 3\nseeds = 1\n\n[[schedule]]\n"
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in schedule.items())
    )
    out = tmp_path / "out"
    code = main(["run", "--config", str(config), "--out", str(out), "--data-dir", str(mnist_dir)])
    error = capsys.readouterr().err.strip()
    assert code == 2 and named in error and len(error.splitlines()) == 1
    assert not out.exists()


# --- register() ---


def _halving(step, xp, lr: float, every: int = 100):
    """Halve every ``every`` steps."""
    return lr * xp.power(0.5, xp.asarray(xp.floor_divide(step, every), dtype=xp.float64))


def _evaluate_in_worker(schedule):
    return schedule([0, 99, 100, 250])


@pytest.fixture
def registered():
    register("halving", _halving)
    yield "halving"
    unregister("halving")


@pytest.mark.slow
def test_registered_schedule_is_listed_validated_and_travels_to_workers(registered):
    from joblib import Parallel, delayed

    schedule = make("halving", lr=0.4)
    assert "halving" in names()
    row = next(r for r in catalog() if r[0] == "halving")
    assert row[1] == [("lr", None, "float"), ("every", 100, "int")]
    assert row[2] == "Halve every ``every`` steps." and row[3] == f"register() in {__name__}"
    with pytest.raises(ScheduleError, match="halving: lr must be a number"):
        make("halving", lr="0.4")
    # loky workers start without the registration: the schedule carries it
    values = Parallel(n_jobs=2, backend="loky")(
        delayed(_evaluate_in_worker)(schedule) for _ in "ab"
    )
    for value in values:
        np.testing.assert_array_equal(value, [0.4, 0.4, 0.2, 0.1])
    check_exact(schedule, RUN_STEPS)


def test_register_refuses_built_in_names():
    with pytest.raises(ScheduleError, match="'triangular' is a built-in schedule"):
        register("triangular", _halving)
    with pytest.raises(ScheduleError, match="is not a register"):
        unregister("sgdr")


# --- identity: a changed function gets new run ids ---

PLUGIN_SOURCE = """
from clrbench.schedules import Rate, declare
{decorator}
def mine(step, xp, lr: Rate):
    return {body}
"""
RUN_ID = """
from clrbench.config.experiment import Experiment
raw = {"experiment": {"name": "x", "epochs": 1, "seeds": 1, "train_size": 1000},
       "schedule": [{"label": "mine", "name": "myplug:mine", "lr": 0.1}]}
print(Experiment.from_dict(raw).runs()[0].run_id)
"""


def _run_id(tmp_path: Path, body: str, decorator: str = "") -> str:
    (tmp_path / "myplug.py").write_text(PLUGIN_SOURCE.format(decorator=decorator, body=body))
    done = subprocess.run(
        [sys.executable, "-c", RUN_ID], env=_env(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
def test_run_id_changes_with_the_source_or_the_declared_version(tmp_path):
    first = _run_id(tmp_path, "lr + 0.0 * step")
    assert first == _run_id(tmp_path, "lr + 0.0 * step")
    assert first != _run_id(tmp_path, "lr + 0.0 * step * 2")
    pinned = _run_id(tmp_path, "lr + 0.0 * step", "@declare(version='1')")
    assert pinned == _run_id(tmp_path, "lr * 1.0 + 0.0 * step", "@declare(version='1')")
    assert pinned != _run_id(tmp_path, "lr + 0.0 * step", "@declare(version='2')")


def test_config_names_the_function_and_refuses_a_changed_one(example_on_path):
    from clrbench.schedules import Schedule

    config = make("warm_schedules:warm_cosine", **WARM).to_config()
    assert config["source"]["function"] == "warm_schedules:warm_cosine"
    assert config["source"]["version"].startswith("src-")
    assert Schedule.from_config(json.loads(json.dumps(config))).params["peak_lr"] == 0.2
    config["source"]["version"] = "src-000000000000"
    with pytest.raises(ScheduleError, match="changed since this config was written"):
        Schedule.from_config(config)


# --- the installed example: entry points ---


@pytest.mark.slow
def test_entry_point_of_the_installed_example_is_listed_and_built(installed_example, monkeypatch):
    monkeypatch.syspath_prepend(str(installed_example))
    assert {"warm_cosine", "stepped_cycle"} <= set(names())
    schedule = make("warm_cosine", **WARM)
    assert schedule.spec.origin == "entry point of warm-schedules 0.1.0"
    assert schedule(938) == pytest.approx(0.2)
    listing = subprocess.run(
        [sys.executable, "-m", "clrbench", "list"],
        env=_env(installed_example) | {"COLUMNS": "250"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in listing.splitlines() if "warm_cosine" in x)
    assert "entry point of warm-schedules 0.1.0" in line and "peak_lr" in line


# --- end to end: run and report, as a user would from the shell ---

E2E_TOML = """
[experiment]
name = "mine"
epochs = 2
seeds = 1
train_size = 1000  # 8 steps per epoch

[[schedule]]
label = "warm-cosine"
name = "warm_cosine"  # the installed example's entry point
peak_lr = 0.2
warmup_steps = 4
total_steps = 16

[[schedule]]
label = "stepped"
name = "warm_schedules:stepped_cycle"  # the same package by import path
base_lr = 0.02
max_lr = 0.2
stair_steps = 2
stairs = 2

[[schedule]]
label = "keras-cosine"
name = "warmup"
steps = 3
[schedule.schedule]
name = "keras:CosineDecay"
initial_learning_rate = 0.1
decay_steps = 13
"""


@pytest.mark.slow
def test_plug_in_schedules_run_and_report_end_to_end(installed_example, tmp_path, mnist_dir):
    config, out = tmp_path / "mine.toml", tmp_path / "results"
    config.write_text(E2E_TOML)
    env = _env(installed_example) | {"CLRBENCH_DATA_DIR": str(mnist_dir)}
    run = [sys.executable, "-m", "clrbench", "run", "--config", str(config), "--out", str(out)]
    done = subprocess.run([*run, "--jobs", "2", "--quiet", "--no-report"], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = [sys.executable, "-m", "clrbench", "report", str(out)]
    done = subprocess.run(report, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "warm-cosine" in (out / "report" / "report.md").read_text()
    from clrbench.store.results import load_results

    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(installed_example))
        results = load_results(out)
        assert set(results.runs["status"]) == {"ok"}
        entries = {e.label: e for e in Experiment.from_dict(results.experiment).schedules}
        for label, batches in results.batches.groupby("schedule", observed=True):
            expected = entries[label].build(8)(batches["step"].to_numpy())
            # the rate each optimizer step applied (float32) is the schedule's, as check_exact
            atol = 1e-6 * expected.max()  # Keras computes its cosine in float32
            np.testing.assert_allclose(batches["lr"], expected, rtol=1e-6, atol=atol)
        record = json.loads(next((out / "runs").glob("warm-cosine-*/run.json")).read_text())
        assert record["schedule"]["source"]["function"] == "warm_schedules:warm_cosine"
