"""What one run is: a labelled schedule entry and the RunSpec whose content hash is its id."""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from clrbench.errors import ClrbenchError, ConfigError
from clrbench.schedules import Schedule, make, tie_to_run


def steps_per_epoch(examples: int, batch_size: int) -> int:
    """Optimizer steps in one epoch of ``examples`` (the last batch may be partial)."""
    return math.ceil(examples / batch_size)


@dataclass(frozen=True)
class ScheduleEntry:
    """A labelled schedule of the experiment, as written in the TOML file."""

    label: str
    name: str
    granularity: str = "iteration"
    params: tuple[tuple[str, Any], ...] = ()
    lr_mode: str = "graph"

    def build(
        self, steps_per_epoch: int, total_steps: int | None = None, check_rates: bool = True
    ) -> Schedule:
        """The validated Schedule for this entry; with ``total_steps``, its run-tied lengths
        (``"run"``, ``"run * F"``) resolved for that run and (``check_rates``) every rate of the
        run checked to be finite and >= 0 (a plug-in's formula can do anything)."""
        try:
            params = dict(self.params)
            if total_steps is not None:
                params = tie_to_run(self.name, params, total_steps)
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
    # "loop": clrbench's lean loop (clrbench.train.loop); "fit": Keras fit, which the seed's
    # per-batch callback (lr_mode "callback") needs.
    trainer: str = "loop"
    # A stratified split of the training set held out for validation (None: train on all of
    # it), and which set the per-epoch evaluation uses ("test" or "validation").
    validation_size: int | None = None
    split_seed: int = 0
    evaluate_on: str = "test"

    def __post_init__(self) -> None:
        if self.lr_mode == "callback":  # Keras calls the seed's per-batch callback: fit only
            object.__setattr__(self, "trainer", "fit")

    def config(self) -> dict[str, Any]:
        """Plain-value configuration: the content the run id hashes (the split keys only when
        there is a split, the trainer only when it is not the default, so other runs keep their
        ids; TRAINING_SEMANTICS tells runs of the same id trained by older code)."""
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
        if self.trainer != "loop":
            config["trainer"] = self.trainer
        return config

    @property
    def run_id(self) -> str:
        """Readable and unique: ``<label>-s<seed>-<8 hex of the config hash>``."""
        digest = hashlib.sha256(json.dumps(self.config(), sort_keys=True).encode()).hexdigest()
        return f"{self.label}-s{self.seed}-{digest[:8]}"
