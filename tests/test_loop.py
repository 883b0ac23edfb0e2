"""The lean trainer against Keras itself: same model, same optimizer, same batches.

``clrbench.train.loop`` promises the Keras model and the Keras optimizer's update rule with the
batch order of ``np.random.default_rng(seed)``, one permutation per epoch. Replaying that order
through Keras's own ``train_on_batch`` (compiled with the workload's loss and metric) and
``evaluate`` must give the loop's per-batch rates, losses and accuracies and its per-epoch test
metrics.
"""

from __future__ import annotations

import numpy as np
import pytest

from clrbench.config.runs import RunSpec
from clrbench.config.workload import Workload
from clrbench.data.load import load_dataset
from clrbench.schedules import make
from clrbench.train import workload
from clrbench.train.run import train_run

pytestmark = pytest.mark.slow

TRAIN_SIZE = 3000  # 24 steps per epoch, the last of 56 images
EPOCHS = 2
SEED = 3


def keras_replay(schedule, data_dir):
    """Per-batch (rate, loss, accuracy, size) and per-epoch (test loss, test accuracy) of plain
    Keras on the loop's documented batch order."""
    import keras

    data = load_dataset("mnist", data_dir=data_dir, train_size=TRAIN_SIZE, seed=0)
    x, y = workload.preprocess(data.x_train), data.y_train.astype(np.int32)
    x_test, y_test = workload.preprocess(data.x_test), data.y_test.astype(np.int32)
    keras.backend.clear_session()
    model = keras.Sequential(workload.build_layers(x.shape[1], SEED))
    workload.compile_model(model, "sgd-momentum", schedule.keras())
    rng = np.random.default_rng(SEED)
    rows, evaluations = [], []
    for _ in range(EPOCHS):
        order = rng.permutation(len(y))
        for start in range(0, len(y), 128):
            batch = order[start : start + 128]
            rate = float(model.optimizer.learning_rate)
            loss, accuracy = model.train_on_batch(x[batch], y[batch])  # this batch's own values
            rows.append((rate, loss, accuracy, len(batch)))
        evaluations.append(model.evaluate(x_test, y_test, batch_size=1000, verbose=0))
    return np.array(rows), np.array(evaluations)


@pytest.mark.parametrize(
    "schedule",
    [
        make("triangular", base_lr=0.01, max_lr=0.1, step_size=20),
        make(
            "step_decay",
            initial_lr=0.1,
            drop=0.5,
            every_steps=24,
            granularity="epoch",
            steps_per_epoch=24,
        ),
    ],
    ids=["triangular", "step-decay-per-epoch"],
)
def test_the_loop_is_keras_on_the_same_batches(schedule, mnist_dir):
    spec = RunSpec("t", schedule, SEED, Workload(epochs=EPOCHS, train_size=TRAIN_SIZE))
    assert spec.trainer == "loop"
    run = train_run(spec, data_dir=str(mnist_dir))
    rows, evaluations = keras_replay(schedule, str(mnist_dir))
    log = run.batches[["lr", "loss", "accuracy", "batch_size"]].to_numpy()
    assert log.shape == rows.shape == (EPOCHS * 24, 4)
    np.testing.assert_array_equal(log[:, 3], rows[:, 3])
    # Measured bit for bit equal on the project machine; float32 rounding is all it may differ by.
    np.testing.assert_allclose(log[:, 0], rows[:, 0], rtol=1e-6)  # the rate applied at each step
    np.testing.assert_allclose(log[:, 1], rows[:, 1], rtol=1e-6)
    np.testing.assert_array_equal(log[:, 2], rows[:, 2])
    epochs = run.epochs[["test_loss", "test_accuracy"]].to_numpy()
    np.testing.assert_allclose(epochs, evaluations, rtol=1e-6)
    sizes = log[:, 3]
    for epoch in range(EPOCHS):  # the epoch's train loss is its batches' size-weighted mean
        part = slice(epoch * 24, (epoch + 1) * 24)
        mean = log[part, 1] @ sizes[part] / sizes[part].sum()
        assert run.epochs["train_loss"].iloc[epoch] == pytest.approx(mean, rel=1e-12)


