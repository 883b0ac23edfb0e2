"""The optimizers a run may name, as plain data: the Keras class, its fixed arguments, and what
it accepts (weight decay, a schedule).

Weight decay is a declared optimizer parameter (role ``weight_decay``) with a log-uniform search
range per optimizer, so a study's space can be built from it (:func:`weight_decay_range`):

- ``adamw``, ``nadamw``, ``schedulefree-adamw``: decoupled, ``p · (1 − lr · wd)`` (z for
  schedule-free); default 0.01 for adamw/nadamw (``torch.optim.AdamW``'s and AlgoPerf's NAdamW
  class's default), 0 for schedule-free (the reference's); range [5e-3, 1] — AlgoPerf's AdamW
  baseline's search space (``reference_algorithms/paper_baselines/adamw/tuning_search_space.json``).
- ``schedulefree-sgd``: an L2 term at y in the gradient (the reference's); default 0, range
  [1e-5, 1e-2], around SGD's customary 5e-4.

Schedule-free optimizers take a constant rate and their own warmup (``warmup_steps``): any other
schedule is refused (``clrbench.config.runs``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from clrbench.errors import ConfigError
from clrbench.text import did_you_mean

MOMENTUM = 0.9
DECAY_ROLE = "weight_decay"


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer a run may name."""

    keras_class: str  # in keras.optimizers, or clrbench.optimizers when ``own``
    kwargs: dict[str, Any] = field(default_factory=dict)
    own: bool = False  # clrbench.optimizers' class (AlgoPerf's / the schedule-free reference's)
    weight_decay: float | None = None  # its default weight decay; None: it takes none
    decay_range: tuple[float, float] | None = None  # the log-uniform search range of the decay
    schedule_free: bool = False


DECOUPLED_RANGE = (5e-3, 1.0)
L2_RANGE = (1e-5, 1e-2)

SPECS: dict[str, OptimizerSpec] = {
    "sgd-momentum": OptimizerSpec("SGD", {"momentum": MOMENTUM}),
    "sgd": OptimizerSpec("SGD"),
    "rmsprop": OptimizerSpec("RMSprop"),
    "adam": OptimizerSpec("Adam"),
    "adamw": OptimizerSpec("AdamW", own=True, weight_decay=1e-2, decay_range=DECOUPLED_RANGE),
    "nadamw": OptimizerSpec("NAdamW", own=True, weight_decay=1e-2, decay_range=DECOUPLED_RANGE),
    "schedulefree-sgd": OptimizerSpec(
        "ScheduleFreeSGD",
        {"momentum": MOMENTUM},
        own=True,
        weight_decay=0.0,
        decay_range=L2_RANGE,
        schedule_free=True,
    ),
    "schedulefree-adamw": OptimizerSpec(
        "ScheduleFreeAdamW",
        own=True,
        weight_decay=0.0,
        decay_range=DECOUPLED_RANGE,
        schedule_free=True,
    ),
}
# The optimizers the suite trained before AdamW and schedule-free (their run ids carry no
# weight decay; the stacked trainer implements these only).
CLASSIC = ("sgd-momentum", "sgd", "rmsprop", "adam")

# name -> (Keras class name, extra constructor arguments): the classic optimizers' table
OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    name: (spec.keras_class, spec.kwargs) for name, spec in SPECS.items()
}


def check_optimizer(name: str) -> str:
    """Return `name` if it is a known optimizer, else raise ConfigError."""
    if name not in SPECS:
        raise ConfigError(
            f"unknown optimizer {name!r}{did_you_mean(str(name), list(SPECS))}; "
            f"choose one of {', '.join(SPECS)}"
        )
    return name


def spec(name: str) -> OptimizerSpec:
    return SPECS[check_optimizer(name)]


def check_weight_decay(optimizer: str, value: Any) -> float | None:
    """The weight decay a run of ``optimizer`` trains with: ``value`` checked (a finite
    number >= 0, for an optimizer that takes one), or the optimizer's default."""
    default = spec(optimizer).weight_decay
    if value is None:
        return default
    if default is None:
        takes = ", ".join(name for name, s in SPECS.items() if s.weight_decay is not None)
        raise ConfigError(
            f"optimizer {optimizer!r} takes no weight_decay (these do: {takes}), got {value!r}"
        )
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0:
        raise ConfigError(f"weight_decay must be a finite number >= 0, got {value!r}")
    return float(value)


