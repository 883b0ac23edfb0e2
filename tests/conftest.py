"""Shared fixtures: the real MNIST files and small real training runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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
