"""The fast tier's guard (tests/fast_tier_guard.py), run on a generated test file by pytest itself,
in this process: a fast test that trains or starts a process fails, naming what it did."""

from __future__ import annotations

import textwrap

import pytest

GENERATED = """
import multiprocessing
import subprocess
import sys

import pytest

from clrbench.train.lr_sweep import sweep_seed
from clrbench.train.run import train_run


def test_pure():
    assert sum(range(4)) == 6


def test_trains_through_the_runner():
    from clrbench.config.experiment import Experiment
    from clrbench.suite.runner import run_suite

    experiment = Experiment.from_dict(
        {"experiment": {"name": "g", "epochs": 1, "seeds": 1, "train_size": 256},
         "schedule": [{"label": "c", "name": "constant", "lr": 0.1}]}
    )
    run_suite(experiment, OUT, jobs=1)


def test_stacks_through_the_runner():
    from clrbench.config.experiment import Experiment
    from clrbench.suite.runner import run_suite

    experiment = Experiment.from_dict(
        {"experiment": {"name": "g", "epochs": 1, "seeds": 1, "train_size": 256},
         "schedule": [{"label": "c", "name": "constant", "lr": 0.1}]}
    )
    run_suite(experiment, OUT, jobs=1, stack=True)


def test_trains_directly():
    train_run(None)


def test_runs_a_range_test():
    sweep_seed(None, 0, None)


def test_fits_a_keras_model():
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0)


def test_starts_a_subprocess():
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_starts_a_worker():
    worker = multiprocessing.get_context("spawn").Process(target=print)
    worker.start()
    worker.join()


@pytest.mark.slow
def test_slow():
    subprocess.run([sys.executable, "-c", "pass"], check=True)
"""


class Reports:
    """Each test's outcome and failure text, from pytest's own reports."""

    def __init__(self) -> None:
        self.outcomes: dict[str, tuple[str, str]] = {}
        self.deselected: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = report.nodeid.split("::")[-1]
        if report.failed or name not in self.outcomes:
            self.outcomes[name] = (report.outcome, str(report.longrepr or ""))

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += [item.name for item in items]


def run_generated(tmp_path, monkeypatch, *options: str, name: str = "test_generated") -> Reports:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # pytest-benchmark would run git
    source = GENERATED.replace("OUT", repr(str(tmp_path / "out")))
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))  # one name per session:
    # a second session in this process cannot import another file under a name already taken
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: slow\n")
    reports = Reports()
    args = [str(tmp_path), "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path)]
    args += ["-p", "fast_tier_guard", "-p", "no:cacheprovider", "-q", *options]
    pytest.main(args, plugins=[reports])
    return reports


@pytest.mark.parametrize("selection", [("-m", "not slow"), ()], ids=["fast-only", "both-tiers"])
def test_a_fast_test_that_trains_or_starts_a_process_fails(tmp_path, monkeypatch, selection):
    """In the fast tier on its own and in a session of both tiers (the README's command, as CI
    runs it): every fast test that trains or starts a process fails; the slow test passes."""
    module = f"test_generated_{len(selection)}"
    reports = run_generated(tmp_path, monkeypatch, *selection, name=module)
    outcomes = reports.outcomes
    if selection:
        assert reports.deselected == ["test_slow"]
    else:
        assert outcomes["test_slow"][0] == "passed"
    assert outcomes["test_pure"][0] == "passed"
    expected = {
        "test_trains_through_the_runner": "trained a model (clrbench.train.run.train_run)",
        "test_stacks_through_the_runner": "trained a model (clrbench.train.stacked.train_stack)",
        "test_trains_directly": "trained a model (clrbench.train.run.train_run)",
        "test_runs_a_range_test": "trained a model (clrbench.train.lr_sweep.sweep_seed)",
        "test_fits_a_keras_model": "trained a model (keras fit)",
        "test_starts_a_subprocess": "started a process (subprocess.Popen",
        "test_starts_a_worker": "started a process (fork_exec)",
    }
    for name, what in expected.items():
        outcome, text = outcomes[name]
        assert outcome == "failed", name
        assert "FastTierViolation" in text and f"{module}.py::{name} {what}" in text
        assert "but is not marked slow" in text
    assert not (tmp_path / "out" / "runs").exists() or not any((tmp_path / "out/runs").iterdir())
