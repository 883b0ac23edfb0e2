"""One real training run on an MNIST subset: honest per-batch logs, divergence, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clrbench.config.runs import RunSpec
from clrbench.config.workload import Workload
from clrbench.schedules import make
from clrbench.train.batch_log import DIVERGENCE_FACTOR, first_divergent
from clrbench.train.run import train_run

TRAIN_SIZE = 3000  # 24 steps per epoch at batch 128, the last one of 56 images
STEPS_PER_EPOCH = 24


def spec(
    schedule=None, seed=0, epochs=2, lr_mode="graph", train_size=TRAIN_SIZE, trainer="loop"
) -> RunSpec:
    schedule = schedule or make("triangular", base_lr=0.01, max_lr=0.1, step_size=20)
    return RunSpec(
        label="t",
        schedule=schedule,
        seed=seed,
        workload=Workload(epochs=epochs, train_size=train_size, trainer=trainer),
        lr_mode=lr_mode,
    )


@pytest.fixture(scope="module")
def clr_run(mnist_dir):
    return train_run(spec(), data_dir=str(mnist_dir))


@pytest.fixture(scope="module")
def fit_run(mnist_dir):
    """The same run through Keras fit (the callback mode's trainer, and the loop's reference)."""
    return train_run(spec(trainer="fit"), data_dir=str(mnist_dir))


@pytest.mark.slow
def test_one_row_per_step_with_true_batch_sizes(clr_run):
    batches = clr_run.batches
    assert clr_run.status == "ok"
    assert len(batches) == 2 * STEPS_PER_EPOCH
    assert batches["step"].tolist() == list(range(2 * STEPS_PER_EPOCH))
    assert batches["epoch"].tolist() == [0] * STEPS_PER_EPOCH + [1] * STEPS_PER_EPOCH
    sizes = batches.groupby("epoch")["batch_size"]
    assert (sizes.sum() == TRAIN_SIZE).all()
    assert (sizes.last() == TRAIN_SIZE - 128 * (STEPS_PER_EPOCH - 1)).all()
    assert batches["time_s"].is_monotonic_increasing


@pytest.mark.slow
def test_batch_losses_average_to_keras_epoch_loss(fit_run):
    """Keras fit's own epoch loss (its loss tracker) is the batch-size-weighted mean of the
    logged batch losses: the log holds each batch's own loss. (The lean loop computes its epoch
    loss from the log; tests/test_loop.py checks its batch losses against Keras instead.)"""
    clr_run = fit_run
    batches, epochs = clr_run.batches, clr_run.epochs.set_index("epoch")
    for epoch, rows in batches.groupby("epoch"):
        weights = rows["batch_size"]
        loss = np.average(rows["loss"], weights=weights)
        accuracy = np.average(rows["accuracy"], weights=weights)
        np.testing.assert_allclose(loss, epochs.loc[epoch, "train_loss"], rtol=1e-5)
        np.testing.assert_allclose(accuracy, epochs.loc[epoch, "train_accuracy"], rtol=1e-5)


@pytest.mark.slow
def test_batch_values_are_not_running_means(clr_run):
    rows = clr_run.batches[clr_run.batches["epoch"] == 1]
    running_mean = np.cumsum(rows["loss"] * rows["batch_size"]) / np.cumsum(rows["batch_size"])
    assert not np.allclose(rows["loss"], running_mean, rtol=1e-3)
    assert rows["accuracy"].between(0, 1).all()


@pytest.mark.slow
def test_logged_rate_is_the_schedule_at_every_step(clr_run):
    steps = clr_run.batches["step"].to_numpy()
    expected = clr_run.spec.schedule(steps)
    np.testing.assert_allclose(clr_run.batches["lr"], expected, rtol=1e-6)
    assert clr_run.batches["lr"].max() > 0.09  # the cycle peaked inside the run


@pytest.mark.slow
def test_per_epoch_granularity_holds_the_rate_within_each_epoch(mnist_dir):
    schedule = make(
        "triangular",
        granularity="epoch",
        steps_per_epoch=STEPS_PER_EPOCH,
        base_lr=0.01,
        max_lr=0.1,
        step_size=STEPS_PER_EPOCH,
    )
    run = train_run(spec(schedule), data_dir=str(mnist_dir))
    by_epoch = run.batches.groupby("epoch")["lr"]
    assert (by_epoch.nunique() == 1).all()
    np.testing.assert_allclose(by_epoch.first(), [0.01, 0.1], rtol=1e-6)


@pytest.mark.slow
def test_epoch_rows_have_test_metrics(clr_run):
    epochs = clr_run.epochs
    assert epochs["epoch"].tolist() == [0, 1]
    assert epochs["step"].tolist() == [STEPS_PER_EPOCH - 1, 2 * STEPS_PER_EPOCH - 1]
    assert epochs["test_accuracy"].between(0.8, 1).all()  # 3,000 images, 2 epochs
    assert (epochs["test_loss"] > 0).all()


@pytest.mark.slow
def test_same_seed_same_log_and_other_seed_differs(clr_run, mnist_dir):
    columns = ["step", "lr", "loss", "accuracy", "batch_size"]
    again = train_run(spec(), data_dir=str(mnist_dir))
    pd.testing.assert_frame_equal(again.batches[columns], clr_run.batches[columns])
    other = train_run(spec(seed=1), data_dir=str(mnist_dir))
    assert not np.array_equal(other.batches["loss"], clr_run.batches["loss"])


def test_initial_weights_ignore_pythons_shared_generator():
    """Keras seeds an unseeded initializer from Python's global generator, which every thread
    of a process shares (a Dask worker's threads draw from it). The model's seeds are the same
    draws from a private generator: equal to Keras' own weights, whatever else drew between."""
    import random

    import keras

    from clrbench.train import workload

    keras.utils.set_random_seed(7)
    keras_default = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            keras.layers.Dense(workload.HIDDEN_UNITS, activation="relu"),
            keras.layers.Dense(workload.NUM_CLASSES, activation="softmax"),
        ]
    ).get_weights()
    keras.utils.set_random_seed(7)
    random.random()  # another thread's draw, between seeding and building
    ours = keras.Sequential(workload.build_layers(784, 7)).get_weights()
    assert len(ours) == len(keras_default) == 4
    for a, b in zip(ours, keras_default, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_batches_per_compiled_call_do_not_change_the_log(fit_run, mnist_dir):
    clr_run = fit_run
    run = train_run(spec(trainer="fit"), data_dir=str(mnist_dir), steps_per_execution=1)
    columns = ["step", "lr", "loss", "accuracy", "batch_size"]
    pd.testing.assert_frame_equal(run.batches[columns], clr_run.batches[columns])
    pd.testing.assert_frame_equal(
        run.epochs.drop(columns="time_s"), clr_run.epochs.drop(columns="time_s")
    )


@pytest.mark.slow
def test_callback_mode_trains_identically_through_fit(fit_run, mnist_dir):
    """The blog's per-batch callback sets the same rates from Python: the same run as the
    in-graph schedule under Keras fit (the callback mode always trains through fit)."""
    callback = spec(lr_mode="callback")
    assert callback.trainer == "fit"  # the default trainer is the loop: the callback needs fit
    run = train_run(callback, data_dir=str(mnist_dir))
    columns = ["lr", "loss", "accuracy"]
    pd.testing.assert_frame_equal(run.batches[columns], fit_run.batches[columns])


def _assert_diverged_where_the_loss_exploded(run, epochs_done=1):
    loss = run.batches["loss"].to_numpy()
    assert run.status == "diverged"
    assert run.batches["step"].iloc[-1] == run.diverged_step  # the log ends at that step
    bound = DIVERGENCE_FACTOR * loss[0]
    assert not np.isfinite(loss[-1]) or loss[-1] > bound
    assert (np.isfinite(loss[:-1]) & (loss[:-1] <= bound)).all()
    assert len(run.epochs) == epochs_done  # stopped at the end of that epoch


@pytest.mark.slow
@pytest.mark.parametrize("trainer", ["loop", "fit"])
def test_a_diverging_rate_is_recorded_as_diverged(mnist_dir, trainer):
    diverging = spec(make("constant", lr=1e6), epochs=3, trainer=trainer)
    run = train_run(diverging, data_dir=str(mnist_dir))
    assert run.diverged_step is not None and run.diverged_step < STEPS_PER_EPOCH
    _assert_diverged_where_the_loss_exploded(run)


@pytest.mark.slow
def test_an_exploding_but_finite_loss_is_diverged(mnist_dir):
    """The issue's probe: lr = 50, one epoch of 2,000 images; the loss grows to ~1e8 but stays
    finite (so a NaN-only rule called it ok)."""
    run = train_run(spec(make("constant", lr=50.0), epochs=2, train_size=2000), str(mnist_dir))
    _assert_diverged_where_the_loss_exploded(run)
    assert np.isfinite(run.batches["loss"]).all()  # diverged although every loss is finite
    assert run.diverged_step < 16  # 16 steps per epoch: it exploded within the first epoch


def test_first_divergent_on_both_sides_of_the_bound():
    first = 2.3
    bound = DIVERGENCE_FACTOR * first
    assert first_divergent(np.array([first, 2.0, bound, 1.0]), first) is None  # at the bound: ok
    assert first_divergent(np.array([first, 2.0, np.nextafter(bound, 99), 1.0]), first) == 2
    assert first_divergent(np.array([first, np.nan, 1e9]), first) == 1
    assert first_divergent(np.array([first, 1.0, -np.inf]), first) == 2
    assert first_divergent(np.array([np.inf]), np.inf) == 0


@pytest.mark.slow
def test_full_mnist_logged_rate_is_the_schedule_at_every_step(mnist_dir):
    """At the real epoch length (469 steps), a per-epoch step decay from the high-but-healthy 0.2:
    the rate the optimizer applied equals the schedule at every step and drops exactly at the
    epoch boundaries; the run stays ok."""
    schedule = make(
        "step_decay",
        initial_lr=0.2,
        drop=0.5,
        every_steps=469,
        granularity="epoch",
        steps_per_epoch=469,
    )
    run = train_run(spec(schedule, epochs=3, train_size=None), data_dir=str(mnist_dir))
    assert run.status == "ok" and run.diverged_step is None
    steps = run.batches["step"].to_numpy()
    np.testing.assert_array_equal(steps, np.arange(3 * 469))
    expected = schedule(steps).astype(np.float32)
    np.testing.assert_array_equal(run.batches["lr"].to_numpy(np.float32), expected)
    drops = np.flatnonzero(np.diff(run.batches["lr"].to_numpy()) != 0) + 1
    np.testing.assert_array_equal(drops, [469, 938])
    assert run.batches["loss"].max() <= 2 * run.batches["loss"].iloc[0]  # far from the bound


@pytest.mark.slow
@pytest.mark.parametrize(
    ("trainer", "functions"),
    [("loop", ["train_batches", "evaluate"]), ("fit", ["multi_step_on_iterator"] * 2)],
)
def test_a_run_traces_its_train_and_test_functions_once_each(
    mnist_dir, monkeypatch, trainer, functions
):
    """What clrbench.train.quiet.ExpectedTracing relies on: within a run nothing is retraced (the
    partial last batch, new epochs and the schedule's graph all reuse the first trace); the
    retracing TensorFlow warns about comes only from the next run's fresh model."""
    from tensorflow.python.eager.polymorphic_function import polymorphic_function

    manager = type(polymorphic_function._frequent_tracing_detector_manager)
    traced: list[str] = []
    original = manager.called_with_tracing

    def spy(self, key, function_name, omit_warning):  # records, then TensorFlow's own code
        traced.append(getattr(function_name, "__name__", str(function_name)))
        return original(self, key, function_name, omit_warning)

    monkeypatch.setattr(manager, "called_with_tracing", spy)
    schedules = {
        "one_cycle": {"max_lr": 0.1, "total_steps": 72},
        "sgdr": {"max_lr": 0.1, "min_lr": 0.01, "first_period": 24},
    }
    for name, params in schedules.items():
        traced.clear()
        run = spec(make(name, **params), epochs=3, trainer=trainer)
        result = train_run(run, data_dir=str(mnist_dir))
        assert result.status == "ok"
        assert traced == functions  # train and test, once each
