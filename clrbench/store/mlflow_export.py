"""A results folder as MLflow runs: one parent run per results folder, one nested run per
clrbench run.

Each nested run has as parameters the schedule (label, registry name, granularity and every
parameter as ``schedule.<name>``), the workload settings and the seed; as metrics the per-step
``lr``, ``loss`` and ``accuracy`` (that batch's own values) with MLflow's ``step`` = the
optimizer step, counted from 0 across the run, and the per-epoch ``train_loss``,
``train_accuracy``, logged at the step that ends the epoch, so both share one step axis (as in
the TensorBoard export), and ``test_loss``/``test_accuracy`` (``validation_loss``/
``validation_accuracy`` for an experiment evaluated on its validation split) at every evaluation:
each epoch's end, and for a run with ``eval_every`` the evaluations within epochs too, each at
the last step trained before it; timestamps are the
run's start plus ``time_s``. Tags: status, run id, clrbench version, training semantics. The
parent holds the experiment's settings and, as an artifact, the folder's report if it has one.

Idempotent: runs are found again by tags (``clrbench.folder_id``, a hash of the folder's
resolved path, and ``clrbench.run_id``), so exporting again adds only runs the tracking store
does not have yet. A run counts as exported once its ``clrbench.exported`` tag is set, which
happens last; a run left half-logged by an interrupted export is deleted and logged again.
A run's metrics go in one ``MlflowClient.log_batch`` call, which splits them into requests
within MLflow's batch limits.

MLflow is an optional extra (``pip install 'clrbench[mlflow]'``) imported only here.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from clrbench.errors import ConfigError, ResultsError
from clrbench.semantics import TRAINING_SEMANTICS
from clrbench.store.results import Results

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

BATCH_METRICS = ("lr", "loss", "accuracy")
EPOCH_METRICS = ("train_loss", "train_accuracy")  # from the epochs frame
EVALUATION_METRICS = ("test_loss", "test_accuracy")  # from the evaluations frame
WORKLOAD_PARAMS = (
    "dataset",
    "epochs",
    "batch_size",
    "train_size",
    "optimizer",
    "lr_mode",
    "validation_size",
    "split_seed",
    "evaluate_on",
    "trainer",
)
TAG = "clrbench."  # prefix of clrbench's own tags
EXPORTED = TAG + "exported"  # set last: the run is complete in the tracking store
MAX_ERROR_TAG = 5000  # characters; MLflow's tag values hold at most 8,000
REPORT_DIR = "report"  # the folder's report (written by `report`), uploaded with the parent


def require_mlflow() -> None:
    """ConfigError naming the extra unless MLflow can be imported."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError(
            "export: --mlflow needs MLflow (pip install 'clrbench[mlflow]')"
        ) from None


DATABASES = ("sqlite", "postgresql", "mysql", "mssql")  # SQLAlchemy stores, with optional +driver


def check_tracking_uri(uri: str) -> None:
    """ConfigError in one line unless ``uri`` names a tracking store MLflow 3 accepts: a
    database (``sqlite:///mlflow.db``), a server (``http(s)://``), Databricks, or the file
    store when ``MLFLOW_ALLOW_FILE_STORE=true`` (MLflow's own refusal is a paragraph)."""
    scheme = urlsplit(uri).scheme.split("+")[0]
    if scheme in (*DATABASES, "http", "https", "databricks") or uri == "databricks":
        return
    if scheme in ("", "file") or len(scheme) == 1:  # a path (c:\\ on Windows) or file://
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() == "true":
            return
        raise ConfigError(
            f"--mlflow {uri}: not a tracking store MLflow accepts; give a database "
            "(sqlite:///mlflow.db) or a tracking server (http://host:5000) (MLflow 3 keeps its "
            "file store only with MLFLOW_ALLOW_FILE_STORE=true)"
        )
    raise ConfigError(
        f"--mlflow {uri}: unknown tracking URI scheme {scheme!r}; give a database "
        "(sqlite:///mlflow.db) or a tracking server (http://host:5000)"
    )


def artifact_location(uri: str) -> str | None:
    """Where a new experiment's artifacts go: ``mlruns/`` beside a SQLite store's file (MLflow's
    default, ``./mlruns``, would land in whatever folder the export ran from); None (the
    store's or server's own default) for every other store."""
    parts = urlsplit(uri)
    if parts.scheme.split("+")[0] != "sqlite" or parts.path in ("", "/", "/:memory:"):
        return None
    database = Path(parts.path[1:])  # sqlite:///relative.db, sqlite:////absolute.db
    return (database.resolve().parent / "mlruns").as_uri()


