"""`export --mlflow URI`: every run as an MLflow run nested under one run per results folder,
read back from a real local tracking store (SQLite) with MlflowClient."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, load_synthetic

from clrbench.cli.main import main
from clrbench.semantics import TRAINING_SEMANTICS
from clrbench.store.results import load_results

# Round trips through a real MLflow store (a database, its migrations, MLflow itself): the slow
# tier, like the other exports of real runs.
pytestmark = pytest.mark.slow
mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

LABELS = ("constant", "one-cycle")


STEPS = 4 * 100  # 4 epochs of 12,800 images: 1,200 per-step values, more than one MLflow batch


@pytest.fixture(scope="module")
def synthetic_folder(tmp_path_factory) -> Path:
    """2 schedules x 2 seeds x 4 epochs of 100 steps; one run failed; a report folder."""
    out = tmp_path_factory.mktemp("mlflow") / "results"
    load_synthetic().write_synthetic_results(
        out,
        labels=LABELS,
        seeds=2,
        epochs=4,
        train_size=12_800,
        outcomes={("one-cycle", 1): "failed"},
    )
    (out / "report").mkdir()
    (out / "report" / "report.md").write_text("# the report\n")
    return out


@pytest.fixture(autouse=True)
def _artifacts_in_tmp_path(tmp_path, monkeypatch):
    """MLflow puts a database store's artifacts in ./mlruns of the working directory: keep
    them out of the repository."""
    monkeypatch.chdir(tmp_path)


def export(capsys, folder: Path, uri: str, *options: str) -> tuple[int, str, str]:
    code = main(["export", str(folder), "--mlflow", uri, *options])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An empty SQLite tracking store, its schema already created (MLflow's migrations take
    seconds; each test copies the file instead of migrating its own)."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store_uri(empty_store, tmp_path) -> str:
    """A fresh, empty tracking store of the test's own."""
    path = tmp_path / "mlflow.db"
    shutil.copyfile(empty_store, path)
    return f"sqlite:///{path}"


def runs_of(client: MlflowClient, experiment: str) -> tuple[object, list]:
    """The parent run and the nested runs of the experiment (active ones only)."""
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id], max_results=1000)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1  # nothing outside the folder's parent
    return parent, children


def history(client: MlflowClient, run_id: str, key: str) -> pd.DataFrame:
    points = client.get_metric_history(run_id, key)
    frame = pd.DataFrame({"step": [p.step for p in points], "value": [p.value for p in points]})
    return frame.sort_values("step", ignore_index=True)


def assert_run_matches_the_parquet(client, child, results) -> None:
    """Params, tags and every metric history of one MLflow run against the results folder."""
    tags, params = child.data.tags, child.data.params
    run_id = tags["clrbench.run_id"]
    row = results.runs.set_index("run_id").loc[run_id]
    assert tags["clrbench.status"] == row["status"]
    assert tags["clrbench.version"] == row["clrbench_version"]
    assert tags["clrbench.training_semantics"] == str(TRAINING_SEMANTICS)
    assert tags["mlflow.runName"] == f"{row['schedule']}/seed{row['seed']}"
    assert params["schedule"] == row["schedule"] and params["seed"] == str(row["seed"])
    assert params["schedule_name"] == row["schedule_name"]
    assert params["granularity"] == row["granularity"]
    for name, value in json.loads(row["params"]).items():
        assert params[f"schedule.{name}"] == str(value)
    for name in ("epochs", "batch_size", "optimizer", "dataset", "trainer"):
        assert params[name] == str(row[name])
    batches = results.batches[results.batches["run_id"] == run_id]
    epochs = results.epochs[results.epochs["run_id"] == run_id]
    if row["status"] == "failed":
        assert child.info.status == "FAILED" and child.data.metrics == {}
        return
    assert child.info.status == "FINISHED"
    for key in ("lr", "loss", "accuracy"):
        logged = history(client, child.info.run_id, key)
        assert len(logged) == len(batches)  # one point per iteration
        np.testing.assert_array_equal(logged["step"], batches["step"])
        np.testing.assert_array_equal(logged["value"], batches[key])  # float64 kept exactly
    for key in ("train_loss", "train_accuracy"):
        logged = history(client, child.info.run_id, key)
        np.testing.assert_array_equal(logged["step"], epochs["step"])  # the epoch's last step
        np.testing.assert_array_equal(logged["value"], epochs[key])
    evaluations = results.evaluations[results.evaluations["run_id"] == run_id]
    for key in ("test_accuracy", "test_loss"):  # every evaluation: the epochs' ends, and within
        logged = history(client, child.info.run_id, key)
        np.testing.assert_array_equal(logged["step"], evaluations["step"])
        np.testing.assert_array_equal(logged["value"], evaluations[key])


