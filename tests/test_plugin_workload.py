"""Workloads of one's own (``clrbench.workload_api``): everything a plug-in returns is checked
before training, with one line; a good plug-in trains through the same loop, store, study and
gate as the built-ins; the example package (examples/mnist_cnn) is one."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from clrbench.config.runs import RunSpec
from clrbench.config.workload import Workload
from clrbench.config.workloads import named, named_of
from clrbench.data.load import load_dataset
from clrbench.errors import ConfigError
from clrbench.schedules import make

TESTS = Path(__file__).resolve().parent
EXAMPLE = REPO / "examples" / "mnist_cnn"


def plugin_workload(ref: str, **changes) -> Workload:
    return Workload(dataset=ref, model=ref, **changes)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("plugin_cases:nan_pixels", "x_train has 1 non-finite value(s) (NaN or inf)"),
        ("plugin_cases:labels_out_of_range", "y_train has 100 label(s) outside 0..2"),
        ("plugin_cases:float_labels", "y_test must be integer class indices, got float64"),
        ("plugin_cases:label_count_mismatch", "y_train must be one label per example"),
        ("plugin_cases:shape_mismatch", "x_train examples are (4,), x_test's (3,)"),
        ("plugin_cases:three_arrays", "must return (x_train, y_train, x_test, y_test)"),
        ("plugin_cases:loader_raises", "load_data() raised RuntimeError: no GPU here"),
        ("plugin_cases:not_a_plugin", "is a dict, not a clrbench.workload_api.WorkloadPlugin"),
        ("plugin_cases:bad_classes", "num_classes must be at least 2, got 1"),
        ("plugin_cases:missing", "'plugin_cases' has no attribute 'missing'"),
        (
            "plugin_broken_import:anything",
            "cannot import 'plugin_broken_import' (ModuleNotFoundError: No module named "
            "'a_module_that_does_not_exist')",
        ),
    ],
)
def test_a_plugins_mistake_in_its_data_is_one_line_naming_it(case, expected):
    with pytest.raises(ConfigError) as error:
        plugin_workload(case)
    message = str(error.value)
    assert expected in message and case in message
    assert "\n" not in message


def test_a_plugin_gives_its_data_and_its_model_both():
    with pytest.raises(ConfigError, match="dataset and model must both be 'plugin_cases:good'"):
        Workload(dataset="mnist", model="plugin_cases:good")


def test_a_good_plugin_is_a_workload_with_its_own_defaults():
    workload = plugin_workload("plugin_cases:good")
    assert (workload.train_count, workload.steps_per_epoch) == (300, 3)  # ceil(300 / 128)
    found = named("plugin_cases:good")
    assert (found.name, found.epochs, found.target) == ("blobs", 3, 0.9)
    assert named_of(workload) == found
    assert named("plugin_cases:good_factory").name == "blobs"  # a function returning one
    assert named_of(plugin_workload("plugin_cases:good_factory")).epochs == 3
    # the run id hashes the plug-in's path like any data set and model name
    spec = RunSpec("c", make("constant", lr=0.1), 0, workload)
    assert spec.config()["dataset"] == spec.config()["model"] == "plugin_cases:good"


def test_a_plugins_data_is_split_and_checksummed_like_mnist():
    data = load_dataset("plugin_cases:good", validation_size=30, split_seed=0)
    assert data.x_train.shape == (270, 4) and data.x_validation.shape == (30, 4)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    assert np.bincount(data.y_validation).tolist() == [10, 10, 10]  # stratified
    import plugin_cases

    x, y, x_test, y_test = plugin_cases.load_data()
    expected = {
        "x_train": hashlib.sha256(np.ascontiguousarray(x, np.float32).tobytes()).hexdigest(),
        "y_test": hashlib.sha256(np.ascontiguousarray(y_test, np.int32).tobytes()).hexdigest(),
    }
    assert {k: data.checksums[k] for k in expected} == expected
    assert not data.x_train.flags.writeable


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("plugin_cases:builder_raises", "build_model raised RuntimeError: no GPU here"),
        ("plugin_cases:wrong_output_shape", "output is (5,) per example, expected (3,)"),
        ("plugin_cases:logits_output", "are not class probabilities"),
        ("plugin_cases:unseeded", "two models built with seed 0 have different weights"),
        ("plugin_cases:not_a_model", "must return a keras.Model, got str"),
    ],
)
def test_a_plugins_mistake_in_its_model_is_one_line_naming_it(case, expected):
    from clrbench.train.models import check_plugin_model

    with pytest.raises(ConfigError) as error:
        check_plugin_model(plugin_workload(case))
    assert expected in str(error.value) and "\n" not in str(error.value)


def _env(*paths: Path) -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), str(REPO)])
    return env


def _clrbench(*args: str, paths=(TESTS,), data: Path | None = None):
    command = [sys.executable, "-m", "clrbench", *args]
    env = _env(*paths) | ({"CLRBENCH_DATA_DIR": str(data)} if data else {})
    return subprocess.run(command, capture_output=True, text=True, env=env)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("plugin_cases:wrong_output_shape", "output is (5,) per example, expected (3,)"),
        ("plugin_cases:labels_out_of_range", "label(s) outside 0..2"),
        ("plugin_cases:nan_pixels", "non-finite value(s)"),
        ("plugin_broken_import:anything", "cannot import 'plugin_broken_import'"),
        ("plugin_cases:builder_raises", "build_model raised RuntimeError"),
    ],
)
def test_run_refuses_a_bad_plugin_with_one_line_and_exit_2_writing_nothing(
    case, expected, tmp_path
):
    out = tmp_path / "out"
    done = _clrbench("run", "--workload", case, "--out", str(out), "--no-report")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert not out.exists()


# --- the example package ---


def test_the_example_plugin_passes_its_checks(monkeypatch, mnist_dir):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("CLRBENCH_DATA_DIR", str(mnist_dir))
    workload = plugin_workload("mnist_cnn:mnist_cnn")
    assert workload.train_count == 6000
    data = load_dataset("mnist_cnn:mnist_cnn")
    assert data.x_train.shape == (6000, 14, 14, 1) and data.x_test.shape == (10000, 14, 14, 1)
    assert data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
    from clrbench.train.models import check_plugin_model

    check_plugin_model(workload)


@pytest.mark.slow
def test_the_example_plugin_trains_like_keras_on_the_same_batches(monkeypatch, mnist_dir):
    """The loop on the plug-in's model = Keras ``train_on_batch`` on the loop's batch order."""
    import keras

    from clrbench.train import workload as standard
    from clrbench.train.run import train_run

    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("CLRBENCH_DATA_DIR", str(mnist_dir))
    import mnist_cnn

    seed, epochs = 4, 2
    schedule = make("triangular", base_lr=0.01, max_lr=0.1, step_size=30)
    workload = plugin_workload("mnist_cnn:mnist_cnn", epochs=epochs, train_size=1000)
    run = train_run(RunSpec("t", schedule, seed, workload))
    assert run.status == "ok"

    data = load_dataset("mnist_cnn:mnist_cnn", train_size=1000, seed=0)
    x, y = np.asarray(data.x_train), np.asarray(data.y_train)
    keras.backend.clear_session()
    model = mnist_cnn.build_model(x.shape[1:], 10, seed)
    model.compile(
        optimizer=standard.build_optimizer("sgd-momentum", schedule.keras()),
        loss=standard.LOSS,
        metrics=standard.METRICS,
    )
    rng = np.random.default_rng(seed)
    rows, evaluations = [], []
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), 128):
            batch = order[start : start + 128]
            rate = float(model.optimizer.learning_rate)
            loss, accuracy = model.train_on_batch(x[batch], y[batch])
            rows.append((rate, loss, accuracy, len(batch)))
        evaluations.append(model.evaluate(data.x_test, data.y_test, batch_size=1000, verbose=0))
    rows = np.array(rows)
    log = run.batches[["lr", "loss", "accuracy", "batch_size"]].to_numpy()
    assert log.shape == rows.shape == (epochs * 8, 4)
    np.testing.assert_array_equal(log[:, 3], rows[:, 3])
    np.testing.assert_allclose(log[:, 0], rows[:, 0], rtol=1e-6)
    np.testing.assert_allclose(log[:, 1], rows[:, 1], rtol=1e-5)
    np.testing.assert_allclose(log[:, 2], rows[:, 2], atol=1e-7)
    tested = run.epochs[["test_loss", "test_accuracy"]].to_numpy()
    np.testing.assert_allclose(tested, np.array(evaluations), rtol=1e-5)


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory) -> Path:
    """The example package really installed (pip, into a target folder, with its entry point)."""
    target = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    command += ["--no-build-isolation", "--target", str(target), str(EXAMPLE)]
    subprocess.run(command, check=True, capture_output=True)
    assert list(target.glob("mnist_cnn-0.1.0.dist-info/entry_points.txt"))
    return target


@pytest.mark.slow
def test_the_example_plugin_runs_studies_and_gates_by_its_entry_point(
    installed_example, tmp_path, mnist_dir
):
    """``run``, ``study --preset quick`` and ``check`` on the installed example, named by its
    entry point; the run's records name the plug-in's import path."""
    paths = (installed_example,)
    results = tmp_path / "cnn"
    short = ["--epochs", "1", "--seeds", "3", "--schedules", "constant,clr-iter"]
    short += ["--train-size", "3000"]  # a CNN on a CPU: what is tested is the plumbing
    done = _clrbench(
        "run",
        "--workload",
        "mnist-cnn",
        *short,
        "--out",
        str(results),
        "--jobs",
        "2",
        "--quiet",
        paths=paths,
        data=mnist_dir,
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(p.read_text()) for p in (results / "runs").glob("*/run.json")]
    assert len(records) == 6
    assert {r["config"]["dataset"] for r in records} == {"mnist_cnn:mnist_cnn"}
    assert (results / "report" / "report.html").is_file()

    baseline = tmp_path / "baseline.json"
    done = _clrbench(
        "baseline", str(results), "--output", str(baseline), paths=paths, data=mnist_dir
    )
    assert done.returncode == 0, done.stderr
    done = _clrbench(
        "check", str(results), "--baseline", str(baseline), paths=paths, data=mnist_dir
    )
    assert done.returncode == 0, done.stdout + done.stderr

    study = tmp_path / "study"
    done = _clrbench(
        "study",
        "--preset",
        "quick",
        "--workload",
        "mnist-cnn",
        *("--epochs", "1", "--budget", "2", "--seeds", "2"),  # the quick protocol, shorter:
        *("--families", "constant,clr-iter", "--confirm-top", "0", "--no-zero-budget"),
        "--out",
        str(study),
        "--jobs",
        "2",
        "--quiet",
        paths=paths,
        data=mnist_dir,
    )
    assert done.returncode == 0, done.stderr
    assert (study / "report" / "report.html").is_file()
