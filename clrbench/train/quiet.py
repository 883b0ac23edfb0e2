"""TensorFlow imported quietly for the trainers (the start-up lines: see ``clrbench.quiet``),
and the Python ``tensorflow`` logger's frequent-retracing warning dropped (see
``ExpectedTracing``) unless ``--verbose``.

``verbose`` and ``set_verbose`` are ``clrbench.quiet``'s, named here too for the trainers and
the suite, which use both.
"""

from __future__ import annotations

import logging
from types import ModuleType

from clrbench.quiet import set_verbose, startup_silenced, verbose

__all__ = ["ExpectedTracing", "import_tensorflow", "set_verbose", "verbose"]

RETRACING_MESSAGE = "triggered tf.function retracing"


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


def import_tensorflow() -> ModuleType:
    """``import tensorflow`` silently (unless verbose) and quieten its loggers; returns it."""
    with startup_silenced():
        import tensorflow as tf
    if not verbose():
        tf_logger = logging.getLogger("tensorflow")
        if not any(isinstance(f, ExpectedTracing) for f in tf_logger.filters):
            tf_logger.addFilter(ExpectedTracing())
    return tf
