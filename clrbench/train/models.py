"""The model a workload names, resolved in the training process.

``clrbench.config.workload.MODELS`` maps each model name to a module; that module provides the
five callables the trainers use (``preprocess``, ``build_layers``, ``loss_object``,
``per_example_loss``, ``batch_accuracy``: see ``clrbench.train.workload``, the built-in
``dense-512``). Resolving by import path is the seam for workloads of one's own.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from clrbench.config.workload import MODELS, Workload


def resolve(workload: Workload) -> ModuleType:
    """The module that builds ``workload``'s model (its preprocessing, loss and metric)."""
    return importlib.import_module(MODELS[workload.model])
