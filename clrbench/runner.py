"""Run an experiment: every (schedule, seed) through joblib, resumable, failure-isolated.

Workers (loky processes, or Dask workers through joblib's Dask backend) import TensorFlow
themselves and return each run's frames; this process writes every run atomically into the
results store as it completes, so an interrupted suite loses only the runs in flight.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import subprocess
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import tomli_w
from joblib import Parallel, delayed, parallel_config

from clrbench import results
from clrbench.errors import ConfigError
from clrbench.experiment import Experiment, RunSpec
from clrbench.semantics import TRAINING_SEMANTICS

BACKENDS = ("loky", "dask")
PROGRESS_DIR = ".progress"
PACKAGES = ("clrbench", "tensorflow", "keras", "numpy", "pandas", "pyarrow", "joblib")


@dataclass
class SuiteOutcome:
    """What a suite did: run records by id (skipped ones included) and where they are."""

    out: Path
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    trained: int = 0
    skipped: int = 0

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records.values() if r["status"] == "failed"]


def execute(spec: RunSpec, data_dir: str | None, progress_dir: str | None) -> dict[str, Any]:
    """Train one run in a worker; never raises: a failure becomes a ``failed`` record."""
    from clrbench.train import train_run

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.time()
    record = {"run_id": spec.run_id, "label": spec.label, "seed": spec.seed}
    record |= {"schedule": spec.schedule.to_config(), "config": spec.config()}
    record["training_semantics"] = TRAINING_SEMANTICS
    on_epoch = _progress_writer(progress_dir, spec.run_id)
    if on_epoch is not None:
        on_epoch(0, {})  # the run is running
    try:
        result = train_run(spec, data_dir=data_dir, on_epoch=on_epoch)
    except Exception as exc:  # isolate the failure: the other runs go on
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        record |= {"status": "failed", "error": error, "traceback": traceback.format_exc()}
        record |= {"wall_s": time.time() - started, "started_at": _iso(started)}
        record["provenance"] = provenance({})
        return {"record": record, "batches": None, "epochs": None}
    record |= {
        "status": result.status,
        "error": None,
        "diverged_step": result.diverged_step,
        "wall_s": result.wall_s,
        "setup_s": result.setup_s,
        "train_s": result.train_s,
        "started_at": _iso(result.started_at),
        "provenance": provenance(result.info),
    }
    return {"record": record, "batches": result.batches, "epochs": result.epochs}


def _progress_writer(progress_dir: str | None, run_id: str):
    if progress_dir is None:
        return None
    path = Path(progress_dir) / run_id

    def write(epoch: int, row: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # progress is cosmetic; never fail a run on it
            path.write_text(json.dumps({"epoch": epoch}))

    return write


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def provenance(info: dict[str, Any]) -> dict[str, Any]:
    """Flat provenance of this process: versions, CPU, threads, data checksums, git commit."""
    threads = info.get("threads", {})
    checksums = info.get("dataset_checksums", {})
    record: dict[str, Any] = {f"{name}_version": _version(name) for name in PACKAGES}
    record |= {
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "intra_op_threads": threads.get("intra_op"),
        "inter_op_threads": threads.get("inter_op"),
        "dataset_md5": " ".join(f"{k}:{v}" for k, v in sorted(checksums.items())) or None,
        "data_source": info.get("data_source"),
        "test_examples": info.get("test_examples"),
        "evaluated_on": info.get("evaluated_on"),
        "split_sha256": (info.get("split") or {}).get("validation_sha256"),
        "git_commit": git_commit(),
        "hostname": platform.node(),
    }
    return record


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what platform knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """The clrbench checkout's commit (with ``-dirty``), when it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit or None


def write_experiment(experiment: Experiment, out: Path) -> None:
    """Store the resolved experiment as OUT/experiment.toml and its run ids as OUT/manifest.json
    (each written, then renamed)."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".experiment.toml.{os.getpid()}"
    tmp.write_text(tomli_w.dumps(experiment.to_dict()))
    tmp.replace(out / "experiment.toml")
    results.write_manifest(out, [spec.run_id for spec in experiment.runs()], experiment.name)


def pending_runs(experiment: Experiment, out: Path, force: bool) -> tuple[list, dict]:
    """Split the runs into those to train and the complete ones kept (failed runs and runs
    trained under an older training semantics retrain)."""
    todo, kept = [], {}
    for spec in experiment.runs():
        if not force and results.is_complete(out, spec.run_id):
            record = results.read_record(results.run_dir(out, spec.run_id))
            if record["status"] != "failed" and results.is_current(record):
                kept[spec.run_id] = record
                continue
        todo.append(spec)
    return todo, kept


@contextlib.contextmanager
def backend_context(backend: str, jobs: int, scheduler: str | None) -> Iterator[None]:
    """joblib's loky backend, or its Dask backend on a cluster (a LocalCluster by default)."""
    if backend == "loky":
        with parallel_config(backend="loky", n_jobs=jobs):
            yield
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("--backend dask needs: pip install 'clrbench[dask]'") from None
    with contextlib.ExitStack() as stack:
        if scheduler:
            stack.enter_context(Client(scheduler, timeout="30s"))
        else:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=jobs,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            )
            stack.enter_context(Client(cluster))
        stack.enter_context(parallel_config(backend="dask", n_jobs=jobs))
        yield


def run_suite(
    experiment: Experiment,
    out: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    backend: str = "loky",
    scheduler: str | None = None,
    data_dir: str | None = None,
    force: bool = False,
    progress: Any = None,
) -> SuiteOutcome:
    """Train every pending run of ``experiment`` into ``out`` and return the outcome.

    ``progress`` (optional) gets ``start(todo)``, ``finished(record)`` calls; see
    ``clrbench.progress``.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose loky or dask")
    out = Path(out)
    jobs = jobs or os.cpu_count() or 1
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    todo, kept = pending_runs(experiment, out, force)  # a corrupt old record stops us here
    write_experiment(experiment, out)
    outcome = SuiteOutcome(out=out, records=dict(kept), skipped=len(kept))
    if not todo:
        return outcome
    progress_dir = out / results.RUNS_DIR / PROGRESS_DIR
    progress_dir.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        progress.start(todo, progress_dir)
    tasks = (delayed(execute)(spec, data_dir, str(progress_dir)) for spec in todo)
    with backend_context(backend, min(jobs, len(todo)), scheduler):
        for done in Parallel(return_as="generator_unordered")(tasks):
            record = done["record"]
            results.write_run(out, record, done["batches"], done["epochs"])
            outcome.records[record["run_id"]] = record
            outcome.trained += 1
            if progress is not None:
                progress.finished(record)
    for leftover in progress_dir.iterdir():
        leftover.unlink(missing_ok=True)
    progress_dir.rmdir()
    return outcome
