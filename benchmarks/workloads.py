"""The same one-run training done four ways, for side-by-side cost measurements.

``plain``: stock Keras ``fit`` with the schedule in-graph and no per-batch logging (what a
user would write by hand); ``plain-chunked``: the same with clrbench's
``steps_per_execution`` (so the difference to ``clrbench`` is the logging alone);
``clrbench``: ``train_run`` with in-graph per-batch logging; ``callback``: ``train_run`` with
the original blog's per-batch Python callback setting the rate (``steps_per_execution`` 1).
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

import numpy as np

MODES = (
    "plain",
    "plain-chunked",
    "clrbench",
    "clrbench-fit",
    "callback",
    "lean",
    "torch",
    "torch-nolog",
)
STEPS_PER_EPOCH = 469  # full MNIST at batch 128
SCHEDULE = {"name": "triangular", "base_lr": 0.02, "max_lr": 0.2, "step_size": 1172}


def plain_fit(
    epochs: int, data_dir: str | None = None, steps_per_execution: int = 1
) -> list[float]:
    """Stock Keras: same data, model, optimizer, schedule, test evaluation; epoch seconds."""
    return plain_fit_timed(epochs, data_dir, steps_per_execution)["epoch_s"]


def plain_fit_timed(
    epochs: int, data_dir: str | None = None, steps_per_execution: int = 1
) -> dict[str, list[float]]:
    """Stock Keras ``fit``: epoch seconds, and each epoch's steps alone (epoch begin to the
    start of its validation pass)."""
    import keras

    from clrbench.schedules import make
    from clrbench.train import workload
    from clrbench.train.keras_fit import EVAL_BATCH_SIZE
    from clrbench.train.run import configure_tensorflow

    configure_tensorflow(1)
    x, y, x_test, y_test = _data(data_dir)
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
    marks: list[float] = []
    # epoch-level hooks only, like clrbench's recorder: batch dispatch stays asynchronous
    clock = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: marks.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter()),
    )
    clock.on_test_begin = lambda logs=None: marks.append(time.perf_counter())
    t0 = time.perf_counter()
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
    steps_s = [end - begin for begin, end in zip(marks[::2], marks[1::2], strict=True)]
    return {"epoch_s": durations(t0, ends), "steps_s": steps_s}


def durations(t0: float, ends: list[float]) -> list[float]:
    """Epoch lengths from the start time and each epoch's end time."""
    return [end - start for start, end in zip([t0, *ends[:-1]], ends, strict=True)]


def clrbench_run(
    epochs: int, data_dir: str | None = None, lr_mode: str = "graph", trainer: str = "loop"
):
    """clrbench's ``train_run`` (per-batch logging; rate in-graph or by callback; the lean
    loop or Keras fit)."""
    from clrbench.config.runs import RunSpec
    from clrbench.config.workload import Workload
    from clrbench.schedules import make
    from clrbench.train.run import train_run

    workload = Workload(epochs=epochs, trainer=trainer)
    spec = RunSpec("bench", make(**SCHEDULE), seed=0, workload=workload, lr_mode=lr_mode)
    return train_run(spec, data_dir=data_dir)


def run(mode: str, epochs: int, data_dir: str | None = None) -> list[float]:
    """Train one way; returns the seconds of each epoch."""
    return run_timed(mode, epochs, data_dir)["epoch_s"]


