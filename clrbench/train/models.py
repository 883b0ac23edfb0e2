"""The model a workload names, resolved in the training process.

``clrbench.config.workload.MODELS`` maps each built-in model name to a module; that module
provides what the trainers use: ``preprocess(inputs)``, ``build_model(input_shape, seed)``
(``build_layers(input_dim, seed)`` too, for Keras ``fit`` and the stacked trainer),
``loss_object()``, ``per_example_loss(labels, probabilities)`` and
``batch_accuracy(labels, probabilities)`` (see ``clrbench.train.workload``, ``dense-512``). A
plug-in workload (``clrbench.workload_api``) is wrapped into the same shape here, and its model
is checked before anything trains (``check_plugin_model``).
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import numpy as np

from clrbench import references
from clrbench.config.workload import MODELS, Workload
from clrbench.data.plugin import is_plugin, plugin, plugin_arrays
from clrbench.errors import ConfigError
from clrbench.train import quiet
from clrbench.train import workload as standard


def resolve(workload: Workload) -> Any:
    """What builds ``workload``'s model, with its preprocessing, loss and metric."""
    if is_plugin(workload.model):
        return _plugin_task(workload.model)
    return importlib.import_module(MODELS[workload.model])


class PluginTask:
    """A plug-in workload in the shape of a model module: its data is already preprocessed
    (checked float32), its builder gets the class count, the loss and metric are the
    benchmark's (sparse categorical cross-entropy on probabilities, accuracy)."""

    loss_object = staticmethod(standard.loss_object)
    per_example_loss = staticmethod(standard.per_example_loss)
    batch_accuracy = staticmethod(standard.batch_accuracy)

    def __init__(self, path: str):
        self.path = path
        self.num_classes = plugin(path).num_classes

    def preprocess(self, inputs: np.ndarray) -> np.ndarray:
        return np.asarray(inputs, dtype=np.float32)

    def build_model(self, input_shape: tuple[int, ...], seed: int) -> Any:
        return plugin(self.path).build_model(tuple(input_shape), self.num_classes, seed)


@functools.lru_cache(maxsize=8)
def _plugin_task(path: str) -> PluginTask:
    return PluginTask(path)


def check_plugin_model(workload: Workload) -> None:
    """Build a plug-in's model twice and run it on a few training examples: it must be a Keras
    model with weights, give ``(batch, num_classes)`` probabilities, and give the same weights
    for the same seed (seeded initializers). Each failure is one ConfigError line."""
    if not workload.is_plugin:
        return
    quiet.import_tensorflow()  # its start-up lines hidden (the CLI checks before training)
    import keras

    path = workload.model
    task = _plugin_task(path)
    arrays, _ = plugin_arrays(path)
    x = arrays["x_train"][:8]
    where = f"workload {path}: build_model"
    models = []
    for _ in range(2):
        keras.backend.clear_session()
        try:
            model = task.build_model(x.shape[1:], 0)
        except Exception as exc:
            raise ConfigError(f"{where} raised {references.first_line(exc)}") from None
        if not isinstance(model, keras.Model):
            raise ConfigError(f"{where} must return a keras.Model, got {type(model).__name__}")
        models.append(model)
    model = models[0]
    if not model.trainable_variables:
        raise ConfigError(f"{where} gave a model without trainable weights")
    try:
        output = np.asarray(model(x, training=False))
    except Exception as exc:
        raise ConfigError(
            f"{where}: the model cannot take inputs of shape {x.shape} "
            f"({references.first_line(exc)})"
        ) from None
    if output.shape != (len(x), task.num_classes):
        raise ConfigError(
            f"{where}: the model's output is {output.shape[1:]} per example, expected "
            f"({task.num_classes},) class probabilities (num_classes = {task.num_classes})"
        )
    sums = output.sum(axis=1)
    if not (
        np.all(np.isfinite(output)) and np.all(output >= 0) and np.allclose(sums, 1, atol=1e-4)
    ):
        raise ConfigError(
            f"{where}: the model's outputs are not class probabilities (rows sum to "
            f"{sums.min():.3g}..{sums.max():.3g}): end it in a softmax"
        )
    same = all(
        np.array_equal(a, b)
        for a, b in zip(models[0].get_weights(), models[1].get_weights(), strict=True)
    )
    if not same:
        raise ConfigError(
            f"{where}: two models built with seed 0 have different weights; seed every "
            "initializer from the seed argument (e.g. GlorotUniform(seed=seed + i))"
        )
    keras.backend.clear_session()
