"""The type of every field of a run record (``run.json``), checked when a record is read.

A record that fails is reported in one line naming the file and the key, so a hand-edited or
foreign ``run.json`` never surfaces later as a ``KeyError`` or ``TypeError`` deep in a report.
Keys not listed here are allowed (newer writers may add fields) and left alone.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from clrbench.errors import ResultsError

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
    for table, fields in (("schedule", SCHEDULE_FIELDS), ("config", CONFIG_FIELDS)):
        for key, (check, wanted) in fields.items():
            if table == "schedule" and key not in record[table]:
                raise ResultsError(f"{path}: incomplete run record (no '{table}.{key}')")
            if key in record[table]:
                _check(path, f"{table}.{key}", record[table][key], check, wanted)
    return record


def _check(path: Path, key: str, value: Any, check: Any, wanted: str) -> None:
    if not check(value):
        raise ResultsError(f"{path}: run record key '{key}' must be {wanted}, got {value!r:.60}")
