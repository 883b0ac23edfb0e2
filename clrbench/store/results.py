"""The results store: one folder per run, written atomically, loaded as tidy frames.

Layout: ``OUT/experiment.toml``, ``OUT/manifest.json`` and ``OUT/runs/<run_id>/{batches.parquet,
epochs.parquet, run.json}``, plus ``evaluations.parquet`` for a run evaluated within its epochs
(``eval_every``). A run is written to a hidden temporary folder and renamed into place
(``clrbench.store.atomic``), so ``run.json`` present means the run is complete; a killed suite or a
full disk leaves no half-written run.

The folder describes itself: ``manifest.json`` (written by ``run``) lists the run ids of the
folder's current experiment, and each run's ``run.json`` is the truth about that run. Loading never
recomputes run ids from today's code, so a folder whose experiment no longer validates still loads.
Runs outside the manifest, runs still missing, and runs trained under an older training semantics
(:mod:`clrbench.semantics`) are named in a :class:`~clrbench.errors.ResultsWarning`, never dropped
in silence.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clrbench.errors import ResultsError, ResultsWarning
from clrbench.semantics import TRAINING_SEMANTICS
from clrbench.store import atomic
from clrbench.store.records import RunRecord
from clrbench.text import plural

RUNS_DIR = "runs"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
NAMED_AT_MOST = 8  # run ids listed in one warning

BATCH_COLUMNS = {
    "run_id": "category",
    "schedule": "category",
    "seed": "int32",
    "epoch": "int32",
    "step": "int64",
    "lr": "float64",
    "loss": "float64",
    "accuracy": "float64",
    "batch_size": "int32",
    "time_s": "float64",
}
EPOCH_COLUMNS = {
    "run_id": "category",
    "schedule": "category",
    "seed": "int32",
    "epoch": "int32",
    "step": "int64",
    "lr": "float64",
    "train_loss": "float64",
    "train_accuracy": "float64",
    "test_loss": "float64",
    "test_accuracy": "float64",
    "time_s": "float64",
    # Which set test_loss / test_accuracy were measured on: "test", or "validation" for runs
    # that evaluate on a validation split (study trials). The columns keep their test_* names so
    # that every folder, baseline and report keeps reading them; this column, filled in from
    # each run's record when a folder is loaded (old folders included), says what they hold.
    "evaluated_on": "category",
}
# Every evaluation of a run: each epoch's end, and with eval_every the evaluations within epochs
# (``step`` is the last step trained before it; ``time_s`` seconds of training by then). Stored
# for runs with eval_every; for the others it is their epoch rows' columns.
EVALUATION_COLUMNS = {
    "run_id": "category",
    "schedule": "category",
    "seed": "int32",
    "epoch": "int32",
    "step": "int64",
    "test_loss": "float64",
    "test_accuracy": "float64",
    "time_s": "float64",
}
# Columns whose values the trainers record in float32 (the optimizer's rate and each batch's
# loss and accuracy, read in the graph and widened exactly to float64 by
# clrbench.train.batch_log); the train/test metrics per epoch are float64 sums and means.
FLOAT32_RECORDED = {"batches": ("lr", "loss", "accuracy"), "epochs": ("lr",)}
LOADED_COLUMNS = ("run_id", "schedule", "seed", "evaluated_on")  # from run.json, not parquet
# Columns of `runs` taken from run.json (provenance columns are added after these).
RUN_COLUMNS = {
    "run_id": "category",
    "schedule": "category",
    "schedule_name": "object",
    "granularity": "object",
    "params": "object",
    "seed": "int32",
    "status": "object",
    "error": "object",
    "diverged_step": "Int64",
    "wall_s": "float64",
    "setup_s": "float64",
    "train_s": "float64",
}


@dataclass
class Results:
    """Tidy frames of one results folder (see docs: one row per step / epoch / run)."""

    # the per-run frames, each with run_id, schedule and seed columns
    FRAMES: ClassVar[tuple[str, ...]] = ("batches", "epochs", "evaluations", "runs")

    path: Path
    batches: pd.DataFrame
    epochs: pd.DataFrame
    runs: pd.DataFrame
    experiment: dict[str, Any] = field(default_factory=dict)
    # Every evaluation (see EVALUATION_COLUMNS); not given (None): the epochs' rows, set on
    # construction, so it is always a frame once built
    evaluations: pd.DataFrame = None
    # the compact data folder these frames were read from (``clrbench.store.compact``), None
    # for a results folder
    compact: Path | None = None

    def __post_init__(self) -> None:
        if self.evaluations is None:
            self.evaluations = self.epochs.reindex(columns=list(EVALUATION_COLUMNS))

    @property
    def schedules(self) -> list[str]:
        """Schedule labels in the experiment's order."""
        return list(self.runs["schedule"].cat.categories)


