"""Benchmark fixtures: a synthetic results folder the size of the full suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic import write_synthetic_results


@pytest.fixture(scope="session")
def suite_dir(tmp_path_factory) -> Path:
    """5 schedules × 5 seeds × 25 epochs × 469 steps (293,125 batch rows), written once."""
    return write_synthetic_results(tmp_path_factory.mktemp("suite") / "results")
