"""The same one-run training done three ways, for side-by-side cost measurements.

``plain``: stock Keras ``fit`` with the schedule in-graph and no per-batch logging (what a
user would write by hand); ``clrbench``: ``train_run`` with in-graph per-batch logging;
``callback``: ``train_run`` with the seed's per-batch Python callback setting the rate.
Each returns the seconds of its ``fit`` call (all epochs, with their test evaluations), from
just before ``fit`` to the last epoch's end, measured the same way for all three.

Run as a script to time a whole process; it prints the in-process training seconds last::

    python benchmarks/workloads.py MODE EPOCHS [STEPS_PER_EXECUTION]
    python benchmarks/workloads.py verify-spe EPOCHS STEPS_PER_EXECUTION [TRAIN_SIZE]

``verify-spe`` trains the clrbench path twice, with ``steps_per_execution`` 1 and N, and
checks that every per-batch and per-epoch value (all but the clock columns) is bitwise equal.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator

MODES = ("plain", "clrbench", "callback")
SCHEDULE = {"name": "triangular", "base_lr": 0.02, "max_lr": 0.2, "step_size": 1172}


def plain_fit(epochs: int, data_dir: str | None = None, steps_per_execution: int = 1) -> float:
    """Stock Keras: same data, model, optimizer, schedule, test evaluation; returns seconds."""
    import keras

    from clrbench import workload
    from clrbench.data import load_dataset
    from clrbench.schedules import make
    from clrbench.train import EVAL_BATCH_SIZE, configure_tensorflow

    configure_tensorflow(1)
    data = load_dataset("mnist", data_dir=data_dir, seed=0)
    x, y = workload.preprocess(data.x_train), data.y_train.astype("int32")
    x_test, y_test = workload.preprocess(data.x_test), data.y_test.astype("int32")
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(workload.build_layers(x.shape[1]))
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
    return ends[-1] - t0


@contextlib.contextmanager
def steps_per_execution(n: int) -> Iterator[None]:
    """Make ``train_run`` compile its model with ``steps_per_execution=n`` (an experiment:
    clrbench itself does not offer the option)."""
    from clrbench import train

    original = train.logging_model_class

    def chunked_class():
        base = original()

        class Chunked(base):
            def compile(self, *args, **kwargs):
                super().compile(*args, steps_per_execution=n, **kwargs)

        return Chunked

    train.logging_model_class = chunked_class
    try:
        yield
    finally:
        train.logging_model_class = original


def clrbench_run(
    epochs: int,
    data_dir: str | None = None,
    lr_mode: str = "graph",
    chunk: int = 1,
    train_size: int | None = None,
):
    """clrbench's ``train_run`` (per-batch logging; rate in-graph or by callback)."""
    from clrbench.experiment import RunSpec
    from clrbench.schedules import make
    from clrbench.train import train_run

    spec = RunSpec(
        "bench", make(**SCHEDULE), seed=0, epochs=epochs, lr_mode=lr_mode, train_size=train_size
    )
    with steps_per_execution(chunk) if chunk > 1 else contextlib.nullcontext():
        return train_run(spec, data_dir=data_dir)


def clrbench_fit(
    epochs: int, data_dir: str | None = None, lr_mode: str = "graph", chunk: int = 1
) -> float:
    """Seconds from just before ``fit`` to the end of the last epoch (``time_s`` of the
    recorder, measured from the same point as in :func:`plain_fit`)."""
    result = clrbench_run(epochs, data_dir, lr_mode, chunk)
    return float(result.epochs["time_s"].iloc[-1])


def run(mode: str, epochs: int, data_dir: str | None = None, chunk: int = 1) -> float:
    """Train one way; returns the seconds spent in training."""
    if mode not in MODES:
        raise SystemExit(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "plain":
        return plain_fit(epochs, data_dir, chunk)
    return clrbench_fit(epochs, data_dir, "graph" if mode == "clrbench" else "callback", chunk)


def verify_steps_per_execution(
    epochs: int, chunk: int, data_dir: str | None = None, train_size: int | None = None
) -> str:
    """Train with steps_per_execution 1 and ``chunk``; raise unless the logs are bitwise equal."""
    import pandas as pd

    one = clrbench_run(epochs, data_dir, chunk=1, train_size=train_size)
    many = clrbench_run(epochs, data_dir, chunk=chunk, train_size=train_size)
    for name in ("batches", "epochs"):
        a, b = (getattr(r, name).drop(columns="time_s") for r in (one, many))
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    speed = one.epochs["time_s"].iloc[-1] / many.epochs["time_s"].iloc[-1]
    return (
        f"steps_per_execution={chunk}: {len(one.batches)} per-batch rows and "
        f"{len(one.epochs)} epoch rows bitwise identical to steps_per_execution=1; "
        f"fit {one.epochs['time_s'].iloc[-1]:.2f} s -> {many.epochs['time_s'].iloc[-1]:.2f} s "
        f"(x{speed:.3f})"
    )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    data_dir = os.environ.get("CLRBENCH_DATA_DIR")
    if sys.argv[1] == "verify-spe":
        size = int(sys.argv[4]) if len(sys.argv) > 4 else None
        print(verify_steps_per_execution(int(sys.argv[2]), int(sys.argv[3]), data_dir, size))
    else:
        chunk = int(sys.argv[3]) if len(sys.argv) > 3 else 1
        print(run(sys.argv[1], int(sys.argv[2]), data_dir, chunk))
