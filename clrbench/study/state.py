"""A study's own state, ``STUDY/study.json``: the split, the lr-find bounds and, per study of
``--studies N``, its seeds, trials, candidates, winners, sensitivity check and what each phase
trained (see ``clrbench.study.protocol``).

Format 2 (confirmed winners, repeated studies). A format-1 state (one study, its winner the best
single-seed trial) still loads, in format 2's shape with ``legacy_format`` 1: the report then
reads it as a study without confirmation."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from clrbench.errors import ResultsError
from clrbench.store import atomic

STATE = "study.json"
STATE_FORMAT = 2
LEGACY_FORMATS = (1,)


def read_state(study_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """STUDY/study.json, or ResultsError naming the file."""
    path = Path(study_dir) / STATE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{study_dir}: not a clrbench study (no {STATE})") from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: cannot read study state ({exc})") from None
    found = state.get("format") if isinstance(state, dict) else None
    if found not in (STATE_FORMAT, *LEGACY_FORMATS):
        raise ResultsError(
            f"{path}: not a clrbench study state of format {STATE_FORMAT} (or 1, from before "
            f"confirmed winners): format {found}"
        )
    return upgraded(state) if state["format"] == 1 else state


def upgraded(state: dict[str, Any]) -> dict[str, Any]:
    """A format-1 state (one study: top-level trials, winners, phases) in format 2's shape."""
    phases = {k: v for k, v in state.get("phases", {}).items() if k != "lr-find"}
    study = {"index": 0, "folder": ".", "seeds": {}, "trials": state.get("trials", [])}
    study |= {"phases": phases, "candidates": {}, "winners": state.get("winners", {})}
    study |= {"check": [], "rechecks": {}}
    rest = {k: v for k, v in state.items() if k not in ("trials", "winners")}
    lr_find = {k: v for k, v in state.get("phases", {}).items() if k == "lr-find"}
    return rest | {"studies": [study], "phases": lr_find, "format": 2, "legacy_format": 1}


def write_state(out: Path, state: dict[str, Any]) -> None:
    """Write the state (atomically: a reader sees the old state or the new one)."""
    state = state | {"format": STATE_FORMAT, "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic.write_text(out / STATE, json.dumps(state, indent=2, default=float) + "\n")
