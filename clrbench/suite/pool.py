"""Worker processes that survive each other's deaths.

joblib's loky executor and ``concurrent.futures.ProcessPoolExecutor`` both treat a worker that
dies hard (``kill -9``, a segfault, the OOM killer) as a broken pool: every task in flight
fails with the same error, the queue is abandoned, and which task killed its worker is
unknown. A benchmark suite needs the opposite, so this pool keeps one pipe per worker: it
knows which task each worker holds, reports a dead worker's task with its exit status, starts
a fresh worker in its place and goes on. Workers are started with loky's process context
(fork + exec: TensorFlow is not fork-safe), ignore SIGINT (the parent decides), exit when the
parent dies, and are replaced after ``max_tasks`` tasks so that memory a long-lived
TensorFlow process accumulates is returned to the system.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from joblib.externals.loky.backend.context import get_context

from clrbench.suite.devices import visible_gpus

STOP_GRACE_S = 2.0
# Runs (or stacks) sharing one GPU at once: one computes while the other is between epochs
# (evaluating, logging on the host). Not measured yet: benchmarks/gpu.sh tries --jobs 1, 2, 4.
JOBS_PER_GPU = 2


def default_jobs(jobs: int | None, tasks: int | None = None) -> int:
    """How many runs train at once: ``jobs`` when given, else one per CPU, or with GPUs
    ``JOBS_PER_GPU`` per GPU (no more than the CPUs; no more than ``tasks``, when known)."""
    if jobs:
        return jobs
    cpus = os.cpu_count() or 1
    gpus = len(visible_gpus())
    if gpus:
        cpus = min(cpus, JOBS_PER_GPU * gpus)
    return cpus if tasks is None else min(tasks, cpus)


@dataclass
class WorkerDied:
    """A worker process ended while holding a task: its exit status, in words."""

    exitcode: int | None
    pid: int | None
    started: float  # time.time() when the task was sent
    clock: float  # time.perf_counter() then, for its duration

    @property
    def cause(self) -> str:
        code = self.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = " (out of memory, or killed)" if name == "SIGKILL" else ""
            return f"worker process {self.pid} killed by {name} (signal {-code}){hint}"
        return f"worker process {self.pid} exited with code {code}"


@dataclass
class TaskError:
    """A task raised in its worker (the worker itself lives on)."""

    error: str
    traceback: str


def _orphan_watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)  # the suite is gone: do not train for nobody


def _worker_main(conn: Connection, parent: int, env: dict[str, str]) -> None:
    os.environ.update(env)  # before any task imports TensorFlow (CUDA_VISIBLE_DEVICES)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_orphan_watch, args=(parent,), daemon=True).start()
    while True:
        try:
            task = conn.recv()
            if task is None:
                return
            fn, args = task
            reply: Any = ("ok", fn(*args))
        except EOFError:
            return
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            reply = ("error", error, traceback.format_exc())
        conn.send(reply)


class _Worker:
    def __init__(self, context: Any, device: str | None = None):
        self.conn, child = context.Pipe()
        self.device = device
        env = {} if device is None else {"CUDA_VISIBLE_DEVICES": device}
        self.process = context.Process(
            target=_worker_main, args=(child, os.getpid(), env), daemon=True
        )
        self.process.start()
        child.close()
        self.tasks = 0
        self.item: Any = None
        self.started = self.clock = 0.0

    def stop(self) -> None:
        """Ask it to finish after its current task (none: at once)."""
        with contextlib.suppress(OSError):
            self.conn.send(None)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.terminate()


class WorkerPool:
    """``jobs`` worker processes; ``map_unordered`` yields ``(item, result)`` as tasks end.

    ``result`` is what ``fn(item)`` returned, a ``TaskError`` or a ``WorkerDied``. With
    ``devices`` (one ``CUDA_VISIBLE_DEVICES`` value per job), each worker sees only its own GPU:
    a new worker takes the device the fewest live workers hold.
    """

    def __init__(self, jobs: int, max_tasks: int | None = None, devices: list[str] | None = None):
        self.jobs = jobs
        self.max_tasks = max_tasks
        self.devices = devices
        self.context = get_context("loky")
        self.workers: list[_Worker] = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def map_unordered(
        self, fn: Callable[..., Any], items: Iterable[Any], args: tuple = ()
    ) -> Iterator[tuple[Any, Any]]:
        pending = list(items)[::-1]
        busy: dict[Connection, _Worker] = {}
        while pending or busy:
            while pending and len(busy) < self.jobs:
                worker = self._idle_worker(busy)
                worker.item, worker.started = pending.pop(), time.time()
                worker.clock = time.perf_counter()
                worker.conn.send((fn, (worker.item, *args)))
                worker.tasks += 1
                busy[worker.conn] = worker
            ready = wait([*busy, *(w.process.sentinel for w in busy.values())])
            for conn in [c for c in busy if c in ready or busy[c].process.sentinel in ready]:
                worker = busy.pop(conn)
                yield worker.item, self._collect(worker)

    def _idle_worker(self, busy: dict[Connection, _Worker]) -> _Worker:
        for worker in list(self.workers):
            if worker.conn in busy:
                continue
            if self.max_tasks is None or worker.tasks < self.max_tasks:
                return worker
            self._retire(worker)  # recycled: its memory goes back to the system
        worker = _Worker(self.context, self._free_device())
        self.workers.append(worker)
        return worker

    def _free_device(self) -> str | None:
        if not self.devices:
            return None
        held = [w.device for w in self.workers]
        return min(dict.fromkeys(self.devices), key=held.count)  # the first least-held

    def _collect(self, worker: _Worker) -> Any:
        try:
            if worker.conn.poll():
                reply = worker.conn.recv()
                if reply[0] == "ok":
                    return reply[1]
                return TaskError(reply[1], reply[2])
        except (EOFError, OSError):
            pass
        worker.process.join(STOP_GRACE_S)
        died = WorkerDied(worker.process.exitcode, worker.process.pid, worker.started, worker.clock)
        self._retire(worker)
        return died

    def _retire(self, worker: _Worker) -> None:
        worker.stop()
        worker.process.join(STOP_GRACE_S)
        worker.kill()
        worker.conn.close()
        self.workers.remove(worker)

    def close(self) -> None:
        """Stop every worker within a few seconds: finish idle ones, terminate busy ones."""
        for worker in self.workers:
            worker.kill()
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                # SIGKILL by pid: loky's Popen has terminate() only, so Process.kill() raises
                with contextlib.suppress(ProcessLookupError):  # it may have ended just now
                    os.kill(worker.process.pid, signal.SIGKILL)
                worker.process.join()
            worker.conn.close()
        self.workers = []
