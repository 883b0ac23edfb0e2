"""The results store: atomic writes, loading, and clear errors for corrupt folders."""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from pathlib import Path

import pytest

from clrbench import load_results
from clrbench.config.workload import Workload
from clrbench.errors import ResultsError, ResultsWarning
from clrbench.semantics import TRAINING_SEMANTICS
from clrbench.store.records import CONFIG_DEFAULTS, RunRecord
from clrbench.store.results import read_record, write_run


@pytest.fixture
def results_copy(synthetic_small, tmp_path):
    """A copy of a synthetic folder shaped like the small suite (2 schedules x 2 seeds)."""
    out = tmp_path / "results"
    shutil.copytree(synthetic_small, out)
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
    record = read_record(folder)
    r = load_results(results_copy)
    batches = r.batches[r.batches["run_id"] == record.run_id].iloc[:, 3:]
    epochs = r.epochs[r.epochs["run_id"] == record.run_id].iloc[:, 3:]
    write_run(results_copy, dataclasses.replace(record, wall_s=1.5), batches, epochs)
    assert json.loads((folder / "run.json").read_text())["wall_s"] == 1.5
    assert [p.name for p in (results_copy / "runs").iterdir() if p.name.startswith(".")] == []
    again = load_results(results_copy)
    assert len(again.batches) == len(r.batches)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("seed", "0"),
        ("status", "done"),
        ("label", None),
        ("schedule", []),
        ("wall_s", "12"),
        ("error", 3),
        ("diverged_step", 1.5),
        ("provenance", {"cpu": ["x"]}),
        ("config.epochs", "2"),
        ("config.trainer", "keras"),
        ("schedule.granularity", "batch"),
    ],
)
def test_a_wrongly_typed_record_value_is_one_line_naming_the_key(results_copy, key, value):
    path = first_run(results_copy) / "run.json"
    record = json.loads(path.read_text())
    table, _, field = key.rpartition(".")
    (record[table] if table else record)[field] = value
    path.write_text(json.dumps(record))
    with pytest.raises(ResultsError, match=rf"run.json: run record key '{key}' must be") as info:
        load_results(results_copy)
    assert "\n" not in str(info.value)


def test_a_missing_record_key_is_named(results_copy):
    path = first_run(results_copy) / "run.json"
    record = json.loads(path.read_text())
    del record["config"]
    path.write_text(json.dumps(record))
    with pytest.raises(ResultsError, match="incomplete run record \\(no 'config'\\)"):
        load_results(results_copy)


def test_a_parquet_column_of_the_wrong_type_is_one_line(results_copy):
    import pandas as pd

    path = first_run(results_copy) / "batches.parquet"
    frame = pd.read_parquet(path)
    frame["loss"] = "high"
    frame.to_parquet(path)
    with pytest.raises(ResultsError, match="batches.parquet: column 'loss' is not float64"):
        load_results(results_copy)


