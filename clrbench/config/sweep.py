"""What one learning-rate range test (Smith 2015) trains, checked once: the sweep's settings."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clrbench.config.optimizers import is_schedule_free
from clrbench.config.workload import DEFAULT_MODEL, Workload
from clrbench.errors import ConfigError
from clrbench.schedules import Schedule, make

CHECK_EVERY = 25  # steps per compiled call of the sweep: the stop hook runs between calls
# lr-find's divergence rule (the one owner: clrbench.analysis.lrfind.divergence_index applies it):
# a sweep has diverged at the first step whose loss is not finite or whose smoothed loss exceeds
# 4x the lowest smoothed loss so far (fastai's 4x "stop when smoothed > 4 x best", on the
# centred median). A sweep climbs into divergence on purpose, so this is not the run's rule
# (10x the first batch loss: clrbench.train.batch_log.DIVERGENCE_FACTOR).
DIVERGENCE_FACTOR = 4.0
SMOOTHING_FRACTION = 0.05  # the smoothing window: 5% of the sweep's steps, odd, >= MIN_WINDOW
MIN_WINDOW = 5
VALLEY_FACTOR = 1.5  # the valley: rates whose smoothed loss is within 1.5x of its minimum
BASE_DIVISOR = 4.0  # base_lr = max_lr / 4 (Smith 2015: 1/3 to 1/4 of max_lr)
MIN_STEPS = 20
EMIT_EPOCHS = 25  # epochs per run of the experiment lr-find emits between its bounds
MODES = ("exp", "linear")


def check_sweep(
    min_lr: float, max_lr: float, steps: int, mode: str, name: Callable[[str], str] = str
) -> None:
    """The range test's own rules, each a ConfigError naming the setting (``name`` spells it:
    the field name, or the command-line flag)."""
    if mode not in MODES:
        raise ConfigError(f"{name('mode')} must be exp or linear, got {mode!r}")
    if steps < MIN_STEPS:
        raise ConfigError(f"{name('steps')} must be >= {MIN_STEPS}, got {steps}")
    if not (math.isfinite(min_lr) and min_lr > 0):
        raise ConfigError(f"{name('min_lr')} must be a positive number, got {min_lr}")
    if not (math.isfinite(max_lr) and max_lr > min_lr):
        raise ConfigError(
            f"{name('max_lr')} must be finite and > {name('min_lr')}={min_lr}, got {max_lr}"
        )


# The workload settings a sweep uses (it trains for `steps` steps, not the workload's epochs,
# and never evaluates): stored in lr_find.json, compared when a study reuses a sweep.
SWEEP_WORKLOAD_KEYS = (
    "dataset",
    "train_size",
    "batch_size",
    "optimizer",
    "threads",
    "validation_size",
    "split_seed",
)


@dataclass(frozen=True)
class SweepSettings:
    """What one range test trains: the sweep over a workload (its data, model, optimizer and
    thread budget; with a validation split, the sweep sees only its train part)."""

    min_lr: float = 1e-4
    max_lr: float = 10.0
    steps: int = 500
    mode: str = "exp"
    workload: Workload = field(default_factory=Workload)
    schedule: Schedule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_sweep(self.min_lr, self.max_lr, self.steps, self.mode)
        if is_schedule_free(self.workload.optimizer):
            raise ConfigError(
                f"optimizer {self.workload.optimizer!r} is schedule-free: it takes a constant "
                "rate, which a range test cannot sweep"
            )
        schedule = make(
            "range_test",
            min_lr=self.min_lr,
            max_lr=self.max_lr,
            num_steps=self.steps,
            mode=self.mode,
        )
        object.__setattr__(self, "schedule", schedule)

    @property
    def window(self) -> int:
        """Steps in the centred smoothing window: the odd number nearest 5 % of the sweep."""
        return max(MIN_WINDOW, 2 * round(SMOOTHING_FRACTION * self.steps / 2) + 1)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain values, with the reading's fixed constants."""
        values: dict[str, Any] = {"min_lr": self.min_lr, "max_lr": self.max_lr}
        values |= {"steps": self.steps, "mode": self.mode}
        values |= {key: getattr(self.workload, key) for key in SWEEP_WORKLOAD_KEYS}
        if self.workload.model != DEFAULT_MODEL:
            values["model"] = self.workload.model
        return values | {
            "check_every": CHECK_EVERY,
            "smoothing_window": self.window,
            "divergence_factor": DIVERGENCE_FACTOR,
            "valley_factor": VALLEY_FACTOR,
            "base_divisor": BASE_DIVISOR,
        }
