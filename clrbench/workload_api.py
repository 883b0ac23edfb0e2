"""Your own workload: what a plug-in gives clrbench (``workload = "mypkg.bench:cifar_small"``).

A plug-in is a :class:`WorkloadPlugin`, or a function of no arguments that returns one, named by
``package.module:attribute`` or by an installed ``clrbench.workloads`` entry point. clrbench
trains it exactly as it trains the built-in workloads (the lean in-graph loop, the per-batch
log, run ids, reports, the study and the gate), after checking everything it returns.

The contract (``examples/mnist_cnn`` is a complete, tested package):

- ``load_data()`` returns ``(x_train, y_train, x_test, y_test)`` as numpy arrays: inputs of any
  numeric dtype and any shape ``(examples, *input_shape)``, already preprocessed (clrbench casts
  them to float32 and changes nothing else; every value must be finite); labels integer class
  indices in ``0 .. num_classes - 1``, one per example. The same call must return the same
  arrays (their SHA-256 goes into every run's record). Validation splits are drawn by clrbench
  from the training arrays, stratified, as for MNIST.
- ``build_model(input_shape, num_classes, seed)`` returns a new, uncompiled ``keras.Model`` whose
  output is ``(batch, num_classes)`` class probabilities (end in a softmax: the loss is sparse
  categorical cross-entropy on probabilities). Every random initializer must be seeded from
  ``seed`` (e.g. ``GlorotUniform(seed=seed + i)``): the same seed must give the same weights in
  any process, and clrbench checks that it does.
- ``num_classes``; the defaults of a run of it (``epochs``, ``batch_size``), the accuracy its
  time-to-target uses (``target``, on the evaluation set; ``None``: the report's data-driven
  default), and the rates its presets use (``base_lr``, ``max_lr``, ``constant_lr``: check them
  on validation, e.g. with ``clrbench study``).

This module imports nothing heavy: a plug-in may import it at no cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WorkloadPlugin:
    """A workload of one's own: its data, its model and its defaults (see the module's text)."""

    load_data: Callable[[], tuple[Any, Any, Any, Any]]
    build_model: Callable[[tuple[int, ...], int, int], Any]
    num_classes: int
    name: str | None = None  # its folder's name under a several-workload run (default: the attr)
    epochs: int = 10
    batch_size: int = 128
    target: float | None = None
    base_lr: float = 0.02
    max_lr: float = 0.2
    constant_lr: float = 0.1
    about: str = ""  # one line for reports: what it is, where its defaults come from
    margin_pp: float | None = None  # smallest difference that matters (pp); None: none stated
