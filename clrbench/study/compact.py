"""A study report's compact data: what re-renders it on a fresh clone, without the study folder.

``write_study`` writes it into ``<report folder>/data/``, laid out as a study folder of its own:

- ``study.json`` and ``study.toml``, copied;
- for each study and phase that has runs (``trials``, ``confirm``, ``sensitivity``, ``recheck``,
  ``final``), that phase's compact results (``clrbench.store.compact``) in
  ``<study's folder>/<phase>/data/``. The final runs keep every epoch (time to target, the
  curves); the tuning phases keep each run's last epoch only, which is all the study's choices
  read (their final validation accuracy and status), so that a grid of thousands of trials
  stays small.

``report <report folder>`` finds ``data/study.json`` and re-renders the study in place; the
per-batch figure (the chosen schedules' rates) is kept as it was rendered (also as
``data/learning-rate.png``). A copy of ``data/`` is a study folder that ``study --studies N``
extends: the phases it holds are kept, not retrained (``protocol.compact_phase``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from clrbench.store import atomic
from clrbench.store.compact import COMPACT_DIR, holds_compact, write_compact
from clrbench.store.results import Results, load_results
from clrbench.study.state import STATE, StudyState

PHASES = ("trials", "confirm", "sensitivity", "recheck", "final")
SOURCE = "study-source.json"  # {"study": the study folder the report was first rendered from}
EVERY_EPOCH = ("final",)  # the phases whose runs keep every epoch
CONFIG = "study.toml"
# the chosen schedules' rates as rendered (a per-batch figure: compact data keeps no batches), so
# that a study extended from this data (``clrbench.study.protocol.compact_phase``) still has it
KEPT_RATES = "learning-rate.png"


def study_folder(folder: str | os.PathLike[str]) -> Path | None:
    """The study folder ``folder`` names: itself (it holds ``study.json``), its compact data
    (a rendered study report: ``data/study.json``), or None (not a study)."""
    folder = Path(folder)
    for candidate in (folder, folder / COMPACT_DIR):
        if (candidate / STATE).is_file():
            return candidate
    return None


def is_compact(study_dir: Path) -> bool:
    """Whether ``study_dir`` is a report's compact data rather than a study that trains."""
    return study_dir.name == COMPACT_DIR and (study_dir.parent / "figures").is_dir()


def source_folder(study_dir: Path) -> Path:
    """The study folder a report was rendered from: ``study_dir`` itself, or for compact data
    the folder it recorded."""
    try:
        return Path(json.loads((study_dir / SOURCE).read_text())["study"])
    except (OSError, ValueError, KeyError, TypeError):
        return study_dir


def holds_phase(folder: Path) -> bool:
    """Whether a phase folder has runs to read: trained ones, or compact ones."""
    return (folder / "runs").is_dir() or holds_compact(folder)


def last_epochs(results: Results) -> Results:
    """``results`` with each run's last epoch only (and no per-batch log)."""
    epochs = results.epochs.sort_values(["run_id", "epoch"], kind="stable")
    last = epochs.groupby("run_id", observed=True).tail(1).reset_index(drop=True)
    evaluations = last.reindex(columns=list(results.evaluations.columns))
    return dataclasses.replace(
        results, epochs=last, evaluations=evaluations, batches=results.batches.iloc[:0]
    )


def write_study_compact(
    study_dir: Path, state: StudyState, studies: int, out_dir: Path
) -> Path | None:
    """Write the compact data of the first ``studies`` studies of ``study_dir`` to
    ``out_dir/data/``; its path. Phases without runs are left out, as the report leaves them;
    a report of a study analysed from its parts, with no folder (no ``study.json``), has none."""
    if not (study_dir / STATE).is_file():
        return None
    data = Path(out_dir) / COMPACT_DIR
    data.mkdir(parents=True, exist_ok=True)
    rates = Path(out_dir) / "figures" / KEPT_RATES
    if rates.is_file() and rates.resolve() != (data / KEPT_RATES).resolve():
        atomic.write_bytes(data / KEPT_RATES, rates.read_bytes())
    for name in (STATE, CONFIG):
        if (study_dir / name).resolve() != (data / name).resolve():
            atomic.write_text(data / name, (study_dir / name).read_text())
    origin = {"study": str(source_folder(study_dir))}
    atomic.write_text(data / SOURCE, json.dumps(origin, indent=2) + "\n")
    for record in state.studies[:studies]:
        for phase in PHASES:
            source = study_dir / record.folder / phase
            target = data / record.folder / phase
            if not holds_phase(source):
                continue
            results = load_results(source)
            if phase not in EVERY_EPOCH:
                results = last_epochs(results)
            write_compact(results, target)
    return data
