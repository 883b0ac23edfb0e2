"""The same one-run training done four ways, for side-by-side cost measurements.

``plain``: stock Keras ``fit`` with the schedule in-graph and no per-batch logging (what a
user would write by hand); ``plain-chunked``: the same with clrbench's
``steps_per_execution`` (so the difference to ``clrbench`` is the logging alone);
``clrbench``: ``train_run`` with in-graph per-batch logging; ``callback``: ``train_run`` with
the seed's per-batch Python callback setting the rate (``steps_per_execution`` 1).
Each returns the seconds of each epoch of its ``fit`` call (with its test evaluation), the
first from just before ``fit``, measured the same way for all three; their sum is the
in-process training time. The first epoch also pays the one-time costs (tracing the train
step, building the dataset), so later epochs show the steady per-step cost.

Run as a script to time a whole process; it prints one JSON line last, ``{"mode": ...,
"training_s": ..., "epoch_s": [...]}``::

    python benchmarks/workloads.py MODE EPOCHS
"""

from __future__ import annotations

import json
import os
import sys
import time

MODES = ("plain", "plain-chunked", "clrbench", "callback")
SCHEDULE = {"name": "triangular", "base_lr": 0.02, "max_lr": 0.2, "step_size": 1172}


def plain_fit(
    epochs: int, data_dir: str | None = None, steps_per_execution: int = 1
) -> list[float]:
    """Stock Keras: same data, model, optimizer, schedule, test evaluation; epoch seconds."""
    import keras

    from clrbench.data.load import load_dataset
    from clrbench.schedules import make
    from clrbench.train import workload
    from clrbench.train.run import EVAL_BATCH_SIZE, configure_tensorflow

    configure_tensorflow(1)
    data = load_dataset("mnist", data_dir=data_dir, seed=0)
    x, y = workload.preprocess(data.x_train), data.y_train.astype("int32")
    x_test, y_test = workload.preprocess(data.x_test), data.y_test.astype("int32")
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(workload.build_layers(x.shape[1], 0))
    model.compile(
        optimizer=workload.build_optimizer("sgd-momentum", make(**SCHEDULE).keras()),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    ends: list[float] = []
    # an epoch-end hook only, like clrbench's recorder: batch dispatch stays asynchronous
    clock = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: ends.append(time.time())
    )
    t0 = time.time()
    model.fit(
        x,
        y,
        batch_size=128,
        epochs=epochs,
        shuffle=True,
        validation_data=(x_test, y_test),
        validation_batch_size=EVAL_BATCH_SIZE,
        callbacks=[clock],
        verbose=0,
    )
    return durations(t0, ends)


def durations(t0: float, ends: list[float]) -> list[float]:
    """Epoch lengths from the start time and each epoch's end time."""
    return [end - start for start, end in zip([t0, *ends[:-1]], ends, strict=True)]


def clrbench_run(epochs: int, data_dir: str | None = None, lr_mode: str = "graph"):
    """clrbench's ``train_run`` (per-batch logging; rate in-graph or by callback)."""
    from clrbench.config.runs import RunSpec
    from clrbench.schedules import make
    from clrbench.train.run import train_run

    spec = RunSpec("bench", make(**SCHEDULE), seed=0, epochs=epochs, lr_mode=lr_mode)
    return train_run(spec, data_dir=data_dir)


def clrbench_fit(epochs: int, data_dir: str | None = None, lr_mode: str = "graph") -> list[float]:
    """Epoch seconds from the recorder's ``time_s`` (time since just before ``fit``, taken at
    each epoch's end, as in :func:`plain_fit`)."""
    result = clrbench_run(epochs, data_dir, lr_mode)
    return durations(0.0, [float(t) for t in result.epochs["time_s"]])


def run(mode: str, epochs: int, data_dir: str | None = None) -> list[float]:
    """Train one way; returns the seconds of each epoch."""
    from clrbench.train.run import STEPS_PER_EXECUTION

    if mode not in MODES:
        raise SystemExit(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "plain":
        return plain_fit(epochs, data_dir)
    if mode == "plain-chunked":
        return plain_fit(epochs, data_dir, STEPS_PER_EXECUTION)
    return clrbench_fit(epochs, data_dir, "graph" if mode == "clrbench" else "callback")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    epoch_s = run(sys.argv[1], int(sys.argv[2]), os.environ.get("CLRBENCH_DATA_DIR"))
    print(json.dumps({"mode": sys.argv[1], "training_s": sum(epoch_s), "epoch_s": epoch_s}))
