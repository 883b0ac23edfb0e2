"""The TOML shape of an experiment, checked key by key: each mistake is one ConfigError line."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from clrbench.config.runs import ScheduleEntry
from clrbench.config.workload import WORKLOAD_KEYS, check_positive_int
from clrbench.config.workloads import expand_workload_key
from clrbench.errors import ConfigError

EXPERIMENT_KEYS = {"name", "seeds", "workload", *WORKLOAD_KEYS}
STRING_KEYS = {"name", "workload", "dataset", "model", "optimizer", "evaluate_on", "trainer"}
ENTRY_KEYS = {"label", "name", "granularity", "lr_mode", "optimizer"}
# an entry's optimizer settings (``ScheduleEntry``), not the schedule's parameters
OPTIMIZER_ENTRY_KEYS = ("optimizer", "weight_decay", "optimizer_warmup_steps")
# the in-graph schedule, or the blog's per-batch Python callback (trains through Keras fit)
LR_MODES = ("graph", "callback")


def experiment_settings(data: dict[str, Any]) -> tuple[dict[str, Any], tuple[ScheduleEntry, ...]]:
    """The ``[experiment]`` settings and the ``[[schedule]]`` entries of a TOML document."""
    unknown = set(data) - {"experiment", "schedule"}
    if unknown:
        raise ConfigError(f"unknown top-level key(s): {', '.join(sorted(unknown))}")
    settings = data.get("experiment", {})
    if not isinstance(settings, dict):
        raise ConfigError(f"[experiment] must be a table, got {settings!r}")
    settings = dict(settings)
    extra = set(settings) - EXPERIMENT_KEYS
    if extra:
        raise ConfigError(f"[experiment]: unknown key(s) {', '.join(sorted(extra))}")
    for key in STRING_KEYS & set(settings):
        check_string(f"[experiment] {key}", settings[key])
    schedules = data.get("schedule", [])
    if not isinstance(schedules, list):
        raise ConfigError("schedule must be a list of [[schedule]] tables")
    entries = tuple(parse_entry(raw, i) for i, raw in enumerate(schedules))
    settings = expand_workload_key(settings)
    settings["seeds"] = parse_seeds(settings.get("seeds", 5))
    settings.setdefault("name", "experiment")
    return settings, entries


def parse_entry(raw: Any, index: int) -> ScheduleEntry:
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"[[schedule]] #{index + 1}: needs at least a 'name'")
    raw = dict(raw)
    where = f"[[schedule]] #{index + 1}"
    for key in ENTRY_KEYS & set(raw):
        check_string(f"{where} {key}", raw[key])
    label = raw.pop("label", raw["name"])
    name = raw.pop("name")
    granularity = raw.pop("granularity", "iteration")
    lr_mode = raw.pop("lr_mode", "graph")
    if lr_mode not in LR_MODES:
        raise ConfigError(f"schedule {label!r}: lr_mode must be one of {LR_MODES}")
    optimizer = {key: raw.pop(key) for key in OPTIMIZER_ENTRY_KEYS if key in raw}
    return ScheduleEntry(label, name, granularity, tuple(sorted(raw.items())), lr_mode, **optimizer)


def check_string(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string, got {value!r}")


def parse_seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        check_positive_int("seeds", value)
        return tuple(range(value))
    distinct = isinstance(value, list | tuple) and value and len(set(value)) == len(value)
    if distinct and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        return tuple(value)
    raise ConfigError(f"seeds must be a positive count or a list of distinct seeds, got {value!r}")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read an experiment TOML file (ConfigError naming the file when unreadable)."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such experiment file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read experiment TOML ({exc})") from None
