"""Run an experiment: every (schedule, seed) in worker processes, resumable, failure-isolated.

Workers (``clrbench.suite.pool`` processes, or Dask workers through ``dask.distributed`` futures)
import TensorFlow themselves and return each run's frames; this process, the folder's only
writer (``clrbench.suite.lock``), writes every run atomically into the results store as it
completes, so an interrupted suite loses only the runs in flight. A run whose worker dies
hard (``kill -9``, segfault, OOM) is recorded ``failed`` with the cause and the suite goes on
on a fresh worker; Dask retries a task whose worker was lost (``allowed-failures``) and
reports it failed when that is exhausted. ``jobs=1`` trains in this process: a plain loop
that a debugger can step through.

With stacking on (``stack``: ``clrbench.suite.devices.choose_stack``; auto: where measured
faster), the runs that share a workload train in stacks (``clrbench.train.stacked``), each one
job of the pool, at most the plan's width wide. Stacked runs are another computation (the same
sums in another float order), so their specs name the trainer ("stacked") and their run ids
differ from separate runs'; the stacks are the pending runs grouped by what they share, and a
member's numbers do not depend on which stack it is in, so ``jobs`` changes no log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import time
import traceback
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from clrbench.config.experiment import Experiment, Plan
from clrbench.config.runs import RunSpec
from clrbench.config.workload import STACKED
from clrbench.errors import ConfigError, ResultsError
from clrbench.semantics import TRAINING_SEMANTICS
from clrbench.store import atomic, results
from clrbench.store.records import RunRecord
from clrbench.suite.devices import choose_stack, worker_devices
from clrbench.suite.lock import folder_lock
from clrbench.suite.pool import TaskError, WorkerDied, WorkerPool, default_jobs
from clrbench.suite.provenance import provenance
from clrbench.train import quiet

BACKENDS = ("loky", "dask")
# (spec, its record and frames) per run as each completes; a generator, so it can be closed
Stream = Generator[tuple[RunSpec, "Trained"], None, None]
# What one worker trains at once: a run, or a stack of runs
Task = RunSpec | tuple[RunSpec, ...]
PROGRESS_DIR = ".progress"
STACKING = "stacking.json"  # the plan's stacking choice and its reason
# A worker process is replaced after this many runs (see benchmarks/README.md: worker memory).
RUNS_PER_WORKER = 10


@dataclass
class SuiteOutcome:
    """What a suite did: run records by id (skipped ones included) and where they are."""

    out: Path
    records: dict[str, RunRecord] = field(default_factory=dict)
    trained: int = 0
    skipped: int = 0

    @property
    def failed(self) -> list[RunRecord]:
        return [r for r in self.records.values() if r.status == "failed"]


@dataclass
class Trained:
    """What a worker hands back for one run: its record and frames (None for a failed run)."""

    record: RunRecord
    batches: Any = None  # pd.DataFrame
    epochs: Any = None
    evaluations: Any = None  # stored only for a run evaluated within epochs (eval_every)


def new_record(spec: RunSpec, status: str, **outcome: Any) -> RunRecord:
    """The record of ``spec``'s run: what identifies it, its status and ``outcome``'s fields."""
    return RunRecord(
        run_id=spec.run_id,
        label=spec.label,
        seed=spec.seed,
        schedule=spec.schedule.to_config(),
        config=spec.config(),
        status=status,
        training_semantics=TRAINING_SEMANTICS,
        **outcome,
    )


def failed_run(
    spec: RunSpec,
    error: str,
    trace: str | None = None,
    started: float | None = None,
    clock: float | None = None,
) -> Trained:
    """A ``failed`` run (no frames): the first line of the cause, the traceback when known.
    ``started`` is when it began (``time.time()``), ``clock`` the ``perf_counter()`` then."""
    started = time.time() if started is None else started
    wall_s = 0.0 if clock is None else time.perf_counter() - clock
    record = new_record(
        spec,
        "failed",
        error=error,
        traceback=trace,
        wall_s=wall_s,
        started_at=_iso(started),
        provenance=provenance({}),
    )
    return Trained(record)


def execute(
    spec: RunSpec, data_dir: str | None, progress_dir: str | None, verbose: bool = False
) -> Trained:
    """Train one run in a worker; never raises: a failure becomes a ``failed`` record."""
    from clrbench.train.run import train_run

    quiet.set_verbose(verbose)
    started, clock = time.time(), time.perf_counter()
    on_epoch = _ProgressFile(progress_dir, spec.run_id)
    on_epoch(0, {})  # the run is running
    try:
        result = train_run(spec, data_dir=data_dir, on_epoch=on_epoch)
    except Exception as exc:  # isolate the failure: the other runs go on
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return failed_run(spec, error, traceback.format_exc(), started, clock)
    finally:
        on_epoch.done()  # no longer running, even before this process hands the record back
    return _finished(spec, result)


def execute_stack(
    specs: tuple[RunSpec, ...], data_dir: str | None, progress_dir: str | None, verbose: bool
) -> list[Trained]:
    """Train a stack of runs in a worker, one result each; a failure fails every member. A
    stack that runs out of memory is split in two and each half retried (said in one line on
    this process's stderr and in each member's record)."""
    quiet.set_verbose(verbose)
    progress = [_ProgressFile(progress_dir, spec.run_id) for spec in specs]
    for on_epoch in progress:
        on_epoch(0, {})
    try:
        return _train_stack(specs, data_dir, progress, split=None)
    finally:
        for on_epoch in progress:
            on_epoch.done()


def _train_stack(
    specs: tuple[RunSpec, ...], data_dir: str | None, progress: list, split: str | None
) -> list[Trained]:
    from clrbench.train.stacked import train_stack

    started, clock = time.time(), time.perf_counter()
    try:
        results = train_stack(specs, data_dir=data_dir, on_epoch=progress)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if _out_of_memory(exc) and len(specs) > 1:
            half = len(specs) // 2
            split = (
                f"a stack of {len(specs)} runs ran out of memory ({error[:120]}): split into "
                f"{half} + {len(specs) - half} and retried"
            )
            print(split, file=sys.stderr, flush=True)
            first = _train_stack(specs[:half], data_dir, progress[:half], split)
            return first + _train_stack(specs[half:], data_dir, progress[half:], split)
        trace = traceback.format_exc()
        return [failed_run(spec, error, trace, started, clock) for spec in specs]
    if split is not None:
        for result in results:
            result.info["stack"]["split"] = split
    return [_finished(spec, result) for spec, result in zip(specs, results, strict=True)]


def _out_of_memory(exc: BaseException) -> bool:
    """TensorFlow's ResourceExhaustedError (an allocation failed: a GPU's memory, or the host's)
    or Python's MemoryError."""
    return type(exc).__name__ in ("ResourceExhaustedError", "MemoryError")


