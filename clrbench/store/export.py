"""Results for other tools: TensorBoard event files and CSV files of the tidy frames.

TensorBoard: one run per subfolder ``<schedule>/seed<seed>``; per optimizer step the scalars
``batch/lr``, ``batch/loss`` and ``batch/accuracy`` (that batch's own values); per epoch
``epoch/test_loss``, ``epoch/test_accuracy``, ``epoch/train_loss``, ``epoch/train_accuracy`` and
``epoch/lr``, at the step that ends the epoch, so both share TensorBoard's step axis; for a run
evaluated within its epochs (``eval_every``), also ``eval/test_loss`` and ``eval/test_accuracy``
at every evaluation's step (the epochs' ends included). Wall times
are the run's start plus ``time_s``. Events are written with TensorBoard's own writer and
protocol buffers (no TensorFlow needed; TensorBoard uses it when it is installed, and its
start-up lines are hidden as for ``run``: see ``clrbench.quiet``).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from clrbench import quiet
from clrbench.errors import ResultsError
from clrbench.store import atomic
from clrbench.store.results import FLOAT32_RECORDED, Results

BATCH_SCALARS = ("lr", "loss", "accuracy")
EPOCH_SCALARS = ("test_loss", "test_accuracy", "train_loss", "train_accuracy", "lr")
EVALUATION_SCALARS = ("test_loss", "test_accuracy")
EVENTS_PREFIX = "events.out.tfevents."


def check_writable(target: Path, what: str) -> None:
    """Fail before writing anything unless ``target`` (a folder, or a file's folder) can be
    created and written: its nearest existing ancestor must be a writable folder."""
    existing = target.parent if what == "file" and target.is_file() else target  # replaced
    while not existing.exists():
        existing = existing.parent
    if existing == target and what == "folder" and not target.is_dir():
        raise ResultsError(f"{target}: exists and is not a folder")
    if not existing.is_dir():
        raise ResultsError(f"{target}: cannot write there ({existing} is not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ResultsError(f"{target}: cannot write there ({existing} is not writable)")


def _run_start(results: Results) -> dict[str, float]:
    """Each run's start as POSIX seconds (0 when unknown: TensorBoard then shows 1970)."""
    starts = {}
    for run_id, started in zip(results.runs["run_id"], results.runs["started_at"], strict=True):
        try:
            starts[str(run_id)] = datetime.fromisoformat(str(started)).timestamp()
        except ValueError:
            starts[str(run_id)] = 0.0
    return starts


def run_folder(schedule: str, seed: int) -> str:
    """The TensorBoard run name of one run: ``<schedule>/seed<seed>``."""
    return f"{schedule}/seed{seed}"


def write_tensorboard(results: Results, out: Path) -> list[Path]:
    """Write one event file per run under ``out/<schedule>/seed<seed>``; returns the folders.

    An earlier export's event files in those folders are replaced, not appended to."""
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    check_writable(out, "folder")
    starts = _run_start(results)
    epochs = {key: frame for key, frame in results.epochs.groupby("run_id", observed=True)}
    within = evaluated_within(results)
    folders = []
    for run_id, batches in results.batches.groupby("run_id", observed=True):
        schedule, seed = str(batches["schedule"].iloc[0]), int(batches["seed"].iloc[0])
        folder = out / run_folder(schedule, seed)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(EVENTS_PREFIX + "*"):
            old.unlink()
        with quiet.startup_silenced():  # the first writer imports TensorFlow, if installed
            writer = EventFileWriter(str(folder))
        start = starts.get(str(run_id), 0.0)
        _write_scalars(writer, batches, BATCH_SCALARS, "batch", start)
        if run_id in epochs:
            _write_scalars(writer, epochs[run_id], EPOCH_SCALARS, "epoch", start)
        if run_id in within:
            _write_scalars(writer, within[run_id], EVALUATION_SCALARS, "eval", start)
        writer.close()
        folders.append(folder)
    return folders


def evaluated_within(results: Results) -> dict[str, pd.DataFrame]:
    """The evaluations of each run evaluated within its epochs (more evaluations than epochs),
    by run id; runs evaluated only at their epochs' ends are left out."""
    per_epoch = results.epochs.groupby("run_id", observed=True).size()
    return {
        str(run_id): frame
        for run_id, frame in results.evaluations.groupby("run_id", observed=True)
        if len(frame) > per_epoch.get(run_id, 0)
    }


def _write_scalars(writer, frame: pd.DataFrame, columns: tuple, prefix: str, start: float):
    from tensorboard.compat.proto import event_pb2, summary_pb2

    steps = frame["step"].to_numpy()
    times = start + frame["time_s"].to_numpy()
    values = {column: frame[column].to_numpy() for column in columns}
    for i, step in enumerate(steps):
        summary = summary_pb2.Summary(
            value=[
                summary_pb2.Summary.Value(tag=f"{prefix}/{c}", simple_value=float(values[c][i]))
                for c in columns
            ]
        )
        writer.add_event(
            event_pb2.Event(wall_time=float(times[i]), step=int(step), summary=summary)
        )


def csv_paths(file: Path) -> dict[str, Path]:
    """``FILE`` holds the epochs frame; ``<stem>.batches.csv``, ``<stem>.runs.csv`` and
    ``<stem>.evaluations.csv`` (every evaluation: each epoch's end, and those within epochs of a
    run with eval_every) beside it."""
    stem = file.with_suffix("") if file.suffix == ".csv" else file
    return {
        "epochs": file,
        "batches": stem.with_name(stem.name + ".batches.csv"),
        "runs": stem.with_name(stem.name + ".runs.csv"),
        "evaluations": stem.with_name(stem.name + ".evaluations.csv"),
    }


def write_csv(results: Results, file: Path) -> list[Path]:
    """Write the epochs, batches, runs and evaluations frames as CSV (see ``csv_paths``),
    creating ``file``'s folder if needed; returns the paths."""
    paths = csv_paths(file)
    for path in paths.values():
        check_writable(path, "file")
        if path.is_dir():
            raise ResultsError(f"{path}: is a folder, not a file")
    file.parent.mkdir(parents=True, exist_ok=True)  # as --tensorboard makes its folder
    for name, path in paths.items():
        with atomic.atomic_file(path) as tmp:
            _as_recorded(getattr(results, name), FLOAT32_RECORDED.get(name, ())).to_csv(
                tmp, index=False
            )
    return list(paths.values())


CSV_DIGITS = 15  # significant digits of a float64 column in CSV: every value float64 holds exactly


def _as_recorded(frame: pd.DataFrame, float32_columns: tuple[str, ...]) -> pd.DataFrame:
    """``frame`` with the columns recorded in float32 as float32 again, so that the CSV shows
    the value the run recorded (``0.02``), not its float64 widening (``0.019999999552965164``);
    read back as float32, it is that value exactly. A column holding any value float32 cannot
    represent exactly (another writer's folder) is left as float64. Every float64 column is
    written to 15 significant digits (``%.15g``, DBL_DIG: the digits a float64 keeps through
    any decimal round trip), so that arithmetic noise does not show: ``0.8674``, not
    ``0.8674000000000001``."""
    exact = {}
    for column in float32_columns:
        values = frame[column].to_numpy(np.float64)
        narrowed = values.astype(np.float32)
        if np.array_equal(narrowed.astype(np.float64), values, equal_nan=True):
            exact[column] = narrowed
    frame = frame.assign(**exact)
    wide = [c for c in frame.columns if frame[c].dtype == np.float64]
    return frame.assign(**{c: frame[c].map(_decimal, na_action="ignore") for c in wide})


def _decimal(value: float) -> str:
    return f"{value:.{CSV_DIGITS}g}"
