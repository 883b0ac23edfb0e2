"""A study's configuration: the workload, the protocol settings and the families' spaces.

TOML shape (``python -m clrbench study --config study.toml``; ``--emit-config`` writes one)::

    [experiment]             # the workload, as for `run` (no seeds, no schedules)
    name = "study"
    epochs = 25
    # train_size = 3000      # a stratified subset of the train split

    [study]                  # every key optional; defaults in StudyConfig
    budget = 16              # trials per family
    seeds = 5                # fresh seeds for the final re-runs on test
    confirm_top = 3          # the best trials of a family re-trained on confirm_seeds seeds
    studies = 1              # independent tunings (--studies N)

    [[family]]
    label = "constant"
    name = "constant"
    [family.space]
    lr = { log = [0.003, 1.0] }
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from clrbench.config.experiment import Experiment
from clrbench.config.optimizers import DECAY_ROLE
from clrbench.config.runs import ScheduleEntry, check_schedule_free
from clrbench.config.workload import Workload
from clrbench.config.workloads import expand_workload_key
from clrbench.errors import ConfigError
from clrbench.study.space import Family, parse_family

# The [experiment] keys of a study: its workload (the split is a protocol setting: [study]).
WORKLOAD_KEYS = (
    "dataset",
    "model",
    "epochs",
    "batch_size",
    "train_size",
    "optimizer",
    "weight_decay",
    "threads",
    "eval_every",
)
SPLIT_KEYS = ("validation_size", "split_seed")
STUDY_VALIDATION_SIZE = 10_000  # images held out of the training set for every choice

ZERO_BUDGET_LABELS = ("lr-find-clr", "lr-find-constant")  # the study's lr-find arm
# Study i of ``studies`` adds i x this to every seed that selects (sampling, tuning, confirmation,
# sensitivity); study 0 keeps the configured seeds, and the final seeds are the same for all.
STUDY_SEED_STRIDE = 10_000


@dataclass(frozen=True)
class StudyConfig:
    """Everything a study does, checked on construction. Seeds of the three phases never
    overlap. Every run of every phase trains ``workload`` (the final phase evaluated on test,
    the others on its validation split)."""

    name: str = "study"
    workload: Workload = field(
        default_factory=lambda: Workload(validation_size=STUDY_VALIDATION_SIZE)
    )
    budget: int = 16  # trials per family
    seeds: int = 5  # final re-runs on test: seeds first_seed .. first_seed + seeds - 1
    first_seed: int = 0
    tuning_seed: int = 1000  # the one seed every trial trains with
    sampling_seed: int = 0  # scrambles the Sobol sequences
    sensitivity_seeds: int = 2
    sensitivity_first_seed: int = 2000
    confirm_top: int = 3  # the best trials per family re-trained for the winner (0: off)
    confirm_seeds: int = 3  # fresh validation seeds of each confirmation candidate
    confirm_first_seed: int = 3000
    studies: int = 1  # independent tunings (their own Sobol scrambles and selection seeds)
    # --fresh-seeds: study i re-runs its winners on its own final seeds (first_seed + 10,000 i),
    # so the spread over studies includes a fresh draw of seeds (docs/concepts/protocol.md)
    fresh_seeds: bool = False
    # --until-decided: ``studies`` is the most to run; stop once every family is decided
    # under the sequential rule (clrbench.analysis.protocol)
    until_decided: bool = False
    octaves: tuple[int, ...] = (-3, -2, -1, 0, 1, 2, 3)
    flatness_pp: float = 0.2
    zero_budget: bool = True
    lr_find_seeds: int = 3
    lr_find_steps: int = 500
    bootstrap: int = 2000  # resamples per point of the best-vs-budget curve
    families: tuple[Family, ...] = field(default=(), repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyConfig:
        """Build and validate from the TOML shape."""
        unknown = set(data) - {"experiment", "study", "family"}
        if unknown:
            raise ConfigError(f"unknown top-level key(s): {', '.join(sorted(unknown))}")
        settings = dict(data.get("experiment", {}))
        extra = set(settings) - {"name", "workload", *WORKLOAD_KEYS}
        if extra:
            raise ConfigError(f"[experiment]: unknown key(s) {', '.join(sorted(extra))}")
        settings = expand_workload_key(settings)
        protocol = dict(data.get("study", {}))
        known = {f.name for f in fields(cls)} - {"name", "workload", "families"}
        extra = set(protocol) - known - set(SPLIT_KEYS)
        if extra:
            raise ConfigError(f"[study]: unknown key(s) {', '.join(sorted(extra))}")
        if "octaves" in protocol:
            protocol["octaves"] = tuple(protocol["octaves"])
        split = {"validation_size": STUDY_VALIDATION_SIZE} | {
            k: protocol.pop(k) for k in SPLIT_KEYS if k in protocol
        }
        workload = Workload(**{k: settings.pop(k) for k in WORKLOAD_KEYS if k in settings}, **split)
        families = tuple(parse_family(raw, i) for i, raw in enumerate(data.get("family", [])))
        return cls(**settings, workload=workload, **protocol, families=families)

    def to_dict(self) -> dict[str, Any]:
        """The TOML shape, resolved (stored as STUDY/study.toml)."""
        workload = {"name": self.name} | {
            k: getattr(self.workload, k)
            for k in WORKLOAD_KEYS
            if getattr(self.workload, k) is not None
        }
        protocol = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("name", "workload", "families")
        }
        protocol["octaves"] = list(self.octaves)
        protocol |= {k: getattr(self.workload, k) for k in SPLIT_KEYS}
        return {
            "experiment": workload,
            "study": protocol,
            "family": [f.to_toml() for f in self.families],
        }

    def __post_init__(self) -> None:
        for key in ("budget", "seeds", "sensitivity_seeds", "lr_find_seeds", "bootstrap"):
            _count(key, getattr(self, key))
        for key in ("confirm_seeds", "studies"):
            _count(key, getattr(self, key))
        for key in ("fresh_seeds", "until_decided"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key} must be true or false, got {getattr(self, key)!r}")
        for key in ("first_seed", "tuning_seed", "sampling_seed", "confirm_top"):
            _count(key, getattr(self, key), minimum=0)
        for key in ("sensitivity_first_seed", "confirm_first_seed"):
            _count(key, getattr(self, key), minimum=0)
        _count("lr_find_steps", self.lr_find_steps, minimum=20)
        if self.workload.validation_size is None:
            raise ConfigError("a study needs a validation_size (every choice is made on it)")
        _count("split_seed", self.workload.split_seed, minimum=0)
        self._check_seeds()
        if not self.families:
            raise ConfigError("the study has no [[family]]")
        labels = [f.label for f in self.families]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"duplicate family labels in {labels}")
        if not self.octaves or any(
            isinstance(k, bool) or not isinstance(k, int) for k in self.octaves
        ):
            raise ConfigError(f"octaves must be a list of integers, got {list(self.octaves)}")
        if 0 not in self.octaves or len(set(self.octaves)) != len(self.octaves):
            raise ConfigError(f"octaves must be distinct and include 0, got {list(self.octaves)}")
        if not isinstance(self.zero_budget, bool):
            raise ConfigError(f"zero_budget must be true or false, got {self.zero_budget!r}")
        if isinstance(self.flatness_pp, bool) or not isinstance(self.flatness_pp, int | float):
            raise ConfigError(f"flatness_pp must be a number, got {self.flatness_pp!r}")
        if not 0 < self.flatness_pp < 100:
            raise ConfigError(f"flatness_pp must be in (0, 100), got {self.flatness_pp}")
        for family in self.families:  # every family's corners must build
            for corner in (0.0, 0.999999):
                point = [corner] * len(family.ranged)
                entry = entry_for(family, family.label, family.resolve(point, *self.lengths()))
                entry.build(self.lengths()[0])
                workload = entry.workload_of(self.workload, self.lengths()[1])
                check_schedule_free(entry.label, entry.name, entry.lr_mode, workload)
        object.__setattr__(self, "octaves", tuple(sorted(self.octaves)))

    def _check_seeds(self) -> None:
        """The final seeds differ from every seed that selects, in every study; within and
        across studies the selecting seeds of different phases never meet (studies are
        independent draws)."""
        finals = [set(self.final_seeds(i)) for i in range(self.studies)]
        if self.fresh_seeds and len(set().union(*finals)) < sum(len(f) for f in finals):
            raise ConfigError(
                f"--fresh-seeds: {self.seeds} final seeds per study overlap the next study's "
                f"(each study's start {STUDY_SEED_STRIDE:,} seeds later)"
            )
        final = set().union(*finals)
        seen: dict[int, str] = {}
        for i in range(self.studies):
            for phase, seeds in self.draw_seeds(i).items():
                for seed in seeds:
                    if seed in final:
                        raise ConfigError(
                            f"the final seeds {min(final)}..{max(final)} must differ from the "
                            f"tuning seed ({self.tuning_seed}), the confirmation and the "
                            f"sensitivity seeds (study {i}'s {phase} seed {seed})"
                        )
                    where = f"study {i}'s {phase}"
                    if seen.setdefault(seed, where) != where:
                        raise ConfigError(
                            f"seed {seed} is both {seen[seed]} and {where} seed: give the "
                            "tuning, confirmation and sensitivity seeds ranges that do not meet"
                        )

    def draw_seeds(self, study: int) -> dict[str, tuple[int, ...]]:
        """The seeds that select in study ``study``: tuning, confirmation, sensitivity."""
        shift = STUDY_SEED_STRIDE * study
        confirm = self.confirm_first_seed + shift
        sensitivity = self.sensitivity_first_seed + shift
        return {
            "tuning": (self.tuning_seed + shift,),
            "confirmation": tuple(range(confirm, confirm + self.confirm_seeds)),
            "sensitivity": tuple(range(sensitivity, sensitivity + self.sensitivity_seeds)),
        }

    def final_seeds(self, study: int) -> tuple[int, ...]:
        """Study ``study``'s final seeds: the configured ones, or with ``fresh_seeds`` its own
        (``first_seed + STUDY_SEED_STRIDE * study`` on)."""
        first = self.first_seed + (STUDY_SEED_STRIDE * study if self.fresh_seeds else 0)
        return tuple(range(first, first + self.seeds))

    def draw(self, study: int) -> StudyConfig:
        """Study ``study`` of this configuration as a one-study configuration: its own Sobol
        scramble and selection seeds (study 0: this configuration's own), the same split,
        workload, spaces and final seeds."""
        if not 0 <= study < self.studies:
            raise ConfigError(f"study {study} of {self.studies}: no such study")
        if study == 0 and self.studies == 1:
            return self
        shift = STUDY_SEED_STRIDE * study
        return replace(
            self,
            studies=1,
            sampling_seed=self.sampling_seed + shift,
            tuning_seed=self.tuning_seed + shift,
            confirm_first_seed=self.confirm_first_seed + shift,
            sensitivity_first_seed=self.sensitivity_first_seed + shift,
            first_seed=self.final_seeds(study)[0],
        )

    def lengths(self) -> tuple[int, int]:
        """Steps per epoch and total steps of every run of the study."""
        return self.workload.steps_per_epoch, self.workload.total_steps

    def experiment(
        self,
        evaluate_on: str,
        seeds: tuple[int, ...],
        schedules: tuple[ScheduleEntry, ...],
        part: str = "",
    ) -> Experiment:
        """An ordinary experiment of this study's workload on its train split."""
        return Experiment(
            name=f"{self.name}-{part}" if part else self.name,
            schedules=schedules,
            workload=replace(self.workload, evaluate_on=evaluate_on),
            seeds=seeds,
        )

    def with_changes(self, **changes: Any) -> StudyConfig:
        """The study with protocol settings and workload settings changed (checked again)."""
        workload = {k: changes.pop(k) for k in (*WORKLOAD_KEYS, *SPLIT_KEYS) if k in changes}
        return replace(self, workload=replace(self.workload, **workload), **changes)

    def select(self, labels: list[str]) -> StudyConfig:
        """Keep only the named families (ConfigError listing the known ones)."""
        known = {f.label: f for f in self.families}
        missing = [label for label in labels if label not in known]
        if missing:
            raise ConfigError(f"unknown family {missing[0]!r}; choose from {', '.join(known)}")
        return replace(self, families=tuple(known[label] for label in labels))


def entry_for(family: Family, label: str, params: dict[str, Any]) -> ScheduleEntry:
    """The labelled schedule entry of ``family`` at ``params``: its optimizer, and a
    ``weight_decay`` knob's value as the entry's weight decay (not a schedule parameter)."""
    params = dict(params)
    decay = params.pop(DECAY_ROLE, None)
    return ScheduleEntry(
        label,
        family.name,
        family.granularity,
        tuple(sorted(params.items())),
        optimizer=family.optimizer,
        weight_decay=decay,
    )


def _count(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def octave_label(family: str, k: int) -> str:
    return f"{family}-k{k:+d}"
