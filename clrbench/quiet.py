"""Keep TensorFlow's start-up chatter off the user's terminal unless ``--verbose`` asks for it.

TensorFlow 2.21 logs through absl before absl's logging is initialised, so the lines printed
while its shared libraries load (oneDNN notes, CUDA probing, "All log messages before
absl::InitializeLog()") ignore ``TF_CPP_MIN_LOG_LEVEL``. The one reliable switch is to point
file descriptor 2 elsewhere while TensorFlow is first imported (``startup_silenced``); if the
import fails, what it printed is replayed. ``TF_CPP_MIN_LOG_LEVEL=3`` (set unless the user chose
a level) keeps TensorFlow's C++ logging quiet afterwards.

Whatever first imports TensorFlow goes through ``startup_silenced``: the trainers
(``clrbench.train.quiet.import_tensorflow``), ``export --tensorboard`` (TensorBoard's writer
imports TensorFlow when it is installed) and the Keras download fallback for data
(``clrbench.data.load``). This module imports nothing of TensorFlow itself, so every layer may
use it.

The choice travels to worker processes in the ``CLRBENCH_VERBOSE`` environment variable and as
an explicit argument of the worker functions (a reused loky worker keeps its old environment).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import IO

VERBOSE_ENV = "CLRBENCH_VERBOSE"


def verbose() -> bool:
    """Whether TensorFlow may print its start-up and retracing messages (``--verbose``)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def set_verbose(on: bool) -> None:
    """Record the choice for this process and the workers it starts."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"
    if not on:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


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


@contextlib.contextmanager
def startup_silenced() -> Iterator[None]:
    """Run a block that may import TensorFlow for the first time with its start-up lines
    hidden (unless verbose, or TensorFlow is already imported); if the block raises, what it
    printed to stderr is replayed before the exception goes on."""
    if "tensorflow" in sys.modules or verbose():
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryFile() as sink:
        try:
            with _stderr_to(sink):
                yield
        except BaseException:
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
