"""A study's own state, ``STUDY/study.json``: the split, trials, winners, lr-find bounds and
what each phase trained (see ``clrbench.suite.study``)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from clrbench.errors import ResultsError
from clrbench.store import atomic

STATE = "study.json"
STATE_FORMAT = 1


def read_state(study_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """STUDY/study.json, or ResultsError naming the file."""
    path = Path(study_dir) / STATE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{study_dir}: not a clrbench study (no {STATE})") from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: cannot read study state ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ResultsError(f"{path}: not a clrbench study state (format {STATE_FORMAT})")
    return state


def is_study(folder: str | os.PathLike[str]) -> bool:
    return (Path(folder) / STATE).is_file()


def write_state(out: Path, state: dict[str, Any]) -> None:
    """Write the state (atomically: a reader sees the old state or the new one)."""
    state = state | {"format": STATE_FORMAT, "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic.write_text(out / STATE, json.dumps(state, indent=2, default=float) + "\n")