def test_export_logs_every_run_under_one_parent_and_again_adds_nothing(
    store_uri, synthetic_folder, tmp_path, capsys
):
    uri = store_uri
    code, out, _ = export(capsys, synthetic_folder, uri)
    assert code == 0 and "4 runs added, 0 already there" in out
    client = MlflowClient(tracking_uri=uri)
    parent, children = runs_of(client, "clrbench-synthetic")
    results = load_results(synthetic_folder)
    assert sorted(c.data.tags["clrbench.run_id"] for c in children) == sorted(
        results.runs["run_id"].astype(str)
    )
    for child in children:
        assert_run_matches_the_parquet(client, child, results)
    assert parent.data.params["experiment.epochs"] == "4"
    assert parent.data.params["schedules"] == "constant,one-cycle"
    (artifact,) = client.list_artifacts(parent.info.run_id, "report")
    assert artifact.path == "report/report.md"

    code, out, _ = export(capsys, synthetic_folder, uri)
    assert code == 0 and "0 runs added, 4 already there" in out
    again_parent, again = runs_of(client, "clrbench-synthetic")
    assert again_parent.info.run_id == parent.info.run_id
    assert sorted(c.info.run_id for c in again) == sorted(c.info.run_id for c in children)
    for child in again:
        assert len(client.get_metric_history(child.info.run_id, "loss")) in (0, STEPS)
    assert len(client.list_artifacts(parent.info.run_id, "report")) == 1


def test_an_interrupted_export_is_completed_not_duplicated(
    store_uri, synthetic_folder, tmp_path, capsys
):
    uri = store_uri
    assert export(capsys, synthetic_folder, uri)[0] == 0
    client = MlflowClient(tracking_uri=uri)
    parent, children = runs_of(client, "clrbench-synthetic")
    # an export killed while logging a run: the run exists, its `exported` tag does not
    victim = next(c for c in children if c.data.tags["clrbench.status"] == "ok")
    client.delete_tag(victim.info.run_id, "clrbench.exported")
    code, out, _ = export(capsys, synthetic_folder, uri)
    assert code == 0 and "1 runs added, 3 already there" in out
    _, now = runs_of(client, "clrbench-synthetic")
    assert len(now) == 4 and victim.info.run_id not in {c.info.run_id for c in now}
    results = load_results(synthetic_folder)
    for child in now:
        assert_run_matches_the_parquet(client, child, results)


def test_a_new_run_in_the_folder_is_added_to_the_same_parent(store_uri, tmp_path, capsys):
    folder = tmp_path / "results"
    write = load_synthetic().write_synthetic_results
    write(folder, labels=("constant",), seeds=1, epochs=1, train_size=1280)
    uri = store_uri
    assert "1 runs added" in export(capsys, folder, uri)[1]
    write(folder, labels=("constant",), seeds=2, epochs=1, train_size=1280)  # a resumed suite
    assert "1 runs added, 1 already there" in export(capsys, folder, uri)[1]
    _, children = runs_of(MlflowClient(tracking_uri=uri), "clrbench-synthetic")
    assert sorted(c.data.params["seed"] for c in children) == ["0", "1"]


def test_validation_metrics_are_named_as_such(store_uri, tmp_path, capsys):
    folder = tmp_path / "results"
    load_synthetic().write_synthetic_results(
        folder, labels=("constant",), seeds=1, epochs=1, train_size=1280
    )
    for record in folder.glob("runs/*/run.json"):  # as if trained with evaluate_on = "validation"
        document = json.loads(record.read_text())
        document["config"] |= {"evaluate_on": "validation", "validation_size": 640}
        record.write_text(json.dumps(document))
    uri = store_uri
    assert export(capsys, folder, uri)[0] == 0
    _, (child,) = runs_of(MlflowClient(tracking_uri=uri), "clrbench-synthetic")
    assert {"validation_accuracy", "validation_loss"} <= set(child.data.metrics)
    assert "test_accuracy" not in child.data.metrics
    assert child.data.params["evaluate_on"] == "validation"