def run_timed(mode: str, epochs: int, data_dir: str | None = None) -> dict[str, list[float]]:
    """Train one way: ``epoch_s`` (each epoch with its evaluation, from the start of training)
    and ``steps_s`` (each epoch's training steps alone, the per-step cost's numerator)."""
    from clrbench.train.keras_fit import STEPS_PER_EXECUTION

    if mode not in MODES:
        raise SystemExit(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode in ("plain", "plain-chunked"):
        spe = 1 if mode == "plain" else STEPS_PER_EXECUTION
        return plain_fit_timed(epochs, data_dir, spe)
    if mode == "lean":
        return lean_tf(epochs, data_dir)
    if mode in ("torch", "torch-nolog"):
        return torch_eager(epochs, data_dir, log=mode == "torch")
    trainer, lr_mode = {
        "clrbench": ("loop", "graph"),
        "clrbench-fit": ("fit", "graph"),
        "callback": ("fit", "callback"),
    }[mode]
    result = clrbench_run(epochs, data_dir, lr_mode, trainer)
    return {
        "epoch_s": durations(0.0, [float(t) for t in result.epochs["time_s"]]),
        "steps_s": step_windows(result.batches),
    }


def step_windows(batches) -> list[float]:
    """Each epoch's training-steps seconds, from the log's interpolated batch times (the first
    batch ends 1/n of the way through the window, the last at its end)."""
    windows = []
    for _, epoch in batches.groupby("epoch"):
        t = epoch["time_s"].to_numpy()
        windows.append((t[-1] - t[0]) * len(t) / (len(t) - 1))
    return windows


def _data(data_dir: str | None):
    from clrbench.data.load import load_dataset
    from clrbench.train import workload

    data = load_dataset("mnist", data_dir=data_dir, seed=0)
    x, y = workload.preprocess(data.x_train), data.y_train.astype("int32")
    return x, y, workload.preprocess(data.x_test), data.y_test.astype("int32")


def _triangular_rate(step, base: float, peak: float, half: int):
    """Smith's triangular rate at integer ``step`` (works on numbers and tensors alike)."""
    cycle_pos = step % (2 * half)
    distance = abs(cycle_pos - half) / half  # 1 at the cycle's ends, 0 at its peak
    return base + (peak - base) * (1 - distance)


def lean_tf(epochs: int, data_dir: str | None = None) -> dict[str, list[float]]:
    """The issue's lean TensorFlow loop, written by hand: one tf.function per epoch, a
    tf.while_loop over batches gathered from the training set held as one tensor, the same
    model's math (softmax cross-entropy from the logits) with a plain momentum update, the
    triangular rate from the step counter, each batch's loss in a TensorArray; Keras only for
    the initial weights."""
    import keras
    import tensorflow as tf

    from clrbench.train import workload
    from clrbench.train.run import configure_tensorflow

    configure_tensorflow(1)
    x_np, y_np, xt_np, yt_np = _data(data_dir)
    x, y, x_test, y_test = (tf.constant(a) for a in (x_np, y_np, xt_np, yt_np))
    model = keras.Sequential(workload.build_layers(x_np.shape[1], 0))
    params = [tf.Variable(w) for w in model.get_weights()]  # w1, b1, w2, b2
    velocity = [tf.Variable(tf.zeros_like(w)) for w in params]
    step = tf.Variable(0, dtype=tf.int64)
    n, base, peak, half = len(y_np), SCHEDULE["base_lr"], SCHEDULE["max_lr"], SCHEDULE["step_size"]
    steps = -(-n // 128)

    def logits(xb):  # the model's math; softmax folded into the loss, as a lean loop would
        hidden = tf.nn.relu(xb @ params[0] + params[1])
        return hidden @ params[2] + params[3]

    @tf.function
    def train_epoch(order):
        losses = tf.TensorArray(tf.float32, size=steps)
        for i in tf.range(steps):
            batch = order[i * 128 : (i + 1) * 128]
            xb, yb = tf.gather(x, batch), tf.gather(y, batch)
            rate = tf.cast(_triangular_rate(step, base, peak, half), tf.float32)
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yb, logits=logits(xb))
                )
            for p, v, g in zip(params, velocity, tape.gradient(loss, params), strict=True):
                v.assign(0.9 * v - rate * g)
                p.assign_add(v)
            step.assign_add(1)
            losses = losses.write(i, loss)
        return losses.stack()

    @tf.function
    def evaluate():
        predictions = tf.argmax(logits(x_test), axis=1, output_type=tf.int32)
        return tf.reduce_mean(tf.cast(predictions == y_test, tf.float32))

    rng = np.random.default_rng(0)
    epoch_s, steps_s = [], []
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = tf.constant(rng.permutation(n).astype(np.int32))
        began = time.perf_counter()
        train_epoch(order).numpy()
        steps_s.append(time.perf_counter() - began)
        evaluate().numpy()
        epoch_s.append(time.perf_counter() - t0 - sum(epoch_s))
    return {"epoch_s": epoch_s, "steps_s": steps_s}


def torch_eager(epochs: int, data_dir: str | None = None, log: bool = True):
    """The PyTorch script a user might write instead: eager, one thread, the same model
    (logits + cross-entropy), SGD momentum 0.9, ``CyclicLR`` stepped per batch; with ``log``,
    each batch's loss, accuracy and rate read to Python (``.item()``), as clrbench records.

    Runs in a process of its own (``python benchmarks/workloads.py torch 3``), which loads the
    data without TensorFlow: newer torch builds segfault in a process that imported it."""
    if "tensorflow" in sys.modules:
        raise SystemExit("torch_eager: TensorFlow is loaded; run PyTorch in a process of its own")
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    x_np, y_np, xt_np, yt_np = _data(data_dir)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np).long()
    x_test, y_test = torch.from_numpy(xt_np), torch.from_numpy(yt_np).long()
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=SCHEDULE["base_lr"], momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CyclicLR(
        optimizer,
        base_lr=SCHEDULE["base_lr"],
        max_lr=SCHEDULE["max_lr"],
        step_size_up=SCHEDULE["step_size"],
        cycle_momentum=False,
    )
    n, rows = len(y), []
    epoch_s, steps_s = [], []
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n)
        began = time.perf_counter()
        for start in range(0, n, 128):
            batch = order[start : start + 128]
            xb, yb = x[batch], y[batch]
            logits = model(xb)
            loss = torch.nn.functional.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            rate = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            if log:
                accuracy = (logits.argmax(1) == yb).float().mean()
                rows.append((rate, loss.item(), accuracy.item(), len(batch)))
        steps_s.append(time.perf_counter() - began)
        with torch.no_grad():
            (model(x_test).argmax(1) == y_test).float().mean().item()
        epoch_s.append(time.perf_counter() - t0 - sum(epoch_s))
    return {"epoch_s": epoch_s, "steps_s": steps_s}


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    timed = run_timed(sys.argv[1], int(sys.argv[2]), os.environ.get("CLRBENCH_DATA_DIR"))
    print(json.dumps({"mode": sys.argv[1], "training_s": sum(timed["epoch_s"]), **timed}))
