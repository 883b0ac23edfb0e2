"""The new optimizers in clrbench's runs (slow: they train; the CLI test starts workers).

- One experiment on mnist1d-mlp whose entries name adamw, nadamw, schedulefree-sgd and
  schedulefree-adamw (their own optimizer, weight decay and warmup) trains end to end through the
  real CLI, every run ok, each with its optimizer in its record.
- A schedule-free run is evaluated at x: the loop's evaluation equals the model evaluated at
  ``evaluation_weights()`` and differs from it at y; evaluations within epochs change nothing of
  the training (the batch log and the epoch's training metrics bit for bit).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from clrbench.cli.main import main
from clrbench.config.runs import RunSpec
from clrbench.config.workloads import BUILT_IN
from clrbench.schedules import make

pytestmark = pytest.mark.slow

MNIST1D = BUILT_IN["mnist1d-mlp"]

EXPERIMENT = """
[experiment]
name = "optimizers"
workload = "mnist1d-mlp"
epochs = 3
seeds = 1

[[schedule]]
label = "adamw"
name = "constant"
lr = 0.003
optimizer = "adamw"

[[schedule]]
label = "nadamw"
name = "constant"
lr = 0.003
optimizer = "nadamw"
weight_decay = 0.1

[[schedule]]
label = "sf-sgd"
name = "constant"
lr = 0.5
optimizer = "schedulefree-sgd"
optimizer_warmup_steps = "run * 0.05"

