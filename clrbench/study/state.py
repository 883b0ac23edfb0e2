"""A study's own state, ``STUDY/study.json``: the split, the lr-find bounds and, per study of
``--studies N``, its seeds, trials, candidates, winners, sensitivity check and what each phase
trained (see ``clrbench.study.protocol``). :class:`StudyState` is the record;
:func:`read_state` and :func:`write_state` its one reader and writer.

Format 2 (confirmed winners, repeated studies). A format-1 state (one study, its winner the best
single-seed trial) still loads, in format 2's shape with ``legacy_format`` 1: the report then
reads it as a study without confirmation. Numbers follow the one JSON convention
(``clrbench.text.json_value``: NaN as null); keys this version does not know are kept."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from clrbench.errors import ResultsError
from clrbench.store import atomic
from clrbench.text import json_plain

STATE = "study.json"
STATE_FORMAT = 2
LEGACY_FORMATS = (1,)


@dataclass
class DrawState:
    """One study of ``--studies N``: where its phases live, its seeds and planned trials, and
    what its protocol decided: the candidates, the winners (family -> label, index, params,
    validation_accuracy, confirmed, confirmation_mean, source, replaced), the sweep's check
    rows, the multipliers re-checked, and what each phase trained."""

    index: int
    folder: str = "."
    seeds: dict[str, Any] = field(default_factory=dict)
    trials: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, Any] = field(default_factory=dict)
    candidates: dict[str, list[str]] = field(default_factory=dict)
    winners: dict[str, dict[str, Any]] = field(default_factory=dict)
    check: list[dict[str, Any]] = field(default_factory=list)
    rechecks: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class StudyState:
    """The whole study's state: its name, the validation split, every study (``DrawState``),
    the shared phases (lr-find) and the lr-find bounds; ``legacy_format`` 1 for a state read
    from format 1; ``extra`` keeps keys this version does not know."""

    name: str = ""
    split: dict[str, Any] = field(default_factory=dict)
    studies: list[DrawState] = field(default_factory=list)
    phases: dict[str, Any] = field(default_factory=dict)
    lr_find: dict[str, Any] | None = None
    legacy_format: int | None = None
    updated_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> StudyState:
        """A format-2 document (format 1 through :func:`upgraded` first)."""
        known = {f.name for f in fields(cls)} - {"studies", "extra"}
        draw_keys = {f.name for f in fields(DrawState)}
        studies = [
            DrawState(**{k: v for k, v in s.items() if k in draw_keys})
            for s in document.get("studies", [])
        ]
        rest = {k: v for k, v in document.items() if k not in known | {"studies", "format"}}
        return cls(studies=studies, extra=rest, **{k: document[k] for k in known if k in document})

    def to_json(self) -> dict[str, Any]:
        """The document written to study.json (format 2)."""
        document = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        document["studies"] = [asdict(s) for s in self.studies]
        if document["legacy_format"] is None:
            del document["legacy_format"]
        return self.extra | document | {"format": STATE_FORMAT}


def read_state(study_dir: str | os.PathLike[str]) -> StudyState:
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
    return StudyState.from_json(upgraded(state) if state["format"] == 1 else state)


def upgraded(state: dict[str, Any]) -> dict[str, Any]:
    """A format-1 state (one study: top-level trials, winners, phases) in format 2's shape."""
    phases = {k: v for k, v in state.get("phases", {}).items() if k != "lr-find"}
    study = {"index": 0, "folder": ".", "seeds": {}, "trials": state.get("trials", [])}
    study |= {"phases": phases, "candidates": {}, "winners": state.get("winners", {})}
    study |= {"check": [], "rechecks": {}}
    rest = {k: v for k, v in state.items() if k not in ("trials", "winners")}
    lr_find = {k: v for k, v in state.get("phases", {}).items() if k == "lr-find"}
    return rest | {"studies": [study], "phases": lr_find, "format": 2, "legacy_format": 1}


def write_state(out: Path, state: StudyState) -> None:
    """Write the state (atomically: a reader sees the old state or the new one)."""
    state.updated_at = time.strftime("%Y-%m-%dT%H:%M:%S")
    text = json.dumps(json_plain(state.to_json()), indent=2, allow_nan=False)
    atomic.write_text(out / STATE, text + "\n")
