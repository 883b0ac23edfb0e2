"""The public API (``clrbench.__all__``): every function's docstring example runs here, on a
synthetic results folder written through the real store (no training: the fast tier), and the
API holds the command line's rules (one resolver, one default-folder rule, bad input one line)."""

from __future__ import annotations

import doctest
import importlib
import json
from pathlib import Path

import matplotlib
import pytest
from conftest import load_synthetic

import clrbench
from clrbench.errors import ConfigError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)

DOCUMENTED = ("clrbench.api", "clrbench.plot", "clrbench.gate", "clrbench.study")


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    """Two schedules x 3 seeds x 2 epochs of 10 steps, every run ok."""
    out = tmp_path_factory.mktemp("api") / "results"
    return load_synthetic().write_synthetic_results(
        out, ("constant", "clr-iter"), seeds=3, epochs=2, train_size=1280
    )


def test_all_names_the_public_api():
    assert set(clrbench.__all__) == {
        "Results", "run", "load_results", "compare", "report", "export", "study", "gate", "plot",
        "lr_find", "catalog", "Workloads",
    }  # fmt: skip
    for name in clrbench.__all__:
        assert getattr(clrbench, name) is not None
    assert callable(clrbench.study.run) and callable(clrbench.study.load)
    assert callable(clrbench.gate.check) and callable(clrbench.report)


@pytest.mark.parametrize("module", DOCUMENTED)
def test_docstring_examples_run(module, results_dir, tmp_path):
    """Every public function carries an example, and it runs."""
    imported = importlib.import_module(module)
    public = [getattr(imported, name) for name in getattr(imported, "__all__", dir(imported))]
    functions = [f for f in public if callable(f) and getattr(f, "__module__", "") == module]
    assert functions, module
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(verbose=False)
    globs = {"clrbench": clrbench, "json": json, "results_dir": results_dir, "tmp": tmp_path}
    globs["reports"] = Path(__file__).resolve().parents[1] / "reports"  # the committed ones
    for function in functions:
        tests = finder.find(function, globs=dict(globs))
        assert tests and tests[0].examples, f"{module}.{function.__name__} has no example"
        for test in tests:
            runner.run(test)
        plt.close("all")  # seaborn draws on the current Axes: each example starts afresh
    assert runner.failures == 0, f"{runner.failures} docstring example(s) of {module} failed"


def test_options_are_the_commands_own_and_an_unknown_one_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"run: unknown option 'seed' \(did you mean 'seeds'"):
        clrbench.run(out=tmp_path, seed=3)
    with pytest.raises(ConfigError, match="study: unknown option 'budgets'"):
        clrbench.study.run(out=tmp_path, budgets=3)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_compare_takes_results_or_a_folder(results_dir):
    from_folder = clrbench.compare(results_dir)
    from_results = clrbench.compare(clrbench.load_results(results_dir), baseline="constant")
    assert from_folder.equals(from_results)
    flipped = clrbench.compare(results_dir, baseline="clr-iter")
    assert list(flipped["schedule"]) == ["constant"]
    assert flipped["difference"].iloc[0] == pytest.approx(-from_folder["difference"].iloc[0])


def test_a_study_report_refuses_a_baseline_schedule_as_across_refuses_a_target(tmp_path):
    (tmp_path / "study.json").write_text("{}")
    with pytest.raises(ConfigError) as caught:
        clrbench.report(tmp_path, baseline_schedule="constant")
    assert str(caught.value) == (
        "--baseline-schedule is for a results folder's report; a study compares every family "
        "with its constant family (else its first) (drop --baseline-schedule)"
    )
