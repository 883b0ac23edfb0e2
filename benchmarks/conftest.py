"""Benchmark fixtures: a synthetic results folder the size of the full suite, and the
environment of the training benchmarks' whole processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from synthetic import write_synthetic_results


@pytest.fixture(scope="session")
def suite_dir(tmp_path_factory) -> Path:
    """5 schedules × 5 seeds × 25 epochs × 469 steps (293,125 batch rows), written once."""
    return write_synthetic_results(tmp_path_factory.mktemp("suite") / "results")


@pytest.fixture(scope="module")
def data_env():
    """The environment for a training process: CLRBENCH_DATA_DIR (or ../shared/data/mnist)."""
    repo = Path(__file__).parents[1]
    data = os.environ.get("CLRBENCH_DATA_DIR") or str(repo.parent / "shared/data/mnist")
    if not (Path(data) / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("MNIST IDX files not found (set CLRBENCH_DATA_DIR)")
    return os.environ | {"CLRBENCH_DATA_DIR": data, "TF_CPP_MIN_LOG_LEVEL": "2"}