def test_a_worker_keeps_its_inputs_only_for_the_same_data(mnist_dir):
    """The inputs a worker keeps between runs (as tensors) are keyed by the data: another subset
    or split in the same process trains on its own images, never the previous run's."""
    from clrbench.train import run as run_module

    def spec(train_size, validation_size=None):
        return RunSpec(
            label="t",
            schedule=make("constant", lr=0.1),
            seed=0,
            workload=Workload(epochs=1, train_size=train_size, validation_size=validation_size),
        )

    first = train_run(spec(2000), data_dir=str(mnist_dir))
    kept = next(iter(run_module._TENSORS.values()))
    again = train_run(spec(2000), data_dir=str(mnist_dir))
    assert next(iter(run_module._TENSORS.values())) is kept  # reused, not rebuilt
    assert first.batches["loss"].tolist() == again.batches["loss"].tolist()
    other = train_run(spec(3000), data_dir=str(mnist_dir))
    assert len(other.batches) == 24 and len(first.batches) == 16
    split = train_run(spec(3000, validation_size=10000), data_dir=str(mnist_dir))
    assert len(run_module._TENSORS) == 1  # one entry: memory stays flat
    assert split.batches["loss"].iloc[0] != other.batches["loss"].iloc[0]  # other images


def test_the_lr_find_sweep_is_the_loop_with_a_stop_hook(mnist_dir):
    """lr-find's sweep trains on the loop: its log equals plain Keras train_on_batch on the
    sweep's documented batches (full, seeded permutations), and the stop hook ends it between
    compiled calls of CHECK_EVERY steps."""
    import keras

    from clrbench.config.sweep import CHECK_EVERY, SweepSettings
    from clrbench.train.lr_sweep import sweep_batches, sweep_seed

    steps = 3 * CHECK_EVERY  # 75 steps: more than one pass over the 23 full batches
    settings = SweepSettings(1e-3, 1.0, steps, workload=Workload(train_size=TRAIN_SIZE))
    sweep = sweep_seed(settings, SEED, stop=lambda loss: False, data_dir=str(mnist_dir))
    data = load_dataset("mnist", data_dir=str(mnist_dir), train_size=TRAIN_SIZE, seed=0)
    x, y = workload.preprocess(data.x_train), data.y_train.astype(np.int32)
    keras.backend.clear_session()
    model = keras.Sequential(workload.build_layers(x.shape[1], SEED))
    workload.compile_model(model, "sgd-momentum", settings.schedule.keras())
    order = sweep_batches(len(y), 128, SEED)
    rows = []
    for chunk in range(steps // CHECK_EVERY):
        indices = order(chunk).reshape(CHECK_EVERY, 128)
        for batch in indices:
            rate = float(model.optimizer.learning_rate)
            rows.append((rate, *model.train_on_batch(x[batch], y[batch])))
    replay = np.array(rows)
    log = sweep.frame[["lr", "loss", "accuracy"]].to_numpy()
    assert log.shape == replay.shape == (steps, 3)
    np.testing.assert_allclose(log[:, :2], replay[:, :2], rtol=1e-6)
    np.testing.assert_array_equal(log[:, 2], replay[:, 2])
    assert (sweep.frame["step"] == np.arange(steps)).all()

    stopped = sweep_seed(
        settings, SEED, stop=lambda loss: len(loss) >= CHECK_EVERY + 1, data_dir=str(mnist_dir)
    )
    assert len(stopped.frame) == 2 * CHECK_EVERY  # asked after each call, so after the second
    np.testing.assert_array_equal(stopped.frame["loss"], sweep.frame["loss"][: 2 * CHECK_EVERY])