@pytest.mark.parametrize("command", ["report", "check"])
def test_report_and_check_name_the_bad_key_with_exit_2(results_copy, tmp_path, capsys, command):
    from clrbench.cli.main import main

    baseline = tmp_path / "baseline.json"
    # from good records (2 seeds: the small suite, so without the noise estimate)
    assert main(["baseline", str(results_copy), "-o", str(baseline), "--allow-few-seeds"]) == 0
    capsys.readouterr()
    path = first_run(results_copy) / "run.json"
    record = json.loads(path.read_text())
    record["seed"] = "zero"
    path.write_text(json.dumps(record))
    args = [command, str(results_copy)]
    if command == "check":
        args += ["--baseline", str(baseline)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run record key 'seed' must be an integer" in err


def _records(out):
    return {p.name: json.loads((p / "run.json").read_text()) for p in (out / "runs").iterdir()}


def test_the_manifest_lists_the_current_runs_and_loading_follows_it(results_copy):
    manifest = json.loads((results_copy / "manifest.json").read_text())
    assert manifest["training_semantics"] == TRAINING_SEMANTICS
    assert sorted(manifest["runs"]) == sorted(_records(results_copy))
    # A schedule default changing tomorrow must not hide complete runs: loading never recomputes
    # run ids, and a folder whose experiment no longer validates still loads.
    toml = results_copy / "experiment.toml"
    toml.write_text(toml.read_text().replace('name = "triangular"', 'name = "no_such_schedule"'))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        assert len(load_results(results_copy).runs) == 4


def test_runs_outside_the_manifest_and_missing_runs_are_named(results_copy):
    manifest_path = results_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    left_out, *kept = sorted(manifest["runs"])
    manifest["runs"] = [*kept, "constant-s7-00000000"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.warns(ResultsWarning) as caught:
        results = load_results(results_copy)
    messages = [str(w.message) for w in caught]
    assert any("1 run in" in m and "not part of" in m and left_out in m for m in messages)
    assert any("1 run of the experiment" in m and "constant-s7-00000000" in m for m in messages)
    assert sorted(results.runs["run_id"]) == kept


def test_a_folder_without_manifest_loads_every_complete_run_with_a_warning(results_copy):
    (results_copy / "manifest.json").unlink()
    with pytest.warns(ResultsWarning, match="no manifest.json"):
        assert len(load_results(results_copy).runs) == 4


@pytest.mark.slow  # retrains the stale runs of the real small suite
def test_runs_of_an_older_training_semantics_are_stale(small_results, tmp_path, mnist_dir):
    from conftest import SMALL_SUITE

    from clrbench.config.experiment import Experiment
    from clrbench.suite.runner import run_suite

    results_copy = shutil.copytree(small_results, tmp_path / "results")

    stale = sorted(_records(results_copy))[:2]
    for run_id in stale:  # as written before the semantics were recorded
        path = results_copy / "runs" / run_id / "run.json"
        record = json.loads(path.read_text())
        del record["training_semantics"]
        path.write_text(json.dumps(record))
    with pytest.warns(ResultsWarning, match="2 runs trained by an older clrbench") as caught:
        results = load_results(results_copy)
    assert all(run_id in str(caught[0].message) for run_id in stale)
    assert not set(stale) & set(results.runs["run_id"])
    assert len(load_results(results_copy, include_stale=True).runs) == 4
    outcome = run_suite(
        Experiment.from_dict(SMALL_SUITE), results_copy, jobs=2, data_dir=str(mnist_dir)
    )
    assert (outcome.trained, outcome.skipped) == (2, 2)  # only the stale runs retrain
    assert all(
        r["training_semantics"] == TRAINING_SEMANTICS for r in _records(results_copy).values()
    )


# run.json files as today's (0.1.0, training semantics 3) runner wrote them: an ok run of the
# quick preset (copied from a results folder) and a failed one (execute() with no data).
RECORDS = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["run-record-ok.json", "run-record-failed.json"])
def test_records_written_by_the_previous_writer_load_and_round_trip(name):
    path = RECORDS / name
    written = json.loads(path.read_text())
    record = RunRecord.from_json(path.read_text(), path)
    assert record.extra == {}  # every key the old writer wrote is a field of the record
    # written under semantics 3 (time_s included evaluation): loads, named stale, not retrained
    # into a different record
    assert record.training_semantics == 3 and record.status == written["status"]
    assert record.is_current == (TRAINING_SEMANTICS == 3)
    again = json.loads(record.to_json())
    assert {k: again[k] for k in written} == written  # nothing lost or changed on the way
    assert RunRecord.from_json(record.to_json(), path) == record
    if record.status == "failed":
        assert record.setup_s is None and "Traceback" in (record.traceback or "")
        assert (record.setting("trainer"), record.setting("evaluate_on")) == ("loop", "test")


def test_a_record_from_before_semantics_and_stage_timings_loads_as_stale():
    path = RECORDS / "run-record-ok.json"
    written = json.loads(path.read_text())
    for key in ("training_semantics", "setup_s", "train_s"):
        del written[key]
    written["written_by_a_newer_clrbench"] = {"x": 1}
    record = RunRecord.from_json(json.dumps(written), path)
    assert record.training_semantics == 1 and not record.is_current
    assert (record.setup_s, record.train_s) == (None, None)
    assert json.loads(record.to_json())["written_by_a_newer_clrbench"] == {"x": 1}


def test_config_defaults_are_workload_defaults():
    # Workload.config() leaves these out at their defaults; the record reads them back.
    defaults = {f.name: f.default for f in dataclasses.fields(Workload)}
    for key, value in CONFIG_DEFAULTS.items():
        if key != "split_seed":  # meaningless without a split: None, not RunSpec's 0
            assert defaults[key] == value, key


def test_the_epochs_frame_says_what_its_test_columns_were_measured_on(results_copy):
    results = load_results(results_copy)
    assert set(results.epochs["evaluated_on"]) == {"test"}  # filled in for a folder as written
    path = first_run(results_copy) / "run.json"
    record = json.loads(path.read_text())
    record["config"] |= {"validation_size": 1000, "evaluate_on": "validation"}
    path.write_text(json.dumps(record))
    epochs = load_results(results_copy).epochs
    measured = epochs.groupby("run_id", observed=True)["evaluated_on"].unique()
    assert measured[record["run_id"]].tolist() == ["validation"]
    assert (epochs.loc[epochs["run_id"] != record["run_id"], "evaluated_on"] == "test").all()
