"""The built-in model ``mlp-100-100``: MNIST-1D's MLP baseline (Greydanus & Kobak, 2020, the
``MLP`` of their ``models.py``: two hidden layers of 100 ReLU units, then the ten classes),
written as a Keras model with seeded Glorot-uniform kernels and zero biases (Keras' defaults;
their PyTorch baseline starts from PyTorch's own initialisation).

MNIST-1D's generator already standardises its sequences, so preprocessing only casts them to
float32 rows. Loss and metric are the workload's (``clrbench.train.workload``): sparse
categorical cross-entropy on softmax probabilities, accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clrbench.train.workload import (
    NUM_CLASSES,
    batch_accuracy,
    initializer_seeds,
    loss_object,
    per_example_loss,
)

HIDDEN = (100, 100)
__all__ = ["batch_accuracy", "build_layers", "build_model", "loss_object", "per_example_loss"]


def preprocess(inputs: np.ndarray) -> np.ndarray:
    """Float32 rows, values unchanged (the generator standardised them)."""
    return np.asarray(inputs, dtype=np.float32).reshape(len(inputs), -1)


def build_layers(input_dim: int, seed: int) -> list:
    """Input -> Dense 100 relu -> Dense 100 relu -> Dense 10 softmax, kernels seeded from seed."""
    import keras

    seeds = initializer_seeds(seed, len(HIDDEN) + 1)
    hidden = [
        keras.layers.Dense(
            units, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(s)
        )
        for units, s in zip(HIDDEN, seeds, strict=False)
    ]
    output = keras.layers.Dense(
        NUM_CLASSES,
        activation="softmax",
        kernel_initializer=keras.initializers.GlorotUniform(seeds[-1]),
    )
    return [keras.Input(shape=(input_dim,)), *hidden, output]


def build_model(input_shape: tuple[int, ...], seed: int) -> Any:
    import keras

    return keras.Sequential(build_layers(int(np.prod(input_shape)), seed))
