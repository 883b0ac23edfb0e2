"""The results store: atomic writes, loading, and clear errors for corrupt folders."""

from __future__ import annotations

import json
import shutil

import pytest

from clrbench import load_results
from clrbench.errors import ResultsError
from clrbench.results import write_run


@pytest.fixture
def results_copy(small_results, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(small_results, out)
    return out


def first_run(out):
    return sorted((out / "runs").iterdir())[0]


def test_load_ignores_temporary_and_incomplete_folders(results_copy):
    (results_copy / "runs" / ".tmp-constant-s9-deadbeef-123").mkdir()
    half = results_copy / "runs" / "constant-s9-deadbeef"
    half.mkdir()
    (half / "batches.parquet").write_bytes(b"partial")
    assert len(load_results(results_copy).runs) == 4


@pytest.mark.parametrize("victim", ["batches.parquet", "epochs.parquet"])
def test_corrupt_parquet_is_one_clear_error(results_copy, victim):
    path = first_run(results_copy) / victim
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ResultsError, match=victim) as info:
        load_results(results_copy)
    assert "\n" not in str(info.value)


def test_corrupt_run_record_is_one_clear_error(results_copy):
    (first_run(results_copy) / "run.json").write_text("{not json")
    with pytest.raises(ResultsError, match="run.json"):
        load_results(results_copy)


def test_missing_folder_or_no_runs(tmp_path):
    with pytest.raises(ResultsError, match="not a clrbench results folder"):
        load_results(tmp_path / "nothing")
    (tmp_path / "empty" / "runs").mkdir(parents=True)
    with pytest.raises(ResultsError, match="no completed runs"):
        load_results(tmp_path / "empty")


def test_write_run_replaces_atomically(results_copy):
    folder = first_run(results_copy)
    record = json.loads((folder / "run.json").read_text())
    r = load_results(results_copy)
    batches = r.batches[r.batches["run_id"] == record["run_id"]].iloc[:, 3:]
    epochs = r.epochs[r.epochs["run_id"] == record["run_id"]].iloc[:, 3:]
    record["wall_s"] = 1.5
    write_run(results_copy, record, batches, epochs)
    assert json.loads((folder / "run.json").read_text())["wall_s"] == 1.5
    assert [p.name for p in (results_copy / "runs").iterdir() if p.name.startswith(".")] == []
    again = load_results(results_copy)
    assert len(again.batches) == len(r.batches)