def execute_task(task: Task, *args: Any) -> list[Trained]:
    """A run or a stack, in a worker: each member's record and frames."""
    return execute_stack(task, *args) if isinstance(task, tuple) else [execute(task, *args)]


def _members(task: Task) -> tuple[RunSpec, ...]:
    return task if isinstance(task, tuple) else (task,)


def _finished(spec: RunSpec, result: Any) -> Trained:
    """A trained run's record and frames (``result``: a ``clrbench.train.run.RunResult``)."""
    record = new_record(
        spec,
        result.status,
        diverged_step=result.diverged_step,
        wall_s=result.wall_s,
        setup_s=result.setup_s,
        train_s=result.train_s,
        started_at=_iso(result.started_at),
        provenance=provenance(result.info),
    )
    within = spec.workload.eval_every is not None
    return Trained(record, result.batches, result.epochs, result.evaluations if within else None)


class _ProgressFile:
    """``OUT/runs/.progress/<run_id>``: the epochs a run has finished, whether it still runs,
    and the worker's pid. Written by the worker, read by ``clrbench.suite.progress``; cosmetic, so
    it never fails a run."""

    def __init__(self, progress_dir: str | None, run_id: str) -> None:
        self.path = None if progress_dir is None else Path(progress_dir) / run_id
        self.epoch = 0

    def __call__(self, epoch: int, row: dict[str, Any]) -> None:
        self.epoch = epoch
        self._write(running=True)

    def done(self) -> None:
        self._write(running=False)

    def _write(self, running: bool) -> None:
        if self.path is not None:
            state = {"epoch": self.epoch, "running": running, "pid": os.getpid()}
            with contextlib.suppress(OSError):
                atomic.write_text(self.path, json.dumps(state))


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def stacks(todo: list[RunSpec], width: int | None = None, jobs: int = 1) -> list[Task]:
    """The tasks of the pending runs: the stacked trainer's runs grouped by what they share
    (``clrbench.train.stacked.stack_key``, in the plan's order), each group cut into stacks of
    at most ``width`` members (None: one stack), their count rounded up to a multiple of
    ``jobs`` (so that no worker idles at the end) but no more than the runs, the stacks' sizes
    within one of each other; the other runs alone. (A
    member's numbers do not depend on its stack's other members: ``tests/test_stacked.py``.)"""
    from clrbench.train.stacked import stack_key

    groups: dict[tuple, list[RunSpec]] = {}
    order: list[RunSpec | tuple] = []
    for spec in todo:
        if spec.trainer != STACKED:
            order.append(spec)
            continue
        key = stack_key(spec)
        if key not in groups:
            groups[key] = []
            order.append(key)  # the stacks' place in the order
        groups[key].append(spec)
    tasks: list[Task] = []
    for item in order:
        if isinstance(item, RunSpec):
            tasks.append(item)
            continue
        members = groups[item]
        needed = -(-len(members) // (width or len(members)))
        count = min(len(members), -(-needed // jobs) * jobs)  # a multiple of jobs: no idle core
        cuts = [round(i * len(members) / count) for i in range(count + 1)]
        tasks += [tuple(members[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    return tasks


def write_experiment(plan: Plan, out: Path) -> None:
    """Store the resolved experiment as OUT/experiment.toml and its run ids as OUT/manifest.json
    (each written, then renamed)."""
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / "experiment.toml", tomli_w.dumps(plan.experiment.to_dict()))
    if plan.stacking is not None:
        document = json.dumps(plan.stacking.to_dict(), indent=2) + "\n"
        atomic.write_text(out / STACKING, document)
    results.write_manifest(out, plan.run_ids, plan.experiment.name)


def pending_runs(plan: Plan, out: Path, force: bool) -> tuple[list, dict]:
    """Split the runs into those to train and the complete ones kept (failed runs and runs
    trained under an older training semantics retrain)."""
    todo, kept = [], {}
    for spec in plan.runs:
        if not force and results.is_complete(out, spec.run_id):
            record = _kept_record(out, spec.run_id)
            if record.status != "failed" and record.is_current:
                kept[spec.run_id] = record
                continue
        todo.append(spec)
    return todo, kept


def _kept_record(out: Path, run_id: str) -> RunRecord:
    """A complete run's record, or one line saying how to retrain a run whose record is corrupt."""
    folder = results.run_dir(out, run_id)
    try:
        return results.read_record(folder)
    except ResultsError as exc:
        raise ResultsError(
            f"{exc}; delete {folder} to retrain that run, or pass --force to retrain every run"
        ) from None


def _in_process(tasks: list[Task], args: tuple) -> Stream:
    for task in tasks:
        yield from zip(_members(task), execute_task(task, *args), strict=True)


def _local(tasks: list[Task], jobs: int, args: tuple) -> Stream:
    """Worker processes; a task error or a dead worker becomes its runs' failed records."""
    with WorkerPool(jobs, max_tasks=RUNS_PER_WORKER, devices=worker_devices(jobs)) as pool:
        for task, done in pool.map_unordered(execute_task, tasks, args):
            for index, spec in enumerate(_members(task)):
                if isinstance(done, WorkerDied):
                    yield spec, failed_run(spec, done.cause, started=done.started, clock=done.clock)
                elif isinstance(done, TaskError):
                    yield spec, failed_run(spec, done.error, done.traceback)
                else:
                    yield spec, done[index]


def _dask(tasks: list[Task], jobs: int, scheduler: str | None, args: tuple) -> Stream:
    """Dask futures: a task whose worker is lost is retried elsewhere (the scheduler's
    ``allowed-failures``); when that is exhausted it raises KilledWorker: a failed run."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ConfigError("--backend dask needs: pip install 'clrbench[dask]'") from None
    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(Client(scheduler, timeout="30s"))
        else:
            cluster = LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                processes=True,
                # a free port: Dask's default 8787 may belong to another cluster on this
                # machine, and then Dask warns (noise for a clrbench user)
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
            client = stack.enter_context(Client(stack.enter_context(cluster)))
        futures = {
            client.submit(
                execute_task, task, *args, key=f"{_members(task)[0].run_id}-{uuid.uuid4().hex[:8]}"
            ): task
            for task in tasks
        }
        try:
            for future in as_completed(futures):
                members = _members(futures[future])
                try:
                    yield from zip(members, future.result(), strict=True)
                except Exception as exc:  # KilledWorker, a lost connection to the cluster...
                    error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    yield from ((spec, failed_run(spec, error)) for spec in members)
        finally:
            client.cancel(list(futures))


def _store(out: Path, done: Trained) -> RunRecord:
    """Write one run; if its files cannot be written (disk full, file-size limit), record it
    ``failed`` instead; if not even that can be written, stop: ResultsError."""
    record = done.record
    try:
        results.write_run(out, record, done.batches, done.epochs, done.evaluations)
        return record
    except OSError as exc:
        error = f"cannot write the run's files: {type(exc).__name__}: {exc}"
        record = replace(record, status="failed", error=error, traceback=None)
    try:
        results.write_run(out, record, None, None)
    except OSError as exc:
        raise ResultsError(f"{out}: cannot write results ({exc})") from None
    return record


def _leftovers(out: Path) -> None:
    """Remove what a killed writer left (temporary folders, progress files); we hold the lock."""
    runs_root = out / results.RUNS_DIR
    if runs_root.is_dir():
        for path in runs_root.iterdir():
            if path.name == PROGRESS_DIR or atomic.is_temporary(path):
                shutil.rmtree(path, ignore_errors=True)
    for path in out.iterdir():
        if atomic.is_temporary(path):
            path.unlink(missing_ok=True)


def run_suite(
    plan: Plan | Experiment,
    out: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    backend: str = "loky",
    scheduler: str | None = None,
    data_dir: str | None = None,
    force: bool = False,
    progress: Any = None,
    stack: bool | str | None = None,
    stack_width: int | None = None,
) -> SuiteOutcome:
    """Train every pending run of ``plan`` (an Experiment is planned here) into ``out`` and
    return the outcome.

    ``stack``, for an Experiment: plan it stacked (True / "on"), separate (False / "off"), or
    "auto" / None: stacked where that was measured faster, in stacks of ``stack_width`` members
    at most (None: the measured width; ``clrbench.suite.devices.choose_stack``). A Plan has
    settled that already.

    Holds ``out``'s writer lock throughout (BusyError if another writer has it); a command that
    holds it already (``run``: through its report) calls :func:`train_locked`.
    ``progress`` (optional) gets ``already_complete(kept, todo)``, ``start(todo)`` and
    ``finished(record)`` calls; see ``clrbench.suite.progress``.
    """
    out = Path(out)
    _check_options(backend, jobs)  # before the lock creates the folder
    if not isinstance(plan, Plan):
        from clrbench.config.workloads import name_of

        plan = plan.plan(stack=choose_stack(stack, name_of(plan.workload), stack_width))
    elif stack is not None or stack_width is not None:
        raise ConfigError("run_suite: stack applies to an Experiment; a Plan is stacked or not")
    with folder_lock(out, "run"):
        return train_locked(
            plan,
            out,
            jobs=jobs,
            backend=backend,
            scheduler=scheduler,
            data_dir=data_dir,
            force=force,
            progress=progress,
        )


def train_locked(
    plan: Plan,
    out: Path,
    *,
    jobs: int | None = None,
    backend: str = "loky",
    scheduler: str | None = None,
    data_dir: str | None = None,
    force: bool = False,
    progress: Any = None,
) -> SuiteOutcome:
    """:func:`run_suite` for a caller that holds ``out``'s lock (``folder_lock``): the plan's
    pending runs, a stack of them (``stacks``) one task."""
    jobs = _check_options(backend, jobs)
    _leftovers(out)
    todo, kept = pending_runs(plan, out, force)  # a corrupt old record stops us here
    write_experiment(plan, out)
    outcome = SuiteOutcome(out=out, records=dict(kept), skipped=len(kept))
    if progress is not None and kept:
        progress.already_complete(len(kept), len(todo))
    if not todo:
        return outcome
    progress_dir = out / results.RUNS_DIR / PROGRESS_DIR
    progress_dir.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        progress.start(todo, progress_dir)
    args = (data_dir, str(progress_dir), quiet.verbose())
    try:
        width = plan.stacking.width if plan.stacking is not None else None
        tasks = stacks(todo, width, jobs)
        with contextlib.closing(_stream(tasks, backend, jobs, scheduler, args)) as stream:
            for _spec, done in stream:
                record = _store(out, done)
                outcome.records[record.run_id] = record
                outcome.trained += 1
                if progress is not None:
                    progress.finished(record)
    finally:
        shutil.rmtree(progress_dir, ignore_errors=True)
    return outcome


def _check_options(backend: str, jobs: int | None) -> int:
    """The number of workers (ConfigError for an unknown backend or fewer than one job)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose loky or dask")
    jobs = default_jobs(jobs)
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    return jobs


def _stream(
    tasks: list[Task], backend: str, jobs: int, scheduler: str | None, args: tuple
) -> Stream:
    jobs = min(jobs, len(tasks))
    if backend == "dask":
        return _dask(tasks, jobs, scheduler, args)
    if jobs == 1:
        return _in_process(tasks, args)
    return _local(tasks, jobs, args)
