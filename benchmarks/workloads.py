"""The same one-run training done three ways, for side-by-side cost measurements.

``plain``: stock Keras ``fit`` with the schedule in-graph and no per-batch logging (what a
user would write by hand); ``clrbench``: ``train_run`` with in-graph per-batch logging;
``callback``: ``train_run`` with the seed's per-batch Python callback setting the rate.
Run as a script (``python benchmarks/workloads.py MODE EPOCHS``) to time a whole process.
"""

from __future__ import annotations

import os
import sys
import time

SCHEDULE = {"name": "triangular", "base_lr": 0.02, "max_lr": 0.2, "step_size": 1172}


def plain_fit(epochs: int, data_dir: str | None = None) -> float:
    """Stock Keras: same data, model, optimizer, schedule, test evaluation; returns seconds."""
    import keras

    from clrbench import workload
    from clrbench.data import load_dataset
    from clrbench.schedules import make
    from clrbench.train import configure_tensorflow

    configure_tensorflow(1)
    data = load_dataset("mnist", data_dir=data_dir)
    x, y = workload.preprocess(data.x_train), data.y_train.astype("int32")
    x_test, y_test = workload.preprocess(data.x_test), data.y_test.astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(workload.build_layers(x.shape[1]))
    schedule = make(**SCHEDULE).keras()
    model.compile(
        optimizer=workload.build_optimizer("sgd-momentum", schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    t0 = time.perf_counter()
    model.fit(
        x,
        y,
        batch_size=128,
        epochs=epochs,
        shuffle=True,
        validation_data=(x_test, y_test),
        validation_batch_size=1000,
        verbose=0,
    )
    return time.perf_counter() - t0


def clrbench_fit(epochs: int, data_dir: str | None = None, lr_mode: str = "graph") -> float:
    """clrbench's train_run (per-batch logging; rate in-graph or by callback)."""
    from clrbench.experiment import RunSpec
    from clrbench.schedules import make
    from clrbench.train import train_run

    spec = RunSpec("bench", make(**SCHEDULE), seed=0, epochs=epochs, lr_mode=lr_mode)
    t0 = time.perf_counter()
    train_run(spec, data_dir=data_dir)
    return time.perf_counter() - t0


def run(mode: str, epochs: int, data_dir: str | None = None) -> float:
    """Train one way; returns the seconds spent in training."""
    if mode == "plain":
        return plain_fit(epochs, data_dir)
    return clrbench_fit(epochs, data_dir, lr_mode="graph" if mode == "clrbench" else "callback")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(run(sys.argv[1], int(sys.argv[2]), os.environ.get("CLRBENCH_DATA_DIR")))
