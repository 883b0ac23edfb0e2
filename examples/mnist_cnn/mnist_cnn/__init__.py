"""A workload of one's own for clrbench: a small convolutional network on 14x14 MNIST.

The whole contract (``clrbench.workload_api``) in one file: ``load_data`` returns the arrays,
preprocessed; ``build_model`` builds a new Keras model with every initializer seeded from
``seed``; ``mnist_cnn`` returns the ``WorkloadPlugin`` with this workload's defaults. Keras is
imported inside ``build_model``, so that naming the workload costs no TensorFlow start-up.

The data is clrbench's own verified MNIST (``CLRBENCH_DATA_DIR`` or ``--data-dir``'s folder is
found the same way): a stratified 6,000-image subset of the training set and the whole test
set, each image the mean of its 2x2 blocks (28x28 -> 14x14), scaled to [0, 1], with one
channel: (examples, 14, 14, 1) float32.
"""

from __future__ import annotations

import numpy as np

from clrbench.workload_api import WorkloadPlugin

TRAIN_IMAGES = 6000


def _small(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) uint8 -> (n, 14, 14, 1) float32 in [0, 1]: the mean of each 2x2 block."""
    blocks = images.reshape(len(images), 14, 2, 14, 2).astype(np.float32)
    return (blocks.mean(axis=(2, 4)) / np.float32(255.0))[..., np.newaxis]


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from clrbench.data.load import load_dataset

    mnist = load_dataset("mnist", train_size=TRAIN_IMAGES, seed=0)
    return _small(mnist.x_train), mnist.y_train, _small(mnist.x_test), mnist.y_test


def build_model(input_shape: tuple[int, ...], num_classes: int, seed: int):
    """Conv 8 3x3 relu -> max-pool 2 -> Dense num_classes softmax."""
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            keras.layers.Conv2D(
                8, 3, activation="relu", kernel_initializer=keras.initializers.HeUniform(seed)
            ),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(
                num_classes,
                activation="softmax",
                kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
            ),
        ]
    )


def mnist_cnn() -> WorkloadPlugin:
    return WorkloadPlugin(
        load_data=load_data,
        build_model=build_model,
        num_classes=10,
        name="mnist-cnn",
        epochs=5,
        batch_size=128,
        target=0.95,
        about="14x14 MNIST (6,000 training images), Conv 8 3x3 -> max-pool -> Dense 10",
    )
