"""The built-in model ``dense-512``: preprocessing, the model, its loss and metric; and the
optimizer every model trains with.

What stays the same while schedules are compared (AlgoPerf's lesson): flatten, pixels / 255,
Dense(512, relu) -> Dense(10, softmax), sparse categorical cross-entropy, accuracy. A model
module (``clrbench.config.workload.MODELS``, resolved by ``clrbench.train.models``) provides
``preprocess(images)``, ``build_layers(input_dim, seed)``, ``loss_object()``,
``per_example_loss(labels, probabilities)`` and ``batch_accuracy(labels, probabilities)``.
TensorFlow is imported lazily so that importing this module is cheap.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import numpy as np

from clrbench.config.optimizers import check_weight_decay, spec

if TYPE_CHECKING:
    import keras

HIDDEN_UNITS = 512
NUM_CLASSES = 10
LOSS = "sparse_categorical_crossentropy"
METRICS = ["accuracy"]  # Keras logs it as accuracy / val_accuracy: the epoch table reads those


def preprocess(images: np.ndarray) -> np.ndarray:
    """Flatten 28x28 uint8 images to float32 rows scaled to [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)


def build_optimizer(
    name: str,
    learning_rate: Any,
    weight_decay: float | None = None,
    warmup_steps: int | None = None,
) -> keras.optimizers.Optimizer:
    """An optimizer by name (``clrbench.config.optimizers``) with a fixed rate or a
    LearningRateSchedule; ``weight_decay`` (None: the optimizer's default) for those that take
    one, ``warmup_steps`` (None: 0) for the schedule-free ones."""
    import keras

    from clrbench.train import adamw, schedule_free

    found = spec(name)
    kwargs = dict(found.kwargs)
    if not found.own:
        return getattr(keras.optimizers, found.keras_class)(learning_rate=learning_rate, **kwargs)
    kwargs["weight_decay"] = check_weight_decay(name, weight_decay)
    if found.schedule_free:
        kwargs["warmup_steps"] = warmup_steps or 0
    module = schedule_free if found.schedule_free else adamw
    return getattr(module, found.keras_class)(learning_rate=learning_rate, **kwargs)


def compile_model(
    model: keras.Model,
    optimizer: str,
    learning_rate: Any,
    steps_per_execution: int = 1,
    weight_decay: float | None = None,
) -> None:
    """Compile with the workload's loss and metric (the one place they are set) and the named
    optimizer at ``learning_rate`` (a fixed rate or a LearningRateSchedule)."""
    model.compile(
        optimizer=build_optimizer(optimizer, learning_rate, weight_decay),
        loss=LOSS,
        metrics=METRICS,
        steps_per_execution=steps_per_execution,
    )


def loss_object() -> keras.losses.Loss:
    """The workload's loss as a Keras object: what ``compile(loss=LOSS)`` builds (the batch
    mean of the per-example cross-entropy)."""
    import keras

    return keras.losses.SparseCategoricalCrossentropy()


def per_example_loss(labels: Any, probabilities: Any) -> Any:
    """Each example's cross-entropy (the loss before its batch mean)."""
    import keras

    return keras.losses.sparse_categorical_crossentropy(labels, probabilities)


def batch_accuracy(labels: Any, probabilities: Any) -> Any:
    """1.0 for each example whose most probable class is its label, else 0.0 (Keras' metric)."""
    import keras

    return keras.metrics.sparse_categorical_accuracy(labels, probabilities)


def initializer_seeds(seed: int, count: int) -> list[int]:
    """The seeds of the model's ``count`` random initializers for run seed ``seed``.

    They are the very draws Keras makes for an unseeded initializer after
    ``keras.utils.set_random_seed(seed)`` (``random.randint(1, 10**9)`` from Python's global
    generator, one per initializer, in construction order), so results stay what they were.
    They come from a private generator instead: the global one is shared by every thread of
    the process, and a Dask worker's own threads draw from it (connection back-off, lifetime
    stagger), which once moved a run's initial weights between two workers.
    """
    rng = random.Random(seed)
    return [rng.randint(1, int(1e9)) for _ in range(count)]


def build_layers(input_dim: int, seed: int) -> list:
    """The layers of the benchmark model: Dense 512 relu -> Dense 10 softmax, with their
    kernel initializers seeded from ``seed`` (biases start at zero)."""
    import keras

    hidden_seed, output_seed = initializer_seeds(seed, 2)
    return [
        keras.Input(shape=(input_dim,)),
        keras.layers.Dense(
            HIDDEN_UNITS,
            activation="relu",
            kernel_initializer=keras.initializers.GlorotUniform(seed=hidden_seed),
        ),
        keras.layers.Dense(
            NUM_CLASSES,
            activation="softmax",
            kernel_initializer=keras.initializers.GlorotUniform(seed=output_seed),
        ),
    ]


def build_model(input_shape: tuple[int, ...], seed: int) -> keras.Model:
    """The benchmark model for inputs of ``input_shape`` (flattened rows: ``(784,)``)."""
    import keras

    return keras.Sequential(build_layers(int(np.prod(input_shape)), seed))
