"""A run's record (``run.json``): :class:`RunRecord`, its only reader and writer.

Every field's type is checked when a record is read; a record that fails is reported in one line
naming the file and the key, so a hand-edited or foreign ``run.json`` never surfaces later as a
``KeyError`` or ``TypeError`` deep in a report. Keys not listed here are allowed (newer writers
may add fields) and kept as they are. Records written by older clrbench (no
``training_semantics``, ``setup_s`` or ``train_s``; no ``traceback`` for a run that did not fail)
load with those fields at their defaults.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from clrbench.errors import ResultsError
from clrbench.semantics import TRAINING_SEMANTICS

STATUSES = ("ok", "diverged", "failed")
SCALARS = (str, int, float, bool, type(None))


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _optional(check: Any) -> Any:
    return lambda value: value is None or check(value)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _scalar_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, SCALARS) for v in value.values())


# key -> (required, check, what the check wants)
FIELDS: dict[str, tuple[bool, Any, str]] = {
    "run_id": (True, _text, "a non-empty string"),
    "label": (True, _text, "a non-empty string"),
    "seed": (True, lambda v: _integer(v) and v >= 0, "an integer >= 0"),
    "status": (True, lambda v: v in STATUSES, f"one of {', '.join(STATUSES)}"),
    "schedule": (True, lambda v: isinstance(v, dict), "a table"),
    "config": (True, lambda v: isinstance(v, dict), "a table"),
    "error": (False, _optional(lambda v: isinstance(v, str)), "a string or null"),
    "traceback": (False, _optional(lambda v: isinstance(v, str)), "a string or null"),
    "diverged_step": (False, _optional(_integer), "an integer or null"),
    "wall_s": (False, _optional(lambda v: _number(v) and not math.isnan(v)), "a number"),
    "setup_s": (False, _optional(_number), "a number or null"),
    "train_s": (False, _optional(_number), "a number or null"),
    "started_at": (False, _optional(lambda v: isinstance(v, str)), "a string or null"),
    "provenance": (False, _scalar_map, "a table of plain values"),
    "training_semantics": (False, lambda v: _integer(v) and v >= 1, "a positive integer"),
}
SCHEDULE_FIELDS: dict[str, tuple[Any, str]] = {
    "name": (_text, "a non-empty string"),
    "granularity": (lambda v: v in ("iteration", "epoch"), "'iteration' or 'epoch'"),
    "params": (lambda v: isinstance(v, dict), "a table"),
}
CONFIG_FIELDS: dict[str, tuple[Any, str]] = {
    "dataset": (_text, "a non-empty string"),
    "epochs": (lambda v: _integer(v) and v >= 1, "a positive integer"),
    "batch_size": (lambda v: _integer(v) and v >= 1, "a positive integer"),
    "train_size": (_optional(lambda v: _integer(v) and v >= 1), "a positive integer or null"),
    "optimizer": (_text, "a non-empty string"),
    "lr_mode": (_text, "a non-empty string"),
    "trainer": (lambda v: v in ("loop", "fit", "stacked"), "'loop', 'fit' or 'stacked'"),
}


def check_record(record: Any, path: Path) -> dict[str, Any]:
    """``record`` if every known field has its type, else ResultsError naming the key."""
    if not isinstance(record, dict):
        raise ResultsError(f"{path}: not a clrbench run record (not a JSON object)")
    for key, (required, check, wanted) in FIELDS.items():
        if key not in record:
            if required:
                raise ResultsError(f"{path}: incomplete run record (no '{key}')")
            continue
        _check(path, key, record[key], check, wanted)
    for table, table_fields in (("schedule", SCHEDULE_FIELDS), ("config", CONFIG_FIELDS)):
        for key, (check, wanted) in table_fields.items():
            if table == "schedule" and key not in record[table]:
                raise ResultsError(f"{path}: incomplete run record (no '{table}.{key}')")
            if key in record[table]:
                _check(path, f"{table}.{key}", record[table][key], check, wanted)
    return record


def _check(path: Path, key: str, value: Any, check: Any, wanted: str) -> None:
    if not check(value):
        raise ResultsError(f"{path}: run record key '{key}' must be {wanted}, got {value!r:.60}")


# What a key the run id's config leaves out means: ``RunSpec.config`` omits the split while there
# is none, and the evaluation set and the trainer at their defaults, so that older runs keep their
# ids. tests/test_results.py checks these against Workload's own defaults.
CONFIG_DEFAULTS: dict[str, Any] = {
    "train_size": None,
    "validation_size": None,
    "split_seed": None,  # no split, no split seed
    "evaluate_on": "test",
    "trainer": "loop",
    "model": "dense-512",
    "eval_every": None,  # once per epoch
}


@dataclass(frozen=True)
class RunRecord:
    """One run: who it is (id, label, seed), what trained it (``config``: the content its id
    hashes; ``schedule``: the schedule's plain configuration) and how it went."""

    run_id: str
    label: str
    seed: int
    schedule: dict[str, Any]
    config: dict[str, Any]
    status: str  # one of STATUSES
    training_semantics: int = 1  # written before semantics were versioned: the first
    error: str | None = None  # the first line of the cause of a failed run
    traceback: str | None = None
    diverged_step: int | None = None
    wall_s: float | None = None  # seconds: the whole run
    setup_s: float | None = None  # start-up: TensorFlow import, data, model build
    train_s: float | None = None  # every epoch's steps and evaluation
    started_at: str | None = None  # ISO 8601, UTC
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # keys of a newer writer, kept

    @classmethod
    def from_json(cls, text: str, path: Path) -> RunRecord:
        """The record in ``text`` (the contents of ``path``), or ResultsError naming the file."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ResultsError(f"{path}: cannot read run record ({exc})") from None
        check_record(data, path)
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    def to_json(self) -> str:
        """The ``run.json`` text (numpy scalars written as plain numbers)."""
        document = asdict(self)
        document |= document.pop("extra")
        return json.dumps(document, indent=2, default=_plain) + "\n"

    @property
    def is_current(self) -> bool:
        """Trained under today's training semantics (else stale: ``run`` retrains it)."""
        return self.training_semantics == TRAINING_SEMANTICS

    def setting(self, key: str) -> Any:
        """A workload setting of the run's config, the default where the config leaves it out."""
        return self.config.get(key, CONFIG_DEFAULTS.get(key))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
