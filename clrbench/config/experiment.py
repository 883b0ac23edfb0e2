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
see ``clrbench.schedules``. A length may be tied to the run, ``total_steps = "run"`` or
``steps = "run * 0.08"``: it is resolved when the run's length is known, so ``--epochs`` and
``--train-size`` resize it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from clrbench.config import presets
from clrbench.config.parse import experiment_settings, parse_entry
from clrbench.config.runs import RunSpec, ScheduleEntry, check_schedule_free
from clrbench.config.workload import WORKLOAD_KEYS, Workload
from clrbench.errors import ConfigError
from clrbench.schedules import Schedule, names, shape_notes
from clrbench.text import did_you_mean


@dataclass(frozen=True)
class Experiment:
    """A validated experiment: the workload, the seeds and the labelled schedules. It checks
    itself on construction (``replace`` checks again) and notes the schedules whose cycle or
    length does not fit the run."""

    name: str
    schedules: tuple[ScheduleEntry, ...]
    workload: Workload = field(default_factory=Workload)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    notes: tuple[str, ...] = field(default=(), compare=False, init=False)

    def __post_init__(self) -> None:
        if not self.schedules:
            raise ConfigError("the experiment has no schedules")
        labels = [e.label for e in self.schedules]
        duplicates = sorted({x for x in labels if labels.count(x) > 1})
        if duplicates:
            raise ConfigError(f"duplicate schedule label(s): {', '.join(duplicates)}")
        for entry in self.schedules:  # each entry's optimizer settings, checked now
            workload = self.workload_of(entry)
            check_schedule_free(entry.label, entry.name, entry.lr_mode, workload)
        object.__setattr__(self, "notes", self._shape_notes())

    def workload_of(self, entry: ScheduleEntry) -> Workload:
        """The workload ``entry``'s runs train: the experiment's, with the entry's optimizer,
        weight decay and schedule-free warmup where it names them."""
        return entry.workload_of(self.workload, self.total_steps)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        """Build and validate from the TOML shape (``[experiment]`` + ``[[schedule]]``)."""
        settings, entries = experiment_settings(data)
        workload = Workload(**{k: v for k, v in settings.items() if k in WORKLOAD_KEYS})
        return cls(settings["name"], entries, workload, settings["seeds"])

    def to_dict(self) -> dict[str, Any]:
        """The TOML shape, resolved (stored as OUT/experiment.toml)."""
        workload = self.workload.to_dict()
        settings = {"name": self.name}
        settings |= {k: workload.pop(k) for k in ("dataset", "epochs", "batch_size")}
        settings |= {"seeds": list(self.seeds)} | workload
        return {"experiment": settings, "schedule": [e.to_dict() for e in self.schedules]}

    @property
    def steps_per_epoch(self) -> int:
        return self.workload.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self.workload.total_steps

    def validated(self) -> Experiment:
        """This experiment: it was checked when it was made (kept for scripts that call it)."""
        return self

    def with_workload(self, **changes: Any) -> Experiment:
        """The same schedules and seeds on a changed workload (checked again)."""
        return replace(self, workload=replace(self.workload, **changes))

    def _shape_notes(self) -> tuple[str, ...]:
        """Where a schedule's lengths or cycles do not fit the run (from its parameters' roles:
        a length that differs from the run, a mid-cycle end, a step decay that never drops);
        a warm-up or cooldown longer than the run is refused (ConfigError)."""
        texts = []
        for entry in self.schedules:
            schedule = self._build(entry, check_rates=False)
            for note in shape_notes(schedule, self.total_steps, entry.label):
                if note.kind == "overlong":
                    what = note.text.removeprefix(f"{entry.label}: ")
                    raise ConfigError(
                        f"schedule {entry.label!r}: {what}; shorten it, or write it relative "
                        "to the run ('run * 0.05') or the epoch ('epoch * 2')"
                    )
                texts.append(note.text)
        return tuple(texts)

    def _build(self, entry: ScheduleEntry, check_rates: bool = True) -> Schedule:
        """The entry's schedule for this run: run-tied lengths resolved (and rates checked)."""
        return entry.build(self.steps_per_epoch, self.total_steps, check_rates)

    def plan(self, stack: bool | StackChoice = False) -> Plan:
        """What this experiment trains, computed once: every run (each schedule built and its
        rates checked over the run). Everything downstream (``run_suite``, the manifest,
        resume, the interruption line) reads the plan, never the experiment's runs again.

        With ``stack`` (True, or a ``StackChoice`` that is on), every run that can stack
        (``RunSpec.stack_refusal``) is trained by the stacked trainer, under its own run id;
        the runner trains them in stacks of at most the choice's width. A run that cannot
        stack trains separately, and the choice's reason says so; when no run can, an asked-for
        stack is a ConfigError and an automatic one is off, with the refusal as its reason."""
        runs = self.runs()
        choice = stack if isinstance(stack, StackChoice) else None
        if not (choice.on if choice is not None else stack):
            return Plan(self, tuple(runs), choice)
        refused = {spec.run_id: spec.stack_refusal for spec in runs if spec.stack_refusal}
        if len(refused) == len(runs):
            why = next(iter(refused.values()))
            if choice is not None and choice.reason.startswith("auto"):
                return Plan(self, tuple(runs), replace(choice, on=False, reason=f"auto: {why}"))
            raise ConfigError(f"--stack: the runs of {self.name!r} cannot be stacked: {why}")
        if refused and choice is not None:
            reasons = ", ".join(sorted(set(refused.values())))
            choice = replace(
                choice, reason=f"{choice.reason}; {len(refused)} runs separately: {reasons}"
            )
        runs = [spec.stacked() if spec.run_id not in refused else spec for spec in runs]
        return Plan(self, tuple(runs), choice)

    def runs(self) -> list[RunSpec]:
        """One RunSpec per (schedule, seed), schedules in order (``plan()`` holds them)."""
        return [
            RunSpec(e.label, self._build(e), seed, self.workload_of(e), e.lr_mode)
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
        for entry in preset_entries(self.steps_per_epoch, self.workload.epochs):
            if entry.label not in known:
                known[entry.label] = entry
                others.append(entry)
        chosen = [known.get(item) or _by_name(item, own, others) for item in wanted]
        return replace(self, schedules=tuple(chosen))


@dataclass(frozen=True)
class StackChoice:
    """Whether a plan stacks, how many members a stack holds at most, and why
    (``clrbench.suite.devices.choose_stack``; printed with the run plan, recorded in the
    results folder's ``stacking.json``)."""

    on: bool
    width: int
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"stack": self.on, "width": self.width, "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    """An experiment and its runs, in order: what a suite trains and a folder's manifest lists;
    and how its runs stack (None: as the runs' trainers say, a stack as wide as it comes)."""

    experiment: Experiment
    runs: tuple[RunSpec, ...]
    stacking: StackChoice | None = None

    @property
    def run_ids(self) -> list[str]:
        return [spec.run_id for spec in self.runs]


def _by_name(
    name: str, own: list[ScheduleEntry], others: Sequence[ScheduleEntry] = ()
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
    known = [e.label for e in entries]
    hint = did_you_mean(name, [*known, *names()])
    raise ConfigError(
        f"unknown schedule {name!r}{hint}; labels: {', '.join(known)}; "
        f"schedule names: {', '.join(names())}"
    )


def preset_entries(steps_per_epoch: int, epochs: int) -> list[ScheduleEntry]:
    """Every labelled schedule any preset knows, scaled to this epoch length."""
    return [
        parse_entry(raw, i) for i, raw in enumerate(presets.all_schedules(steps_per_epoch, epochs))
    ]
