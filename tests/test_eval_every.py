"""``eval_every``: evaluations within epochs, for a time to target finer than an epoch.

The in-epoch evaluation points are integer arithmetic on the run's step count; a run evaluated
within its epochs trains exactly the batches of one that is not (the epoch's compiled call is
split, not changed), its evaluations are Keras's own ``evaluate`` at those steps, and the
results store keeps them (``evaluations.parquet``) for time to target.
"""

from __future__ import annotations

import numpy as np
import pytest

from clrbench.cli.main import main
from clrbench.config.experiment import Experiment
from clrbench.config.presets import PRESETS
from clrbench.config.runs import RunSpec
from clrbench.config.workload import Workload
from clrbench.errors import ConfigError
from clrbench.schedules import make

TRAIN_SIZE = 3000  # 24 steps per epoch, the last of 56 images


@pytest.mark.parametrize(
    ("every", "epoch", "within"),
    [
        (10, 0, [10, 20]),  # run steps 10, 20; the epoch's end (24) is evaluated anyway
        (10, 1, [6, 16]),  # run steps 30, 40 = 24 + 6, 24 + 16
        (10, 2, [2, 12, 22]),  # run steps 50, 60, 70 (72 is the epoch's end)
        (8, 0, [8, 16]),  # 24 is the end, not "within"
        (8, 1, [8, 16]),
        (24, 0, []),  # once per epoch: nothing within
        (24, 3, []),
        (5, 0, [5, 10, 15, 20]),
        (5, 1, [1, 6, 11, 16, 21]),  # run steps 25, 30, 35, 40, 45
        (1, 0, list(range(1, 24))),
    ],
)
def test_evaluation_points_are_the_run_steps_that_are_multiples(every, epoch, within):
    workload = Workload(epochs=4, train_size=TRAIN_SIZE, eval_every=every)
    assert workload.steps_per_epoch == 24
    assert workload.evaluations_within(epoch) == within


def test_without_eval_every_nothing_is_evaluated_within_and_run_ids_are_unchanged():
    workload = Workload()
    assert [workload.evaluations_within(e) for e in range(25)] == [[]] * 25
    assert "eval_every" not in workload.config()
    # a run id hashes its config: without eval_every the default suite's are what they were
    default = Experiment.from_dict(PRESETS["default"])
    assert all("eval_every" not in str(spec.config()) for spec in default.runs())
    finer = default.with_workload(eval_every=100)
    assert set(finer.plan().run_ids).isdisjoint(default.plan().run_ids)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"eval_every": 0}, "eval_every"),
        ({"eval_every": -3}, "eval_every"),
        ({"eval_every": 25}, "at most the 24 steps"),
        ({"eval_every": 10, "trainer": "fit"}, "needs trainer 'loop'"),
        ({"eval_every": 10, "trainer": "stacked"}, "needs trainer 'loop'"),
    ],
)
def test_bad_eval_every_is_one_config_error(changes, message):
    with pytest.raises(ConfigError, match=message):
        Workload(train_size=TRAIN_SIZE, **changes)


def test_a_callback_schedule_cannot_be_evaluated_within_epochs():
    schedule = make("triangular", base_lr=0.01, max_lr=0.1, step_size=20)
    workload = Workload(train_size=TRAIN_SIZE, eval_every=10)
    with pytest.raises(ConfigError, match="needs the lean loop"):
        RunSpec("t", schedule, 0, workload, lr_mode="callback")
    assert not RunSpec("t", schedule, 0, workload).stackable  # the stack evaluates per epoch


@pytest.mark.parametrize("value", ["0", "500"])
def test_the_cli_refuses_a_bad_eval_every_before_writing(value, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--preset", "quick", "--eval-every", value, "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "eval_every" in error[0]
    assert not out.exists()


def keras_evaluations(schedule, data_dir, epochs, every):
    """Plain Keras on the loop's batch order, evaluated after every ``every`` steps of the run
    and at each epoch's end: [(step, test loss, test accuracy)]."""
    import keras

    from clrbench.data.load import load_dataset
    from clrbench.train import workload

    data = load_dataset("mnist", data_dir=data_dir, train_size=TRAIN_SIZE, seed=0)
    x, y = workload.preprocess(data.x_train), data.y_train.astype(np.int32)
    x_test, y_test = workload.preprocess(data.x_test), data.y_test.astype(np.int32)
    keras.backend.clear_session()
    model = keras.Sequential(workload.build_layers(x.shape[1], 3))
    workload.compile_model(model, "sgd-momentum", schedule.keras())
    rng, step, rows = np.random.default_rng(3), 0, []
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), 128):
            model.train_on_batch(x[order[start : start + 128]], y[order[start : start + 128]])
            step += 1
            if step % every == 0 or start + 128 >= len(y):
                loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
                rows.append((step - 1, loss, accuracy))
    return rows


