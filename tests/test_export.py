"""``clrbench export``: TensorBoard event files read back with TensorBoard's own reader, CSV read
back with pandas, and destinations that cannot be written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clrbench.cli.main import main
from clrbench.store.results import load_results

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _read(folder):
    accumulator = event_accumulator.EventAccumulator(
        str(folder), size_guidance={event_accumulator.SCALARS: 0}
    )
    accumulator.Reload()
    return accumulator


def test_tensorboard_scalars_are_the_runs_logs(synthetic_small, tmp_path, capsys):
    out = tmp_path / "tb"
    assert main(["export", str(synthetic_small), "--tensorboard", str(out)]) == 0
    assert "4 runs" in capsys.readouterr().out
    results = load_results(synthetic_small)
    folders = sorted(str(p.relative_to(out)) for p in out.glob("*/*") if p.is_dir())
    assert folders == ["clr-iter/seed0", "clr-iter/seed1", "constant/seed0", "constant/seed1"]
    for run_id, batches in results.batches.groupby("run_id", observed=True):
        schedule, seed = batches["schedule"].iloc[0], batches["seed"].iloc[0]
        events = _read(out / schedule / f"seed{seed}")
        assert set(events.Tags()["scalars"]) == {
            "batch/lr", "batch/loss", "batch/accuracy", "epoch/test_loss",
            "epoch/test_accuracy", "epoch/train_loss", "epoch/train_accuracy", "epoch/lr",
        }  # fmt: skip
        for column in ("lr", "loss", "accuracy"):
            scalars = events.Scalars(f"batch/{column}")
            assert [s.step for s in scalars] == batches["step"].tolist()
            expected = batches[column].to_numpy(np.float32)  # TensorBoard stores float32
            np.testing.assert_array_equal([s.value for s in scalars], expected)
        epochs = results.epochs[results.epochs["run_id"] == run_id]
        test_accuracy = events.Scalars("epoch/test_accuracy")
        assert [s.step for s in test_accuracy] == epochs["step"].tolist()
        np.testing.assert_array_equal(
            [s.value for s in test_accuracy], epochs["test_accuracy"].to_numpy(np.float32)
        )
    # exporting again replaces the event files instead of doubling every point
    assert main(["export", str(synthetic_small), "--tensorboard", str(out)]) == 0
    assert len(list((out / "constant/seed0").iterdir())) == 1


def test_csv_holds_the_tidy_frames(synthetic_small, tmp_path, capsys):
    file = tmp_path / "suite.csv"
    assert main(["export", str(synthetic_small), "--csv", str(file)]) == 0
    results = load_results(synthetic_small)
    written = capsys.readouterr().out.split()
    assert written == [
        str(file),
        str(tmp_path / "suite.batches.csv"),
        str(tmp_path / "suite.runs.csv"),
        str(tmp_path / "suite.evaluations.csv"),
    ]
    epochs = pd.read_csv(file)
    assert list(epochs.columns) == list(results.epochs.columns)
    # float64 columns are written to 15 significant digits (no 0.8674000000000001): equal to
    # within half a unit of the 15th digit, 0.5e-14 relative (0.27056164540459 for
    # 0.2705616454045896 is 1.4e-15)
    np.testing.assert_allclose(
        epochs["test_accuracy"], results.epochs["test_accuracy"], rtol=5e-15, atol=0
    )
    batches = pd.read_csv(tmp_path / "suite.batches.csv")
    assert len(batches) == len(results.batches)
    runs = pd.read_csv(tmp_path / "suite.runs.csv")
    assert sorted(runs["run_id"]) == sorted(results.runs["run_id"].astype(str))
    # evaluated at the epochs' ends only: the evaluations are the epochs' rows
    evaluations = pd.read_csv(tmp_path / "suite.evaluations.csv")
    assert list(evaluations.columns) == list(results.evaluations.columns)
    columns = ["run_id", "step", "test_accuracy", "test_loss"]
    pd.testing.assert_frame_equal(evaluations[columns], epochs[columns])


@pytest.mark.slow  # float32 values as training records them: a trained folder
def test_csv_writes_float32_values_as_recorded(small_results, tmp_path):
    """The rate, loss and accuracy of a batch were float32 in the graph: the CSV holds their
    shortest float32 form (the clr schedule's base rate 0.02, not 0.019999999552965164), which
    reads back as exactly the recorded float32; float64 metrics are written to 15 significant
    digits (the digits a float64 keeps through a decimal round trip: no 0.8674000000000001)."""
    file = tmp_path / "suite.csv"
    assert main(["export", str(small_results), "--csv", str(file)]) == 0
    results = load_results(small_results)
    batches_text = (tmp_path / "suite.batches.csv").read_text()
    assert "0.019999999552965164" not in batches_text
    assert ",0.02," in batches_text  # clr-iter's base_lr at step 0
    batches = pd.read_csv(tmp_path / "suite.batches.csv")
    epochs = pd.read_csv(file)
    for frame, stored, columns in (
        (batches, results.batches, ("lr", "loss", "accuracy")),
        (epochs, results.epochs, ("lr",)),
    ):
        for column in columns:
            np.testing.assert_array_equal(
                frame[column].to_numpy(np.float32), stored[column].to_numpy(np.float32)
            )
    for column in ("test_accuracy", "test_loss", "train_loss", "time_s"):
        np.testing.assert_allclose(epochs[column], results.epochs[column], rtol=5e-15, atol=0)


def test_csv_into_a_missing_folder_creates_it(synthetic_small, tmp_path, capsys):
    file = tmp_path / "new" / "deeper" / "suite.csv"
    assert main(["export", str(synthetic_small), "--csv", str(file)]) == 0
    assert capsys.readouterr().err == ""
    assert sorted(p.name for p in file.parent.iterdir()) == [
        "suite.batches.csv", "suite.csv", "suite.evaluations.csv", "suite.runs.csv"
    ]  # fmt: skip
    assert len(pd.read_csv(file)) == len(load_results(synthetic_small).epochs)


@pytest.mark.slow  # a trained folder with --eval-every
def test_evaluations_within_epochs_are_exported(eval_every_results, tmp_path):
    """TensorBoard's eval/* and the evaluations CSV hold every evaluation of a run trained with
    --eval-every 10 (run steps 10, 20, 24, 30, 40, 48: step = the last trained, from 0), read
    back with TensorBoard's reader and pandas against the stored frame."""
    out, file = tmp_path / "tb", tmp_path / "suite.csv"
    folder = str(eval_every_results)
    assert main(["export", folder, "--tensorboard", str(out), "--csv", str(file)]) == 0
    results = load_results(eval_every_results)
    csv = pd.read_csv(tmp_path / "suite.evaluations.csv")
    assert len(csv) == len(results.evaluations) == 2 * 6
    for seed in (0, 1):
        stored = results.evaluations[results.evaluations["seed"] == seed]
        assert stored["step"].tolist() == [9, 19, 23, 29, 39, 47]
        events = _read(out / "clr-iter" / f"seed{seed}")
        assert {"eval/test_loss", "eval/test_accuracy"} <= set(events.Tags()["scalars"])
        for column in ("test_loss", "test_accuracy"):
            scalars = events.Scalars(f"eval/{column}")
            assert [s.step for s in scalars] == stored["step"].tolist()
            np.testing.assert_array_equal(
                [s.value for s in scalars], stored[column].to_numpy(np.float32)
            )
            np.testing.assert_allclose(  # 15 significant digits in the CSV (see above)
                csv.loc[csv["seed"] == seed, column], stored[column].to_numpy(), rtol=5e-15
            )
        ends = events.Scalars("epoch/test_accuracy")  # the epochs' ends, as before
        assert [s.step for s in ends] == [23, 47]


@pytest.mark.parametrize("option", ["--tensorboard", "--csv"])
def test_unwritable_destination_is_one_line_exit_2_nothing_written(
    synthetic_small, tmp_path, capsys, option
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["export", str(synthetic_small), option, str(blocker / "inside" / "x.csv")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1 and "is not a folder" in error
    assert blocker.read_text() == "not a folder" and sorted(tmp_path.iterdir()) == [blocker]


def test_export_needs_a_destination_and_a_results_folder(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 2
    assert main(["export", str(tmp_path / "nope"), "--csv", str(tmp_path / "x.csv")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert "give --tensorboard DIR, --csv FILE and/or --mlflow URI" in errors[0]
    assert "no such results folder" in errors[1]
    assert list(tmp_path.iterdir()) == []