def test_experiment_name_option(store_uri, synthetic_folder, tmp_path, capsys):
    uri = store_uri
    code, out, _ = export(capsys, synthetic_folder, uri, "--mlflow-experiment", "mine")
    assert code == 0 and "experiment 'mine'" in out
    assert MlflowClient(tracking_uri=uri).get_experiment_by_name("mine") is not None


def run_cli(argv: list[str], block_mlflow: bool = False) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter; ``block_mlflow``: as if MLflow were not installed
    (a None entry in sys.modules makes its import fail with ImportError)."""
    code = (
        "import sys\n"
        + ("sys.modules['mlflow'] = None\n" if block_mlflow else "")
        + "from clrbench.cli.main import main\n"
        + f"code = main({argv!r})\n"
        + "print('MLFLOW_LOADED', 'mlflow' in sys.modules and sys.modules['mlflow'] is not None)\n"
        + "sys.exit(code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )


def test_without_mlflow_one_line_naming_the_extra_and_exit_2(synthetic_folder, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # no store: nothing may create it
    done = run_cli(["export", str(synthetic_folder), "--mlflow", uri], True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "pip install 'clrbench[mlflow]'" in done.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_check_and_list_do_not_import_mlflow(synthetic_folder, tmp_path):
    done = run_cli(["list"])
    assert done.returncode == 0 and "MLFLOW_LOADED False" in done.stdout
    folder = shutil.copytree(synthetic_folder, tmp_path / "results")
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", str(folder), "-o", str(baseline), "--allow-few-seeds"]) == 0
    argv = ["check", str(folder), "--baseline", str(baseline), "--allow-few-seeds"]
    done = run_cli(argv + ["--junit", str(tmp_path / "check.xml")])
    assert "MLFLOW_LOADED False" in done.stdout, done.stdout + done.stderr
    assert (tmp_path / "check.xml").is_file()


def test_export_of_a_trained_suite(store_uri, small_results, tmp_path, capsys):
    uri = store_uri
    code, out, _ = export(capsys, small_results, uri)
    assert code == 0 and "4 runs added" in out
    client = MlflowClient(tracking_uri=uri)
    parent, children = runs_of(client, "clrbench-small")
    results = load_results(small_results)
    assert len(children) == len(results.runs) == 4
    for child in children:
        assert_run_matches_the_parquet(client, child, results)
        assert len(client.get_metric_history(child.info.run_id, "lr")) == 2 * 47
    assert "0 runs added, 4 already there" in export(capsys, small_results, uri)[1]
    assert len(runs_of(client, "clrbench-small")[1]) == 4


def test_evaluations_within_epochs_are_logged(store_uri, eval_every_results, capsys):
    """A run trained with --eval-every 10: test_accuracy and test_loss at every evaluation
    (6 per run, the epochs' ends included), train metrics at the epochs' ends only."""
    code, out, _ = export(capsys, eval_every_results, store_uri)
    assert code == 0 and "2 runs added" in out
    client = MlflowClient(tracking_uri=store_uri)
    _, children = runs_of(client, "clrbench-quick")
    results = load_results(eval_every_results)
    for child in children:
        assert_run_matches_the_parquet(client, child, results)
        logged = history(client, child.info.run_id, "test_accuracy")
        assert logged["step"].tolist() == [9, 19, 23, 29, 39, 47]
        assert history(client, child.info.run_id, "train_loss")["step"].tolist() == [23, 47]


def test_artifacts_go_beside_the_store_not_into_the_working_folder(
    empty_store, synthetic_folder, tmp_path, capsys, monkeypatch
):
    store = tmp_path / "store"
    store.mkdir()
    shutil.copyfile(empty_store, store / "mlflow.db")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = export(capsys, synthetic_folder, f"sqlite:///{store / 'mlflow.db'}")
    assert code == 0, err
    assert not (elsewhere / "mlruns").exists()
    uploaded = list((store / "mlruns").rglob("report.md"))
    assert len(uploaded) == 1 and uploaded[0].read_text() == "# the report\n"