@pytest.mark.slow
def test_in_epoch_evaluations_leave_the_training_unchanged_and_are_kerass(mnist_dir):
    from clrbench.train.run import train_run

    schedule = make("triangular", base_lr=0.01, max_lr=0.1, step_size=20)
    runs = {
        every: train_run(
            RunSpec("t", schedule, 3, Workload(epochs=2, train_size=TRAIN_SIZE, eval_every=every)),
            data_dir=str(mnist_dir),
        )
        for every in (None, 10)
    }
    plain_run, finer = runs[None], runs[10]
    columns = ["step", "lr", "loss", "accuracy", "batch_size"]
    # the same batches, bit for bit, whether or not the epochs are split at evaluations
    np.testing.assert_array_equal(finer.batches[columns], plain_run.batches[columns])
    metrics = ["train_loss", "train_accuracy", "test_loss", "test_accuracy"]
    np.testing.assert_array_equal(finer.epochs[metrics], plain_run.epochs[metrics])
    # evaluated after run steps 10, 20, 24 (end), 30, 40, 48 (end): ``step`` the last trained
    assert finer.evaluations["step"].tolist() == [9, 19, 23, 29, 39, 47]
    assert plain_run.evaluations["step"].tolist() == [23, 47]
    assert finer.evaluations["epoch"].tolist() == [0, 0, 0, 1, 1, 1]
    ends = finer.evaluations.iloc[[2, 5]]
    np.testing.assert_array_equal(ends["test_accuracy"], finer.epochs["test_accuracy"])
    np.testing.assert_array_equal(ends["time_s"], finer.epochs["time_s"])
    seconds = finer.evaluations["time_s"].to_numpy()
    assert np.all(np.diff(seconds) >= 0) and seconds[0] > 0
    # time_s of the batches is training time: the batch at an evaluation's step has its time
    at = finer.batches.set_index("step").loc[finer.evaluations["step"], "time_s"].to_numpy()
    np.testing.assert_allclose(at, seconds, rtol=1e-12)
    replay = np.array(keras_evaluations(schedule, str(mnist_dir), epochs=2, every=10))
    np.testing.assert_array_equal(replay[:, 0], finer.evaluations["step"])
    np.testing.assert_allclose(replay[:, 1], finer.evaluations["test_loss"], rtol=1e-5)
    np.testing.assert_allclose(replay[:, 2], finer.evaluations["test_accuracy"], atol=1e-9)


@pytest.mark.slow
def test_run_stores_the_evaluations_and_time_to_target_uses_them(tmp_path, mnist_dir):
    from clrbench.analysis.stats import evaluation_interval, steps_to_target
    from clrbench.store.results import load_results

    common = ["--preset", "quick", "--schedules", "clr-iter", "--seeds", "2", "--jobs", "1"]
    common += ["--epochs", "2", "--train-size", str(TRAIN_SIZE), "--no-report", "--quiet"]
    assert main(["run", *common, "--eval-every", "6", "--out", str(tmp_path / "finer")]) == 0
    assert main(["run", *common, "--out", str(tmp_path / "plain")]) == 0
    finer, plain = load_results(tmp_path / "finer"), load_results(tmp_path / "plain")
    assert sorted((tmp_path / "finer" / "runs").glob("*/evaluations.parquet"))
    assert not sorted((tmp_path / "plain" / "runs").glob("*/evaluations.parquet"))
    assert evaluation_interval(finer) == 6 and evaluation_interval(plain) == 24
    per_run = finer.evaluations.groupby("run_id", observed=True)["step"].apply(list)
    assert per_run.tolist() == [[5, 11, 17, 23, 29, 35, 41, 47]] * 2
    columns = ["step", "lr", "loss", "accuracy"]
    np.testing.assert_array_equal(finer.batches[columns], plain.batches[columns])
    # a target the first epoch's end reaches: the finer runs reach it no later, at a multiple of 6
    target = float(plain.epochs.loc[plain.epochs["epoch"] == 0, "test_accuracy"].min())
    fine, coarse = steps_to_target(finer, target), steps_to_target(plain, target)
    assert fine["reached"].all() and coarse["reached"].all()
    assert (fine["iterations"] % 6 == 0).all()
    assert (fine["iterations"].to_numpy() <= coarse["iterations"].to_numpy()).all()


@pytest.mark.slow
def test_a_full_mnist_epoch_split_at_evaluations_trains_the_same_batches(mnist_dir):
    """At the real epoch length (469 steps, the last of 96 images), with evaluation points
    that do not divide it: the same log bit for bit, evaluated after steps 100, 200, 300, 400."""
    from clrbench.train.run import train_run

    schedule = make("triangular", base_lr=0.02, max_lr=0.2, step_size=1172)
    runs = [
        train_run(RunSpec("t", schedule, 0, Workload(epochs=1, eval_every=every)), str(mnist_dir))
        for every in (None, 100)
    ]
    columns = ["step", "lr", "loss", "accuracy", "batch_size"]
    assert len(runs[0].batches) == 469 and runs[0].batches["batch_size"].iloc[-1] == 96
    np.testing.assert_array_equal(runs[1].batches[columns], runs[0].batches[columns])
    assert runs[1].evaluations["step"].tolist() == [99, 199, 299, 399, 468]
    np.testing.assert_array_equal(runs[1].epochs["test_accuracy"], runs[0].epochs["test_accuracy"])