@dataclass
class MlflowExport:
    """What an export did: the MLflow experiment, the parent run, the runs added and kept."""

    experiment_id: str
    parent_run_id: str
    added: int
    already_there: int


def folder_id(results: Results) -> str:
    """The identity of a results folder in the tracking store: a hash of its resolved path."""
    return hashlib.sha256(str(Path(results.path).resolve()).encode()).hexdigest()[:16]


def export_mlflow(results: Results, tracking_uri: str, experiment_name: str) -> MlflowExport:
    """Log ``results`` to the MLflow tracking store at ``tracking_uri`` (see the module)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        experiment_id = _experiment(client, experiment_name, tracking_uri)
        parent = _parent_run(client, experiment_id, results)
        done = _exported_children(client, experiment_id, folder_id(results))
        added = 0
        for run in results.runs.itertuples(index=False):
            if str(run.run_id) not in done:
                _log_child(client, experiment_id, parent, results, run._asdict())
                added += 1
    except MlflowException as exc:
        first_line = str(exc.message).strip().splitlines()[0]
        raise ResultsError(f"--mlflow {tracking_uri}: {first_line}") from None
    return MlflowExport(experiment_id, parent, added, len(results.runs) - added)


def _experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name, artifact_location(tracking_uri))
    if experiment.lifecycle_stage != "active":
        raise ResultsError(f"MLflow experiment {name!r} is deleted; restore it or pick another")
    return experiment.experiment_id


def _search(client: MlflowClient, experiment_id: str, filter_string: str) -> list[Any]:
    """Every run matching ``filter_string`` (all pages)."""
    found, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string, max_results=1000, page_token=token
        )
        found += list(page)
        token = page.token
        if not token:
            return found


def _parent_run(client: MlflowClient, experiment_id: str, results: Results) -> str:
    """The folder's parent run: found by its tags, else created with the experiment's settings."""
    identity = folder_id(results)
    query = f"tags.`{TAG}folder_id` = '{identity}' and tags.`{TAG}role` = 'folder'"
    for run in _search(client, experiment_id, query):
        if run.data.tags.get(EXPORTED) == "true":
            _upload_report(client, run.info.run_id, results)
            return run.info.run_id
        client.delete_run(run.info.run_id)  # left half-made by an interrupted export
    settings = results.experiment.get("experiment", {})
    name = str(settings.get("name", Path(results.path).name))
    tags = {
        "mlflow.runName": name,
        f"{TAG}role": "folder",
        f"{TAG}folder_id": identity,
        f"{TAG}folder": str(Path(results.path).resolve()),
        f"{TAG}training_semantics": str(TRAINING_SEMANTICS),
    }
    run = client.create_run(experiment_id, tags=tags)
    params = {f"experiment.{key}": value for key, value in settings.items()}
    params["schedules"] = ",".join(results.schedules)
    _log_params(client, run.info.run_id, params)
    _upload_report(client, run.info.run_id, results)
    client.set_terminated(run.info.run_id)
    client.set_tag(run.info.run_id, EXPORTED, "true")
    return run.info.run_id


def _upload_report(client: MlflowClient, run_id: str, results: Results) -> None:
    """The folder's report as the parent's artifact ``report/``, unless it is there already."""
    report = Path(results.path) / REPORT_DIR
    if report.is_dir() and any(report.iterdir()) and not client.list_artifacts(run_id, REPORT_DIR):
        client.log_artifacts(run_id, str(report), artifact_path=REPORT_DIR)


def _exported_children(client: MlflowClient, experiment_id: str, identity: str) -> set[str]:
    """clrbench run ids already exported from this folder; half-logged ones are deleted."""
    done = set()
    query = f"tags.`{TAG}folder_id` = '{identity}' and tags.`{TAG}role` = 'run'"
    for run in _search(client, experiment_id, query):
        if run.data.tags.get(EXPORTED) == "true":
            done.add(run.data.tags[f"{TAG}run_id"])
        else:
            client.delete_run(run.info.run_id)
    return done


def _start_ms(started_at: Any) -> int | None:
    try:
        return int(datetime.fromisoformat(str(started_at)).timestamp() * 1000)
    except ValueError:
        return None


def run_params(run: dict[str, Any]) -> dict[str, Any]:
    """One run's MLflow parameters: the schedule and its parameters, the workload, the seed."""
    params: dict[str, Any] = {
        "schedule": run["schedule"],
        "schedule_name": run["schedule_name"],
        "granularity": run["granularity"],
        "seed": run["seed"],
    }
    for name, value in json.loads(run["params"]).items():
        params[f"schedule.{name}"] = value
    for name in WORKLOAD_PARAMS:
        params[name] = run.get(name)
    return params


