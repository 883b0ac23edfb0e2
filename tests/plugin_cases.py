"""Plug-in workloads for the tests: one good one and one for each mistake a plug-in can make
(imported by path, ``plugin_cases:NAME``, with tests/ on the path)."""

from __future__ import annotations

import numpy as np

from clrbench.workload_api import WorkloadPlugin

CLASSES = 3


def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs in 4 dimensions: an easy, deterministic classification task."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % CLASSES
    centres = np.eye(CLASSES, 4) * 3.0
    return (centres[labels] + rng.normal(size=(n, 4))).astype(np.float32), labels


def load_data():
    x, y = _blobs(300, 0)
    x_test, y_test = _blobs(90, 1)
    return x, y, x_test, y_test


def build_model(input_shape, num_classes, seed):
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            keras.layers.Dense(
                16, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed)
            ),
            keras.layers.Dense(
                num_classes,
                activation="softmax",
                kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
            ),
        ]
    )


def _plugin(**changes) -> WorkloadPlugin:
    settings = dict(load_data=load_data, build_model=build_model, num_classes=CLASSES, epochs=3)
    return WorkloadPlugin(**(settings | changes))


good = _plugin(name="blobs", target=0.9)


def good_factory() -> WorkloadPlugin:  # a function returning the plug-in is accepted too
    return good


def _with(index: int, change):
    def load():
        arrays = list(load_data())
        arrays[index] = change(arrays[index])
        return tuple(arrays)

    return load


def _nan_pixel(x):
    x = x.copy()
    x[5, 2] = np.nan
    return x


nan_pixels = _plugin(load_data=_with(0, _nan_pixel))
labels_out_of_range = _plugin(load_data=_with(1, lambda y: np.where(y == 2, 3, y)))
float_labels = _plugin(load_data=_with(3, lambda y: y.astype(np.float64)))
label_count_mismatch = _plugin(load_data=_with(1, lambda y: y[:-1]))
shape_mismatch = _plugin(load_data=_with(2, lambda x: x[:, :3]))
three_arrays = _plugin(load_data=lambda: load_data()[:3])


def _raises(*args):
    raise RuntimeError("no GPU here")


loader_raises = _plugin(load_data=_raises)
builder_raises = _plugin(build_model=_raises)


def _wrong_output(input_shape, num_classes, seed):
    return build_model(input_shape, num_classes + 2, seed)


wrong_output_shape = _plugin(build_model=_wrong_output)


def _logits(input_shape, num_classes, seed):
    import keras

    init = keras.initializers.GlorotUniform(seed)
    return keras.Sequential(
        [keras.Input(shape=input_shape), keras.layers.Dense(num_classes, kernel_initializer=init)]
    )


logits_output = _plugin(build_model=_logits)


def _unseeded(input_shape, num_classes, seed):
    import keras

    return keras.Sequential(
        [keras.Input(shape=input_shape), keras.layers.Dense(num_classes, activation="softmax")]
    )


unseeded = _plugin(build_model=_unseeded)
not_a_model = _plugin(build_model=lambda *args: "a model")
not_a_plugin = {"load_data": load_data}
bad_classes = _plugin(num_classes=1)


def _conv_data():
    x, y, x_test, y_test = load_data()
    return x.reshape(-1, 2, 2, 1), y, x_test.reshape(-1, 2, 2, 1), y_test


def _conv_model(input_shape, num_classes, seed):
    """Conv2D (weighted, not Dense: a stack calls it once per member) -> Flatten -> Dense."""
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            keras.layers.Conv2D(
                6, 1, activation="relu", kernel_initializer=keras.initializers.HeUniform(seed)
            ),
            keras.layers.Flatten(),
            keras.layers.Dense(
                num_classes,
                activation="softmax",
                kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
            ),
        ]
    )


def _dropout_model(input_shape, num_classes, seed):
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            keras.layers.Dense(16, kernel_initializer=keras.initializers.GlorotUniform(seed)),
            keras.layers.Dropout(0.5, seed=seed),
            keras.layers.Dense(
                num_classes,
                activation="softmax",
                kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
            ),
        ]
    )


conv = _plugin(name="conv", load_data=_conv_data, build_model=_conv_model)
dropout = _plugin(name="dropout", build_model=_dropout_model)