def weight_decay_range(optimizer: str) -> tuple[float, float] | None:
    """The log-uniform search range of ``optimizer``'s weight decay (None: it takes none)."""
    return spec(optimizer).decay_range


def is_schedule_free(optimizer: str) -> bool:
    return spec(optimizer).schedule_free


# --- preset rates per workload and optimizer ---

# A schedule-free preset entry's own warmup: 5% of the run (so it follows --epochs/--train-size).
SCHEDULE_FREE_WARMUP = "run * 0.05"

# The constant rate of each optimizer's preset entry, per workload, checked on validation as the
# workloads' SGD-momentum rates are (final validation accuracy, 2 seeds each; each optimizer at
# its default weight decay, schedule-free with SCHEDULE_FREE_WARMUP):
# - mnist1d-mlp (3,000 train / 1,000 validation, 100 epochs):
#   adamw 3e-4 / 1e-3 / 3e-3 / 0.01 / 0.03 / 0.1: 57.2 / 59.1 / 61.0 / 64.6 / 60.5 / 29.2%;
#   nadamw 3e-4 / 1e-3 / 3e-3 / 0.01 / 0.03: 56.9 / 59.5 / 60.5 / 62.5 / 59.9% (0.1 diverged);
#   schedulefree-adamw 1e-3 / 2.5e-3 / 5e-3 / 0.01 / 0.02 / 0.05 / 0.1:
#   58.1 / 57.2 / 58.3 / 59.1 / 61.2 / 62.8 / 62.6%;
#   schedulefree-sgd 0.1 / 0.3 / 1 / 3 / 10: 57.7 / 58.5 / 59.5 / 60.4 / 13.5%;
#   each optimizer's best is its preset rate (sgd-momentum's constant 0.1 gave 64.2% there).
# - mnist-mlp, on a shortened protocol (10,000 of the 50,000-image train split / 10,000
#   validation, 10 epochs: the full 25-epoch protocol took ~9 min a run on the shared 2 cores):
#   adamw 3e-4 / 1e-3 / 3e-3 / 0.01: 93.72 / 95.38 / 96.13 / 95.22%; nadamw the same rates:
#   93.78 / 95.30 / 95.97 / 95.19%; schedulefree-adamw 2.5e-3 / 5e-3 / 0.01 / 0.02:
#   95.24 / 95.70 / 96.10 / 96.09%; schedulefree-sgd 0.3 / 1 / 3 / 10: 92.98 / 95.09 / 95.90 /
#   94.72%; sgd-momentum's constant 0.1: 95.82%. A full run may prefer lower constant rates.
PRESET_RATES: dict[str, dict[str, float]] = {
    "mnist-mlp": {
        "adamw": 3e-3,
        "nadamw": 3e-3,
        "schedulefree-adamw": 0.01,
        "schedulefree-sgd": 3.0,
    },
    "mnist1d-mlp": {
        "adamw": 0.01,
        "nadamw": 0.01,
        "schedulefree-adamw": 0.05,
        "schedulefree-sgd": 3.0,
    },
}


def preset_rate(workload: str, optimizer: str) -> float | None:
    """The checked constant rate of ``optimizer`` on built-in workload ``workload`` (None: not
    checked there; sgd-momentum's are the workload's own ``constant_lr``)."""
    return PRESET_RATES.get(workload, {}).get(check_optimizer(optimizer))


def optimizer_entry(workload: str, optimizer: str, label: str | None = None) -> dict[str, Any]:
    """A preset's ``[[schedule]]`` entry training ``optimizer`` at its checked constant rate on
    ``workload`` (a schedule-free one with its warmup): ConfigError where none was checked."""
    rate = preset_rate(workload, optimizer)
    if rate is None:
        raise ConfigError(f"no preset rate of optimizer {optimizer!r} on workload {workload!r}")
    entry: dict[str, Any] = {
        "label": label or optimizer,
        "name": "constant",
        "lr": rate,
        "optimizer": optimizer,
    }
    if is_schedule_free(optimizer):
        entry["optimizer_warmup_steps"] = SCHEDULE_FREE_WARMUP
    return entry