def run_tags(run: dict[str, Any], identity: str, parent_run_id: str) -> dict[str, str]:
    tags = {
        "mlflow.parentRunId": parent_run_id,
        "mlflow.runName": f"{run['schedule']}/seed{run['seed']}",
        f"{TAG}role": "run",
        f"{TAG}folder_id": identity,
        f"{TAG}run_id": str(run["run_id"]),
        f"{TAG}status": str(run["status"]),
        f"{TAG}version": str(run.get("clrbench_version")),
        f"{TAG}training_semantics": str(TRAINING_SEMANTICS),
    }
    if isinstance(run.get("error"), str):
        tags[f"{TAG}error"] = run["error"][:MAX_ERROR_TAG]
    return tags


def _log_child(
    client: MlflowClient,
    experiment_id: str,
    parent_run_id: str,
    results: Results,
    run: dict[str, Any],
) -> None:
    from mlflow.entities import RunStatus

    start = _start_ms(run.get("started_at"))
    tags = run_tags(run, folder_id(results), parent_run_id)
    child = client.create_run(experiment_id, start_time=start, tags=tags).info.run_id
    _log_params(client, child, run_params(run))
    run_id = run["run_id"]
    batches = results.batches[results.batches["run_id"] == run_id]
    epochs = results.epochs[results.epochs["run_id"] == run_id]
    evaluations = results.evaluations[results.evaluations["run_id"] == run_id]
    start_s = (start or 0) / 1000
    validation = run.get("evaluate_on") == "validation"
    names = {c: c.replace("test_", "validation_") if validation else c for c in EVALUATION_METRICS}
    metrics = itertools.chain(
        _metrics(batches, BATCH_METRICS, {}, start_s),
        _metrics(epochs, EPOCH_METRICS, {}, start_s),
        _metrics(evaluations, EVALUATION_METRICS, names, start_s),
    )
    _log_metrics(client, child, metrics)
    status = RunStatus.FINISHED if run["status"] == "ok" else RunStatus.FAILED
    wall_s = float(run.get("wall_s") or np.nan)
    end = None if start is None or np.isnan(wall_s) else start + int(wall_s * 1000)
    client.set_terminated(child, RunStatus.to_string(status), end_time=end)
    client.set_tag(child, EXPORTED, "true")  # last: everything above is in the store


def _metrics(
    frame: pd.DataFrame, columns: tuple[str, ...], names: dict[str, str], start_s: float
) -> Iterator[Any]:
    """MLflow Metric objects of ``columns`` of ``frame``, one per row, at ``step``."""
    from mlflow.entities import Metric

    if frame.empty:
        return
    steps = frame["step"].to_numpy().tolist()
    times = ((start_s + frame["time_s"].to_numpy()) * 1000).astype(np.int64).tolist()
    for column in columns:
        key = names.get(column, column)
        values = frame[column].to_numpy(dtype=np.float64).tolist()
        for value, timestamp, step in zip(values, times, steps, strict=True):
            yield Metric(key, value, timestamp, step)


def _log_metrics(client: MlflowClient, run_id: str, metrics: Iterator[Any]) -> None:
    """All of a run's metric values in one ``log_batch``: MlflowClient splits them into
    requests within MLflow's batch limit (1,000 values; it does so since MLflow 1.27)."""
    client.log_batch(run_id, metrics=list(metrics), synchronous=True)


def _param_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "None"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    """Parameters as strings (None as "None"), in one ``log_batch`` (split by MlflowClient)."""
    from mlflow.entities import Param

    entities = [Param(key, _param_value(value)) for key, value in params.items()]
    client.log_batch(run_id, params=entities, synchronous=True)
