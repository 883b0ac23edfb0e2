"""Compact results: what a report's tables, verdicts and summary come from, without the
per-batch logs, so that a committed report re-renders on a fresh clone without training.

``report`` writes it next to every rendered report, in ``<report folder>/data/``:

- ``compact.json``: ``{"format": "clrbench-compact/1", "results": <the results folder the
  report was rendered from>, "experiment": <its experiment.toml as a table>, "figures": <the
  title and caption of each per-batch figure>}``, and a copy of that ``experiment.toml``;
- ``runs.parquet``: one row per run, the ``runs`` frame of :func:`load_results` (run id,
  schedule, its name, seed, status, steps, epochs, timing ``setup_s`` / ``train_s`` /
  ``wall_s``, the run's configuration and provenance columns);
- ``epochs.parquet``: per run and epoch, the ``epochs`` frame (rate, train and test loss and
  accuracy, step, time);
- ``evaluations.parquet``: every evaluation (epoch ends and ``eval_every``), for time to target;
  absent when the runs were evaluated at the epochs' ends only (then they are the epochs').

The per-batch frame is not kept (it is what makes a results folder large): a report rendered
from compact data keeps its per-batch figures (the learning rate, the training curves) as they
were rendered. :func:`clrbench.load_results` reads a folder holding ``data/compact.json`` and no
``runs/``: the ``batches`` frame is then empty. The full suite's shape (25 runs of 25 epochs)
takes about 60 KB against 8.3 MB of results folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from clrbench.errors import ResultsError
from clrbench.store import atomic
from clrbench.store.results import (
    BATCH_COLUMNS,
    EPOCH_COLUMNS,
    EVALUATION_COLUMNS,
    RUN_COLUMNS,
    Results,
)

COMPACT_DIR = "data"
COMPACT_META = "compact.json"
COMPACT_FORMAT = "clrbench-compact/1"
FRAMES = ("runs", "epochs", "evaluations")


def holds_compact(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds compact data (``data/compact.json``)."""
    return (Path(folder) / COMPACT_DIR / COMPACT_META).is_file()


def write_compact(
    results: Results,
    folder: str | os.PathLike[str],
    figures: dict[str, dict[str, str]] | None = None,
) -> Path:
    """Write ``results``' compact data to ``folder/data/`` (each file atomically), with the
    title and caption of each per-batch figure rendered beside it (``figures``); its path."""
    out = Path(folder) / COMPACT_DIR
    out.mkdir(parents=True, exist_ok=True)
    derived = results.epochs.reindex(columns=list(EVALUATION_COLUMNS))
    for name in FRAMES:
        frame = getattr(results, name)
        if name == "evaluations" and frame.reset_index(drop=True).equals(
            derived.reset_index(drop=True)
        ):
            (out / f"{name}.parquet").unlink(missing_ok=True)  # the epochs' ends: derived
            continue
        atomic.write_bytes(out / f"{name}.parquet", _parquet_bytes(frame))
    meta: dict[str, Any] = {"format": COMPACT_FORMAT, "results": str(results.path)}
    meta["experiment"] = results.experiment
    meta["figures"] = figures or {}
    source = results.compact if results.compact is not None else results.path
    if (source / "experiment.toml").is_file() and source != out:
        atomic.write_text(out / "experiment.toml", (source / "experiment.toml").read_text())
    atomic.write_text(out / COMPACT_META, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, compression="zstd")
    return buffer.getvalue()


def read_figure_notes(data: Path) -> dict[str, dict[str, str]]:
    """The per-batch figures' titles and captions recorded in ``data/compact.json``."""
    try:
        return dict(json.loads((data / COMPACT_META).read_text()).get("figures", {}))
    except (OSError, ValueError):
        return {}


def read_compact(folder: str | os.PathLike[str]) -> Results:
    """The :class:`Results` of a report folder's compact data (``batches`` empty)."""
    data = Path(folder) / COMPACT_DIR
    try:
        meta = json.loads((data / COMPACT_META).read_text())
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{data / COMPACT_META}: cannot read compact data ({exc})") from None
    if meta.get("format") != COMPACT_FORMAT:
        raise ResultsError(
            f"{data / COMPACT_META}: not compact data of format {COMPACT_FORMAT}: "
            f"{meta.get('format')}"
        )
    try:
        frames = {
            name: pd.read_parquet(data / f"{name}.parquet")
            for name in FRAMES
            if name != "evaluations" or (data / f"{name}.parquet").is_file()
        }
    except OSError as exc:
        raise ResultsError(f"{data}: cannot read compact data ({exc})") from None
    declared = {"runs": RUN_COLUMNS, "epochs": EPOCH_COLUMNS, "evaluations": EVALUATION_COLUMNS}
    for name, frame in frames.items():  # the dtypes the results store gives (text: object)
        types = {c: t for c, t in declared[name].items() if t != "category" and c in frame}
        frames[name] = frame.astype(types)
    for name, columns in (("epochs", EPOCH_COLUMNS), ("evaluations", EVALUATION_COLUMNS)):
        missing = set(columns) - set(frames.get(name, frames["epochs"]).columns)
        if missing:
            raise ResultsError(f"{data / name}.parquet: missing {', '.join(sorted(missing))}")
    order = list(frames["runs"]["schedule"].cat.categories)
    plain = {c: t for c, t in BATCH_COLUMNS.items() if t != "category"}
    batches = pd.DataFrame({c: pd.Series(dtype=t) for c, t in plain.items()})
    batches["run_id"] = pd.Categorical([], categories=[])
    batches["schedule"] = pd.Categorical([], categories=order)
    return Results(
        path=Path(meta["results"]),
        batches=batches[list(BATCH_COLUMNS)],
        experiment=meta.get("experiment", {}),
        compact=data,
        **frames,
    )
