"""What one run is: a labelled schedule entry and the RunSpec whose content hash is its id."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from clrbench.config.optimizers import CLASSIC, spec
from clrbench.config.workload import STACKED, Workload, steps_per_epoch
from clrbench.errors import ClrbenchError, ConfigError
from clrbench.schedules import Schedule, make, tie_to_run
from clrbench.schedules.by_role import run_length

# The one schedule a schedule-free optimizer takes: a constant rate (its warmup is its own).
SCHEDULE_FREE_SCHEDULE = "constant"

__all__ = ["RunSpec", "ScheduleEntry", "steps_per_epoch"]


@dataclass(frozen=True)
class ScheduleEntry:
    """A labelled schedule of the experiment, as written in the TOML file."""

    label: str
    name: str
    granularity: str = "iteration"
    params: tuple[tuple[str, Any], ...] = ()
    lr_mode: str = "graph"
    # The entry's own optimizer, weight decay and schedule-free warmup (steps, or "run * F");
    # None: the experiment's (``Experiment.workload_of``)
    optimizer: str | None = None
    weight_decay: float | None = None
    optimizer_warmup_steps: int | str | None = None

    def build(
        self, steps_per_epoch: int, total_steps: int | None = None, check_rates: bool = True
    ) -> Schedule:
        """The validated Schedule for this entry; with ``total_steps``, its run-tied lengths
        (``"run"``, ``"run * F"``) resolved for that run and (``check_rates``) every rate of the
        run checked to be finite and >= 0 (a plug-in's formula can do anything)."""
        try:
            params = dict(self.params)
            if total_steps is not None:
                params = tie_to_run(self.name, params, total_steps, steps_per_epoch)
            schedule = make(
                self.name, granularity=self.granularity, steps_per_epoch=steps_per_epoch, **params
            )
            if total_steps is not None and check_rates:
                _check_rates_once(schedule, total_steps)
            return schedule
        except ClrbenchError as exc:
            raise ConfigError(f"schedule {self.label!r}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        entry = {"label": self.label, "name": self.name, "granularity": self.granularity}
        if self.lr_mode != "graph":
            entry["lr_mode"] = self.lr_mode
        for key in ("optimizer", "weight_decay", "optimizer_warmup_steps"):
            if getattr(self, key) is not None:
                entry[key] = getattr(self, key)
        return entry | dict(self.params)

    def workload_of(self, workload: Workload, total_steps: int) -> Workload:
        """The workload this entry's runs train: ``workload`` with the entry's optimizer, weight
        decay and warmup. Naming another optimizer keeps the experiment's weight decay and warmup
        only where that optimizer takes them. ConfigError naming the entry."""
        changes: dict[str, Any] = {}
        if self.optimizer is not None and self.optimizer != workload.optimizer:
            changes["optimizer"] = self.optimizer
            if not isinstance(self.optimizer, str):
                raise ConfigError(f"schedule {self.label!r}: optimizer must be a string")
            taken = spec_or_error(self.label, self.optimizer)
            if taken.weight_decay is None:
                changes["weight_decay"] = None
            if not taken.schedule_free:
                changes["optimizer_warmup_steps"] = None
        if self.weight_decay is not None:
            changes["weight_decay"] = self.weight_decay
        warmup = self.optimizer_warmup_steps
        if isinstance(warmup, str):
            try:
                warmup = run_length(
                    f"schedule {self.label!r}: optimizer_warmup_steps", warmup, total_steps
                )
            except ClrbenchError as exc:
                raise ConfigError(str(exc)) from None
        if warmup is not None:
            changes["optimizer_warmup_steps"] = warmup
        if not changes:
            return workload
        try:
            return replace(workload, **changes)
        except ConfigError as exc:
            raise ConfigError(f"schedule {self.label!r}: {exc}") from None


def spec_or_error(label: str, optimizer: str):
    try:
        return spec(optimizer)
    except ConfigError as exc:
        raise ConfigError(f"schedule {label!r}: {exc}") from None


def check_schedule_free(label: str, schedule_name: str, lr_mode: str, workload: Workload) -> None:
    """A schedule-free optimizer takes a constant rate in the graph, nothing else (its warmup is
    the optimizer's own ``optimizer_warmup_steps``): ConfigError otherwise."""
    if not spec(workload.optimizer).schedule_free:
        return
    if schedule_name != SCHEDULE_FREE_SCHEDULE:
        raise ConfigError(
            f"schedule {label!r}: optimizer {workload.optimizer!r} is schedule-free: it takes a "
            f"constant rate and its own warmup (optimizer_warmup_steps), not schedule "
            f"{schedule_name!r}"
        )
    if lr_mode != "graph":
        raise ConfigError(
            f"schedule {label!r}: optimizer {workload.optimizer!r} is schedule-free: its rate "
            f"is constant, lr_mode {lr_mode!r} does not apply"
        )


@functools.lru_cache(maxsize=256)
def _check_rates_once(schedule: Schedule, total_steps: int) -> None:
    schedule.check_rates(total_steps)


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run's numbers (and so its id): the workload, the
    labelled schedule, the seed and how the rate reaches the optimizer."""

    label: str
    schedule: Schedule
    seed: int
    workload: Workload = field(default_factory=Workload)
    # "graph": the schedule evaluated in-graph at the optimizer's step; "callback": the blog's
    # Python callback setting the rate before every batch (clrbench.train.keras_fit)
    lr_mode: str = "graph"

    def __post_init__(self) -> None:
        check_schedule_free(self.label, self.schedule.name, self.lr_mode, self.workload)
        if self.workload.eval_every is not None and self.trainer != "loop":
            raise ConfigError(
                f"schedule {self.label!r}: eval_every needs the lean loop, but its lr_mode "
                f"{self.lr_mode!r} trains through Keras fit"
            )

    @property
    def trainer(self) -> str:
        """The workload's trainer; Keras ``fit`` for ``lr_mode = "callback"``, whose per-batch
        hook only ``fit`` calls."""
        return "fit" if self.lr_mode == "callback" else self.workload.trainer

    @property
    def stack_refusal(self) -> str | None:
        """Why this run cannot train in a stack (``clrbench.train.stacked``), in a few words, or
        None: a stack evaluates the rate in the graph, steps the lean loop's way, evaluates at
        epochs' ends and writes out Keras' SGD, Adam and RMSprop (whether the workload's model
        can be written out is asked of the model itself: ``stacked.check_model_stackable``)."""
        if self.lr_mode != "graph":
            return f"lr_mode {self.lr_mode!r} sets the rate from a Python callback (Keras fit)"
        if self.workload.trainer not in ("loop", STACKED):
            return f"trainer {self.workload.trainer!r} is Keras fit"
        if self.workload.eval_every is not None:
            return "eval_every: a stack evaluates at epochs' ends only"
        if self.workload.optimizer not in CLASSIC:
            return (
                f"optimizer {self.workload.optimizer!r} has no stacked update rule (stacks "
                f"write out {', '.join(CLASSIC)})"
            )
        return None

    @property
    def stackable(self) -> bool:
        """Whether this run can train in a stack (:attr:`stack_refusal` is None)."""
        return self.stack_refusal is None

    def stacked(self) -> RunSpec:
        """This run trained by the stacked trainer (another computation: another run id)."""
        return replace(self, workload=replace(self.workload, trainer=STACKED))

    def config(self) -> dict[str, Any]:
        """Plain-value configuration: the content the run id hashes (the workload's keys as
        ``Workload.config`` gives them, the trainer as this run trains;
        TRAINING_SEMANTICS tells runs of the same id trained by older code)."""
        workload = self.workload.config()
        if self.trainer != "loop":
            workload["trainer"] = self.trainer
        return {
            "label": self.label,
            "schedule": self.schedule.to_config(),
            "seed": self.seed,
            **workload,
            "lr_mode": self.lr_mode,
        }

    @property
    def run_id(self) -> str:
        """Readable and unique: ``<label>-s<seed>-<8 hex of the config hash>``."""
        digest = hashlib.sha256(json.dumps(self.config(), sort_keys=True).encode()).hexdigest()
        return f"{self.label}-s{self.seed}-{digest[:8]}"