def run_dir(out: Path, run_id: str) -> Path:
    """Where a complete run lives."""
    return Path(out) / RUNS_DIR / run_id


def is_complete(out: Path, run_id: str) -> bool:
    """True when the run's folder holds its run.json (it was renamed into place)."""
    return (run_dir(out, run_id) / "run.json").is_file()


def write_run(
    out: Path,
    record: RunRecord,
    batches: pd.DataFrame | None,
    epochs: pd.DataFrame | None,
    evaluations: pd.DataFrame | None = None,
) -> Path:
    """Write one run atomically: a temporary folder renamed into place when complete.

    A previous folder for the same run id (only ever replaced under ``--force``) is moved
    aside first and removed only after the new one is in place.
    """
    final = run_dir(out, record.run_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_folder(final) as tmp:
        if batches is not None:
            batches.to_parquet(tmp / "batches.parquet", index=False)
        if epochs is not None:
            epochs.to_parquet(tmp / "epochs.parquet", index=False)
        if evaluations is not None:
            evaluations.to_parquet(tmp / "evaluations.parquet", index=False)
        (tmp / "run.json").write_text(record.to_json())
    return final


def read_record(folder: Path) -> RunRecord:
    """A run's run.json, or ResultsError naming the file."""
    path = folder / "run.json"
    try:
        text = path.read_text()
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read run record ({exc})") from None
    return RunRecord.from_json(text, path)


def _read_parquet(path: Path, columns: dict[str, Any]) -> pd.DataFrame:
    """A run's frame with its own columns (no run_id/schedule/seed) in their dtypes."""
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise ResultsError(f"{path}: cannot read parquet ({type(exc).__name__}: {exc})") from None
    for column, dtype in columns.items():
        if column in LOADED_COLUMNS:
            continue
        if column not in frame.columns:
            raise ResultsError(f"{path}: no column '{column}'")
        try:
            frame[column] = frame[column].astype(dtype)
        except (TypeError, ValueError) as exc:
            raise ResultsError(f"{path}: column '{column}' is not {dtype} ({exc})") from None
    return frame


# The run's workload settings, a column each (from its config; RunRecord.setting fills in what
# the config leaves out).
SETTING_COLUMNS = (
    *("dataset", "epochs", "batch_size", "train_size", "optimizer", "lr_mode"),
    *("validation_size", "split_seed", "evaluate_on", "trainer", "eval_every"),
    *("weight_decay", "optimizer_warmup_steps"),  # None: the optimizer's own (or none)
)


def _run_row(record: RunRecord) -> dict[str, Any]:
    schedule = record.schedule
    row = {
        "run_id": record.run_id,
        "schedule": record.label,
        "schedule_name": schedule["name"],
        "granularity": schedule["granularity"],
        "params": json.dumps(schedule["params"], sort_keys=True),
        "seed": record.seed,
        "status": record.status,
        "error": record.error,
        "diverged_step": record.diverged_step,
        **{key: _seconds(getattr(record, key)) for key in ("wall_s", "setup_s", "train_s")},
        "started_at": record.started_at,
    }
    row |= {key: record.setting(key) for key in SETTING_COLUMNS}
    row.update(record.provenance)
    return row


def _seconds(value: float | None) -> float:
    return np.nan if value is None else value


def write_manifest(out: Path, run_ids: list[str], experiment_name: str) -> None:
    """Record which runs make up the folder's current experiment (written, then renamed)."""
    document = {
        "format": MANIFEST_FORMAT,
        "experiment": experiment_name,
        "training_semantics": TRAINING_SEMANTICS,
        "runs": list(run_ids),
    }
    atomic.write_text(Path(out) / MANIFEST, json.dumps(document, indent=2) + "\n")


def read_manifest(root: Path) -> list[str] | None:
    """The run ids listed in the folder's manifest, or None for a folder without one."""
    path = Path(root) / MANIFEST
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: cannot read manifest ({exc})") from None
    runs = document.get("runs") if isinstance(document, dict) else None
    if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
        raise ResultsError(f"{path}: not a clrbench manifest (no list of run ids under 'runs')")
    return runs


def _warn(count: int, what: str, ids: list[str]) -> None:
    shown = ", ".join(ids[:NAMED_AT_MOST]) + (", ..." if len(ids) > NAMED_AT_MOST else "")
    warnings.warn(f"{plural(count, 'run')} {what}: {shown}", ResultsWarning, 3)


def _select_runs(root: Path, complete: list[str], run_ids: list[str] | None) -> list[str]:
    """The complete runs to load; warns about each complete run left out and each missing one."""
    if run_ids is None:
        run_ids = read_manifest(root)
        if run_ids is None:
            if not complete:
                return []
            warnings.warn(
                f"{root}: no {MANIFEST} (written by an older clrbench): loading every complete run",
                ResultsWarning,
                3,
            )
            return complete
    wanted = set(run_ids)
    others = [r for r in complete if r not in wanted]
    if others:
        _warn(len(others), f"in {root} are not part of its current experiment, left out", others)
    missing = [r for r in run_ids if r not in set(complete)]
    if missing:
        _warn(len(missing), "of the experiment are not complete", missing)
    return [r for r in complete if r in wanted]


def load_results(
    path: str | os.PathLike[str], run_ids: list[str] | None = None, include_stale: bool = False
) -> Results:
    """Load a results folder as tidy frames with fixed dtypes.

    The runs loaded are those listed in the folder's ``manifest.json`` (its current experiment),
    or ``run_ids`` when given. Runs trained under an older training semantics are left out
    (``include_stale=True`` keeps them). Everything left out is named in a ``ResultsWarning``.
    """
    root = Path(path)
    runs_root = root / RUNS_DIR
    if not runs_root.is_dir() and run_ids is None:
        from clrbench.store import compact  # a rendered report's compact data

        if compact.holds_compact(root):
            return compact.read_compact(root)
    if not runs_root.is_dir():
        raise ResultsError(f"{root}: not a clrbench results folder (no {RUNS_DIR}/ inside)")
    experiment = read_experiment(root)
    complete = sorted(
        p.name
        for p in runs_root.iterdir()
        if not p.name.startswith(".") and (p / "run.json").is_file()  # hidden: temporary
    )
    folders = [runs_root / run_id for run_id in _select_runs(root, complete, run_ids)]
    records = [read_record(p) for p in folders]
    stale = [r.run_id for r in records if not r.is_current]
    if stale and not include_stale:
        _warn(len(stale), "trained by an older clrbench (stale; `run` retrains them)", stale)
        kept = [(f, r) for f, r in zip(folders, records, strict=True) if r.is_current]
        folders, records = [f for f, _ in kept], [r for _, r in kept]
    if not folders:
        also = f" ({len(stale)} stale, see the warning)" if stale else ""
        raise ResultsError(f"{root}: no completed runs in {runs_root}{also}")
    order = _label_order(experiment, records)
    batches: list[pd.DataFrame] = []
    epochs: list[pd.DataFrame] = []
    evaluations: list[pd.DataFrame] = []
    for folder, record in zip(folders, records, strict=True):
        within = record.setting("eval_every") is not None
        for name, frames, columns in (
            ("batches", batches, BATCH_COLUMNS),
            ("epochs", epochs, EPOCH_COLUMNS),
            *[("evaluations", evaluations, EVALUATION_COLUMNS)] * within,
        ):
            file = folder / f"{name}.parquet"
            if file.exists():
                frame = _read_parquet(file, columns)
                frame.insert(0, "run_id", record.run_id)
                frame.insert(1, "schedule", record.label)
                frame.insert(2, "seed", record.seed)
                if "evaluated_on" in columns:
                    frame["evaluated_on"] = record.setting("evaluate_on")
                frames.append(frame)
            elif record.status != "failed":
                raise ResultsError(f"{file}: missing for a run with status {record.status}")
        if not within and (folder / "epochs.parquet").exists():  # evaluated at epochs' ends
            evaluations.append(epochs[-1].reindex(columns=list(EVALUATION_COLUMNS)))
    runs = pd.DataFrame([_run_row(r) for r in records])
    return Results(
        path=root,
        batches=_typed(batches, BATCH_COLUMNS, order),
        epochs=_typed(epochs, EPOCH_COLUMNS, order),
        runs=_typed([runs], {**RUN_COLUMNS, **_extra(runs)}, order),
        experiment=experiment,
        evaluations=_typed(evaluations, EVALUATION_COLUMNS, order),
    )


def _extra(runs: pd.DataFrame) -> dict[str, str]:
    return {c: runs[c].dtype for c in runs.columns if c not in RUN_COLUMNS}


def _label_order(experiment: dict[str, Any], records: list[RunRecord]) -> list[str]:
    labels = [s["label"] for s in experiment.get("schedule", [])]
    return labels + sorted({r.label for r in records} - set(labels))


def _typed(frames: list[pd.DataFrame], columns: dict[str, Any], order: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))
    data = data.astype({c: t for c, t in columns.items() if t != "category"})
    data["schedule"] = pd.Categorical(data["schedule"], categories=order)
    data["run_id"] = pd.Categorical(data["run_id"], categories=sorted(set(data["run_id"])))
    if "evaluated_on" in columns:
        data["evaluated_on"] = pd.Categorical(
            data["evaluated_on"], categories=["test", "validation"]
        )
    return data[list(columns)]


def read_experiment(root: Path) -> dict[str, Any]:
    """The resolved experiment stored beside the runs, or {} if there is none."""
    import tomllib

    path = Path(root) / "experiment.toml"
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read experiment ({exc})") from None