[[schedule]]
label = "sf-adamw"
name = "constant"
lr = 0.005
optimizer = "schedulefree-adamw"
weight_decay = 0.01
optimizer_warmup_steps = 10
"""


def test_an_experiment_of_the_new_optimizers_trains_end_to_end(tmp_path) -> None:
    config = tmp_path / "optimizers.toml"
    config.write_text(EXPERIMENT)
    out = tmp_path / "out"
    args = ["run", "--config", str(config), "--out", str(out), "--jobs", "1", "--quiet"]
    assert main([*args, "--no-report"]) == 0
    records = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/run.json"))]
    assert len(records) == 4
    by_label = {r["label"]: r for r in records}
    assert {label: r["status"] for label, r in by_label.items()} == dict.fromkeys(
        ("adamw", "nadamw", "sf-adamw", "sf-sgd"), "ok"
    )
    assert by_label["nadamw"]["config"]["optimizer"] == "nadamw"
    assert by_label["nadamw"]["config"]["weight_decay"] == 0.1
    assert by_label["adamw"]["config"]["weight_decay"] == 0.01  # its default, in its id
    assert by_label["sf-sgd"]["config"]["optimizer_warmup_steps"] == 5  # 5% of 96 steps
    # every optimizer learned: MNIST-1D's ten classes from 10% to well above chance
    from clrbench.store.results import load_results

    results = load_results(out)
    final = results.epochs[results.epochs["epoch"] == 2].set_index("schedule")["test_accuracy"]
    assert (final > 0.2).all(), final.to_dict()
    # the schedule-free runs' logged rate is the warmed-up one: lr · (k + 1) / W below W
    sf = results.batches[results.batches["schedule"] == "sf-sgd"].sort_values("step")
    np.testing.assert_allclose(sf["lr"].to_numpy()[:6], 0.5 * np.minimum(np.arange(1, 7) / 5, 1))


def _train(optimizer_name: str, eval_every: int | None, **workload_changes):
    from clrbench.train.run import train_run

    workload = MNIST1D.workload(
        epochs=2, optimizer=optimizer_name, eval_every=eval_every, **workload_changes
    )
    schedule = make("constant", lr=0.005)
    return train_run(RunSpec("sf", schedule, 4, workload))


def test_in_epoch_evaluations_at_x_leave_the_training_bitwise_unchanged() -> None:
    started = time.perf_counter()
    plain = _train("schedulefree-adamw", None, optimizer_warmup_steps=8, weight_decay=0.05)
    finer = _train("schedulefree-adamw", 7, optimizer_warmup_steps=8, weight_decay=0.05)
    assert time.perf_counter() - started < 600
    columns = ["step", "lr", "loss", "accuracy", "batch_size"]
    np.testing.assert_array_equal(finer.batches[columns], plain.batches[columns])
    metrics = ["train_loss", "train_accuracy", "test_loss", "test_accuracy"]
    np.testing.assert_array_equal(finer.epochs[metrics], plain.epochs[metrics])
    assert len(finer.evaluations) > len(plain.evaluations)


def test_the_loop_evaluates_a_schedule_free_model_at_x() -> None:
    import keras
    import tensorflow as tf

    from clrbench.config.workload import Workload
    from clrbench.data.load import load_dataset
    from clrbench.train import mlp, workload
    from clrbench.train.batch_log import EpochLog
    from clrbench.train.loop import train_loop
    from clrbench.train.run import configure_tensorflow

    configure_tensorflow(1)
    data = load_dataset("mnist1d", seed=0)
    train = mlp.preprocess(data.x_train), data.y_train.astype(np.int32)
    test = mlp.preprocess(data.x_test), data.y_test.astype(np.int32)
    keras.backend.clear_session()
    model = mlp.build_model(train[0].shape[1:], 2)
    optimizer = workload.build_optimizer("schedulefree-sgd", 0.3, 1e-3, 10)
    steps = Workload(dataset="mnist1d", model="mlp-100-100").steps_per_epoch
    log = EpochLog(steps, time.perf_counter(), None)
    train_loop(
        model, optimizer, train, test, epochs=2, batch_size=128, seed=2, epoch_log=log, task=mlp
    )
    logged = log.epoch_rows[-1]["test_loss"]
    x_weights = [w.numpy() for w in optimizer.evaluation_weights()]
    y_weights = [v.numpy() for v in model.trainable_variables]

    def loss_at(weights: list) -> float:
        twin = mlp.build_model(train[0].shape[1:], 2)
        twin.set_weights(weights)
        probabilities = twin(tf.constant(test[0]), training=False)
        return float(np.mean(mlp.per_example_loss(test[1], probabilities)))

    assert logged == pytest.approx(loss_at(x_weights), rel=1e-6)
    assert abs(logged - loss_at(y_weights)) > 1e-3


def test_the_optimizers_work_in_a_keras_models_compile_and_fit() -> None:
    import keras

    from clrbench.optimizers import AdamW, NAdamW, ScheduleFreeAdamW, ScheduleFreeSGD

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype(np.float32)
    y = (x @ rng.normal(size=8) > 0).astype(np.int32)
    for optimizer in (
        AdamW(0.01),
        NAdamW(0.01, weight_decay=0.1),
        ScheduleFreeSGD(0.5, warmup_steps=5, weight_decay=1e-3),
        ScheduleFreeAdamW(0.01, warmup_steps=5),
    ):
        keras.utils.set_random_seed(1)
        model = keras.Sequential(
            [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)]
        )
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        history = model.fit(x, y, batch_size=32, epochs=5, verbose=0)
        assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
        assert int(optimizer.iterations.numpy()) == 40
        if hasattr(optimizer, "evaluation_weights"):
            model.set_weights([w.numpy() for w in optimizer.evaluation_weights()])
        assert model.evaluate(x, y, verbose=0)[1] > 0.85


def test_nadamw_trains_through_keras_fit_as_a_trainer() -> None:
    from clrbench.train.run import train_run

    workload = MNIST1D.workload(epochs=2, optimizer="nadamw", trainer="fit", weight_decay=0.05)
    result = train_run(RunSpec("n", make("constant", lr=0.01), 0, workload))
    assert result.status == "ok"
    assert result.epochs["train_loss"].iloc[-1] < result.epochs["train_loss"].iloc[0]
