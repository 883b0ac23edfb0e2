"""Experiments: what to train. Presets or TOML, CLI overrides, validated once, expanded into
one RunSpec per (schedule, seed).

TOML shape (``python -m clrbench run --config exp.toml``)::

    [experiment]
    name = "my-study"
    dataset = "mnist"
    epochs = 25
    batch_size = 128
    seeds = 5                 # seeds 0..4, or a list such as [5, 6, 7]
    optimizer = "sgd-momentum"

    [[schedule]]
    label = "clr-iter"
    name = "triangular"
    granularity = "iteration" # or "epoch"
    base_lr = 0.01
    max_lr = 0.1
    step_size = 1876

``name`` may also be a composition (``warmup``, ``join``, ``scale``, with nested schedule tables),
an importable ``"package.module:function"``, an entry-point name, or ``"keras:CosineDecay"``;
see ``clrbench.schedules``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from clrbench import presets
from clrbench.data.registry import DATASETS
from clrbench.errors import ClrbenchError, ConfigError
from clrbench.schedules import Schedule, make, names
from clrbench.text import did_you_mean
from clrbench.workload import check_optimizer

EXPERIMENT_KEYS = {
    "name",
    "dataset",
    "epochs",
    "batch_size",
    "seeds",
    "train_size",
    "optimizer",
    "threads",
    "validation_size",
    "split_seed",
    "evaluate_on",
}
STRING_KEYS = {"name", "dataset", "optimizer", "evaluate_on"}
EVALUATE_ON = ("test", "validation")
ENTRY_KEYS = {"label", "name", "granularity", "lr_mode"}
LR_MODES = ("graph", "callback")
# Cycle-shaped schedules: (parameter holding the cycle length, steps per cycle per unit).
CYCLES = {"triangular": ("step_size", 2), "triangular2": ("step_size", 2)}
CYCLES |= {"exp_range": ("step_size", 2), "sine_exp": ("period", 1), "sgdr": ("first_period", 1)}
# Schedules with a length of their own: the parameter holding it, in steps.
LENGTHS = {"one_cycle": "total_steps", "range_test": "num_steps"}


@dataclass(frozen=True)
class ScheduleEntry:
    """A labelled schedule of the experiment, as written in the TOML file."""

    label: str
    name: str
    granularity: str = "iteration"
    params: tuple[tuple[str, Any], ...] = ()
    lr_mode: str = "graph"

    def build(self, steps_per_epoch: int, total_steps: int | None = None) -> Schedule:
        """The validated Schedule for this entry; with ``total_steps``, also checked to give a
        finite rate >= 0 at every step of the run (a plug-in's formula can do anything)."""
        try:
            schedule = make(
                self.name,
                granularity=self.granularity,
                steps_per_epoch=steps_per_epoch,
                **dict(self.params),
            )
            if total_steps is not None:
                _check_rates_once(schedule, total_steps)
            return schedule
        except ClrbenchError as exc:
            raise ConfigError(f"schedule {self.label!r}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        entry = {"label": self.label, "name": self.name, "granularity": self.granularity}
        if self.lr_mode != "graph":
            entry["lr_mode"] = self.lr_mode
        return entry | dict(self.params)


@functools.lru_cache(maxsize=256)
def _check_rates_once(schedule: Schedule, total_steps: int) -> None:
    schedule.check_rates(total_steps)


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run's numbers (and so its id)."""

    label: str
    schedule: Schedule
    seed: int
    dataset: str = "mnist"
    epochs: int = 25
    batch_size: int = 128
    train_size: int | None = None
    optimizer: str = "sgd-momentum"
    lr_mode: str = "graph"
    threads: int = 1
    # A stratified split of the training set held out for validation (None: train on all of
    # it), and which set the per-epoch evaluation uses ("test" or "validation").
    validation_size: int | None = None
    split_seed: int = 0
    evaluate_on: str = "test"

    def config(self) -> dict[str, Any]:
        """Plain-value configuration: the content the run id hashes (the split keys only when
        there is a split, so runs without one keep their ids)."""
        config = {
            "label": self.label,
            "schedule": self.schedule.to_config(),
            "seed": self.seed,
            "dataset": self.dataset,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "train_size": self.train_size,
            "optimizer": self.optimizer,
            "lr_mode": self.lr_mode,
            "threads": self.threads,
        }
        if self.validation_size is not None:
            config |= {"validation_size": self.validation_size, "split_seed": self.split_seed}
        if self.evaluate_on != "test":
            config["evaluate_on"] = self.evaluate_on
        return config

    @property
    def run_id(self) -> str:
        """Readable and unique: ``<label>-s<seed>-<8 hex of the config hash>``."""
        digest = hashlib.sha256(json.dumps(self.config(), sort_keys=True).encode()).hexdigest()
        return f"{self.label}-s{self.seed}-{digest[:8]}"


@dataclass(frozen=True)
class Experiment:
    """A validated experiment: the workload settings and the labelled schedules."""

    name: str
    schedules: tuple[ScheduleEntry, ...]
    dataset: str = "mnist"
    epochs: int = 25
    batch_size: int = 128
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    train_size: int | None = None
    optimizer: str = "sgd-momentum"
    threads: int = 1
    validation_size: int | None = None
    split_seed: int = 0
    evaluate_on: str = "test"
    notes: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        """Build and validate from the TOML shape (``[experiment]`` + ``[[schedule]]``)."""
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
            _string(f"[experiment] {key}", settings[key])
        schedules = data.get("schedule", [])
        if not isinstance(schedules, list):
            raise ConfigError("schedule must be a list of [[schedule]] tables")
        entries = tuple(_entry(raw, i) for i, raw in enumerate(schedules))
        settings["seeds"] = _seeds(settings.get("seeds", 5))
        settings.setdefault("name", "experiment")
        return cls(schedules=entries, **settings).validated()

    def to_dict(self) -> dict[str, Any]:
        """The TOML shape, resolved (stored as OUT/experiment.toml)."""
        settings = {
            "name": self.name,
            "dataset": self.dataset,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "seeds": list(self.seeds),
            "optimizer": self.optimizer,
            "threads": self.threads,
        }
        if self.train_size is not None:
            settings["train_size"] = self.train_size
        if self.validation_size is not None:
            settings |= {"validation_size": self.validation_size, "split_seed": self.split_seed}
        if self.evaluate_on != "test":
            settings["evaluate_on"] = self.evaluate_on
        return {"experiment": settings, "schedule": [e.to_dict() for e in self.schedules]}

    @property
    def train_count(self) -> int:
        """Training images per epoch: the subset, else the training set less any validation."""
        return self.train_size or DATASETS[self.dataset].train_count - (self.validation_size or 0)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.train_count / self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    def validated(self) -> Experiment:
        """Check everything before any training starts; returns self with cycle notes."""
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        _positive_int("threads", self.threads)
        if self.dataset not in DATASETS:
            raise ConfigError(f"unknown dataset {self.dataset!r}; choose {', '.join(DATASETS)}")
        self._check_split()
        if self.train_size is not None:
            _positive_int("train_size", self.train_size)
            available = DATASETS[self.dataset].train_count - (self.validation_size or 0)
            if not 10 <= self.train_size <= available:
                raise ConfigError(f"train_size must be in 10..{available}, got {self.train_size}")
        check_optimizer(self.optimizer)
        if not self.schedules:
            raise ConfigError("the experiment has no schedules")
        labels = [e.label for e in self.schedules]
        duplicates = sorted({x for x in labels if labels.count(x) > 1})
        if duplicates:
            raise ConfigError(f"duplicate schedule label(s): {', '.join(duplicates)}")
        notes = [n for e in self.schedules if (n := self._cycle_note(e))]
        notes += [n for e in self.schedules if (n := self._length_note(e))]
        return replace(self, notes=tuple(notes))

    def _check_split(self) -> None:
        if self.evaluate_on not in EVALUATE_ON:
            raise ConfigError(f"evaluate_on must be one of {EVALUATE_ON}, got {self.evaluate_on!r}")
        if isinstance(self.split_seed, bool) or not isinstance(self.split_seed, int):
            raise ConfigError(f"split_seed must be an integer, got {self.split_seed!r}")
        if self.validation_size is None:
            if self.evaluate_on == "validation":
                raise ConfigError("evaluate_on = 'validation' needs a validation_size")
            return
        _positive_int("validation_size", self.validation_size)
        limit = DATASETS[self.dataset].train_count - 10
        if not 10 <= self.validation_size <= limit:
            raise ConfigError(f"validation_size must be in 10..{limit}, got {self.validation_size}")

    def _length_note(self, entry: ScheduleEntry) -> str | None:
        """Say when a schedule with a length of its own does not span the run."""
        schedule = entry.build(self.steps_per_epoch)
        key = LENGTHS.get(entry.name)
        if key is None or schedule.params[key] == self.total_steps:
            return None
        length = schedule.params[key]
        if length > self.total_steps:
            return (
                f"{entry.label}: {key} = {length:,} but the run has {self.total_steps:,} steps; "
                f"training stops {length - self.total_steps:,} steps before the schedule ends"
            )
        return (
            f"{entry.label}: {key} = {length:,} but the run has {self.total_steps:,} steps; "
            f"the last {self.total_steps - length:,} steps hold the final rate "
            f"{schedule(length - 1):.3g}"
        )

    def _cycle_note(self, entry: ScheduleEntry) -> str | None:
        """Say when a cyclic schedule's training does not end at a cycle boundary."""
        schedule = entry.build(self.steps_per_epoch)
        if entry.name not in CYCLES:
            return None
        key, factor = CYCLES[entry.name]
        cycle = schedule.params[key] * factor
        if entry.name == "sgdr" and schedule.params["t_mult"] > 1:
            return None  # growing periods: the boundaries are not a multiple of one length
        left = self.total_steps % cycle
        if left == 0:
            return None
        return (
            f"{entry.label}: training ends {left} steps into cycle "
            f"{self.total_steps // cycle + 1} ({self.total_steps:,} steps, "
            f"cycles of {cycle:,}), not at a cycle boundary"
        )

    def runs(self) -> list[RunSpec]:
        """One RunSpec per (schedule, seed), schedules in order."""
        spe = self.steps_per_epoch
        return [
            RunSpec(
                label=e.label,
                schedule=e.build(spe, self.total_steps),
                seed=seed,
                dataset=self.dataset,
                epochs=self.epochs,
                batch_size=self.batch_size,
                train_size=self.train_size,
                optimizer=self.optimizer,
                lr_mode=e.lr_mode,
                threads=self.threads,
                validation_size=self.validation_size,
                split_seed=self.split_seed,
                evaluate_on=self.evaluate_on,
            )
            for e in self.schedules
            for seed in self.seeds
        ]

    def select(self, wanted: list[str]) -> Experiment:
        """Keep only the named schedules: labels of this experiment or of any preset, or
        registry names. A registry name means that schedule per iteration; a name that several
        per-iteration entries share is ambiguous (ConfigError listing their labels)."""
        own = list(self.schedules)
        known = {e.label: e for e in own}
        others = []
        for entry in presets.all_entries(self.steps_per_epoch, self.epochs):
            if entry.label not in known:
                known[entry.label] = entry
                others.append(entry)
        chosen = [known.get(item) or _by_name(item, own, others) for item in wanted]
        return replace(self, schedules=tuple(chosen)).validated()


def _by_name(
    name: str, own: list[ScheduleEntry], others: list[ScheduleEntry] = ()
) -> ScheduleEntry:
    """The one per-iteration entry of registry schedule ``name``: among the experiment's own
    entries if it has one, else among all (``others``: the presets')."""
    entries = [*own, *others]
    for pool in (own, entries):
        per_iteration = [e for e in pool if e.name == name and e.granularity == "iteration"]
        if len(per_iteration) == 1:
            return per_iteration[0]
        if len(per_iteration) > 1:
            labels = ", ".join(e.label for e in per_iteration)
            raise ConfigError(
                f"schedule name {name!r} is ambiguous: choose one of the labels {labels}"
            )
    same = [e for e in entries if e.name == name]
    if same:
        labels = ", ".join(e.label for e in same)
        raise ConfigError(
            f"no per-iteration {name!r} in the experiment or presets; choose a label: {labels}"
        )
    labels = [e.label for e in entries]
    hint = did_you_mean(name, [*labels, *names()])
    raise ConfigError(
        f"unknown schedule {name!r}{hint}; labels: {', '.join(labels)}; "
        f"schedule names: {', '.join(names())}"
    )


def _entry(raw: Any, index: int) -> ScheduleEntry:
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"[[schedule]] #{index + 1}: needs at least a 'name'")
    raw = dict(raw)
    where = f"[[schedule]] #{index + 1}"
    for key in ENTRY_KEYS & set(raw):
        _string(f"{where} {key}", raw[key])
    label = raw.pop("label", raw["name"])
    name = raw.pop("name")
    granularity = raw.pop("granularity", "iteration")
    lr_mode = raw.pop("lr_mode", "graph")
    if lr_mode not in LR_MODES:
        raise ConfigError(f"schedule {label!r}: lr_mode must be one of {LR_MODES}")
    return ScheduleEntry(label, name, granularity, tuple(sorted(raw.items())), lr_mode)


def _string(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string, got {value!r}")


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        _positive_int("seeds", value)
        return tuple(range(value))
    distinct = isinstance(value, list | tuple) and value and len(set(value)) == len(value)
    if distinct and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        return tuple(value)
    raise ConfigError(f"seeds must be a positive count or a list of distinct seeds, got {value!r}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read an experiment TOML file (ConfigError naming the file when unreadable)."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such experiment file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read experiment TOML ({exc})") from None
