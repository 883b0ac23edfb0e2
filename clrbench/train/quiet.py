"""Keep TensorFlow's start-up chatter off the user's terminal unless ``--verbose`` asks for it.

TensorFlow 2.21 logs through absl before absl's logging is initialised, so the lines printed
while its shared libraries load (oneDNN notes, CUDA probing, "All log messages before
absl::InitializeLog()") ignore ``TF_CPP_MIN_LOG_LEVEL``. The one reliable switch is to point
file descriptor 2 elsewhere while ``import tensorflow`` runs; if the import fails, what it
printed is replayed. After the import, ``TF_CPP_MIN_LOG_LEVEL=3`` (set unless the user chose a
level) keeps TensorFlow's C++ logging quiet, and the Python ``tensorflow`` logger drops its
frequent-retracing warning (see ``ExpectedTracing``).

The choice travels to worker processes in the ``CLRBENCH_VERBOSE`` environment variable and as
an explicit argument of the worker functions (a reused loky worker keeps its old environment).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType
from typing import IO

VERBOSE_ENV = "CLRBENCH_VERBOSE"
RETRACING_MESSAGE = "triggered tf.function retracing"


def verbose() -> bool:
    """Whether TensorFlow may print its start-up and retracing messages (``--verbose``)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def set_verbose(on: bool) -> None:
    """Record the choice for this process and the workers it starts."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"
    if not on:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class ExpectedTracing(logging.Filter):
    """Drop TensorFlow's "N out of the last M calls ... triggered tf.function retracing".

    Every run builds a fresh model (its own weights, optimizer and schedule graph), so Keras
    must trace that model's train and test functions once each. TensorFlow's detector keys on
    the Python function's code object, which every Keras model shares, so in a worker that
    trains several runs it counts those first traces of successive models as retracing of one
    function. Within a run nothing is traced twice (tests/test_train.py checks it).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return RETRACING_MESSAGE not in record.getMessage()


@contextlib.contextmanager
def _stderr_to(sink: IO[bytes]) -> Iterator[None]:
    """Point file descriptor 2 (C++ and Python stderr alike) at ``sink`` for the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow() -> ModuleType:
    """``import tensorflow`` silently (unless verbose) and quieten its loggers; returns it."""
    if "tensorflow" in sys.modules or verbose():
        import tensorflow as tf
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with tempfile.TemporaryFile() as sink:
            try:
                with _stderr_to(sink):
                    import tensorflow as tf
            except BaseException:
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace"))
                raise
    if not verbose():
        tf_logger = logging.getLogger("tensorflow")
        if not any(isinstance(f, ExpectedTracing) for f in tf_logger.filters):
            tf_logger.addFilter(ExpectedTracing())
    return tf
