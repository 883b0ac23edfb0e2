"""The fast tier's promise, enforced: a session of fast tests trains no model, starts no process.

A pytest plugin (tests/conftest.py loads it). It watches every test not marked ``slow``, in any
session: while such a test runs (setup, call and teardown), these raise
:class:`FastTierViolation` naming the test:

- clrbench's trainers: ``clrbench.train.run.train_run``, ``clrbench.train.loop.train_loop``,
  ``clrbench.train.lr_sweep.sweep_seed``, the loop's ``train_steps`` (a suite, a study and
  an lr-find all train there) and ``clrbench.train.stacked.train_stack`` (a stacked suite);
- Keras' own training, ``Model.fit`` and ``Model.train_on_batch``, whenever Keras is imported;
- starting a process: ``subprocess``, ``os.fork``/``exec``/``posix_spawn``/``system``, and
  ``_posixsubprocess.fork_exec``, which multiprocessing, loky (joblib) and Dask workers use
  without raising an audit event.

Importing the trainer modules is not what is forbidden: test modules import them when they are
collected, before any test runs; calling them is. A process started from another thread (a
worker pool's manager) is not stopped, which could hang it, but fails the test afterwards.

A session that runs slow tests too (the README's ``python -m pytest``, as CI runs it) watches
its fast tests' setup and call in the main thread only: there a pool a slow test started may
replace an idle worker from its own thread at any moment, and a fixture a slow test built may be
torn down after the fast test that happens to be its module's last. A fast test that trains or
starts a process itself still fails; one that only reuses what a slow test built does not (the
fast tier on its own, ``-m "not slow"``, is the stricter check).
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import platform
import sys
import threading
from typing import Any

import pytest

TRAINERS = (  # (module, function): every way clrbench trains
    ("clrbench.train.run", "train_run"),
    ("clrbench.train.loop", "train_loop"),
    ("clrbench.train.loop", "train_steps"),
    ("clrbench.train.lr_sweep", "sweep_seed"),
    ("clrbench.train.stacked", "train_stack"),
)
PROCESS_EVENTS = frozenset(
    {"subprocess.Popen", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn"}
    | {"os.system", "pty.spawn"}
)


class FastTierViolation(Exception):
    """A test outside the slow tier trained a model or started a process."""


class _State:
    enabled = False  # the guards are installed for this session
    mixed = False  # this session runs slow tests too
    test: str | None = None  # the fast test running now (node id)
    late: list[str] = []  # what other threads did during it


def _violate(what: str) -> None:
    if not (_State.enabled and _State.test):
        return
    message = (
        f'{_State.test} {what} but is not marked slow: the fast tier (-m "not slow") trains no '
        "model and starts no process (mark it @pytest.mark.slow, or use benchmarks/synthetic.py)"
    )
    if threading.current_thread() is not threading.main_thread():
        if _State.mixed:  # a slow test's pool, replacing a worker: not this test's doing
            return
        _State.late.append(message)  # raising in a pool's manager thread could hang the pool
        return
    raise FastTierViolation(message)


def _forbidding(function: Any, what: str) -> Any:
    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _violate(what)
        return function(*args, **kwargs)

    guarded.__fast_tier_guarded__ = True
    return guarded


def _audit(event: str, args: tuple) -> None:
    if event in PROCESS_EVENTS:
        _violate(f"started a process ({event} {args[0] if args else ''})")


def _guard_trainers() -> None:
    """Replace each trainer in its module and in every module that imported it by name (the
    test modules did, when they were collected)."""
    for module_name, name in TRAINERS:
        module = importlib.import_module(module_name)
        current = getattr(module, name)
        if getattr(current, "__fast_tier_guarded__", False):  # installed by an earlier session
            original, guarded = current.__wrapped__, current
        else:
            original = current
            guarded = _forbidding(original, f"trained a model ({module_name}.{name})")
        for loaded in list(sys.modules.values()):
            names = getattr(loaded, "__dict__", {})
            for attribute in [key for key, value in list(names.items()) if value is original]:
                setattr(loaded, attribute, guarded)


def _guard_keras(keras: Any) -> None:
    for name in ("fit", "train_on_batch"):
        method = getattr(keras.Model, name)
        if not getattr(method, "__fast_tier_guarded__", False):
            setattr(keras.Model, name, _forbidding(method, f"trained a model (keras {name})"))


class _KerasWatch(importlib.abc.MetaPathFinder):
    """Guards Keras' training the moment Keras is imported (importing it is costly: never here)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "keras":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        real = spec.loader

        class Loader(importlib.abc.Loader):
            def create_module(self, spec: Any) -> Any:
                return real.create_module(spec)

            def exec_module(self, module: Any) -> None:
                module.__spec__.loader = module.__loader__ = real
                real.exec_module(module)
                _guard_keras(module)

        spec.loader = Loader()
        return spec


def _guard_processes() -> None:
    import _posixsubprocess

    if not getattr(_posixsubprocess.fork_exec, "__fast_tier_guarded__", False):
        fork_exec = _posixsubprocess.fork_exec
        _posixsubprocess.fork_exec = _forbidding(fork_exec, "started a process (fork_exec)")  # type: ignore[attr-defined]
    if not getattr(sys, "_fast_tier_audit", False):  # audit hooks cannot be removed: add once
        sys.addaudithook(_audit)
        sys._fast_tier_audit = True  # type: ignore[attr-defined]


def install() -> None:
    """Put the guards in place (idempotent; they act only while a fast test runs)."""
    platform.processor()  # cached after once: importing TensorFlow asks, Python runs `uname -p`
    _guard_trainers()
    _guard_processes()
    if "keras" in sys.modules:
        _guard_keras(sys.modules["keras"])
    elif not any(isinstance(finder, _KerasWatch) for finder in sys.meta_path):
        sys.meta_path.insert(0, _KerasWatch())


_OUTER = pytest.StashKey[tuple[bool, bool]]()


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    session.stash[_OUTER] = _State.enabled, _State.mixed  # a session inside a test restores them
    _State.enabled = True
    _State.mixed = any(item.get_closest_marker("slow") for item in session.items)
    install()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _State.enabled, _State.mixed = session.stash.get(_OUTER, (False, False))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    outer = _State.test, _State.late  # a session run inside a test (the guard's own test)
    watched = _State.enabled and not item.get_closest_marker("slow")
    _State.test, _State.late = (item.nodeid if watched else None), []
    try:
        return (yield)
    finally:
        _State.test, _State.late = outer


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    watched = _State.test
    if _State.mixed:  # a slow test's module or session fixture may end here
        _State.test = None
    try:
        return (yield)
    finally:
        _State.test = watched


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    result = yield
    if _State.late:
        raise FastTierViolation(_State.late[0])
    return result
