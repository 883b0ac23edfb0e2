"""The suite runner on real MNIST: tidy store, resume, jobs-independence, Dask, failures."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import tomli_w
from conftest import SMALL_SUITE

from clrbench import load_results
from clrbench.config.experiment import Experiment
from clrbench.errors import ResultsWarning
from clrbench.suite.runner import run_suite

LOG_COLUMNS = ["run_id", "seed", "epoch", "step", "lr", "loss", "accuracy", "batch_size"]


def sorted_log(results) -> pd.DataFrame:
    frame = results.batches[LOG_COLUMNS].astype({"run_id": str})
    return frame.sort_values(["run_id", "step"]).reset_index(drop=True)


@pytest.mark.slow
def test_small_suite_gives_tidy_frames(small_results):
    r = load_results(small_results)
    assert sorted(r.runs["status"]) == ["ok"] * 4
    assert len(r.batches) == 2 * 2 * 2 * 47
    assert len(r.epochs) == 2 * 2 * 2
    assert list(r.batches.columns) == [
        "run_id", "schedule", "seed", "epoch", "step", "lr", "loss", "accuracy", "batch_size",
        "time_s",
    ]  # fmt: skip
    assert r.batches["schedule"].dtype == "category"
    assert r.batches["run_id"].dtype == "category"
    assert r.batches["seed"].dtype == np.int32 and r.batches["step"].dtype == np.int64
    assert list(r.batches["schedule"].cat.categories) == ["constant", "clr-iter"]
    assert set(r.runs["schedule"]) == {"constant", "clr-iter"}
    assert r.runs["tensorflow_version"].notna().all()
    assert r.runs["intra_op_threads"].eq(1).all()
    assert r.runs["dataset_md5"].str.contains("6bbc9ace898e44ae57da46a324031adb").all()


@pytest.mark.slow
def test_batch_losses_average_to_keras_epoch_loss(small_results):
    r = load_results(small_results)
    for (run_id, epoch), rows in r.batches.groupby(["run_id", "epoch"], observed=True):
        keras_loss = r.epochs.set_index(["run_id", "epoch"]).loc[(run_id, epoch), "train_loss"]
        mean = np.average(rows["loss"], weights=rows["batch_size"])
        np.testing.assert_allclose(mean, keras_loss, rtol=1e-5)


@pytest.mark.slow
def test_run_folders_are_complete_and_named(small_results):
    folders = sorted(p.name for p in (small_results / "runs").iterdir())
    assert len(folders) == 4
    for name in folders:
        assert {p.name for p in (small_results / "runs" / name).iterdir()} == {
            "batches.parquet", "epochs.parquet", "run.json",
        }  # fmt: skip
        record = json.loads((small_results / "runs" / name / "run.json").read_text())
        assert name == record["run_id"]
        assert name.startswith(f"{record['label']}-s{record['seed']}-")
    assert (small_results / "experiment.toml").exists()


@pytest.mark.slow
def test_same_log_with_one_job_as_with_two(small_results, tmp_path, mnist_dir):
    run_suite(Experiment.from_dict(SMALL_SUITE), tmp_path, jobs=1, data_dir=str(mnist_dir))
    pd.testing.assert_frame_equal(
        sorted_log(load_results(tmp_path)), sorted_log(load_results(small_results))
    )


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_log(small_results, tmp_path, mnist_dir):
    pytest.importorskip("dask.distributed")
    experiment = Experiment.from_dict(SMALL_SUITE)
    run_suite(experiment, tmp_path, jobs=2, backend="dask", data_dir=str(mnist_dir))
    pd.testing.assert_frame_equal(
        sorted_log(load_results(tmp_path)), sorted_log(load_results(small_results))
    )


@pytest.mark.slow
def test_resume_skips_complete_runs_and_force_retrains(small_results, tmp_path, mnist_dir):
    out = tmp_path / "results"
    shutil.copytree(small_results, out)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    outcome = run_suite(Experiment.from_dict(SMALL_SUITE), out, data_dir=str(mnist_dir))
    assert (outcome.trained, outcome.skipped) == (0, 4)
    assert before == {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}

    changed = {**SMALL_SUITE, "schedule": SMALL_SUITE["schedule"][:1]}
    changed["schedule"] = [{**changed["schedule"][0], "lr": 0.05}]
    experiment = Experiment.from_dict(changed)
    outcome = run_suite(experiment, out, jobs=2, data_dir=str(mnist_dir), force=True)
    assert outcome.trained == 2
    assert len(list((out / "runs").iterdir())) == 6  # the old constant runs are kept apart
    with pytest.warns(ResultsWarning, match="4 runs .* not part of its current experiment"):
        r = load_results(out)  # loads the current experiment only, names the others
    assert sorted(r.runs["run_id"]) == sorted(s.run_id for s in experiment.runs())
    assert np.allclose(r.batches["lr"], 0.05)


@pytest.mark.slow
def test_a_failing_run_is_recorded_and_the_others_go_on(tmp_path, mnist_dir):
    # 1e6 diverges; the wrong data dir on one label is impossible, so make one run fail by
    # asking for an optimizer whose update raises: a non-finite rate is caught at build time,
    # so instead use a data folder that vanishes after validation (a real failure path).
    suite = {
        "experiment": {**SMALL_SUITE["experiment"], "epochs": 1, "seeds": 1},
        "schedule": [
            {"label": "ok", "name": "constant", "lr": 0.1},
            {"label": "diverges", "name": "constant", "lr": 1e6},
        ],
    }
    outcome = run_suite(
        Experiment.from_dict(suite), tmp_path, jobs=1, data_dir=str(tmp_path / "gone")
    )
    assert len(outcome.failed) == 2
    record = json.loads(next((tmp_path / "runs").glob("ok-*/run.json")).read_text())
    assert record["status"] == "failed"
    assert "DataError" in record["error"] and "Traceback" in record["traceback"]

    outcome = run_suite(Experiment.from_dict(suite), tmp_path, jobs=1, data_dir=str(mnist_dir))
    assert outcome.trained == 2  # failed runs are retried on resume
    r = load_results(tmp_path)
    status = dict(zip(r.runs["schedule"], r.runs["status"], strict=True))
    assert status == {"ok": "ok", "diverges": "diverged"}
    assert r.runs.set_index("schedule").loc["diverges", "diverged_step"] < 47


@pytest.mark.slow
def test_cli_run_trains_summarises_reports_and_resumes(tmp_path, mnist_dir, capsys):
    from clrbench.cli.main import main

    config = tmp_path / "exp.toml"
    suite = {**SMALL_SUITE, "experiment": {**SMALL_SUITE["experiment"], "epochs": 1, "seeds": 1}}
    config.write_text(tomli_w.dumps(suite))
    out = tmp_path / "out"
    args = ["run", "--config", str(config), "--out", str(out), "--data-dir", str(mnist_dir)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "Final test accuracy" in captured.out
    assert "constant" in captured.out and "clr-iter" in captured.out
    assert (out / "report" / "report.html").exists() and (out / "report" / "report.md").exists()
    assert main([*args, "--no-report"]) == 0
    assert "2 runs were already complete" in capsys.readouterr().err
    assert main([*args, "--quiet", "--no-report"]) == 0
    assert capsys.readouterr() == (f"{out}\n", "")  # --quiet: the results path, nothing else


@pytest.mark.slow  # run_suite asks git for the commit (a process) before it reads the runs
def test_a_corrupt_existing_run_stops_before_anything_is_written(small_results, tmp_path):
    from clrbench.errors import ResultsError

    out = tmp_path / "results"
    shutil.copytree(small_results, out)
    victim = sorted((out / "runs").iterdir())[0] / "run.json"
    victim.write_text("{broken")
    before = (out / "experiment.toml").read_text()
    other = {**SMALL_SUITE, "experiment": {**SMALL_SUITE["experiment"], "name": "other"}}
    with pytest.raises(ResultsError, match="run.json"):
        run_suite(Experiment.from_dict(other), out, jobs=1)
    assert (out / "experiment.toml").read_text() == before
    assert victim.read_text() == "{broken"
