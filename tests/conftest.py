"""Shared fixtures: the real MNIST files, small real training runs (slow tier) and synthetic
results folders of the same shape (fast tier); the fast tier's guard (tests/fast_tier_guard.py)."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

import pytest
from fast_tier_guard import (  # noqa: F401 (pytest hooks: the fast tier trains nothing)
    pytest_collection_finish,
    pytest_runtest_call,
    pytest_runtest_protocol,
    pytest_sessionfinish,
)

REPO = Path(__file__).resolve().parents[1]


class _NoTorchInThisProcess(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``import torch`` fail in the test process, which imports TensorFlow: newer torch
    builds segfault when both share a process, taking the whole run down with no summary.
    PyTorch runs in an interpreter of its own (tests/torch_reference.py). The import fails
    when it executes (an ImportError, which optional-import code handles), not at lookup."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        raise ImportError(
            "torch must not be imported by the test process (it imports TensorFlow): "
            "run PyTorch in a subprocess, as tests/torch_reference.py does"
        )

    def exec_module(self, module):  # never reached: create_module raises
        raise ImportError("torch must not be imported by the test process")


sys.meta_path.insert(0, _NoTorchInThisProcess())


def load_synthetic():
    """benchmarks/synthetic.py (benchmarks/ is a folder of the repository, not a package)."""
    spec = importlib.util.spec_from_file_location("synthetic", REPO / "benchmarks/synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mnist_dir() -> Path | None:
    candidates = [os.environ.get("CLRBENCH_DATA_DIR"), REPO.parent / "shared/data/mnist"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").exists():
            return Path(candidate).resolve()
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The directory holding the four real MNIST IDX files (skip when absent)."""
    path = _mnist_dir()
    if path is None:
        pytest.skip("MNIST IDX files not found (set CLRBENCH_DATA_DIR)")
    return path


SMALL_SUITE = {
    "experiment": {
        "name": "small",
        "dataset": "mnist",
        "epochs": 2,
        "batch_size": 128,
        "seeds": 2,
        "train_size": 6000,  # 47 steps per epoch
        "optimizer": "sgd-momentum",
    },
    "schedule": [
        {"label": "constant", "name": "constant", "lr": 0.1},
        {
            "label": "clr-iter",
            "name": "triangular",
            "base_lr": 0.02,
            "max_lr": 0.2,
            "step_size": 47,
        },
    ],
}


@pytest.fixture(scope="session")
def small_results(tmp_path_factory, mnist_dir) -> Path:
    """A real results folder: 2 schedules x 2 seeds x 2 epochs on 6,000 images, --jobs 2.

    Tests must not modify it; copy it to tmp_path first.
    """
    from clrbench.config.experiment import Experiment
    from clrbench.suite.runner import run_suite

    out = tmp_path_factory.mktemp("small") / "results"
    outcome = run_suite(Experiment.from_dict(SMALL_SUITE), out, jobs=2, data_dir=str(mnist_dir))
    assert not outcome.failed, outcome.failed
    return out


@pytest.fixture(scope="session")
def eval_every_results(tmp_path_factory, mnist_dir) -> Path:
    """A real folder evaluated within its epochs: clr-iter, 2 seeds, 2 epochs of 24 steps on
    3,000 images, ``--eval-every 10`` (evaluated after run steps 10, 20, 24, 30, 40, 48).

    Tests must not modify it; copy it to tmp_path first.
    """
    from clrbench.cli.main import main

    out = tmp_path_factory.mktemp("eval-every") / "results"
    args = ["run", "--preset", "quick", "--schedules", "clr-iter", "--seeds", "2", "--jobs", "1"]
    args += ["--epochs", "2", "--train-size", "3000", "--eval-every", "10", "--no-report"]
    assert main([*args, "--quiet", "--data-dir", str(mnist_dir), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def synthetic_small(tmp_path_factory) -> Path:
    """A synthetic results folder shaped like ``small_results`` (the same two labels, 2 seeds,
    2 epochs of 47 steps), written through the real store without training.

    Tests must not modify it; copy it to tmp_path first.
    """
    out = tmp_path_factory.mktemp("synthetic-small") / "results"
    experiment = SMALL_SUITE["experiment"]
    labels = tuple(entry["label"] for entry in SMALL_SUITE["schedule"])
    return load_synthetic().write_synthetic_results(
        out, labels, seeds=experiment["seeds"], epochs=experiment["epochs"],
        train_size=experiment["train_size"],
    )  # fmt: skip
